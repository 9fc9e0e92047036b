"""MS-CHAPv2 and MPPE against the published vectors (RFC 1320, RFC 2759 s9, RFC 3079 s3.5)."""

from __future__ import annotations

import pytest

from jasiyo.radius import mschap


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# RFC 2759 section 9.2 (the same exchange is reused by RFC 3079 section 3.5)
USER = b"User"
PASSWORD = "clientPass"
AUTH_CHALLENGE = h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
PEER_CHALLENGE = h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
CHALLENGE = h("D0 2E 43 86 BC E9 12 26")
NT_RESPONSE = h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
PASSWORD_HASH = h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
PASSWORD_HASH_HASH = h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
AUTH_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
MASTER_KEY = h("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
SEND_START_KEY_128 = h("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")


@pytest.mark.parametrize(
    ("message", "digest"),
    [
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
        (
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "e33b4ddc9c38f2199c3e7b164fcc0536",
        ),
    ],
)
def test_md4_matches_rfc1320_suite(message: bytes, digest: str) -> None:
    assert mschap.md4(message).hex() == digest


def test_rfc2759_section9_vectors() -> None:
    assert mschap.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER) == CHALLENGE
    assert mschap.nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert mschap.hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH
    assert mschap.challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    assert mschap.generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD) == NT_RESPONSE
    assert (
        mschap.generate_authenticator_response(
            PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USER
        )
        == AUTH_RESPONSE
    )


def test_rfc3079_section35_master_and_send_key() -> None:
    master = mschap.get_master_key(PASSWORD_HASH_HASH, NT_RESPONSE)
    assert master == MASTER_KEY
    # the RFC's SendStartKey128 is the server's send key = the peer's receive key
    assert mschap.get_asymmetric_start_key(master, 16, True, True) == SEND_START_KEY_128
    assert mschap.get_asymmetric_start_key(master, 16, False, False) == SEND_START_KEY_128
    recv = mschap.get_asymmetric_start_key(master, 16, False, True)
    assert recv != SEND_START_KEY_128
    assert recv == mschap.get_asymmetric_start_key(master, 16, True, False)


def _response(ident: int = 7, nt_response: bytes = NT_RESPONSE) -> bytes:
    return bytes([ident, 0]) + PEER_CHALLENGE + b"\x00" * 8 + nt_response


def test_verify_response_accepts_right_password_and_builds_success() -> None:
    ok = mschap.verify_response(USER, PASSWORD, AUTH_CHALLENGE, _response())
    assert ok is not None
    assert ok.success == b"\x07" + AUTH_RESPONSE
    assert ok.send_key == SEND_START_KEY_128
    assert len(ok.recv_key) == 16


def test_verify_response_ignores_domain_prefix() -> None:
    assert mschap.verify_response(b"ACME\\User", PASSWORD, AUTH_CHALLENGE, _response())


def test_verify_response_rejects_wrong_password_and_bad_shapes() -> None:
    assert mschap.verify_response(USER, "clientPasS", AUTH_CHALLENGE, _response()) is None
    with pytest.raises(ValueError):
        mschap.verify_response(USER, PASSWORD, AUTH_CHALLENGE, _response()[:49])
    with pytest.raises(ValueError):
        mschap.verify_response(USER, PASSWORD, AUTH_CHALLENGE[:8], _response())


def test_mppe_key_encryption_round_trips_and_matches_pyrad_salt_decrypt() -> None:
    from pyrad.packet import AuthPacket

    secret, req_auth = b"s3cret", bytes(range(16))
    value = mschap.encrypt_mppe_key(SEND_START_KEY_128, secret, req_auth, salt=b"\x81\x02")
    assert value[:2] == b"\x81\x02" and len(value) == 34
    assert mschap.decrypt_mppe_key(value, secret, req_auth) == SEND_START_KEY_128
    try:
        wrong = mschap.decrypt_mppe_key(value, b"other", req_auth)
    except ValueError:  # garbage length byte: also a failure to recover the key
        wrong = b""
    assert wrong != SEND_START_KEY_128
    # pyrad implements the same salted scheme (RFC 2868 3.5) for reading replies
    pkt = AuthPacket(secret=secret, authenticator=req_auth)
    assert pkt.SaltDecrypt(value) == SEND_START_KEY_128
    with pytest.raises(ValueError):
        mschap.encrypt_mppe_key(b"k", secret, req_auth, salt=b"\x01\x02")
    with pytest.raises(ValueError):
        mschap.decrypt_mppe_key(value[:20], secret, req_auth)
