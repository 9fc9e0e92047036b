"""`jasiyo pop ...`: the POPs of this tenant, and retiring one that is gone."""

from __future__ import annotations

import typer

from jasiyo.commands.common import actor, done, group, lazy, show_list, store

pops = lazy("jasiyo.agent.pops")

app = group("POPs: which agent bills and drives which subscribers and routers.")


@app.command("list")
def list_() -> None:
    """The tenant's POPs as this agent knows them: routers, homed subscribers, agent."""
    with store() as s:
        rows = [p.to_dict() for p in pops.list_(s)]
    for r in rows:
        r["pop"] = r["name"] + (" (this POP)" if r["this"] else "")
        r["state"] = (f"retired -> {r['retired_to']}" if r["retired"]
                      else (f"CONFLICT: {r['conflict']}" if r["conflict"] else "in service"))
    show_list(rows, ["pop", "agent_name", "routers", "subscribers", "state"], "POPs")


@app.command("retire")
def retire(
    name: str = typer.Argument(..., help="The POP that is gone."),
    to: str = typer.Option(..., "--to", help="Router (of a POP in service) that takes over "
                           "its subscribers."),
) -> None:
    """Move every subscriber homed at a POP that is gone to another router."""
    with store() as s:
        r = pops.retire(s, name, to, actor())
    done(f"POP {name} retired: {r['moved']} subscriber(s) moved to router {to} "
         f"(POP {r['to_pop'] or '-'})", **r)


@app.command("adopt")
def adopt(router: str = typer.Argument(..., help="Router this POP is to drive.")) -> None:
    """Make this POP the owner of a router (one from before POPs, or a retired POP's)."""
    with store() as s:
        r = pops.adopt(s, router, actor())
    if not r["changed"]:
        done(f"router {router} already belongs to this POP ({r['pop']}); nothing changed", **r)
        return
    done(f"router {router} now belongs to POP {r['pop']} (was {r['from_pop'] or 'no POP'}); "
         f"{r['subscribers']} subscriber(s) homed on it follow", **r)
