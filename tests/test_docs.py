"""The documents work when followed: every command block of README.md and docs/*.md runs.

As sqlite-utils tests its documentation: each page's command blocks (4-space indented or
fenced ``sh``/``bash`` blocks whose first command is ``jasiyo``, ``curl``, ``export`` ...)
run in order, in a scratch directory of their own with a scratch config (``JASIYO_CONFIG``),
and each command must exit 0. ``jasiyo`` lines without shell syntax run in process (the
console script's ``main``); anything else goes through bash with the venv's ``bin`` first
on ``PATH``. Blocks of router or config-file text are not commands and are not run.

A comment on the line above a block (blank lines between are allowed) says how to run it:

    <!-- docs-test: skip: needs a real MikroTik -->   not run; counted and printed
    <!-- docs-test: exit 1 -->                        every line must exit 1
    <!-- docs-test: background -->                    each line started and left running
                                                      (a server) until the page ends
    <!-- docs-test: setup: jasiyo plan add ... -->    run first, unseen by a reader
    <!-- docs-test: replace: jen_... "$ENROL" -->     in this block, OLD is run as NEW (a
                                                      placeholder for what a step printed)
    <!-- docs-test: new-pop -->                       from here on, a second POP's config
                                                      (same scratch directory)

The examples name the hosts and ports a reader would use; the test maps them onto this
machine (``SUBSTITUTIONS``): the cloud's ``https://cloud.example.net`` and the simulators'
fixed ports become free ports on 127.0.0.1, ``0.0.0.0`` becomes 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.config import free_tcp_port, make_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SHELL_WORDS = (
    "jasiyo",
    "curl",
    "export",
    "echo",
    ".",
    "python3",
    "sudo",
    "./scripts/",
    ".venv/",
    "cat",
    "printf",
)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*([\w-]+)\s*:?\s*(.*?)\s*-->")
FIXED_PORTS = ("8600", "8000", "8001", "8002")  # the cloud's and the simulators' defaults
RUNS_UNTIL_STOPPED = re.compile(r"\bjasiyo\s+(agent\s+run|cloud\s+serve|dev\s+\S+-sim)\b")


@dataclass
class Block:
    page: str
    line: int
    text: str
    directives: list[tuple[str, str]]

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def directive(self, name: str) -> str | None:
        return next((arg for key, arg in self.directives if key == name), None)


def _is_command_block(text: str, lang: str | None) -> bool:
    if lang in ("sh", "bash", "shell", "console"):
        return True
    if lang:  # toml, text, ...
        return False
    first = next(
        (ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")), ""
    )
    if re.match(r"^[A-Z_]+=\S*\s+jasiyo\b", first):
        return True
    return any(first == w or first.startswith(w if w.endswith("/") else w + " ") for w in SHELL_WORDS)


def _relative(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


def blocks(page: Path) -> list[Block]:
    """The command blocks of one page, with the directives written above each."""
    lines = page.read_text().split("\n")
    out: list[Block] = []
    pending: list[tuple[str, str]] = []
    prev_blank, i = True, 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^\s*(```|~~~)\s*(\w*)", line)
        found: tuple[int, str, str | None] | None = None
        if fence:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence.group(1)):
                j += 1
            indent = len(line) - len(line.lstrip())
            body = [ln[indent:] if ln[:indent].isspace() else ln.lstrip() for ln in lines[i + 1 : j]]
            found, nxt = (i + 1, "\n".join(body), fence.group(2) or None), j + 1
        elif line.startswith("    ") and line.strip() and prev_blank:
            j, body = i, []
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                body.append(lines[j][4:])
                j += 1
            found, nxt = (i + 1, "\n".join(body).rstrip(), None), j
        if found is not None:
            start, text, lang = found
            if _is_command_block(text, lang):
                out.append(Block(_relative(page), start, text, pending))
            pending, prev_blank, i = [], False, nxt
            continue
        for m in DIRECTIVE.finditer(line):
            pending.append((m.group(1), m.group(2)))
        if line.strip() and not DIRECTIVE.search(line):
            pending = []
        prev_blank = not line.strip()
        i += 1
    return out


def commands(text: str) -> list[str]:
    """Logical command lines: continuations joined, blank and comment-only lines dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        if cur:
            cur += " " + raw.strip()
        else:
            cur = raw.strip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip()
            continue
        if cur and not cur.startswith("#"):
            out.append(cur)
        cur = ""
    if cur:
        out.append(cur)
    return out


def _uncommented(line: str) -> str:
    try:
        return " ".join(shlex.split(line, comments=True))
    except ValueError:
        return line


class Page:
    """One page's scratch directory, config, environment and background servers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cfg = make_config(folder)
        self.ports = {p: str(free_tcp_port()) for p in FIXED_PORTS}
        self.env = {
            **os.environ,
            "JASIYO_CONFIG": str(self.cfg.path),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.servers: list[subprocess.Popen[bytes]] = []
        self.pops = 1
        (folder / ".venv").symlink_to(BIN.parent)  # `. .venv/bin/activate` as in a clone

    def new_pop(self) -> None:
        self.pops += 1
        (folder := self.folder / f"pop{self.pops}").mkdir()
        cfg = make_config(folder)
        self.env["JASIYO_CONFIG"] = str(cfg.path)

    def substitute(self, line: str) -> str:
        line = line.replace("https://cloud.example.net", f"http://127.0.0.1:{self.ports['8600']}")
        line = line.replace("0.0.0.0", "127.0.0.1")
        for doc, real in self.ports.items():
            line = re.sub(rf"(?<=:){doc}\b|(?<=--port ){doc}\b", real, line)
        return line

    def run(self, line: str) -> tuple[int, str]:
        """Run one command line; its exit status and what it printed."""
        line = self.substitute(line)
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = []
        plain = words and words[0] == "jasiyo" and not re.search(r"[$|<>;&`]", " ".join(words))
        if plain:
            os.environ.update(self.env)
            code, out, err = run_cli(None, *words[1:])
            return code, out + err
        export = re.match(r"^export\s+([A-Za-z_]+)=(.*)$", line)
        script = line if not export else f'{line}\nprintf %s "${export.group(1)}"'
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-ec", script],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        out = proc.stdout.decode(errors="replace")
        if export and proc.returncode == 0:
            self.env[export.group(1)] = out
            os.environ[export.group(1)] = out
        return proc.returncode, out + proc.stderr.decode(errors="replace")

    def start(self, line: str) -> None:
        """Start a server line in the background and wait until its port accepts."""
        line = self.substitute(line)
        log = (self.folder / f"server-{len(self.servers)}.log").open("wb")
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.servers.append(proc)
        port = re.search(r"--port\s+(\d+)", line)
        if port is None:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{line} exited {proc.returncode}: {log.name} says "
                    f"{Path(log.name).read_text(errors='replace')}"
                )
            try:
                socket.create_connection(("127.0.0.1", int(port.group(1))), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{line}: nothing listening on port {port.group(1)} after 30 s")

    def close(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for name in ("JASIYO_CONFIG", "JASIYO_OPERATOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    saved = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def run_page(page: Path, folder: Path) -> tuple[int, list[str], list[str]]:
    """Run a page's blocks: (blocks run, skipped blocks with why, failures)."""
    ran, skipped, failures = 0, [], []
    folder.mkdir()
    os.chdir(folder)
    p = Page(folder)
    try:
        for block in blocks(page):
            why = block.directive("skip")
            if why is not None:
                skipped.append(f"{block.where}: {why}")
                continue
            ran += 1
            if block.directive("new-pop") is not None:
                p.new_pop()
            for _key, setup in (d for d in block.directives if d[0] == "setup"):
                code, out = p.run(setup)
                if code != 0:
                    failures.append(f"{block.where} setup `{setup}` exited {code}:\n{out}")
            want = int(block.directive("exit") or 0)
            for line in commands(block.text):
                for _key, swap in (d for d in block.directives if d[0] == "replace"):
                    placeholder, _, real = swap.partition(" ")
                    line = line.replace(placeholder, real)
                if block.directive("background") is not None:
                    p.start(line)
                    continue
                if RUNS_UNTIL_STOPPED.search(_uncommented(line)):
                    failures.append(
                        f"{block.where} `{line}` runs until stopped: mark the block background (or skip)"
                    )
                    break
                code, out = p.run(line)
                if code != want:
                    failures.append(f"{block.where} `{line}` exited {code}, not {want}:\n{out}")
                    break
            if failures:
                break  # later blocks build on this one
    finally:
        p.close()
    return ran, skipped, failures


def test_every_command_block_runs(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    total, all_skipped, all_failures = 0, [], []
    for page in PAGES:
        ran, skipped, failures = run_page(page, scratch / page.stem)
        total += ran
        all_skipped += skipped
        all_failures += failures
    with capsys.disabled():
        print(f"\ndocs: {total} command blocks run, {len(all_skipped)} skipped:")
        for s in all_skipped:
            print(f"  skip {s}")
    assert not all_failures, "\n\n".join(all_failures)


def test_every_cli_group_is_in_the_cli_page() -> None:
    """Every group `jasiyo --help` lists is documented in docs/cli.md."""
    code, out, _ = run_cli(None, "--help")
    assert code == 0
    listed = re.findall(r"^  (\S+)\s", out.split("Commands:", 1)[1], re.M)
    assert len(listed) > 10
    page = (ROOT / "docs" / "cli.md").read_text()
    missing = [g for g in listed if not re.search(rf"jasiyo (--json )?{re.escape(g)}\b", page)]
    assert not missing, f"docs/cli.md does not mention: {missing}"


def test_blocks_are_found() -> None:
    """The parser sees the blocks a reader sees: indented, fenced, continued lines."""
    found = {b.where: b for page in PAGES for b in blocks(page)}
    assert len(found) > 30
    assert all(commands(b.text) for b in found.values())
    assert commands("jasiyo a \\\n    --b c   # note\n# only a comment\n\njasiyo d") == [
        "jasiyo a --b c   # note",
        "jasiyo d",
    ]


def test_a_failing_block_fails_and_a_marked_one_is_counted(tmp_path: Path, scratch: Path) -> None:
    """An unmarked block that fails is reported; skip and exit directives are honoured."""
    page = tmp_path / "page.md"
    page.write_text(
        "Intro.\n\n    jasiyo plan list\n\nText.\n\n"
        "<!-- docs-test: skip: needs a real MikroTik -->\n\n"
        "    jasiyo router check pop1-ccr\n\nText.\n\n"
        "<!-- docs-test: exit 1 -->\n\n    jasiyo subscriber show nobody\n\nText.\n\n"
        "    jasiyo subscriber show nobody\n"
    )
    ran, skipped, failures = run_page(page, tmp_path / "run")
    assert (ran, skipped) == (3, ["page.md:9: needs a real MikroTik"])
    assert len(failures) == 1 and "page.md:19" in failures[0] and "exited 1, not 0" in failures[0]
