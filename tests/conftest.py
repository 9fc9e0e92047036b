"""Fixtures shared by every test folder: an initialised agent config and store."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jasiyo.agent.store import Store, init_store
from jasiyo.config import Config, parse


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_config(tmp_path: Path, extra: str = "", **radius: object) -> Config:
    """Write a config in ``tmp_path`` (free ports unless given) and initialise its store."""
    ports = {"auth_port": free_udp_port(), "acct_port": free_udp_port(), **radius}
    lines = ["[agent]", 'data_dir = "data"', "", "[radius]"]
    for k, v in ports.items():
        lines.append(f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}")
    if "[web]" not in extra:  # any free port: agents of several tests never collide
        extra = "[web]\nport = 0\n" + extra
    text = "\n".join(lines).replace("'", '"') + "\n" + extra
    path = tmp_path / "jasiyo.toml"
    path.write_text(text)
    cfg = parse(text, tmp_path, path)
    init_store(cfg)
    return cfg


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def store(cfg: Config) -> Iterator[Store]:
    s = Store.open(cfg)
    yield s
    s.close()


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI") == "true"
