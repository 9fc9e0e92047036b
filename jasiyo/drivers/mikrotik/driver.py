"""``MikrotikDriver``: the RouterDriver contract over the RouterOS API (librouteros).

Options read from ``RouterConfig.options``: ``tls_check_hostname`` (``"no"`` to accept a CA-
signed certificate whose name does not match ``host``); ``portal_url`` (the hotspot portal:
reconcile keeps the hotspot walled garden and the portal's ``login.html``/``alogin.html``
in the ``hotspot_dir`` folder, default ``hotspot``, RouterOS 7's ``/file add contents=``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from jasiyo.drivers.base import RouterDriver
from jasiyo.drivers.mikrotik.connection import Reply, RouterOSConnection
from jasiyo.drivers.mikrotik.plan import (
    KIND_BY_NAME,
    active_kinds,
    parse_tag,
    phases,
    plan,
    sentences,
)
from jasiyo.drivers.routerstate import (
    TAG_PREFIX,
    Action,
    ActiveSession,
    ApplyReport,
    Change,
    Diff,
    Failure,
    RouterAccount,
    RouterConfig,
    RouterFacts,
    RouterObject,
    RouterState,
)
from jasiyo.errors import CommandError, ConnectError
from jasiyo.log import event, get_logger
from jasiyo.network import DesiredState, Service

log = get_logger(__name__)


class MikrotikDriver(RouterDriver):
    """RouterOS 6.43+ / 7.x over the API: plain (8728) or api-ssl (8729).

    One connection, guarded by a lock so one thread uses it at a time. Apply pipelines
    independent commands (``.tag``) so a large first sync is not one round trip per command.
    """

    vendor = "mikrotik"

    def __init__(self, config: RouterConfig) -> None:
        super().__init__(config)
        self._lock = threading.RLock()
        self._conn: RouterOSConnection | None = None

    # ------------------------------------------------------------------ connection

    @property
    def api_calls(self) -> int:
        """Commands sent on the current connection (0 when closed)."""
        return self._conn.calls if self._conn else 0

    def open(self) -> None:
        with self._lock:
            if self._conn is not None and self._conn.api is not None:
                return
            conn = RouterOSConnection(self.config)
            started = time.monotonic()
            try:
                conn.open()
            except Exception as exc:
                event(log, "mikrotik.connect_failed", router=self.config.label(), error=type(exc).__name__)
                raise
            self._conn = conn
            event(
                log,
                "mikrotik.connected",
                router=self.config.label(),
                tls=self.config.tls,
                ms=round((time.monotonic() - started) * 1000),
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def is_alive(self) -> bool:
        with self._lock:
            if self._conn is None or self._conn.api is None:
                return False
            try:
                self._conn.call("/system/identity/print")
                return True
            except ConnectError:
                self.close()
                return False
            except CommandError:
                return True  # it answered, it is alive

    def _c(self) -> RouterOSConnection:
        if self._conn is None or self._conn.api is None:
            self._conn = None
            raise ConnectError(f"router {self.config.label()}: not connected; call open() first")
        return self._conn

    def _call(self, command: str, *words: str) -> list[dict[str, str]]:
        try:
            return self._c().call(command, *words)
        except ConnectError:
            self._conn = None
            raise

    # ------------------------------------------------------------------ facts

    def identity(self) -> str:
        with self._lock:
            rows = self._call("/system/identity/print")
            return rows[0].get("name", "") if rows else ""

    def facts(self) -> RouterFacts:
        with self._lock:
            res = self._call("/system/resource/print", "=.proplist=version,board-name,uptime")
            r = res[0] if res else {}
            return RouterFacts(
                vendor="mikrotik",
                identity=self.identity(),
                version=r.get("version", "").split(" ")[0],
                model=r.get("board-name", ""),
                uptime=r.get("uptime", ""),
            )

    # ------------------------------------------------------------------ desired state

    def read(self) -> RouterState:
        with self._lock:
            conn = self._c()
            kinds = active_kinds(self.config)
            cmds = []
            for kind in kinds:
                props = {".id", "comment", *kind.fields}
                words = [f"=.proplist={','.join(sorted(props))}"]
                if kind.by_list:
                    field = "list" if kind.name == "address-list" else "src-address-list"
                    words.append(f"?{field}={self.config.address_list}")
                cmds.append((f"{kind.menu}/print", words))
            before = conn.calls
            try:
                replies = conn.pipeline(cmds)
            except ConnectError:
                self._conn = None
                raise
            objects: list[RouterObject] = []
            for kind, (cmd, _), reply in zip(kinds, cmds, replies, strict=True):
                if reply.trap is not None:
                    raise CommandError(f"{conn.where()} refused {cmd}: {reply.trap}", cmd)
                for row in reply.rows:
                    comment = row.get("comment", "")
                    fields = {k: v for k, v in row.items() if k in kind.fields}
                    key = parse_tag(kind, comment)
                    if key is not None:
                        objects.append(RouterObject(kind.name, key, row.get(".id", ""), fields))
                    elif kind.natural and row.get(kind.natural):
                        # Untagged (including dynamic) items are kept only so that plan()
                        # can report a collision instead of tripping over RouterOS's error.
                        objects.append(
                            RouterObject(kind.name, row[kind.natural], row.get(".id", ""), fields, False)
                        )
            return RouterState(tuple(objects), api_calls=conn.calls - before)

    def plan(self, desired: Sequence[DesiredState], current: RouterState) -> Diff:
        return plan(self.config, desired, current)

    def apply(self, diff: Diff) -> ApplyReport:
        with self._lock:
            started = time.monotonic()
            conn = self._c()
            before = conn.calls
            applied: list[Change] = []
            failed: list[Failure] = []
            groups = phases(diff)
            for gi, group in enumerate(groups):
                cmds: list[tuple[str, list[str]]] = []
                owner: list[int] = []  # which change each command belongs to
                for ci, change in enumerate(group):
                    for sentence in sentences(KIND_BY_NAME[change.kind], change):
                        cmds.append(sentence)
                        owner.append(ci)
                got: dict[int, Reply] = {}
                try:
                    conn.pipeline(cmds, on_reply=got.__setitem__)
                except ConnectError as exc:
                    self._conn = None
                    unsent = self._settle(
                        group, owner, got, applied, failed, lost=str(exc), sent=conn.last_sent
                    )
                    rest = unsent + [c for g in groups[gi + 1 :] for c in g]
                    report = self._report(diff, applied, failed, rest, started, before, conn)
                    event(
                        log,
                        "mikrotik.apply_interrupted",
                        router=self.config.label(),
                        summary=report.summary(),
                        error=str(exc),
                    )
                    return report
                self._settle(group, owner, got, applied, failed, lost=None, sent=len(cmds))
            report = self._report(diff, applied, failed, [], started, before, conn)
            if not diff.is_empty or diff.conflicts:
                event(
                    log,
                    "mikrotik.applied",
                    router=self.config.label(),
                    summary=report.summary(),
                    calls=report.api_calls,
                )
            return report

    @staticmethod
    def _settle(
        group: list[Change],
        owner: list[int],
        got: dict[int, Reply],
        applied: list[Change],
        failed: list[Failure],
        lost: str | None,
        sent: int,
    ) -> list[Change]:
        """Sort a group's changes into applied / failed from the replies that came back;
        return the changes none of whose commands were sent (not attempted)."""
        errors: dict[int, str] = {}
        touched = {ci for i, ci in enumerate(owner) if i < sent}
        for i, ci in enumerate(owner):
            reply = got.get(i)
            if ci not in touched:
                continue
            if reply is None:
                errors.setdefault(
                    ci,
                    f"no reply before the connection was lost ({lost}); it may or may not have been applied",
                )
            elif reply.trap is not None:
                errors.setdefault(ci, f"router refused it: {reply.trap}")
        unsent: list[Change] = []
        for ci, change in enumerate(group):
            if ci not in touched:
                unsent.append(change)
            elif ci in errors:
                failed.append(Failure(change, errors[ci]))
            else:
                applied.append(change)
        return unsent

    def _report(
        self,
        diff: Diff,
        applied: list[Change],
        failed: list[Failure],
        rest: list[Change],
        started: float,
        before: int,
        conn: RouterOSConnection,
    ) -> ApplyReport:
        return ApplyReport(
            applied=tuple(applied),
            failed=tuple(failed),
            not_attempted=tuple(rest),
            conflicts=diff.conflicts,
            api_calls=conn.calls - before,
            duration_s=time.monotonic() - started,
        )

    def reconcile(self, desired: Sequence[DesiredState]) -> ApplyReport:
        """As RouterDriver.reconcile; a connection found dead on the read is reopened once
        (the router rebooted since the last run)."""
        with self._lock:
            started = time.monotonic()
            fresh = self._conn is None
            self.open()
            try:
                current = self.read()
            except ConnectError:
                if fresh:
                    raise
                self.open()
                current = self.read()
            report = self.apply(self.plan(desired, current))
            files, file_failures = self._hotspot_files()
            return ApplyReport(
                applied=report.applied + files,
                failed=report.failed + file_failures,
                not_attempted=report.not_attempted,
                conflicts=report.conflicts,
                api_calls=report.api_calls + current.api_calls,
                duration_s=time.monotonic() - started,
            )

    def _hotspot_files(self) -> tuple[tuple[Change, ...], tuple[Failure, ...]]:
        """Keep the portal's hotspot pages on the router (option ``portal_url``)."""
        portal = self.config.options.get("portal_url", "")
        if not portal:
            return (), ()
        from jasiyo.portal.hotspot import hotspot_files

        folder = self.config.options.get("hotspot_dir", "hotspot").strip("/")
        done: list[Change] = []
        failed: list[Failure] = []
        for name, text in hotspot_files(portal).items():
            path = f"{folder}/{name}"
            rows = self._call("/file/print", "=.proplist=.id,name,contents", f"?name={path}")
            if rows and rows[0].get("contents", "") == text:
                continue
            change = Change(
                Action.UPDATE if rows else Action.ADD,
                "hotspot-file",
                path,
                reason="portal page" if rows else "missing",
            )
            try:
                if rows:
                    self._call("/file/set", f"=.id={rows[0]['.id']}", f"=contents={text}")
                else:
                    self._call("/file/add", f"=name={path}", f"=contents={text}")
            except CommandError as exc:
                failed.append(Failure(change, f"router refused it: {exc}"))
                continue
            done.append(change)
        return tuple(done), tuple(failed)

    # ------------------------------------------------------------------ sessions / import

    def active_sessions(self) -> list[ActiveSession]:
        with self._lock:
            out = []
            for row in self._call(
                "/ppp/active/print", "=.proplist=.id,name,service,address,caller-id,uptime"
            ):
                out.append(
                    ActiveSession(
                        service=Service.PPPOE,
                        username=row.get("name", ""),
                        address=row.get("address", ""),
                        session_id=row.get(".id", ""),
                        caller_id=row.get("caller-id", ""),
                        uptime=row.get("uptime", ""),
                    )
                )
            for row in self._call(
                "/ip/hotspot/active/print", "=.proplist=.id,user,address,mac-address,uptime"
            ):
                out.append(
                    ActiveSession(
                        service=Service.HOTSPOT,
                        username=row.get("user", ""),
                        address=row.get("address", ""),
                        session_id=row.get(".id", ""),
                        caller_id=row.get("mac-address", ""),
                        uptime=row.get("uptime", ""),
                    )
                )
            return out

    def disconnect(self, username: str) -> int:
        with self._lock:
            removed = 0
            for menu, key in (("/ppp/active", "name"), ("/ip/hotspot/active", "user")):
                ids = [
                    r[".id"]
                    for r in self._call(f"{menu}/print", "=.proplist=.id", f"?{key}={username}")
                    if ".id" in r
                ]
                if ids:
                    try:
                        self._call(f"{menu}/remove", f"=.id={','.join(ids)}")
                    except CommandError:
                        # The session ended between print and remove: count what is gone.
                        left = self._call(f"{menu}/print", "=.proplist=.id", f"?{key}={username}")
                        ids = ids[: max(0, len(ids) - len(left))]
                    removed += len(ids)
            if removed:
                event(
                    log, "mikrotik.disconnected", router=self.config.label(), user=username, sessions=removed
                )
            return removed

    def list_accounts(self) -> list[RouterAccount]:
        with self._lock:
            out = []
            props = "=.proplist=name,password,profile,service,remote-address,disabled,comment"
            for row in self._call("/ppp/secret/print", props):
                out.append(_account(Service.PPPOE, row, row.get("remote-address")))
            props = "=.proplist=name,password,profile,address,disabled,comment"
            for row in self._call("/ip/hotspot/user/print", props):
                out.append(_account(Service.HOTSPOT, row, row.get("address")))
            return out


def _account(service: Service, row: dict[str, str], address: str | None) -> RouterAccount:
    comment = row.get("comment", "")
    return RouterAccount(
        service=service,
        name=row.get("name", ""),
        password=row.get("password", ""),
        profile=row.get("profile", "default"),
        remote_address=address or None,
        disabled=row.get("disabled") in ("true", "yes"),
        comment=comment,
        managed=comment.startswith(TAG_PREFIX),
    )
