"""The attribute-count rules of RFC 2865, 2866 and 2869, checked before anything decodes.

Each RFC ends with a table of how many times an attribute may appear in each packet type.
A request that repeats an attribute allowed "0-1" times is ambiguous: two User-Names or two
User-Passwords mean different things to a proxy that reads the first and a server that
reads the last, which is how a hostile request earns an Access-Accept it should not.
Such requests are dropped (RFC 2865 section 5.44: a packet violating the table is to be
treated as malformed) and counted as ``dropped_duplicate_attribute``.

The check runs once, in the server, before both the PAP fast path and the pyrad path, so
the two can never disagree about which copy of an attribute counts.

Not enforced: the "0" rules (attributes a request should not carry at all, such as Class
in an Access-Request). Routers send such attributes in practice and they are never read.
"""

from __future__ import annotations

from typing import Final

#: RFC 2865 section 5.44, Access-Request column "0-1" (and RFC 2869 section 5.19, RFC 3162
#: and RFC 4818 where they add attributes we read): attribute number -> name.
ACCESS_ONCE: Final[dict[int, str]] = {
    1: "User-Name",
    2: "User-Password",
    3: "CHAP-Password",
    4: "NAS-IP-Address",
    5: "NAS-Port",
    6: "Service-Type",
    7: "Framed-Protocol",
    8: "Framed-IP-Address",
    9: "Framed-IP-Netmask",
    12: "Framed-MTU",
    19: "Callback-Number",
    24: "State",
    30: "Called-Station-Id",
    31: "Calling-Station-Id",
    32: "NAS-Identifier",
    34: "Login-LAT-Service",
    35: "Login-LAT-Node",
    36: "Login-LAT-Group",
    60: "CHAP-Challenge",
    61: "NAS-Port-Type",
    62: "Port-Limit",
    63: "Login-LAT-Port",
    77: "Connect-Info",
    80: "Message-Authenticator",
    87: "NAS-Port-Id",
    95: "NAS-IPv6-Address",
}

#: RFC 2866 section 5.13 and RFC 2869 section 5.19, Accounting-Request column "0-1" or "1".
ACCOUNTING_ONCE: Final[dict[int, str]] = {
    1: "User-Name",
    4: "NAS-IP-Address",
    5: "NAS-Port",
    6: "Service-Type",
    7: "Framed-Protocol",
    8: "Framed-IP-Address",
    9: "Framed-IP-Netmask",
    10: "Framed-Routing",
    12: "Framed-MTU",
    19: "Callback-Number",
    27: "Session-Timeout",
    28: "Idle-Timeout",
    29: "Termination-Action",
    30: "Called-Station-Id",
    31: "Calling-Station-Id",
    32: "NAS-Identifier",
    40: "Acct-Status-Type",
    41: "Acct-Delay-Time",
    42: "Acct-Input-Octets",
    43: "Acct-Output-Octets",
    44: "Acct-Session-Id",
    45: "Acct-Authentic",
    46: "Acct-Session-Time",
    47: "Acct-Input-Packets",
    48: "Acct-Output-Packets",
    49: "Acct-Terminate-Cause",
    50: "Acct-Multi-Session-Id",
    51: "Acct-Link-Count",
    52: "Acct-Input-Gigawords",
    53: "Acct-Output-Gigawords",
    55: "Event-Timestamp",
    61: "NAS-Port-Type",
    62: "Port-Limit",
    80: "Message-Authenticator",
    87: "NAS-Port-Id",
    95: "NAS-IPv6-Address",
}

#: RFC 5997 section 3: Status-Server carries one Message-Authenticator, and the attributes
#: identifying the client at most once each.
STATUS_ONCE: Final[dict[int, str]] = {
    1: "User-Name",
    4: "NAS-IP-Address",
    32: "NAS-Identifier",
    80: "Message-Authenticator",
    95: "NAS-IPv6-Address",
}

_ACCESS_REQUEST, _ACCOUNTING_REQUEST, _STATUS_SERVER = 1, 4, 12

#: per request code, a 256-entry table: 1 where the attribute may appear at most once
ONCE_TABLES: Final[dict[int, bytes]] = {
    code: bytes(1 if i in once else 0 for i in range(256))
    for code, once in (
        (_ACCESS_REQUEST, ACCESS_ONCE),
        (_ACCOUNTING_REQUEST, ACCOUNTING_ONCE),
        (_STATUS_SERVER, STATUS_ONCE),
    )
}
_NAMES: Final[dict[int, dict[int, str]]] = {
    _ACCESS_REQUEST: ACCESS_ONCE,
    _ACCOUNTING_REQUEST: ACCOUNTING_ONCE,
    _STATUS_SERVER: STATUS_ONCE,
}


def violation(data: bytes, length: int) -> str | None:
    """Why ``data`` (a request of ``length`` bytes, header already checked) breaks the
    attribute-count rules, or None. Attributes that do not parse are left to the decoder,
    which drops them as malformed."""
    code = data[0]
    table = ONCE_TABLES.get(code)
    if table is None:
        return None
    seen = bytearray(256)
    pos = 20
    while pos + 2 <= length:
        key = data[pos]
        alen = data[pos + 1]
        if alen < 2:
            return None
        if table[key]:
            if seen[key]:
                return f"{_NAMES[code][key]} more than once"
            seen[key] = 1
        pos += alen
    # RFC 2865 section 4.1: "An Access-Request MUST NOT contain both a User-Password and a
    # CHAP-Password."
    if code == _ACCESS_REQUEST and seen[2] and seen[3]:
        return "both User-Password and CHAP-Password"
    return None


__all__ = ["ACCESS_ONCE", "ACCOUNTING_ONCE", "ONCE_TABLES", "STATUS_ONCE", "violation"]
