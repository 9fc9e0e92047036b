#!/usr/bin/env python3
"""RADIUS throughput and latency: the Jasiyo agent beside FreeRADIUS, same users, same run.

    python3 bench/radius_auth.py                      # about 3 minutes
    python3 bench/radius_auth.py --duration 10 --levels 1,16,64,256 --json-out r.json
    python3 bench/radius_auth.py --skip-freeradius    # the agent only

What it does, all on 127.0.0.1:

1. A private agent in a temp dir (``jasiyo init --demo``: router 127.0.0.1 / testing123,
   users user00001..user10000 / pw-N on a 10M/10M plan) run as ``jasiyo agent run`` with
   ``log_level = "warning"``, so per-request logging is off.
2. Private FreeRADIUS instances from the Debian package (installed if missing), with the
   same users: ``fr-files`` (users file) and ``fr-sql`` (rlm_sql + sqlite, stock queries,
   stock post-auth logging). See bench/_freeradius.py for what differs from stock.
3. Our load generator (bench/_radius_gen.py): PAP Access-Requests at each window of
   outstanding requests, then accounting Start/Interim/Stop chains at one window.
4. A summary with the ratios the project aims at, and, if /work/shared/bench/radius_load.py
   exists, one cross-check run of that independent generator against the agent.

Server CPU is read from /proc/PID/stat (all threads) over the measured window. The
generator runs on the same machine: on a 2-core box the two share the cores, so throughput
at larger windows is bounded by the box, and ``server us/req`` is the fairer comparison.
Never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _freeradius
from _radius_gen import (
    Codec,
    Result,
    Target,
    box_cpu,
    children,
    probe,
    proc_cpu,
    run_load,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "testing123"
USERS = 10_000
RATE = "10M/10M"
CROSS_CHECK = Path("/work/shared/bench/radius_load.py")
FR_PORTS = {"files": (18124, 18134), "sql": (18125, 18135)}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_tcp_port(first: int) -> int:
    for port in range(first, first + 20):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise SystemExit(f"tcp 127.0.0.1 ports {first}.. are taken")


def git_state() -> str:
    """The commit the agent runs from, with "+dirty" when jasiyo/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "jasiyo"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


AUTOGROUP = Path("/proc/self/autogroup")


def set_priority(nice: int) -> int | None:
    """Raise (negative ``nice``) or lower this process's priority, inherited by the servers it
    starts. Returns the session's previous autogroup nice if it was changed, to restore."""
    if not nice:
        return None
    os.nice(nice)
    # With autogroup scheduling (kernel.sched_autogroup_enabled) niceness only counts inside
    # this session's group; the group's own nice sets its share of the machine.
    try:
        before = int(AUTOGROUP.read_text().split("nice")[1])
        AUTOGROUP.write_text(str(max(-20, min(19, nice))))
    except (OSError, IndexError, ValueError):
        return None
    return before


def _autogroup() -> str:
    try:
        return AUTOGROUP.read_text().strip()
    except OSError:
        return "none"


def box_busy(seconds: float = 1.0) -> float:
    """Percent of the machine's CPUs in use over ``seconds``."""
    b0, t0 = box_cpu()
    time.sleep(seconds)
    b1, t1 = box_cpu()
    return (b1 - b0) / max(1.0, t1 - t0) * 100


def wait_quiet(limit: float, max_wait: float) -> float:
    """Wait up to ``max_wait`` s for the machine to be under ``limit`` % busy; the last
    reading."""
    deadline = time.monotonic() + max_wait
    busy = box_busy()
    while busy > limit and time.monotonic() < deadline:
        busy = box_busy(2.0)
    return busy


def wait_settled(pid: int, limit: float = 60.0) -> tuple[float, float]:
    """Wait until the process uses under 5% of a core over half a second (start-up work
    such as the first billing tick done), at most ``limit`` s. Returns (seconds waited, CPU
    seconds it used meanwhile)."""
    t0, c0 = time.monotonic(), proc_cpu(pid) or 0.0
    last = c0
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        now = proc_cpu(pid)
        if now is None:
            break
        if now - last < 0.025:
            break
        last = now
    return time.monotonic() - t0, (proc_cpu(pid) or last) - c0


def ready(target: Target, codec: Codec) -> bool:
    """The server accepts user00001 with a verified reply."""
    code, _ = probe(target, codec, 0, timeout=0.3)
    return code == 2


def check_reply_content(target: Target, codec: Codec) -> str:
    """One Accept (user00042) and one Reject (wrong password), described in a line."""
    code, info = probe(target, codec, 41)
    bad_code, _ = probe(target, codec, 41, password=b"wrong")
    status_code, _ = probe(target, codec, status=True)
    return (
        f"Accept={code == 2} Mikrotik-Rate-Limit={info.get('Mikrotik-Rate-Limit')!r} "
        f"Message-Authenticator={info.get('message_authenticator')} "
        f"wrong-password->Reject={bad_code == 3} "
        f"Status-Server={'answered' if status_code else 'no reply'}"
    )


# ------------------------------------------------------------------ the agent


class Agent:
    """``jasiyo agent run`` in a temp dir, with the demo data."""

    def __init__(
        self, work: Path, jasiyo: str, auth_port: int, acct_port: int, workers: int = 0, radsec_port: int = 0
    ) -> None:
        self.dir = work / "jasiyo"
        self.dir.mkdir()
        self.config = self.dir / "jasiyo.toml"
        self.config.write_text(
            '[agent]\ndata_dir = "./data"\nname = "bench"\nlog_level = "warning"\n\n'
            f'[radius]\naddress = "127.0.0.1"\nauth_port = {auth_port}\n'
            f"acct_port = {acct_port}\nworkers = {workers}\n"
            + (f"\n[radsec]\nenabled = true\nport = {radsec_port}\n" if radsec_port else "")
        )
        self.radsec_port = radsec_port
        self.jasiyo = jasiyo
        self.env = {**os.environ, "JASIYO_CONFIG": str(self.config)}
        self.target = Target("jasiyo", "127.0.0.1", auth_port, acct_port, SECRET)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "agent.log"

    def radsec_certificates(self) -> tuple[Path, Path, Path]:
        """A RadSec CA, the agent's certificate, and the demo router's (pinned): the CA,
        the router's certificate and key for the generator."""
        subprocess.run(
            [self.jasiyo, "radsec", "ca", "--host", "127.0.0.1"],
            env=self.env,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [self.jasiyo, "--json", "radsec", "issue", "local-test", "--pin"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        issued = json.loads(out)
        return (
            self.dir / "data" / "radsec" / "ca.pem",
            Path(issued["certificate"]),
            Path(issued["private_key"]),
        )

    def init(self) -> float:
        t = time.perf_counter()
        out = subprocess.run([self.jasiyo, "init", "--demo"], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"jasiyo init --demo failed: {out.stderr.strip() or out.stdout}")
        return time.perf_counter() - t

    def start(self, codec: Codec) -> float:
        t = time.perf_counter()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.jasiyo, "agent", "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.target = Target(
            "jasiyo", "127.0.0.1", self.target.auth_port, self.target.acct_port, SECRET, self.proc.pid
        )
        if not _freeradius.wait_ready(lambda: ready(self.target, codec), self.proc, 60):
            tail = self.log.read_text(errors="replace")[-1500:]
            raise SystemExit(f"the agent did not answer on {self.target.auth_port}:\n{tail}")
        return time.perf_counter() - t

    def auth_workers(self) -> int | None:
        """How many authentication workers the agent started (from its log), None if unknown."""
        m = re.search(r"radius\.workers_started\b.*?\bworkers=(\d+)", self.log.read_text(errors="replace"))
        return int(m.group(1)) if m else None

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc: int | None = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        self.proc = None
        return rc

    def stored_accounting(self, prefix: str) -> tuple[int, int]:
        """(accounting rows, closed sessions) the store holds for sessions named ``prefix*``."""
        db = self.dir / "data" / "jasiyo.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            like = prefix.replace("%", "") + "%"
            rows = con.execute(
                "SELECT count(*) FROM accounting WHERE acct_session_id LIKE ?", (like,)
            ).fetchone()[0]
            closed = con.execute(
                "SELECT count(*) FROM radius_sessions WHERE acct_session_id LIKE ? AND status = 'closed'",
                (like,),
            ).fetchone()[0]
        finally:
            con.close()
        return rows, closed


# ------------------------------------------------------------------ running


def run_matrix(
    target: Target, codec: Codec, levels: list[int], args: argparse.Namespace, acct: bool
) -> list[Result]:
    out = []
    for w in levels:
        r = run_load(target, codec, "auth", w, args.duration, args.warmup, sockets=args.sockets)
        print(r.line(), flush=True)
        out.append(r)
    if acct:
        r = run_load(
            target, codec, "acct", args.acct_window, args.duration, args.warmup, sockets=args.sockets
        )
        print(r.line(), flush=True)
        out.append(r)
    return out


def cross_check(target: Target, args: argparse.Namespace) -> str | None:
    """One run of the independent generator at 64 outstanding; its result line."""
    if not CROSS_CHECK.exists():
        return None
    cmd = [
        sys.executable,
        str(CROSS_CHECK),
        "--host",
        "127.0.0.1",
        "--port",
        str(target.auth_port),
        "--acct-port",
        str(target.acct_port),
        "--secret",
        SECRET,
        "-c",
        "64",
        "-d",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "-q",
        "--label",
        f"{target.label}-xcheck",
        "--sockets",
        str(args.sockets),
    ]
    for pid in [target.pid, *children(target.pid)] if target.pid else []:
        cmd += ["--server-pid", str(pid)]  # the agent and its authentication workers
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("radius-load:")]
    return lines[-1] if lines else f"(no result: {out.stderr.strip()[-300:]})"


def fr_target(work: Path, mode: str, codec: Codec) -> tuple[_freeradius.Instance, Target]:
    auth_port, acct_port = FR_PORTS[mode]
    for p in (auth_port, acct_port):
        if not port_free(p):
            raise SystemExit(f"udp 127.0.0.1:{p} is taken; fr-{mode} needs it")
    users = [codec.user(i) for i in range(codec.users)]
    inst = _freeradius.build(work / f"fr-{mode}", mode, auth_port, acct_port, SECRET, users, RATE)
    inst.start()
    target = Target(f"fr-{mode}", "127.0.0.1", auth_port, acct_port, SECRET, inst.pid)
    if not _freeradius.wait_ready(lambda: ready(target, codec), inst.proc, 30):
        tail = inst.log_tail()
        inst.stop()
        raise SystemExit(f"fr-{mode} did not answer on {auth_port}:\n{tail}")
    return inst, target


def log_errors(inst: _freeradius.Instance) -> tuple[int, str]:
    """How many error lines the instance logged, and the last one."""
    p = inst.root / "log" / "radius.log"
    if not p.exists():
        return 0, ""
    errors = [ln for ln in p.read_text(errors="replace").splitlines() if " Error: " in ln or "ERROR" in ln]
    return len(errors), errors[-1].strip() if errors else ""


# ------------------------------------------------------------------ summary


def pick(results: list[Result], label: str, workload: str, window: int) -> Result | None:
    for r in results:
        if r.label == label and r.workload == workload and r.window == window:
            return r
    return None


def summary(results: list[Result], levels: list[int], acct_window: int) -> list[str]:
    lines = [
        "",
        "## Summary",
        "",
        "| target | workload | window | req/s | p50 ms | p99 ms | rejects | timeouts | bad | "
        "server CPU | server us/req | box busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        srv = "-" if r.server_cpu_pct is None else f"{r.server_cpu_pct:.0f}%"
        us = "-" if r.server_us_per_req is None else f"{r.server_us_per_req:.0f}"
        lines.append(
            f"| {r.label} | {r.workload} | {r.window} | {r.rps:.0f} | {r.p50_ms:.3f} | "
            f"{r.p99_ms:.3f} | {r.reject} | {r.timeout} | {r.bad} | {srv} | {us} | "
            f"{r.box_busy_pct:.0f}% |"
        )
    lines += ["", "Ratios (jasiyo / FreeRADIUS, same run):", ""]
    for w in levels:
        j, s, f = (pick(results, x, "auth", w) for x in ("jasiyo", "fr-sql", "fr-files"))
        parts = [f"window {w:>3}:"]
        if j and s and s.rps:
            parts.append(f"throughput vs fr-sql {j.rps / s.rps:5.1f}x")
        if j and f and f.rps:
            parts.append(f"vs fr-files {j.rps / f.rps:4.2f}x")
        if j and f and j.server_us_per_req and f.server_us_per_req:
            parts.append(f"server us/req vs fr-files {j.server_us_per_req / f.server_us_per_req:4.2f}x")
        if len(parts) > 1:
            lines.append("  " + "  ".join(parts))
    ja, fa = pick(results, "jasiyo", "acct", acct_window), pick(results, "fr-files", "acct", acct_window)
    if ja and fa and fa.rps and ja.server_us_per_req and fa.server_us_per_req:
        lines.append(
            f"  accounting, window {acct_window}: throughput vs fr-files "
            f"{ja.rps / fa.rps:4.2f}x  server us/req vs fr-files "
            f"{ja.server_us_per_req / fa.server_us_per_req:4.2f}x"
        )
    lines += ["", "Aims (issue 14), at window 64:"]
    j, s, f = (pick(results, x, "auth", 64) for x in ("jasiyo", "fr-sql", "fr-files"))

    def aim(text: str, value: str, met: bool) -> None:
        lines.append(f"  {text:<40} {value:<28} {'MET' if met else 'MISSED'}")

    if j and f and f.rps:
        ratio = j.rps / f.rps
        aim("throughput >= fr-files:", f"{ratio:5.2f}x ({j.rps:.0f} vs {f.rps:.0f}/s)", ratio >= 1)
    if j and f and j.server_us_per_req and f.server_us_per_req:
        ratio = j.server_us_per_req / f.server_us_per_req
        aim(
            "server CPU per request <= fr-files:",
            f"{ratio:5.2f}x ({j.server_us_per_req:.1f} vs {f.server_us_per_req:.1f} us)",
            ratio <= 1,
        )
    if j:
        aim("p99 < 5 ms:", f"{j.p99_ms:5.2f} ms", j.p99_ms < 5)
    ja = pick(results, "jasiyo", "acct", acct_window)
    if ja:
        aim(
            f"accounting >= 10,000/s, p99 < 10 ms (w={acct_window}):",
            f"{ja.rps:.0f}/s, p99 {ja.p99_ms:.2f} ms",
            ja.rps >= 10_000 and ja.p99_ms < 10,
        )
    if j and s and s.rps:
        ratio = j.rps / s.rps
        aim("throughput >= 3x fr-sql (earlier aim):", f"{ratio:5.1f}x", ratio >= 3)
    return lines


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=6.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    ap.add_argument("--levels", default="1,16,64,256", help="outstanding-request windows (auth)")
    ap.add_argument("--acct-window", type=int, default=64, help="window for the accounting run")
    ap.add_argument("--skip-freeradius", action="store_true", help="benchmark the agent only")
    ap.add_argument("--fr-modes", default="files,sql", help="FreeRADIUS back-ends to run")
    ap.add_argument("--no-acct", action="store_true", help="skip the accounting runs")
    ap.add_argument(
        "--no-cross-check", action="store_true", help=f"skip the run of {CROSS_CHECK} against the agent"
    )
    ap.add_argument("--json-out", help="write every result and the environment as JSON here")
    ap.add_argument(
        "--jasiyo",
        default=None,
        help="the jasiyo command (default: .venv/bin/jasiyo of this repo, else PATH)",
    )
    ap.add_argument(
        "--ports",
        default=None,
        help="the agent's auth,acct ports (default: the first free of 18140,18150 ... 18149,18159)",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be under 15%% busy",
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness increment for the bench and every server it starts (e.g. -10 "
        "as root on a machine shared with other work); the same for all servers",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, DBs)")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="the agent's [radius] workers: processes answering UDP authentication (0: one per "
        "core but one, at least one)",
    )
    ap.add_argument(
        "--sockets",
        type=int,
        default=8,
        help="source ports the generator spreads requests over (like several NASes), for every server",
    )
    ap.add_argument(
        "--radsec",
        action="store_true",
        help="also measure the agent over RadSec (TLS, one connection per "
        "--radsec-connections) at the same windows",
    )
    ap.add_argument(
        "--radsec-connections", type=int, default=1, help="TLS connections the RadSec generator uses"
    )
    args = ap.parse_args(argv)
    args.level_list = [int(x) for x in args.levels.split(",") if x.strip()]
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    jasiyo = args.jasiyo or str(ROOT / ".venv" / "bin" / "jasiyo")
    if not Path(jasiyo).exists():
        jasiyo = shutil.which("jasiyo") or ""
    if not jasiyo:
        raise SystemExit("no jasiyo command: create the virtualenv first (see README.md)")
    if args.ports:
        auth_port, acct_port = (int(x) for x in args.ports.split(","))
        pairs = [(auth_port, acct_port)]
    else:
        pairs = [(18140 + k, 18150 + k) for k in range(10)]
    free = [pair for pair in pairs if port_free(pair[0]) and port_free(pair[1])]
    if not free:
        raise SystemExit(f"udp 127.0.0.1 ports {pairs[0]} are taken; pick others with --ports")
    auth_port, acct_port = free[0]
    # SIGTERM runs the same clean-up as Ctrl-C: every server we started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)

    autogroup_before = set_priority(args.nice)
    busy = wait_quiet(15.0, args.wait_idle)
    if busy > 15.0:
        say(
            f"WARNING: the machine is {busy:.0f}% busy before the bench starts (other "
            "processes): figures will be low and noisy, and multi-threaded servers get a larger "
            "share of a contended box than a single-threaded one"
            + ("" if args.nice else " (as root, --nice -10 gives the bench priority)")
        )
    codec = Codec(SECRET, USERS)
    work = Path(tempfile.mkdtemp(prefix="jasiyo-radius-bench-"))
    results: list[Result] = []
    env: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duration": args.duration,
        "warmup": args.warmup,
        "levels": args.level_list,
        "box_busy_before_pct": round(busy, 1),
        "jasiyo_commit": git_state(),
        "niceness": os.nice(0),
        "autogroup": _autogroup(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    say(
        f"{os.cpu_count()} CPUs; generator and servers share them (one generator process). "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up per run; jasiyo at "
        f"{env['jasiyo_commit']}; niceness {env['niceness']} ({env['autogroup']}); work dir {work}"
    )
    radsec_port = free_tcp_port(18160) if args.radsec else 0
    agent = Agent(work, jasiyo, auth_port, acct_port, args.workers, radsec_port)
    env["workers"] = args.workers
    env["sockets"] = args.sockets
    instances: list[_freeradius.Instance] = []
    xcheck = None
    try:
        say("jasiyo: init --demo (10,000 subscribers) ...")
        env["jasiyo_init_s"] = round(agent.init(), 1)
        if radsec_port:
            radsec_files = agent.radsec_certificates()
        up = agent.start(codec)
        say(
            f"jasiyo: agent pid {agent.target.pid} answering on 127.0.0.1:{auth_port}/{acct_port} "
            f"after {up:.1f} s (init took {env['jasiyo_init_s']} s); log_level=warning, so "
            "per-request logging is off"
        )
        assert agent.target.pid is not None
        # The log says how many (at info level); at warning level, count the processes.
        found = agent.auth_workers()
        env["jasiyo_auth_workers"] = found if found is not None else len(children(agent.target.pid))
        say(f"jasiyo: {env['jasiyo_auth_workers']} authentication worker process(es) beside the agent's")
        waited, cpu = wait_settled(agent.target.pid)
        env["jasiyo_settle"] = {"seconds": round(waited, 1), "cpu_seconds": round(cpu, 2)}
        say(
            f"jasiyo: idle {waited:.1f} s after it answered (start-up work, e.g. the first "
            f"billing tick, used {cpu:.2f} s of CPU meanwhile); measuring from now"
        )
        say("jasiyo: " + check_reply_content(agent.target, codec))
        results += run_matrix(agent.target, codec, args.level_list, args, not args.no_acct)
        if radsec_port:
            from _radsec_gen import run_radsec_load

            for w in args.level_list:
                r = run_radsec_load(
                    agent.target,
                    USERS,
                    radsec_port,
                    *radsec_files,
                    window=w,
                    duration=args.duration,
                    warmup=args.warmup,
                    connections=args.radsec_connections,
                )
                print(r.line(), flush=True)
                results.append(r)
        acct = pick(results, "jasiyo", "acct", args.acct_window)
        if acct:
            rows, closed = agent.stored_accounting(acct.session_prefix)
            ok = acct.answered_total <= rows <= acct.sent_total
            env["jasiyo_acct_durability"] = {
                "acknowledged": acct.answered_total,
                "sent": acct.sent_total,
                "stored": rows,
                "sessions_closed": closed,
                "ok": ok,
            }
            say(
                f"jasiyo: accounting acknowledged {acct.answered_total}, sent "
                f"{acct.sent_total}, in the store {rows} (sessions closed by Stop: {closed}): "
                f"{'every acknowledged record stored' if ok else 'MISMATCH'}"
            )
        if not args.no_cross_check:
            xcheck = cross_check(agent.target, args)
            if xcheck:
                say("cross-check, /work/shared/bench/radius_load.py against jasiyo:")
                print(xcheck, flush=True)
        rc = agent.stop()
        say(f"jasiyo: agent stopped, exit status {rc}")

        if not args.skip_freeradius:
            _freeradius.ensure_installed(say)
            env["freeradius"] = _freeradius.version()
            for mode in [m.strip() for m in args.fr_modes.split(",") if m.strip()]:
                say(f"fr-{mode}: building a private FreeRADIUS {env['freeradius']} instance ...")
                inst, target = fr_target(work, mode, codec)
                instances.append(inst)
                assert target.pid is not None
                wait_settled(target.pid, 10.0)
                say(
                    f"fr-{mode}: pid {target.pid} on 127.0.0.1:{target.auth_port}/"
                    f"{target.acct_port}; " + check_reply_content(target, codec)
                )
                results += run_matrix(target, codec, args.level_list, args, not args.no_acct)
                errors, last = log_errors(inst)
                inst.stop()
                say(
                    f"fr-{mode}: stopped; {errors} error lines in its radius.log"
                    + (f", the last: {last[:160]}" if last else "")
                )
                env[f"fr_{mode}_log_errors"] = errors
    except KeyboardInterrupt:
        say("interrupted; stopping the servers")
        return 130
    finally:
        agent.stop()
        if autogroup_before is not None:
            AUTOGROUP.write_text(str(autogroup_before))  # the session outlives the bench
        for inst in instances:
            inst.stop()
        if args.json_out:
            Path(args.json_out).write_text(
                json.dumps(
                    {"env": env, "cross_check": xcheck, "results": [asdict(r) for r in results]}, indent=1
                )
            )
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    env["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json_out:  # again, with the load after
        Path(args.json_out).write_text(
            json.dumps({"env": env, "cross_check": xcheck, "results": [asdict(r) for r in results]}, indent=1)
        )
    print("\n".join(summary(results, args.level_list, args.acct_window)))
    print(
        f"\nLoad average (1/5/15 min) before {env['load_average_before']}, after "
        f"{env['load_average_after']}; box busy before the bench {busy:.0f}%. Other work on the "
        "machine lowers every figure; compare ratios within one run."
    )
    if xcheck:
        print(f"\nCross-check (independent generator, jasiyo, window 64):\n  {xcheck}")
    print(
        f"\nMachine: {os.cpu_count()} CPUs, shared by the generator and the server under "
        "test. CPU columns are % of one core (user+sys, all threads); server us/req is the "
        "server's CPU time per answered request. jasiyo ran with log_level=warning (no "
        "per-request log lines) and fsyncs accounting before answering (group commit); "
        "FreeRADIUS's detail file (accounting, files mode) is not fsynced."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
