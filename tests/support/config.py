"""An initialised agent config in a temporary folder, and free local ports."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from jasiyo.agent.keys import SecretBox, create_key, load_key
from jasiyo.agent.store import Store, init_store
from jasiyo.config import Config, parse

_template: Path | None = None


def _migrated_template() -> Path:
    """An empty store with every migration applied and no identity, made once a session."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="jasiyo-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path, key = folder / "jasiyo.db", folder / "agent.key"
        create_key(key)
        path.touch(0o600)
        Store(path, SecretBox(load_key(key))).close()  # opening a new store migrates it
        _template = path
    return _template


def init_agent_store(cfg: Config) -> dict[str, Any]:
    """``init_store(cfg)`` for a new data dir, without running the migrations again.

    Migrating a new store costs ~20 ms of CPU (4 ms to copy one), and the suite makes about
    a thousand, property tests several per example. The template is an empty store
    the real migrations built; ``init_store`` then makes this store's own key, key check
    and agent id exactly as for a store it created.
    """
    if not cfg.db_path.exists() and not cfg.key_path.exists():
        cfg.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(cfg.db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, _migrated_template().open("rb") as src:
            shutil.copyfileobj(src, out)
        create_key(cfg.key_path)
    return init_store(cfg)


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
    init_agent_store(cfg)
    return cfg
