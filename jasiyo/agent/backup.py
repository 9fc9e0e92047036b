"""`jasiyo backup` / `jasiyo restore`: the store and the keys in one encrypted file.

The store is copied with SQLite's online backup API (a consistent snapshot while the agent
runs and writes), together with ``agent.key`` (without it the sealed secrets in the store
are unreadable) and the RadSec CA and certificates if any. The archive is a tar with a
manifest of SHA-256 sums, encrypted with AES-256-GCM under a key derived from a passphrase
by scrypt; the header is authenticated too, so any change to the file is detected.

File layout: ``MAGIC | salt (16) | nonce (12) | AES-GCM(tar)``. The whole archive is held
in memory while made or read: fine for a POP's store (tens of MB), not for a data warehouse.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from jasiyo.config import Config
from jasiyo.errors import StoreError, ValidationError

MAGIC = b"JASIYO-BACKUP-1\n"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
MIN_PASSPHRASE = 12


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    files: tuple[str, ...]
    bytes: int
    created_at: float


def _key(passphrase: str, salt: bytes) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError(f"the backup passphrase must be at least {MIN_PASSPHRASE} characters")
    return Scrypt(salt=salt, length=32, **_SCRYPT).derive(passphrase.encode())


def _snapshot(db: Path) -> bytes:
    """A consistent copy of the SQLite database at ``db`` (online backup API)."""
    if not db.exists():
        raise StoreError(f"no store at {db}: nothing to back up (run `jasiyo init`)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "jasiyo.db"
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store for a backup: {exc}") from None
        finally:
            dst.close()
            src.close()
        return copy.read_bytes()


def _members(cfg: Config) -> dict[str, bytes]:
    files = {"jasiyo.db": _snapshot(cfg.db_path)}
    try:
        files["agent.key"] = cfg.key_path.read_bytes()
    except FileNotFoundError:
        raise StoreError(
            f"no agent key at {cfg.key_path}: the store is unreadable without "
            "it, so there is nothing worth backing up"
        ) from None
    radsec = cfg.data_dir / "radsec"
    if radsec.is_dir():
        for p in sorted(radsec.iterdir()):
            if p.is_file():
                files[f"radsec/{p.name}"] = p.read_bytes()
    return files


def backup(cfg: Config, dest: Path, passphrase: str) -> BackupInfo:
    """Write an encrypted backup of ``cfg``'s store and keys to ``dest`` (mode 0600)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _key(passphrase, salt)
    files = _members(cfg)
    created = time.time()
    manifest = {
        "format": 1,
        "created_at": created,
        "sha256": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(created), 0o600
            tar.addfile(info, io.BytesIO(data))
    header = MAGIC + salt + nonce
    sealed = header + AESGCM(key).encrypt(nonce, buf.getvalue(), header)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(sealed)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(dest)
    return BackupInfo(dest, tuple(files), len(sealed), created)


def read(src: Path, passphrase: str) -> dict[str, bytes]:
    """The files in the backup ``src``, checked against its manifest."""
    try:
        raw = src.read_bytes()
    except FileNotFoundError:
        raise ValidationError(f"no backup file at {src}") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 28 + 16:
        raise ValidationError(f"{src} is not a Jasiyo backup")
    header = raw[: len(MAGIC) + 28]
    salt, nonce = header[len(MAGIC) : len(MAGIC) + 16], header[len(MAGIC) + 16 :]
    try:
        plain = AESGCM(_key(passphrase, salt)).decrypt(nonce, raw[len(header) :], header)
    except InvalidTag:
        raise ValidationError(
            f"cannot open {src}: wrong passphrase, or the file was changed or damaged"
        ) from None
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                files[member.name] = f.read()
    manifest = json.loads(files.pop("manifest.json", b"{}"))
    sums = manifest.get("sha256", {})
    if set(sums) != set(files) or any(hashlib.sha256(files[n]).hexdigest() != s for n, s in sums.items()):
        raise ValidationError(f"{src}: contents do not match its manifest")  # pragma: no cover
    return files


def restore(cfg: Config, src: Path, passphrase: str, force: bool = False) -> tuple[str, ...]:
    """Put the backup ``src`` in place of ``cfg``'s store and keys. Refuses to replace an
    existing store unless ``force`` (and, best effort, while a write to it is in progress:
    stop the agent first). Nothing is changed unless the whole backup decrypts, matches its
    manifest and holds a sound database."""
    files = read(src, passphrase)
    if "jasiyo.db" not in files or "agent.key" not in files:
        raise ValidationError(f"{src} lacks the store or the agent key")
    with tempfile.TemporaryDirectory() as tmp:  # the copy must be a sound database
        probe = Path(tmp) / "probe.db"
        probe.write_bytes(files["jasiyo.db"])
        con = sqlite3.connect(probe)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise ValidationError(f"{src}: the store inside is not a database ({exc})") from None
        finally:
            con.close()
        if ok != "ok":
            raise ValidationError(f"{src}: the store inside fails its integrity check: {ok}")
    db = cfg.db_path
    if db.exists():
        if not force:
            raise ValidationError(
                f"a store already exists at {db}; stop the agent and pass --force to replace it"
            )
        _check_not_in_use(db)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = cfg.data_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = target.with_name(target.name + ".restore")
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if name == "jasiyo.db":  # the old WAL and shared memory belong to the old database
            for suffix in ("-wal", "-shm"):
                Path(str(db) + suffix).unlink(missing_ok=True)
        tmp_path.replace(target)
    return tuple(sorted(files))


def _check_not_in_use(db: Path) -> None:
    con = sqlite3.connect(db, timeout=0.5)
    try:
        con.execute("BEGIN EXCLUSIVE")
        con.execute("ROLLBACK")
    except sqlite3.OperationalError:
        raise ValidationError(f"the store at {db} is in use: stop the agent first") from None
    finally:
        con.close()


__all__ = ["BackupInfo", "backup", "read", "restore"]
