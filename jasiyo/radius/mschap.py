"""MS-CHAPv2 (RFC 2759), MPPE keys (RFC 3079) and their RADIUS encoding (RFC 2548).

MikroTik PPP (PPPoE, L2TP, PPTP, SSTP) prefers MS-CHAPv2; pyrad has none of it. The server
side needs three things from one exchange:

* check the peer's NT-Response (:func:`verify_response`),
* prove we know the password too: MS-CHAP2-Success ``S=<authenticator response>``,
* hand the NAS the MPPE start keys, encrypted with the RADIUS secret
  (:func:`encrypt_mppe_key`).

Function names follow the RFC's pseudo-code so the code can be read beside it. The client
side (:func:`generate_nt_response`) is here too: tests and tools use it to play the peer.

MD4 is implemented here because OpenSSL 3 hides it in its legacy provider, so ``hashlib``
often lacks it; it is only ever applied to short inputs (a password, a 16-byte hash).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

# ---------------------------------------------------------------- MD4 (RFC 1320)

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(data: bytes) -> bytes:
    """The MD4 digest of ``data`` (RFC 1320), 16 bytes."""
    length_bits = (len(data) * 8) & 0xFFFFFFFFFFFFFFFF
    msg = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length_bits)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off : off + 64])
        aa, bb, cc, dd = a, b, c, d
        # round 1: F(x,y,z) = xy | ~xz
        for i in (0, 4, 8, 12):
            a = _rotl(a + ((b & c) | (~b & d)) + x[i], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        # round 2: G(x,y,z) = xy | xz | yz, constant 0x5A827999
        for i in (0, 1, 2, 3):
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        # round 3: H(x,y,z) = x ^ y ^ z, constant 0x6ED9EBA1
        for i in (0, 2, 1, 3):
            a = _rotl(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


# ---------------------------------------------------------------- RFC 2759 section 8

_MAGIC1 = b"Magic server to client signing constant"
_MAGIC2 = b"Pad to make it do more than one iteration"


@lru_cache(maxsize=4096)
def nt_password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the password in UTF-16LE (16 bytes).

    Cached: the same subscribers authenticate again and again, and MD4 is pure Python here.
    """
    return md4(password.encode("utf-16-le"))


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """HashNtPasswordHash: MD4 of the password hash."""
    return md4(password_hash)


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """ChallengeHash: the 8-byte challenge both sides derive from the two challenges.

    ``username`` is the name without any ``DOMAIN\\`` prefix (RFC 2759 section 8.2).
    """
    username = _strip_domain(username)
    return hashlib.sha1(peer_challenge + authenticator_challenge + username).digest()[:8]


def _strip_domain(username: bytes) -> bytes:
    return username.rsplit(b"\\", 1)[-1]


def _des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes (parity bits left zero; DES ignores them)."""
    k = int.from_bytes(key7, "big")
    return bytes(((k >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def _des_encrypt(key7: bytes, block: bytes) -> bytes:
    key = _des_key(key7)
    # Single DES is 3DES with K1 = K2 = K3; cryptography only offers it that way.
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """ChallengeResponse: three DES encryptions of the challenge, 24 bytes."""
    z = password_hash + b"\x00" * (21 - len(password_hash))
    return b"".join(_des_encrypt(z[i : i + 7], challenge) for i in (0, 7, 14))


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password: str
) -> bytes:
    """GenerateNTResponse: the 24-byte NT-Response a peer sends for ``password``."""
    ch = challenge_hash(peer_challenge, authenticator_challenge, username)
    return challenge_response(ch, nt_password_hash(password))


def generate_authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
) -> bytes:
    """GenerateAuthenticatorResponse: ``b"S="`` + 40 upper-case hex digits (42 bytes)."""
    hash_hash = hash_nt_password_hash(password_hash)
    digest = hashlib.sha1(hash_hash + nt_response + _MAGIC1).digest()
    ch = challenge_hash(peer_challenge, authenticator_challenge, username)
    digest = hashlib.sha1(digest + ch + _MAGIC2).digest()
    return b"S=" + digest.hex().upper().encode("ascii")


# ---------------------------------------------------------------- RFC 3079 section 3

_MPPE_MAGIC1 = b"This is the MPPE Master Key"
_MPPE_MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
_MPPE_MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = b"\x00" * 40
_SHS_PAD2 = b"\xf2" * 40


def get_master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """GetMasterKey: the 16-byte MPPE master key of one MS-CHAPv2 exchange."""
    return hashlib.sha1(password_hash_hash + nt_response + _MPPE_MAGIC1).digest()[:16]


def get_asymmetric_start_key(master_key: bytes, key_length: int, is_send: bool, is_server: bool) -> bytes:
    """GetAsymmetricStartKey: the send or receive start key of one side."""
    magic = _MPPE_MAGIC3 if is_send == is_server else _MPPE_MAGIC2
    return hashlib.sha1(master_key + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:key_length]


# ---------------------------------------------------------------- RFC 2548 section 2.4.2


def encrypt_mppe_key(
    key: bytes, secret: bytes, request_authenticator: bytes, salt: bytes | None = None
) -> bytes:
    """The value of an MS-MPPE-Send-Key / Recv-Key attribute carrying ``key``.

    The key, prefixed by its length and zero-padded to 16-byte blocks, is XORed with an MD5
    chain seeded by the shared ``secret``, the Access-Request's authenticator and a 2-byte
    ``salt`` whose top bit is set (random unless given; the two keys of one reply must use
    different salts).
    """
    if salt is None:
        salt = bytes([0x80 | os.urandom(1)[0]]) + os.urandom(1)
    if len(salt) != 2 or not salt[0] & 0x80:
        raise ValueError("the salt must be 2 bytes with the top bit set (RFC 2548)")
    plain = bytes([len(key)]) + key
    plain += b"\x00" * (-len(plain) % 16)
    out = bytearray(salt)
    last = request_authenticator + salt
    for i in range(0, len(plain), 16):
        pad = hashlib.md5(secret + last).digest()
        block = bytes(p ^ q for p, q in zip(plain[i : i + 16], pad, strict=True))
        out += block
        last = block
    return bytes(out)


def decrypt_mppe_key(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """Reverse :func:`encrypt_mppe_key` (what the NAS does); raises ValueError if malformed."""
    if len(value) < 18 or (len(value) - 2) % 16:
        raise ValueError("MS-MPPE key attribute has a bad length")
    salt, cipher = value[:2], value[2:]
    plain = bytearray()
    last = request_authenticator + salt
    for i in range(0, len(cipher), 16):
        pad = hashlib.md5(secret + last).digest()
        block = cipher[i : i + 16]
        plain += bytes(p ^ q for p, q in zip(block, pad, strict=True))
        last = block
    length = plain[0]
    if length > len(plain) - 1:
        raise ValueError("MS-MPPE key attribute has a bad key length")
    return bytes(plain[1 : 1 + length])


# ---------------------------------------------------------------- the server's check


@dataclass(frozen=True, slots=True)
class MsChap2Success:
    """What an Access-Accept to an MS-CHAPv2 request carries (keys still in the clear)."""

    success: bytes  # MS-CHAP2-Success value: ident + b"S=" + 40 hex digits
    send_key: bytes  # the server's (NAS's) MPPE send key, 16 bytes
    recv_key: bytes  # the server's (NAS's) MPPE receive key, 16 bytes


def parse_response(value: bytes) -> tuple[int, bytes, bytes]:
    """Split an MS-CHAP2-Response value: (ident, peer challenge, NT-Response).

    Layout (RFC 2548 section 2.3.2): ident, flags, 16-byte peer challenge, 8 reserved
    bytes, 24-byte NT-Response. Raises ValueError unless it is exactly 50 bytes.
    """
    if len(value) != 50:
        raise ValueError(f"MS-CHAP2-Response must be 50 bytes, got {len(value)}")
    return value[0], value[2:18], value[26:50]


def verify_response(
    username: bytes, password: str, authenticator_challenge: bytes, response: bytes
) -> MsChap2Success | None:
    """Check an MS-CHAPv2 response against ``password``.

    Returns the success attribute and MPPE keys if the NT-Response is right, else None.
    ``response`` is the MS-CHAP2-Response value; ValueError if it is malformed.
    """
    ident, peer_challenge, nt_response = parse_response(response)
    if len(authenticator_challenge) != 16:
        raise ValueError("MS-CHAP-Challenge must be 16 bytes for MS-CHAPv2")
    password_hash = nt_password_hash(password)
    ch = challenge_hash(peer_challenge, authenticator_challenge, username)
    expected = challenge_response(ch, password_hash)
    if not hmac.compare_digest(expected, nt_response):
        return None
    auth_response = generate_authenticator_response(
        password_hash, nt_response, peer_challenge, authenticator_challenge, username
    )
    master = get_master_key(hash_nt_password_hash(password_hash), nt_response)
    return MsChap2Success(
        success=bytes([ident]) + auth_response,
        send_key=get_asymmetric_start_key(master, 16, is_send=True, is_server=True),
        recv_key=get_asymmetric_start_key(master, 16, is_send=False, is_server=True),
    )
