"""The NAS's vendor decides the reply: one mapping from the MikroTik-flavoured attributes
:func:`jasiyo.radius.policy.reply_attributes` builds to what each kind of NAS honours.

- ``mikrotik``: as built (Mikrotik-Rate-Limit, Mikrotik-Address-List for the walled garden).
- ``edgeos``: Ubiquiti's PPPoE server reads WISPr-Bandwidth-Max-Up/-Down (vendor 14122,
  bits per second); the walled garden is the EdgeOS driver's address-group, so it is only
  possible when the agent drives that router (it has API/SSH credentials).
- ``generic``: a RADIUS-only NAS (Linux pppd, accel-ppp, Cisco, Cambium): standard
  attributes only, and no way to fence a session in.

A suspended subscriber on a NAS that cannot walled-garden is put in the router's
``suspended_pool`` (Framed-Pool, the NAS's own pool of fenced addresses) when one is set,
and otherwise rejected: never let through with full service.
"""

from __future__ import annotations

from enum import StrEnum

from jasiyo.network import Access, DesiredState, Rate

#: Attribute name and value, in the dictionary's terms (as :data:`policy.ReplyAttr`).
ReplyAttr = tuple[str, str | int | bytes]


class Vendor(StrEnum):
    MIKROTIK = "mikrotik"
    EDGEOS = "edgeos"
    GENERIC = "generic"


_DRIVER_VENDOR = {
    "mikrotik": Vendor.MIKROTIK,
    "routeros": Vendor.MIKROTIK,
    "ubiquiti": Vendor.EDGEOS,
    "edgeos": Vendor.EDGEOS,
}


def vendor_of_driver(driver: str) -> Vendor:
    """The reply dialect of a router added with ``--driver`` ``driver`` (unknown: generic)."""
    return _DRIVER_VENDOR.get(driver.strip().lower(), Vendor.GENERIC)


def wispr_rates(rate_limit: str) -> tuple[int, int]:
    """(Max-Up, Max-Down) in bits/s from a Mikrotik-Rate-Limit value.

    The rate limit is from the router's view (rx = client upload, tx = client download);
    the burst fields, which WISPr cannot express, are left out.
    """
    rate = Rate.parse(rate_limit.split()[0])
    return rate.rx, rate.tx


def adapt(
    attrs: tuple[ReplyAttr, ...],
    state: DesiredState,
    vendor: Vendor | str,
    *,
    walled_garden: bool = True,
    suspended_pool: str = "",
) -> tuple[tuple[ReplyAttr, ...], str | None]:
    """``attrs`` (as :func:`policy.reply_attributes` built them) for a NAS of ``vendor``.

    Returns ``(attributes, None)`` for an accept, or ``((), reason)`` when the subscriber
    must be rejected: suspended (walled garden) on a NAS that cannot fence them in and has
    no ``suspended_pool``. ``walled_garden`` says whether this NAS can (MikroTik always; an
    EdgeRouter only when the agent drives it; a generic NAS never).
    """
    vendor = Vendor(vendor)
    fenced = state.access is Access.WALLED_GARDEN
    if vendor is Vendor.GENERIC:
        walled_garden = False
    if fenced and not walled_garden and not suspended_pool:
        return (), (
            f"suspended, and this {vendor.value} NAS cannot hold a walled garden: "
            "rejected (give the router a --suspended-pool to fence them in instead)"
        )
    out: list[ReplyAttr] = []
    for name, value in attrs:
        if name.startswith("Mikrotik-"):
            if vendor is Vendor.MIKROTIK:
                out.append((name, value))
            elif vendor is Vendor.EDGEOS and name == "Mikrotik-Rate-Limit":
                up, down = wispr_rates(str(value))
                out += [("WISPr-Bandwidth-Max-Up", up), ("WISPr-Bandwidth-Max-Down", down)]
            continue
        if fenced and suspended_pool and name == "Framed-IP-Address":
            continue  # a fixed address would take the session out of the suspended pool
        out.append((name, value))
    if fenced and suspended_pool:
        out.append(("Framed-Pool", suspended_pool))
    return tuple(out), None


def rate_attributes(rate_limit: str, vendor: Vendor | str) -> dict[str, str | int]:
    """The CoA attributes that change a live session's speed on a NAS of ``vendor``
    (empty for a generic NAS: standard RADIUS has no rate attribute)."""
    vendor = Vendor(vendor)
    if vendor is Vendor.MIKROTIK:
        return {"Mikrotik-Rate-Limit": rate_limit}
    if vendor is Vendor.EDGEOS:
        up, down = wispr_rates(rate_limit)
        return {"WISPr-Bandwidth-Max-Up": up, "WISPr-Bandwidth-Max-Down": down}
    return {}
