"""The simulated EdgeRouter's state: committed configuration, sessions, and a tiny shell.

:class:`EdgeOSState` holds the committed (and saved) configuration tree; tests read and
hand-edit it in process. :class:`Shell` runs one exec'd script the way ``vbash`` would for
the subset the driver sends: lines of commands joined by ``;``, ``||``, ``&&`` and
``{ ...; }`` groups, ``echo``, ``true``/``false``, ``exit N``, and the two Vyatta wrappers.
A configuration session (``begin`` ... ``end``) lives as long as the shell, like the real
one keyed on the shell's PID: the working copy is discarded unless committed.
"""

from __future__ import annotations

import copy
import re
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from jasiyo.drivers.edgeos.config import Tree, format_commands, get, split, value
from jasiyo.drivers.edgeos.simschema import PathError, is_multi, resolve

CFG_WRAPPER = "/opt/vyatta/sbin/vyatta-cfg-cmd-wrapper"
OP_WRAPPER = "/opt/vyatta/bin/vyatta-op-cmd-wrapper"
AQ = ("traffic-control", "advanced-queue")


@dataclass
class SimFaults:
    """Faults to inject. Counters are the router's own view of what it was asked."""

    fail_commits: int = 0  # the next N commits fail (nothing is committed)
    fail_command: str | None = None  # regex: the next set/delete matching it is refused
    cut_after: int | None = None  # close the connection after N more commands
    cut_next_read: bool = False  # next "show configuration commands": half a reply, then cut
    commands: int = 0  # wrapper and show commands run
    execs: int = 0  # exec requests received
    auth_attempts: int = 0  # password / public key attempts received
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def clear(self) -> None:
        """Stop injecting faults (counters are kept)."""
        with self.lock:
            self.fail_commits, self.fail_command = 0, None
            self.cut_after, self.cut_next_read = None, False


class Cut(Exception):  # a signal to the server, not an error
    """Raised inside a shell when a fault says the connection must drop now."""


def commit_errors(tree: Tree) -> list[str]:
    """What EdgeOS's commit checks would refuse in ``tree`` (references that dangle)."""
    errors: list[str] = []
    aq = get(tree, *AQ)
    roots = set(get(aq, "root", "queue"))
    branches = set(get(aq, "branch", "queue"))
    qtypes = {n for kind in get(aq, "queue-type").values() for n in kind}
    for level, parents in (("branch", roots | branches), ("leaf", roots | branches)):
        for qid, sub in get(aq, level, "queue").items():
            where = f"[ traffic-control advanced-queue {level} queue {qid} ]"
            if not value(sub, "bandwidth"):
                errors.append(f"{where}\nbandwidth must be set")
            parent = value(sub, "parent")
            if parent not in parents:
                errors.append(f"{where}\nParent queue {parent or '(none)'} does not exist")
            qtype = value(sub, "queue-type")
            if qtype and qtype not in qtypes:
                errors.append(f"{where}\nQueue type {qtype} does not exist")
    leaves_ = set(get(aq, "leaf", "queue"))
    for mid, sub in get(aq, "filters", "match").items():
        where = f"[ traffic-control advanced-queue filters match {mid} ]"
        if value(sub, "attach-to") not in roots:
            errors.append(f"{where}\nattach-to must name a root queue")
        if value(sub, "target") not in leaves_ | branches:
            errors.append(f"{where}\ntarget queue {value(sub, 'target')} does not exist")
    groups = set(get(tree, "firewall", "group", "address-group"))
    rules = [("service nat rule", n, s) for n, s in get(tree, "service", "nat", "rule").items()]
    for fname, fsub in get(tree, "firewall", "name").items():
        rules += [(f"firewall name {fname} rule", n, s) for n, s in get(fsub, "rule").items()]
    for where, num, sub in rules:
        for side in ("source", "destination"):
            g = value(sub, side, "group", "address-group")
            if g and g not in groups:
                errors.append(f"[ {where} {num} ]\nGroup [{g}] has not been defined")
    for num, sub in get(tree, "service", "nat", "rule").items():
        if not value(sub, "type"):
            errors.append(f"[ service nat rule {num} ]\nrule type must be set")
    return errors


class EdgeOSState:
    """Committed configuration of one simulated router, shared by all its sessions."""

    def __init__(
        self,
        hostname: str = "jasiyo-edgeos",
        version: str = "v2.0.9-hotfix.7",
        model: str = "EdgeRouter 4",
        config: str | None = None,
    ) -> None:
        self.version, self.model = version, model
        self.lock = threading.RLock()
        self.committed: Tree = {}
        base = (
            config
            if config is not None
            else (
                f"set system host-name {hostname}\n"
                "set interfaces ethernet eth0 address dhcp\n"
                "set interfaces ethernet eth0 description WAN\n"
                "set interfaces ethernet eth1 address 10.255.255.1/16\n"
                "set interfaces ethernet eth1 description Customers\n"
                "set service ssh port 22\n"
            )
        )
        self.hand_edit(*[ln for ln in base.splitlines() if ln.strip()])
        self.saved: Tree = copy.deepcopy(self.committed)
        self.commits = 0

    # ---------------------------------------------------------------- tests' view

    def show_commands(self) -> str:
        """The committed configuration as ``show configuration commands`` prints it."""
        with self.lock:
            return format_commands(self.committed)

    def hand_edit(self, *lines: str) -> None:
        """Apply ``set``/``delete`` lines straight to the committed configuration, as a
        person at the CLI would, but without commit checks (tests use it to make drift
        EdgeOS itself might refuse). Raises ``PathError`` for an invalid path."""
        with self.lock:
            for line in lines:
                words = split(line)
                if not words or words[0] not in ("set", "delete"):
                    raise PathError(f"hand_edit takes set/delete lines, not {line!r}")
                (set_path if words[0] == "set" else delete_path)(self.committed, words[1:])

    @property
    def hostname(self) -> str:
        with self.lock:
            return value(self.committed, "system", "host-name")


def set_path(tree: Tree, words: list[str]) -> None:
    """``set words...`` on ``tree``; ``PathError`` (tree untouched) if the schema refuses."""
    roles = resolve(words, need_value=True)
    node = tree
    for i, word in enumerate(words):
        if roles[i] == "value":
            if not is_multi(words[:i]):
                node.clear()
        node = node.setdefault(word, {})


def delete_path(tree: Tree, words: list[str]) -> None:
    """``delete words...``: remove the node and empty containers above it."""
    roles = resolve(words, need_value=False)
    trail = [tree]
    for word in words:
        nxt = trail[-1].get(word)
        if nxt is None:
            raise PathError("Nothing to delete (the specified node does not exist)")
        trail.append(nxt)
    del trail[-2][words[-1]]
    # Empty structure above goes too, but a named instance (rule 10) stays until deleted.
    for depth in range(len(words) - 2, -1, -1):
        if trail[depth + 1] or roles[depth] == "instance":
            break
        del trail[depth][words[depth]]


# ---------------------------------------------------------------------- the shell


class _Exit(Exception):  # control flow
    def __init__(self, code: int) -> None:
        self.code = code


_SIMPLE = re.compile(r"\|\||&&|[;{}|&]|[^\s;{}|&]+")


def _tokens(line: str) -> list[str]:
    if not any(c in line for c in "'\"\\#$`"):
        return _SIMPLE.findall(line)  # fast path: shlex is slow on 16,000-line batches
    lex = shlex.shlex(line, posix=True, punctuation_chars=";|&{}")
    lex.whitespace_split = True
    lex.commenters = "#"
    return list(lex)


class Shell:
    """One exec'd script: runs commands, keeps the wrapper's configuration session."""

    def __init__(self, state: EdgeOSState, faults: SimFaults, out: Callable[[str], None]) -> None:
        self.state, self.faults, self.out = state, faults, out
        self.working: Tree | None = None

    def run(self, script: str) -> int:
        """Run ``script``; return its exit status. ``Cut`` propagates (drop the link)."""
        status = 0
        try:
            for line in script.splitlines():
                toks = _tokens(line)
                if toks:
                    status, rest = self._list(toks)
                    if rest:
                        self.out(f"vbash: syntax error near unexpected token `{rest[0]}'\n")
                        return 2
        except _Exit as e:
            status = e.code
        except ValueError as exc:  # unbalanced quotes
            self.out(f"vbash: {exc}\n")
            status = 2
        return status

    def _list(self, toks: list[str]) -> tuple[int, list[str]]:
        status, toks = self._and_or(toks)
        while toks and toks[0] == ";":
            toks = toks[1:]
            if not toks or toks[0] == "}":
                break
            status, toks = self._and_or(toks)
        return status, toks

    def _and_or(self, toks: list[str]) -> tuple[int, list[str]]:
        status, toks = self._command(toks, run=True)
        while toks and toks[0] in ("||", "&&"):
            run = (status != 0) if toks[0] == "||" else (status == 0)
            st, toks = self._command(toks[1:], run=run)
            if run:
                status = st
        return status, toks

    def _command(self, toks: list[str], run: bool) -> tuple[int, list[str]]:
        if toks and toks[0] == "{":
            depth, end = 0, None
            for i, t in enumerate(toks):
                depth += t == "{"
                depth -= t == "}"
                if depth == 0:
                    end = i
                    break
            if end is None:
                raise _Exit(2)
            if not run:
                return 0, toks[end + 1 :]
            status, rest = self._list(toks[1:end])
            return status, toks[end + 1 :]
        i = 0
        while i < len(toks) and toks[i] not in (";", "||", "&&", "}"):
            i += 1
        words, rest = toks[:i], toks[i:]
        return (self.simple(words) if run and words else 0), rest

    # ------------------------------------------------------------ commands

    def simple(self, words: list[str]) -> int:
        """Run one command; return its exit status."""
        name = words[0]
        if name == "echo":
            self.out(" ".join(words[1:]) + "\n")
            return 0
        if name in ("true", ":"):
            return 0
        if name == "false":
            return 1
        if name == "exit":
            raise _Exit(int(words[1]) if len(words) > 1 and words[1].isdigit() else 0)
        if name in (CFG_WRAPPER, "vyatta-cfg-cmd-wrapper"):
            return self._counted(lambda: self._cfg(words[1:]))
        if name in (OP_WRAPPER, "vyatta-op-cmd-wrapper"):
            return self._counted(lambda: self._op(words[1:]))
        if name == "show":
            return self._counted(lambda: self._op(words))
        self.out(f"vbash: {name}: command not found\n")
        return 127

    def _counted(self, fn: Callable[[], int]) -> int:
        with self.faults.lock:
            self.faults.commands += 1
        status = fn()
        with self.faults.lock:
            if self.faults.cut_after is not None:
                self.faults.cut_after -= 1
                if self.faults.cut_after <= 0:
                    self.faults.cut_after = None
                    raise Cut()
        return status

    def _op(self, args: list[str]) -> int:
        if args[:3] == ["show", "configuration", "commands"]:
            text = self.state.show_commands()
            with self.faults.lock:
                cut, self.faults.cut_next_read = self.faults.cut_next_read, False
            if cut:
                self.out(text[: len(text) // 2])
                raise Cut()
            self.out(text)
            return 0
        if args[:2] == ["show", "version"]:
            self.out(
                f"Version:      {self.state.version}\nBuild ID:     5611311\n"
                f"Copyright:    2012-2023 Ubiquiti, Inc.\nHW model:     {self.state.model}\n"
                "HW S/N:       0000SIMULATED\nUptime:       01:02:03 up 4 days\n"
            )
            return 0
        self.out(f"Invalid command: [{' '.join(args)}]\n")
        return 1

    def _cfg(self, args: list[str]) -> int:
        if not args:
            self.out("Usage: vyatta-cfg-cmd-wrapper <command>\n")
            return 1
        verb = args[0]
        if verb == "begin":
            with self.state.lock:
                self.working = copy.deepcopy(self.state.committed)
            return 0
        if verb == "end":
            self.working = None  # whatever was not committed is discarded
            return 0
        if self.working is None:
            self.out(f"{verb}: not in a configuration session (run 'begin' first)\n")
            return 1
        if verb in ("set", "delete"):
            return self._edit(verb, args)
        if verb == "commit":
            return self._commit()
        if verb == "save":
            with self.state.lock:
                self.state.saved = copy.deepcopy(self.state.committed)
            self.out("Saving configuration to '/config/config.boot'...\nDone\n")
            return 0
        if verb == "discard":
            with self.state.lock:
                self.working = copy.deepcopy(self.state.committed)
            return 0
        if verb in ("show", "showConfig"):
            self.out(format_commands(self.working))
            return 0
        self.out(f"Invalid command: [{' '.join(args)}]\n")
        return 1

    def _edit(self, verb: str, args: list[str]) -> int:
        assert self.working is not None
        pattern = self.faults.fail_command
        if pattern and re.search(pattern, " ".join(args)):
            with self.faults.lock:
                self.faults.fail_command = None
            self.out(
                f"  Configuration path: [{' '.join(args[1:-1])}] is not valid\n  {verb.capitalize()} failed\n"
            )
            return 1
        try:
            (set_path if verb == "set" else delete_path)(self.working, args[1:])
        except PathError as exc:
            self.out(f"  {exc}\n  {verb.capitalize()} failed\n")
            return 1
        return 0

    def _commit(self) -> int:
        assert self.working is not None
        with self.state.lock:
            if self.faults.fail_commits > 0:
                with self.faults.lock:
                    self.faults.fail_commits -= 1
                self.out("[ service ]\nSimulated failure (fault injection)\n\nCommit failed\n")
                return 1
            if self.working == self.state.committed:
                self.out("No configuration changes to commit\n")
                return 0
            errors = commit_errors(self.working)
            if errors:
                self.out("\n\n".join(errors) + "\n\nCommit failed\n")
                return 1
            self.state.committed = copy.deepcopy(self.working)
            self.state.commits += 1
        return 0
