"""The audit log: who changed what, when. Details are sealed at rest.

A line's ``actor``, ``action``, ``target`` and time are plain (they are what the log is
searched by); its details (names, phone numbers, reasons, old and new values) are sealed
with the agent key in ``detail_enc``, bound to the line's target, like every other secret
the store holds. :func:`seal_legacy` seals the lines written before that.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jasiyo.agent.store import Store


def context(target: str) -> str:
    return f"audit:{target}"


@dataclass(frozen=True)
class AuditLine:
    id: int
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seal_detail(store: Store, target: str, detail: dict[str, Any]) -> bytes:
    return store.seal(json.dumps(detail, sort_keys=True, default=str), context(target))


def detail_of(store: Store, row: dict[str, Any]) -> dict[str, Any]:
    """The details of an ``audit`` row, sealed or (older lines) plain."""
    if row.get("detail_enc"):
        return dict(json.loads(store.unseal(row["detail_enc"], context(row["target"]))))
    return dict(json.loads(row.get("detail") or "{}"))


def seal_legacy(store: Store) -> int:
    """Seal the details of lines written in plain text (before sealing); how many."""
    rows = store.all("SELECT id, target, detail FROM audit WHERE detail_enc IS NULL "
                     "AND detail <> '{}'")
    if rows:
        with store.transaction():
            store.executemany(
                "UPDATE audit SET detail_enc = ?, detail = '{}' WHERE id = ?",
                [(store.seal(r["detail"], context(r["target"])), r["id"]) for r in rows])
    return len(rows)


def _line(store: Store, row: dict[str, Any]) -> AuditLine:
    return AuditLine(row["id"], row["at"], row["actor"], row["action"], row["target"],
                     detail_of(store, row))


def list_(store: Store, *, user: str | None = None, actor: str | None = None,
          action: str | None = None, since: float | None = None,
          limit: int = 200) -> list[AuditLine]:
    """Audit lines, newest first. ``user``: lines about that subscriber (their target)."""
    where: list[str] = []
    params: list[Any] = []
    if user:
        where.append("target = ?")
        params.append(f"subscriber:{user}")
    if actor:
        where.append("actor = ?")
        params.append(actor)
    if action:
        where.append("action = ?")
        params.append(action)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.all(sql + " ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
    return [_line(store, r) for r in rows]


def about(store: Store, username: str) -> list[AuditLine]:
    """Every line whose target is the subscriber, oldest first."""
    rows = store.all("SELECT * FROM audit WHERE target = ? ORDER BY at, id",
                     (f"subscriber:{username}",))
    return [_line(store, r) for r in rows]
