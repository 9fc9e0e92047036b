"""`jasiyo privacy ...`: what personal data this POP holds, for how long; prune it now."""

from __future__ import annotations

from jasiyo.commands.common import cfg, done, group, show_list, store

app = group("Privacy: what is held and for how long; retention.")


@app.command("report")
def report_cmd() -> None:
    """Each class of data held here: rows, the oldest, and how long it is kept."""
    from jasiyo.agent import retention, timeparse

    tz = cfg().billing.timezone
    with store() as s:
        rows = [{**h.to_dict(), "oldest": timeparse.local(h.oldest, tz),
                 "kept": f"{h.keep_days} days" if h.keep_days else "for ever"}
                for h in retention.report(s, cfg())]
    show_list(rows, ["kind", "rows", "oldest", "kept", "note"], "data")


@app.command("prune")
def prune_cmd() -> None:
    """Apply the [privacy] limits now (`jasiyo agent run` does it daily)."""
    from jasiyo.agent import retention

    with store() as s:
        removed = retention.prune(s, cfg())
    done("pruned: " + ", ".join(f"{k} {v}" for k, v in removed.items()), removed=removed)
