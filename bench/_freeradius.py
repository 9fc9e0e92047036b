"""Private FreeRADIUS 3.x instances for the RADIUS benchmark (bench/radius_auth.py).

The packaged configuration (/etc/freeradius/3.0) is copied into a temp dir and patched as
little as possible, so the baseline is FreeRADIUS as Debian ships it:

* every path (logs, run dir, raddb) points into the instance dir; no setuid to ``freerad``;
* one auth and one acct listener on 127.0.0.1 with a 4 MiB ``recv_buff`` (the kernel default
  buffer drops packets at 256 outstanding requests); the wildcard/IPv6 listeners and the
  inner-tunnel test listener on 127.0.0.1:18120 are removed;
* ``reject_delay = 0`` (stock 1 s would make every Reject take a second);
* a single client, 127.0.0.1 with the benchmark secret;
* the users: ``mode="files"`` writes them to the users file (``mods-config/files/authorize``),
  ``mode="sql"`` enables rlm_sql on sqlite with the stock schema and queries (post-auth
  logging into ``radpostauth`` stays on, as shipped; sqlite ``busy_timeout`` 2000 ms instead
  of 200). The stock DEFAULT entries are removed.

Everything else (virtual server sections, module list, thread pool) stays stock.
Stdlib only; the instance runs in the foreground as a child of the caller.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOCK = Path("/etc/freeradius/3.0")
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def ensure_installed(say: Callable[[str], None] = print) -> str:
    """Install the Debian ``freeradius`` package if ``freeradius`` is missing; return its path.

    While apt runs, a temporary policy-rc.d (exit 101) stops the system service from
    starting; an existing policy-rc.d is left as it is.
    """
    found = shutil.which("freeradius")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("freeradius is not installed and installing it needs root")
    made_policy = not POLICY_RC.exists()
    if made_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    say("installing the Debian package freeradius (system service start suppressed)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "freeradius"], env=env, check=True, capture_output=True
        )
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"apt-get failed: {exc.stderr.decode(errors='replace')[-400:]}") from None
    finally:
        if made_policy:
            POLICY_RC.unlink(missing_ok=True)
    found = shutil.which("freeradius")
    if not found:
        raise SystemExit("apt-get installed freeradius but the freeradius binary is not on PATH")
    return found


def version() -> str:
    out = subprocess.run(["freeradius", "-v"], capture_output=True, text=True).stdout
    m = re.search(r"Version ([\d.]+)", out)
    return m.group(1) if m else "unknown"


def _patch(text: str, pattern: str, repl: str, what: str) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n == 0:
        raise SystemExit(f"cannot patch the stock FreeRADIUS config: {what} not found")
    return new


def _drop_blocks(text: str, name: str) -> str:
    """Remove every top-level-in-its-server ``name { ... }`` block (depth 1), comments aware."""
    out: list[str] = []
    depth = 0
    skip_until: int | None = None
    opener = re.compile(rf"^\s*{re.escape(name)}\s*\{{")
    for line in text.split("\n"):
        code = re.sub(r'"[^"]*"', '""', line).split("#", 1)[0]
        if skip_until is None and depth == 1 and opener.match(code):
            skip_until = depth
        depth += code.count("{") - code.count("}")
        if skip_until is not None:
            if depth <= skip_until:
                skip_until = None
            continue
        out.append(line)
    return "\n".join(out)


@dataclass
class Instance:
    """A built instance: ``start()`` runs it, ``stop()`` ends it (by PID)."""

    mode: str
    root: Path
    auth_port: int
    acct_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def raddb(self) -> Path:
        return self.root / "raddb"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        check = subprocess.run(["freeradius", "-C", "-d", str(self.raddb)], capture_output=True, text=True)
        if check.returncode != 0:
            detail = subprocess.run(
                ["freeradius", "-XC", "-d", str(self.raddb)], capture_output=True, text=True
            ).stdout
            raise SystemExit(f"fr-{self.mode}: config check failed:\n{detail[-1500:]}")
        log = open(self.root / "log" / "stdout.log", "wb")
        self.proc = subprocess.Popen(
            ["freeradius", "-f", "-d", str(self.raddb)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, n: int = 20) -> str:
        lines: list[str] = []
        for name in ("radius.log", "stdout.log"):
            p = self.root / "log" / name
            if p.exists():
                lines += p.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines)


def build(
    root: Path,
    mode: str,
    auth_port: int,
    acct_port: int,
    secret: str,
    users: list[tuple[str, str]],
    rate_limit: str,
) -> Instance:
    """Write an instance of ``mode`` ("files" or "sql") under ``root`` (recreated)."""
    if mode not in ("files", "sql"):
        raise ValueError(f"unknown FreeRADIUS mode {mode!r}")
    if root.exists():
        shutil.rmtree(root)
    raddb = root / "raddb"
    for d in ("log", "run", "db"):
        (root / d).mkdir(parents=True)
    # rlm_detail creates radacct/<client>/ lazily and its threads race doing it ("File
    # exists"): such Accounting-Requests get no response. Create it first.
    (root / "log" / "radacct" / "127.0.0.1").mkdir(parents=True)
    shutil.copytree(STOCK, raddb, symlinks=True)
    raddb.chmod(0o750)  # FreeRADIUS refuses a world-writable raddb

    conf = raddb / "radiusd.conf"
    s = conf.read_text()
    s = _patch(s, r"^(\s*)raddbdir\s*=.*$", rf"\g<1>raddbdir = {raddb}", "raddbdir")
    s = _patch(s, r"^(\s*)logdir\s*=.*$", rf"\g<1>logdir = {root / 'log'}", "logdir")
    s = _patch(s, r"^(\s*)run_dir\s*=.*$", rf"\g<1>run_dir = {root / 'run'}", "run_dir")
    s = _patch(s, r"^(\s*)(user|group)\s*=\s*freerad\s*$", r"\1#\2 = freerad", "user/group")
    s = _patch(s, r"^(\s*)reject_delay\s*=.*$", r"\1reject_delay = 0", "reject_delay")
    conf.write_text(s)

    site = raddb / "sites-available" / "default"
    s = _drop_blocks(site.read_text(), "listen")
    listen = "".join(
        f"listen {{\n\ttype = {kind}\n\tipaddr = 127.0.0.1\n\tport = {port}\n\trecv_buff = {4 << 20}\n}}\n"
        for kind, port in (("auth", auth_port), ("acct", acct_port))
    )
    s = _patch(s, r"^server default \{\s*$", "server default {\n" + listen, "server default")
    site.write_text(s)
    inner = raddb / "sites-available" / "inner-tunnel"
    inner.write_text(_drop_blocks(inner.read_text(), "listen"))

    (raddb / "clients.conf").write_text(
        f"client bench {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n"
        "\trequire_message_authenticator = no\n\tnas_type = other\n}\n"
    )

    authorize = raddb / "mods-config" / "files" / "authorize"
    with authorize.open("w") as f:
        # Without the stock DEFAULT entries both modes reply with exactly the rate limit
        # ("DEFAULT Framed-Protocol == PPP" would add Framed-* attributes).
        if mode == "files":
            for name, pw in users:
                f.write(f'{name}\tCleartext-Password := "{pw}"\n\tMikrotik-Rate-Limit := "{rate_limit}"\n\n')
    if mode == "sql":
        _enable_sql(raddb, root / "db" / "radius.sqlite", users, rate_limit)
    return Instance(mode, root, auth_port, acct_port)


def _enable_sql(raddb: Path, db: Path, users: list[tuple[str, str]], rate_limit: str) -> None:
    schema = (raddb / "mods-config" / "sql" / "main" / "sqlite" / "schema.sql").read_text()
    con = sqlite3.connect(db)
    con.executescript(schema)
    con.execute("PRAGMA journal_mode=WAL")
    con.executemany(
        "INSERT INTO radcheck (username, attribute, op, value) VALUES (?,?,?,?)",
        [(u, "Cleartext-Password", ":=", pw) for u, pw in users],
    )
    con.executemany(
        "INSERT INTO radreply (username, attribute, op, value) VALUES (?,?,?,?)",
        [(u, "Mikrotik-Rate-Limit", ":=", rate_limit) for u, _ in users],
    )
    con.commit()
    con.close()
    mod = raddb / "mods-available" / "sql"
    s = mod.read_text()
    s = _patch(s, r'^(\s*)driver\s*=\s*"rlm_sql_null"', r'\1driver = "rlm_sql_sqlite"', "driver")
    s = _patch(s, r'^(\s*)dialect\s*=\s*"\w+"', r'\1dialect = "sqlite"', "dialect")
    s = _patch(s, r'^(\s*)filename\s*=\s*"/tmp/freeradius.db"', rf'\1filename = "{db}"', "sqlite filename")
    s = _patch(s, r"^(\s*)bootstrap\s*=.*$", r"\1#bootstrap (schema already loaded)", "bootstrap")
    # Stock 200 ms: under load many requests then fail with "database is locked" and are
    # rejected. 2000 ms is what the issue's reference figures were measured with.
    s = _patch(s, r"^(\s*)busy_timeout\s*=\s*\d+", r"\1busy_timeout = 2000", "busy_timeout")
    mod.write_text(s)
    (raddb / "mods-enabled" / "sql").symlink_to("../mods-available/sql")


def wait_ready(
    probe: Callable[[], bool], proc: subprocess.Popen[bytes] | None, timeout: float = 20.0
) -> bool:
    """Call ``probe`` until it returns True, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if probe():
            return True
        time.sleep(0.2)
    return False
