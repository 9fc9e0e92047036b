"""Demo data for trying the agent on one machine (`jasiyo init --demo`).

A router for 127.0.0.1 (secret ``testing123``) and subscribers ``user00001``..``userN`` with
passwords ``pw-N``: the naming the shared RADIUS load generator and FreeRADIUS baseline use,
so the agent can be benchmarked beside FreeRADIUS without further setup.
"""

from __future__ import annotations

from jasiyo.agent import plans, routers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config

DEMO_ROUTER = "local-test"
DEMO_SECRET = "testing123"
DEMO_PLAN = "demo-10M"


def seed(store: Store, cfg: Config, actor: str, users: int = 10_000) -> dict[str, int]:
    """Add the demo router, plan and users that are missing. Idempotent."""
    added_router = 0
    if not store.scalar("SELECT 1 FROM routers WHERE name = ?", (DEMO_ROUTER,)):
        routers.add(
            store, DEMO_ROUTER, driver="mikrotik", host="127.0.0.1", radius_secret=DEMO_SECRET, actor=actor
        )
        added_router = 1
    if not store.scalar("SELECT 1 FROM plans WHERE name = ?", (DEMO_PLAN,)):
        plans.add(store, plans.build(DEMO_PLAN, rate="10M/10M", price="1500"), actor)
    have = store.scalar("SELECT count(*) FROM subscribers WHERE username LIKE 'user%'")
    if have >= users:
        return {"router": added_router, "subscribers": 0}
    rows = [
        subs.NewSubscriber.build(f"user{n:05d}", password=f"pw-{n}", plan=DEMO_PLAN)
        for n in range(1, users + 1)
    ]
    from jasiyo.agent.imports import import_rows

    result = import_rows(store, rows, actor, cfg=cfg)
    return {"router": added_router, "subscribers": result.created}
