"""The RouterOS simulator on the wire: exact bytes over a raw socket, and librouteros as a
real client (queries, .proplist, errors)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import librouteros
import pytest
from librouteros.exceptions import TrapError
from librouteros.query import Key, Or

from jasiyo.drivers.mikrotik.sim import RouterOSSim, encode_length, encode_sentence, read_sentence


@pytest.fixture
def sim() -> Iterator[RouterOSSim]:
    with RouterOSSim(users={"admin": "pw"}) as s:
        yield s


def _raw(sim: RouterOSSim) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    return s


def _reply(sock: socket.socket) -> list[list[str]]:
    """Sentences up to and including !done (or a lone !fatal)."""
    out = []
    while True:
        words = read_sentence(sock, 1 << 20)
        out.append(words)
        if words[0] in ("!done", "!fatal"):
            return out


@pytest.mark.parametrize(
    "n, prefix",
    [
        (0x7F, b"\x7f"),
        (0x80, b"\x80\x80"),
        (0x3FFF, b"\xbf\xff"),
        (0x4000, b"\xc0\x40\x00"),
        (0x1FFFFF, b"\xdf\xff\xff"),
        (0x200000, b"\xe0\x20\x00\x00"),
        (0x10000000, b"\xf0\x10\x00\x00\x00"),
    ],
)
def test_length_prefixes(n: int, prefix: bytes) -> None:
    assert encode_length(n) == prefix


def test_login_then_tag_echoed_only_when_sent(sim) -> None:
    with _raw(sim) as s:
        s.sendall(encode_sentence(["/system/identity/print"]))
        assert _reply(s) == [["!fatal", "not logged in"]]
    with _raw(sim) as s:
        s.sendall(encode_sentence(["/login", "=name=admin", "=password=pw"]))
        assert _reply(s) == [["!done"]]
        s.sendall(encode_sentence(["/system/identity/print"]))
        assert _reply(s) == [["!re", "=name=jasiyo-sim"], ["!done"]]
        s.sendall(encode_sentence(["/system/identity/print", ".tag=7"]))
        assert _reply(s) == [["!re", "=name=jasiyo-sim", ".tag=7"], ["!done", ".tag=7"]]
        s.sendall(b"\x00")  # an empty sentence is ignored
        s.sendall(encode_sentence(["/nope/print"]))
        assert _reply(s) == [["!trap", "=category=0", "=message=no such command prefix"], ["!done"]]


def test_five_byte_length_word_is_read(sim) -> None:
    with _raw(sim) as s:
        word = b"/login"
        s.sendall(
            b"\xf0" + len(word).to_bytes(4, "big") + word + encode_sentence(["=name=admin", "=password=pw"])
        )
        assert _reply(s) == [["!done"]]


def test_bad_login_is_a_trap(sim) -> None:
    with _raw(sim) as s:
        s.sendall(encode_sentence(["/login", "=name=admin", "=password=wrong"]))
        assert _reply(s)[0] == ["!trap", "=message=invalid user name or password (6)"]


def test_queries_proplist_and_errors_through_librouteros(sim) -> None:
    api = librouteros.connect("127.0.0.1", "admin", "pw", port=sim.port, timeout=5)
    try:
        secrets = api.path("ppp", "secret")
        ids = [
            secrets.add(name=n, password="x", comment=c)
            for n, c in (("a", "jasiyo:sub=a"), ("b", "hand"), ("c", "jasiyo:sub=c"))
        ]
        assert all(i.startswith("*") and int(i[1:], 16) > 0 for i in ids)
        q = secrets.select(Key("name")).where(Or(Key("name") == "a", Key("name") == "b"))
        assert sorted(r["name"] for r in q) == ["a", "b"]
        rows = list(api.rawCmd("/ppp/secret/print", "?comment", "?name=b", "?#!", "?#&", "=.proplist=name"))
        assert rows == [{"name": "a"}, {"name": "c"}]
        secrets.add(name="d", password="x")
        assert [r["name"] for r in api.rawCmd("/ppp/secret/print", "?-comment")] == ["d"]
        assert [r["name"] for r in api.rawCmd("/ppp/secret/print", f"?>.id={ids[1]}")] == ["c", "d"]
        with pytest.raises(TrapError, match="secret with the same name already exists"):
            secrets.add(name="a", password="y")
        with pytest.raises(TrapError, match="no such item"):
            secrets.remove("*FFFF")
        with pytest.raises(TrapError, match="no such item"):
            secrets.remove(ids[0], "*FFFF")  # all or nothing
        assert len(list(secrets)) == 4
        secrets.update(**{".id": ids[0], "remote-address": "10.0.0.1"})
        tuple(api.rawCmd("/ppp/secret/unset", f"=.id={ids[0]}", "=value-name=remote-address"))
        assert "remote-address" not in sim.state.items("/ppp/secret", name="a")[0]
    finally:
        api.close()
    assert sim.stats.commands["/ppp/secret/add"] == 5


def test_cut_mid_reply_and_trap_hooks(sim) -> None:
    sim.state.add("/queue/simple", name="q1", target="10.0.0.1")
    sim.state.add("/queue/simple", name="q2", target="10.0.0.2")
    sim.faults.trap("/queue/simple/add", "failure: nope", match={"name": "q3"})
    api = librouteros.connect("127.0.0.1", "admin", "pw", port=sim.port, timeout=5)
    try:
        queues = api.path("queue", "simple")
        with pytest.raises(TrapError, match="nope"):
            queues.add(name="q3", target="10.0.0.3")
        assert queues.add(name="q3", target="10.0.0.3")  # the fault fired once
        sim.faults.cut_mid_reply.add("/queue/simple/print")
        with pytest.raises(librouteros.exceptions.LibRouterosError):
            list(queues)
    finally:
        api.close()
