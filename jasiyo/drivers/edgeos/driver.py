"""``EdgeOSDriver``: Ubiquiti EdgeRouters (EdgeOS 1.10+/2.x) over SSH.

Every change batch goes through ``/opt/vyatta/sbin/vyatta-cfg-cmd-wrapper`` in ONE shell
(the wrapper's session is keyed on the parent PID): the script is sent to ``vbash -s``
over one exec channel: ``begin``, the ``set``/``delete`` lines, ``commit``, ``save``,
``end``. The first command that fails stops the script, which then calls ``end`` without
committing, so the router's committed configuration is exactly as before; the error names
the command and carries the router's message.

What is managed, and how objects are recognised as the agent's: :mod:`.plan`. Only
``mode="radius"`` is supported: EdgeOS keeps no PPP accounts for us; customers are matched
by IP address, and ``active_sessions``/``disconnect``/``list_accounts`` have nothing to do
(they return ``[]``/``0``; sessions are kicked through RADIUS Disconnect-Request instead).

Options (``RouterConfig.options``): ``address_group``, ``firewall_name``,
``firewall_rule_base``, ``nat_rule``, ``queue_ids``, ``root_bandwidth``, ``lan_interface``
(see :mod:`.plan`); ``known_hosts``, ``host_key_fingerprint``, ``trust_on_first_use``,
``key_file``, ``key_passphrase`` (see :mod:`.ssh`); ``batch_timeout`` (seconds of silence
allowed while a batch commits, default 300).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from jasiyo.drivers.base import RouterDriver
from jasiyo.drivers.edgeos import plan as planner
from jasiyo.drivers.edgeos.config import parse_commands, value
from jasiyo.drivers.edgeos.ssh import SSHLink
from jasiyo.drivers.routerstate import (
    ActiveSession,
    ApplyReport,
    Change,
    Diff,
    Failure,
    RouterAccount,
    RouterConfig,
    RouterFacts,
    RouterState,
)
from jasiyo.errors import CommandError, ConfigError, ConnectError, ValidationError
from jasiyo.log import event, get_logger
from jasiyo.network import DesiredState

log = get_logger(__name__)
CFG = "/opt/vyatta/sbin/vyatta-cfg-cmd-wrapper"
OP = "/opt/vyatta/bin/vyatta-op-cmd-wrapper"
_FAILED = re.compile(r"^@@jasiyo-failed (\d+)$", re.M)


class _BatchFailed(Exception):  # internal, carries where the batch stopped
    def __init__(self, index: int, command: str, message: str) -> None:
        self.index, self.command, self.message = index, command, message


class EdgeOSDriver(RouterDriver):
    """One EdgeRouter over SSH. Calls are serialised; see the module docstring."""

    vendor = "edgeos"

    def __init__(self, config: RouterConfig) -> None:
        """Check the config (``ConfigError`` for a bad option); never touches the network."""
        super().__init__(config)
        if config.mode != "radius":
            raise ConfigError(
                f"router {config.label()}: the EdgeOS driver supports "
                "mode='radius' only (it keeps no PPP accounts on the router)"
            )
        self.layout = planner.Layout.of(config)
        #: Fingerprint of the host key accepted by trust-on-first-use (pin it), else None.
        self.learned_host_key: str | None = None
        #: Usernames the last ``plan`` left out because they have no IP address.
        self.skipped: tuple[str, ...] = ()
        self._link: SSHLink | None = None
        self._lock = threading.RLock()
        try:
            self._batch_timeout = float((config.options or {}).get("batch_timeout", 300))
        except (TypeError, ValueError):
            raise ConfigError("options.batch_timeout must be a number of seconds") from None

    # ------------------------------------------------------------------ connection

    def open(self) -> None:
        """Connect, verify the host key, log in (see :mod:`.ssh` for the key policy)."""
        with self._lock:
            if self._link is not None and self._link.active:
                return
            self.close()
            link = SSHLink(self.config, learned=self.learned_host_key)
            link.connect()
            self.learned_host_key = link.learned_host_key
            self._link = link
            event(log, "edgeos.open", router=self.config.label())

    def close(self) -> None:
        """Drop the connection; never raises."""
        with self._lock:
            if self._link is not None:
                self._link.close()
                self._link = None

    def is_alive(self) -> bool:
        """True when connected and the router runs ``true`` now; a dead link is closed."""
        with self._lock:
            if self._link is None or not self._link.active:
                self.close()
                return False
            try:
                status, _ = self._run("true")
            except ConnectError:
                return False
            return status == 0

    def _run(self, script: str, timeout: float | None = None) -> tuple[int, str]:
        if self._link is None or not self._link.active:
            raise ConnectError(f"router {self.config.label()}: not connected (call open())")
        try:
            return self._link.run(script, timeout)
        except ConnectError:
            self.close()
            raise

    def _op(self, command: str) -> str:
        status, out = self._run(f"{OP} {command}")
        if status != 0:
            raise CommandError(f"router {self.config.label()} refused {command!r}: {_message(out)}", command)
        return out

    # ------------------------------------------------------------------ facts

    def identity(self) -> str:
        """``system host-name`` from the configuration."""
        with self._lock:
            return value(parse_commands(self._op("show configuration commands")), "system", "host-name")

    def facts(self) -> RouterFacts:
        """Vendor, host-name, EdgeOS version and hardware model (``show version``)."""
        with self._lock:
            text = self._op("show version")
            found = dict(re.findall(r"^([A-Za-z /]+):\s*(.*?)\s*$", text, re.M))
            return RouterFacts(
                vendor=self.vendor,
                identity=self.identity(),
                version=found.get("Version", ""),
                model=found.get("HW model", ""),
                uptime=found.get("Uptime", ""),
            )

    # ------------------------------------------------------------------ desired state

    def read(self) -> RouterState:
        """Everything the agent manages, from one ``show configuration commands``."""
        with self._lock:
            tree = parse_commands(self._op("show configuration commands"))
            return RouterState(tuple(planner.read_objects(tree, self.layout)), api_calls=1)

    def plan(self, desired: Sequence[DesiredState], current: RouterState) -> Diff:
        """The ordered changes (see :mod:`.plan`); subscribers without an IP go to
        :attr:`skipped` (EdgeOS rate limits and suspension work by address)."""
        diff, skipped = planner.plan(self.layout, self.config, desired, current)
        self.skipped = tuple(skipped)
        if skipped:
            event(
                log,
                "edgeos.skipped_without_ip",
                router=self.config.label(),
                count=len(skipped),
                first=skipped[0],
            )
        return diff

    def apply(self, diff: Diff) -> ApplyReport:
        """Send the diff as one committed batch.

        A refused ``set``/``delete`` discards the batch; its change is recorded as failed
        and the batch is sent again without it, so every other change still lands (one
        extra round per refused change). A refused ``begin``/``commit`` fails every change
        (nothing was committed). A lost connection fails the batch's first change and
        leaves the rest not attempted; the driver is closed.
        """
        with self._lock:
            if self._link is None or not self._link.active:
                raise ConnectError(f"router {self.config.label()}: not connected (call open())")
            failed: list[Failure] = []
            lines: dict[int, list[str]] = {}
            for change in diff.changes:
                try:
                    lines[id(change)] = planner.commands(change)
                except ValidationError as exc:  # a value EdgeOS cannot hold: never sent
                    failed.append(Failure(change, str(exc)))
            pending = [c for c in diff.changes if id(c) in lines]
            calls = 0
            while pending:
                cmds: list[str] = []
                owner: list[Change] = []
                for change in pending:
                    for cmd in lines[id(change)]:
                        cmds.append(cmd)
                        owner.append(change)
                try:
                    calls += self._batch(cmds)
                except _BatchFailed as exc:
                    calls += exc.index + 3  # begin + commands up to the failure + end
                    err = (
                        f"router {self.config.label()} refused {exc.command!r}: "
                        f"{exc.message}; nothing was committed"
                    )
                    event(
                        log,
                        "edgeos.refused",
                        router=self.config.label(),
                        command=exc.command[:120],
                        message=exc.message[:200],
                    )
                    if 0 <= exc.index < len(cmds):
                        bad = owner[exc.index]
                        failed.append(Failure(bad, err))
                        pending = [c for c in pending if c is not bad]
                        continue
                    failed.extend(Failure(c, err) for c in pending)
                    pending = []
                    break
                except ConnectError as exc:
                    failed.append(
                        Failure(pending[0], f"{exc} (connection lost; the batch was not confirmed)")
                    )
                    return ApplyReport(
                        failed=tuple(failed),
                        not_attempted=tuple(pending[1:]),
                        conflicts=diff.conflicts,
                        api_calls=calls,
                    )
                break
            bad_ids = {id(f.change) for f in failed}
            applied = tuple(c for c in diff.changes if id(c) not in bad_ids)
            return ApplyReport(
                applied=applied, failed=tuple(failed), conflicts=diff.conflicts, api_calls=calls
            )

    def run_batch(self, commands: Sequence[str]) -> int:
        """Run configuration ``commands`` (``set ...``/``delete ...``) as one committed and
        saved batch; return how many commands the router ran.

        Raises ``CommandError`` naming the first command the router refused (or
        ``commit``) with its message; the batch is then discarded and nothing changes.
        """
        with self._lock:
            try:
                return self._batch(list(commands))
            except _BatchFailed as exc:
                raise CommandError(
                    f"router {self.config.label()} refused {exc.command!r}: "
                    f"{exc.message}; nothing was committed",
                    exc.command,
                ) from None

    def _batch(self, cmds: list[str]) -> int:
        if not cmds:
            return 0
        steps = ["begin", *cmds, "commit", "save"]
        lines = [
            f"{CFG} {s} || {{ echo @@jasiyo-failed {i}; {CFG} end; exit 3; }}" for i, s in enumerate(steps)
        ]
        status, out = self._run("\n".join([*lines, f"{CFG} end", ""]), self._batch_timeout)
        m = _FAILED.search(out)
        if m:
            i = int(m.group(1))
            if steps[i] == "save":  # committed and live, only not persisted
                event(
                    log,
                    "edgeos.save_failed",
                    router=self.config.label(),
                    message=_message(out[: m.start()])[:200],
                )
                return len(steps) + 1
            raise _BatchFailed(i - 1, steps[i], _message(out[: m.start()]))
        if status != 0:
            raise _BatchFailed(-1, "end", f"the batch script exited with status {status}: {_message(out)}")
        return len(steps) + 1

    # ------------------------------------------------------------------ sessions / import

    def active_sessions(self) -> list[ActiveSession]:
        """None: this driver does not run PPPoE on the router (RADIUS mode, by address)."""
        return []

    def disconnect(self, username: str) -> int:
        """0: sessions are ended through RADIUS Disconnect-Request, not over SSH."""
        return 0

    def list_accounts(self) -> list[RouterAccount]:
        """None: EdgeOS keeps no accounts for the agent in RADIUS mode."""
        return []


def _message(out: str) -> str:
    """The router's message as one line (its output lines, trimmed, joined)."""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return "; ".join(lines) or "no message"
