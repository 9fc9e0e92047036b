"""Routers known by their RadSec certificate: the pin in the store, the CLI, the backend."""

from __future__ import annotations

import pytest

from jasiyo.agent import routers
from jasiyo.agent.keys import SecretBox, load_key
from jasiyo.agent.radius_backend import StoreBackend
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import AlreadyExists, ValidationError
from tests.agent.agentproc import jasiyo

PIN = "AB:" * 31 + "CD"
PIN_HEX = "ab" * 31 + "cd"


def _add(store: Store, name: str, ip: str, **kw: object) -> None:
    routers.add(store, name, driver="mikrotik", host=ip, radius_secret="secret-123", actor="test", **kw)  # type: ignore[arg-type]


def test_fingerprint_normalised_unique_and_unpinned(store: Store) -> None:
    _add(store, "r1", "10.0.0.1", radsec_fingerprint=PIN)
    assert routers.get(store, "r1").radsec_fingerprint == PIN_HEX
    _add(store, "r2", "10.0.0.2")
    with pytest.raises(AlreadyExists, match="already pinned on router 'r1'"):
        routers.update(store, "r2", "test", radsec_fingerprint=PIN_HEX)
    with pytest.raises(ValidationError, match="64 hex digits"):
        routers.update(store, "r2", "test", radsec_fingerprint="abc")
    assert routers.get(store, "r2").radsec_fingerprint is None  # nothing stored
    routers.update(store, "r1", "test", radsec_fingerprint="")
    assert routers.get(store, "r1").radsec_fingerprint is None
    routers.update(store, "r2", "test", radsec_fingerprint="sha256:" + PIN_HEX.upper())
    assert routers.get(store, "r2").radsec_fingerprint == PIN_HEX


def test_backend_knows_routers_by_pin_or_by_name(cfg: Config, store: Store) -> None:
    _add(store, "pinned", "10.0.0.1", radsec_fingerprint=PIN_HEX)
    _add(store, "by-name", "10.0.0.2")
    backend = StoreBackend(cfg, SecretBox(load_key(cfg.key_path)))
    try:
        nas = backend.radsec_nas(PIN_HEX, ["whatever"])
        assert nas is not None and (nas.name, nas.address) == ("pinned", "10.0.0.1")
        nas = backend.radsec_nas("00" * 32, ["By-Name"])
        assert nas is not None and nas.name == "by-name"
        # a pinned router is not taken by another certificate carrying its name
        assert backend.radsec_nas("00" * 32, ["pinned"]) is None
        assert backend.radsec_nas("00" * 32, ["nobody"]) is None
    finally:
        backend.close()


def test_cli_pin_and_bad_input(cfg: Config) -> None:
    jasiyo(
        cfg,
        "router",
        "add",
        "r1",
        "--driver",
        "mikrotik",
        "--host",
        "10.0.0.1",
        "--radius-secret",
        "secret-123",
        "--radsec-fingerprint",
        PIN,
    )
    assert PIN_HEX in jasiyo(cfg, "--json", "router", "show", "r1").stdout
    bad = jasiyo(cfg, "router", "update", "r1", "--radsec-fingerprint", "zz", check=False)
    assert bad.returncode != 0 and "64 hex digits" in bad.stderr and "Traceback" not in bad.stderr
    jasiyo(cfg, "radsec", "ca")
    missing = jasiyo(cfg, "radsec", "issue", "nope", check=False)
    assert missing.returncode != 0 and "no router named 'nope'" in missing.stderr
    again = jasiyo(cfg, "radsec", "ca", check=False)
    assert again.returncode != 0 and "--force" in again.stderr
