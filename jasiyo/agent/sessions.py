"""RADIUS sessions as accounting describes them: listing, closing stale ones, kicking."""

from __future__ import annotations

from jasiyo.agent.records import Session
from jasiyo.agent.store import Row, Store
from jasiyo.config import Config
from jasiyo.radius.backend import NasClient


def _from_row(row: Row) -> Session:
    return Session(
        username=row["username"], nas_ip=row["nas_ip"], acct_session_id=row["acct_session_id"],
        status=row["status"], started_at=row["started_at"], last_update_at=row["last_update_at"],
        stopped_at=row["stopped_at"], framed_ip=row["framed_ip"],
        calling_station_id=row["calling_station_id"], session_time=row["session_time"],
        input_octets=row["input_octets"], output_octets=row["output_octets"],
        terminate_cause=row["terminate_cause"],
    )


def list_(store: Store, *, active: bool = False, username: str | None = None,
          limit: int = 1000) -> list[Session]:
    where, params = [], []
    if active:
        where.append("status = 'active'")
    if username:
        where.append("username = ?")
        params.append(username)
    sql = "SELECT * FROM radius_sessions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY last_update_at DESC LIMIT ?"
    return [_from_row(r) for r in store.all(sql, (*params, limit))]


def close_stale(store: Store, cfg: Config, now: float | None = None) -> int:
    """Mark sessions that missed ``stale_after_missed_interims`` interim updates as stale.

    Returns how many were closed. If the router was only unreachable and the session sends
    an Interim-Update later, the session is reopened (it is online after all); a Stop closes
    it for good. Counters are never lost either way.
    """
    now = store.now() if now is None else now
    cutoff = now - cfg.radius.interim_interval * cfg.radius.stale_after_missed_interims
    with store.transaction():
        cur = store.execute(
            "UPDATE radius_sessions SET status = 'stale', stopped_at = last_update_at, "
            "terminate_cause = COALESCE(terminate_cause, 'Lost-Interims') "
            "WHERE status = 'active' AND last_update_at < ?",
            (cutoff,),
        )
    return cur.rowcount


def prune(store: Store, cfg: Config, now: float | None = None) -> dict[str, int]:
    """Delete accounting past ``[radius] accounting_retention_days`` (0: keep forever).

    Removes raw accounting records and finished enforcement jobs; never money records.
    Ended sessions have their own limit (``[privacy] session_days``,
    :func:`jasiyo.agent.retention.prune`, which calls this). Returns how many of each.
    """
    days = cfg.radius.accounting_retention_days
    if not days:
        return {}
    now = store.now() if now is None else now
    cutoff = now - days * 86400
    with store.transaction():
        acct = store.execute("DELETE FROM accounting WHERE received_at < ?", (cutoff,))
        jobs = store.execute(
            "DELETE FROM enforce_jobs WHERE status != 'pending' AND done_at < ?", (cutoff,)
        )
    return {"accounting": acct.rowcount, "jobs": jobs.rowcount}


def nas_for(store: Store, cfg: Config, nas_ip: str) -> NasClient | None:
    """The NAS (router) at ``nas_ip`` with its secret, for CoA / Disconnect."""
    from jasiyo.agent.radius_backend import nas_vendor
    from jasiyo.agent.routers import secret_context

    row = store.one("SELECT * FROM routers WHERE nas_ip = ?", (nas_ip,))
    if row is None:
        return None
    return NasClient(
        name=row["name"], address=row["nas_ip"],
        secret=store.box.open(row["radius_secret_enc"], secret_context(row["name"], "radius_secret")),
        require_message_authenticator=bool(row["require_message_authenticator"]),
        coa_port=row["coa_port"], **nas_vendor(row),
    )


def disconnect(store: Store, cfg: Config, username: str, actor: str = "cli") -> list[dict]:
    """Send a Disconnect-Request for each of ``username``'s active sessions.

    Returns one result per session: ``result`` is ``ack``, ``gone`` (NAK
    Session-Context-Not-Found: the router no longer has it), ``nak``, ``timeout`` or
    ``no-router``; ``ok`` says whether the session is off; ``why`` explains a failure in a
    sentence. A session that is off is closed here at once (its Accounting-Stop still
    updates the counters).
    """
    from jasiyo.agent import subscribers
    from jasiyo.radius import coa

    subscribers.get(store, username)  # NotFound for a name that does not exist
    results: list[dict] = []
    for sess in list_(store, active=True, username=username):
        nas = nas_for(store, cfg, sess.nas_ip)
        item = {"nas_ip": sess.nas_ip, "acct_session_id": sess.acct_session_id}
        if nas is None:
            results.append({**item, "result": "no-router", "ok": False,
                            "why": f"no router has NAS IP {sess.nas_ip} (see `jasiyo router list`)"})
            continue
        tries = cfg.radius.coa_retries + 1
        res = coa.disconnect_sync(
            nas, coa.session_attributes(username, sess.acct_session_id, sess.framed_ip),
            timeout=cfg.radius.coa_timeout, retries=tries,
        )
        gone = res.status is coa.CoAStatus.NAK and res.error_cause == 503
        result = "gone" if gone else res.status.value
        why = None
        if res.status is coa.CoAStatus.TIMEOUT:
            why = (f"no answer from {nas.name} ({nas.address}:{nas.coa_port}) after {tries} "
                   f"tries of {cfg.radius.coa_timeout:g}s: is CoA enabled there (/radius incoming "
                   "set accept=yes) and is the RADIUS secret the same?")
        elif res.status is coa.CoAStatus.NAK and not gone:
            why = f"{nas.name} refused (NAK, Error-Cause {res.error_cause_name or 'none'})"
        results.append({**item, "router": nas.name, "result": result,
                        "ok": res.ok or gone, "error_cause": res.error_cause_name, "why": why})
        with store.transaction():
            if res.ok or gone:
                store.execute(
                    "UPDATE radius_sessions SET status = 'closed', stopped_at = ?, "
                    "terminate_cause = 'Admin-Reset' WHERE nas_ip = ? AND acct_session_id = ?",
                    (store.now(), sess.nas_ip, sess.acct_session_id),
                )
            store.audit(actor, "session.disconnect", f"subscriber:{username}",
                        nas=sess.nas_ip, session=sess.acct_session_id, result=res.status.value)
    return results
