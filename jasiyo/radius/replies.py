"""Reading an Access-Request's credentials and filling an Access-Accept, on pyrad packets.

The pyrad path of :class:`jasiyo.radius.server.RadiusServer` uses these; the PAP fast path
(:mod:`.fastpap`) shares the attribute encoder, so both write the same bytes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from pyrad.dictionary import Dictionary
from pyrad.packet import AuthPacket, Packet

from jasiyo.radius import mschap
from jasiyo.radius.policy import AuthMethod, AuthRequest, Decision

_MS = 311  # Microsoft vendor id
MS_CHAP_ERROR = (_MS, 2)
_MS_MPPE_POLICY = (_MS, 7)
_MS_MPPE_TYPES = (_MS, 8)
_MS_CHAP_CHALLENGE = (_MS, 11)
_MS_MPPE_SEND_KEY = (_MS, 16)
_MS_MPPE_RECV_KEY = (_MS, 17)
_MS_CHAP2_RESPONSE = (_MS, 25)
_MS_CHAP2_SUCCESS = (_MS, 26)
REPLY_MESSAGE = 18
#: MPPE allowed, not required; 40- or 128-bit RC4 (FreeRADIUS's defaults)
_MPPE_POLICY_ALLOWED = (1).to_bytes(4, "big")
_MPPE_TYPES_40_128 = (6).to_bytes(4, "big")


class AttributeEncoder:
    """Reply attributes as (pyrad key, raw value) pairs, in the order pyrad's packet gives
    them (grouped by attribute, in order of first appearance).

    Cached per reply (subscribers share plans) and per attribute: a reply whose
    Session-Timeout or data left changes with every request (prepaid, data packages)
    encodes only those values anew, each with pyrad's own encoder.
    """

    def __init__(self, dictionary: Dictionary) -> None:
        self.dict = dictionary
        self._encoded: dict[tuple[Any, ...], tuple[tuple[Any, bytes], ...]] = {}
        self._pairs: dict[tuple[str, Any], tuple[Any, list[bytes]] | None] = {}
        self._scratch = Packet(dict=dictionary)

    def attributes(self, attrs: tuple[Any, ...]) -> tuple[tuple[Any, bytes], ...]:
        """ValueError, TypeError or KeyError (pyrad's) for a value it cannot encode."""
        cached = self._encoded.get(attrs)
        if cached is None:
            cached = self._combine(attrs)
            if len(self._encoded) >= 65536:
                self._encoded.clear()
            self._encoded[attrs] = cached
        return cached

    def _combine(self, attrs: tuple[Any, ...]) -> tuple[tuple[Any, bytes], ...]:
        groups: dict[Any, list[bytes]] = {}
        pairs = self._pairs
        for pair in attrs:
            one = pairs.get(pair, False)
            if one is False:
                one = self._pair(*pair)
                if len(pairs) >= 65536:
                    pairs.clear()
                pairs[pair] = one
            if one is None:  # not a plain attribute: the whole reply through a pyrad packet
                return self._whole(attrs)
            key, raws = one  # type: ignore[misc]
            groups.setdefault(key, []).extend(raws)
        return tuple((k, v) for k, vs in groups.items() for v in vs)

    def _pair(self, name: str, value: Any) -> tuple[Any, list[bytes]] | None:
        """``name`` = ``value`` as pyrad's AddAttribute encodes it; None for a sub-attribute
        or an encrypted one (they depend on more than the pair)."""
        attr = self.dict.attributes[name.partition(":")[0]]
        if attr.is_sub_attribute or attr.encrypt:
            return None
        key, raws = self._scratch._EncodeKeyValues(name, value)
        return key, list(raws)

    def _whole(self, attrs: tuple[Any, ...]) -> tuple[tuple[Any, bytes], ...]:
        scratch = Packet(dict=self.dict)
        for name, value in attrs:
            scratch.AddAttribute(name, value)
        return tuple((k, v) for k, vs in OrderedDict.items(scratch) for v in vs)


def auth_request(pkt: AuthPacket) -> AuthRequest:
    """Extract the credentials; MS-CHAPv2 wins over CHAP, CHAP over PAP."""
    get = dict.get  # raw bytes, without pyrad's per-access decoding
    name_raw = (get(pkt, 1) or [b""])[0]
    username = name_raw.decode("utf-8", "replace")
    calling = (get(pkt, 31) or [b""])[0].decode("utf-8", "replace")  # Calling-Station-Id
    ms_response = get(pkt, _MS_CHAP2_RESPONSE)
    if ms_response:
        challenge = (get(pkt, _MS_CHAP_CHALLENGE) or [b""])[0]
        return AuthRequest(username, AuthMethod.MSCHAPV2, challenge=challenge,
                           mschap2_response=ms_response[0], raw_username=name_raw,
                           calling_station_id=calling)  # fmt: skip
    chap = get(pkt, 3)
    if chap:
        challenge = (get(pkt, 60) or [pkt.authenticator])[0]
        value = chap[0]
        return AuthRequest(username, AuthMethod.CHAP, chap_ident=value[0] if value else 0,
                           chap_response=value[1:], challenge=challenge,
                           calling_station_id=calling)  # fmt: skip
    password = get(pkt, 2)
    if password:
        return AuthRequest(username, AuthMethod.PAP, pap_password=pkt.PwDecrypt(password[0]),
                           calling_station_id=calling)  # fmt: skip
    return AuthRequest(username, AuthMethod.NONE)


def fill_accept(
    reply: Packet, request: AuthPacket, decision: Decision, encoded: tuple[tuple[Any, bytes], ...]
) -> None:
    """Put the decision's ``encoded`` attributes, and MS-CHAPv2's success and keys, in ``reply``."""
    for key, raw in encoded:
        values = dict.get(reply, key)
        if values is None:
            OrderedDict.__setitem__(reply, key, [raw])
        else:
            values.append(raw)
    ms = decision.mschap2
    if ms is not None:
        salt = os.urandom(2)
        secret, authenticator = request.secret, request.authenticator
        send = mschap.encrypt_mppe_key(ms.send_key, secret, authenticator, bytes([0x80 | salt[0], salt[1]]))
        # the two keys of one reply need different salts (RFC 2548)
        recv = mschap.encrypt_mppe_key(ms.recv_key, secret, authenticator,
                                       bytes([0x80 | salt[0], salt[1] ^ 1]))  # fmt: skip
        put(reply, _MS_CHAP2_SUCCESS, ms.success)
        put(reply, _MS_MPPE_RECV_KEY, recv)
        put(reply, _MS_MPPE_SEND_KEY, send)
        put(reply, _MS_MPPE_POLICY, _MPPE_POLICY_ALLOWED)
        put(reply, _MS_MPPE_TYPES, _MPPE_TYPES_40_128)


def put(pkt: Packet, key: Any, raw: bytes) -> None:
    """Set one raw attribute value. Packet is an OrderedDict: ``dict.__setitem__`` would
    bypass its ordering and the attribute would never be encoded."""
    OrderedDict.__setitem__(pkt, key, [raw])
