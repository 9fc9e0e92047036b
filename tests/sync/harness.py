"""A cloud on a real socket and agents enrolled in it, for sync and cloud tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from jasiyo import config
from jasiyo.agent import cloudlink, syncrun, tenantkeys
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.cloud.app import CloudSettings
from jasiyo.cloud.backend import open_storage
from jasiyo.cloud.server import ThreadedServer, ensure_operator, new_operator_token
from jasiyo.cloud.storage import Storage
from jasiyo.config import Config
from jasiyo.tls import client_context
from tests.support.config import init_agent_store

#: No rate limit worth hitting in functional tests (the 429 test sets its own).
FAST = CloudSettings(rate=10_000, burst=10_000)


@dataclass
class Cloud:
    storage: Storage
    server: ThreadedServer
    operator: str

    @property
    def url(self) -> str:
        return self.server.url

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, verify=client_context())

    def long_polls_waiting(self) -> float:
        """Agents' long-polls waiting in the cloud now (its /metrics, as the operator)."""
        with self.http() as h:
            r = h.get("/metrics", headers={"authorization": f"Bearer {self.operator}"})
        assert r.status_code == 200, r.text
        for line in r.text.splitlines():
            if line.startswith("jasiyo_cloud_long_polls_waiting "):
                return float(line.split()[1])
        raise AssertionError("no jasiyo_cloud_long_polls_waiting in /metrics")

    def tenant(self, name: str = "isp") -> tuple[str, str]:
        with self.http() as h:
            r = h.post(
                "/v1/tenants", json={"name": name}, headers={"authorization": f"Bearer {self.operator}"}
            )
        assert r.status_code == 201, r.text
        return r.json()["tenant_id"], r.json()["admin_token"]

    def enrolment(self, tenant: str, admin: str) -> str:
        with self.http() as h:
            r = h.post(
                f"/v1/tenants/{tenant}/enrolments", json={}, headers={"authorization": f"Bearer {admin}"}
            )
        assert r.status_code == 201, r.text
        return r.json()["token"]


def start_cloud(storage: Storage, settings: CloudSettings = FAST, owner: Storage | None = None) -> Cloud:
    """``owner``: PostgreSQL storage connected as the tables' owner (creates the operator)."""
    if storage.backend == "sqlite":  # PostgreSQL is migrated by its owner, beforehand
        storage.migrate()
    op = new_operator_token()
    ensure_operator(owner or storage, op)
    return Cloud(storage, ThreadedServer(storage, settings).start(), op)


def sqlite_cloud(tmp: Path, settings: CloudSettings = FAST) -> Cloud:
    return start_cloud(open_storage(str(tmp / "cloud.db")), settings)


def new_agent(tmp: Path, name: str, cloud: Cloud, tenant: str, admin: str) -> Config:
    cfg = config.parse(f'[agent]\ndata_dir = "{tmp / name}"\nname = "{name}"\n[sync]\ninterval = 2\n', tmp)
    init_agent_store(cfg)
    cloudlink.enroll_agent(cfg, cloud.url, cloud.enrolment(tenant, admin))
    return cfg


@dataclass
class Tenant:
    """One ISP: its id, admin token, first POP (holds the key) and a recovery file."""

    cloud: Cloud
    tmp: Path
    id: str = ""
    admin: str = ""
    agents: list[Config] = field(default_factory=list)

    @property
    def recovery(self) -> Path:
        return self.tmp / f"recovery-{self.id}.json"

    def setup(self, n: int = 2) -> Tenant:
        self.id, self.admin = self.cloud.tenant()
        first = new_agent(self.tmp, f"pop-{self.id[-6:]}-0", self.cloud, self.id, self.admin)
        tenantkeys.init_tenant(first)
        tenantkeys.export_recovery(first, self.recovery)
        self.agents = [first]
        for i in range(1, n):
            self.add_agent(f"pop-{self.id[-6:]}-{i}")
        return self

    def add_agent(self, name: str) -> Config:
        cfg = new_agent(self.tmp, name, self.cloud, self.id, self.admin)
        tenantkeys.import_recovery(cfg, self.recovery)
        self.agents.append(cfg)
        return cfg


def snapshot(store: Store) -> dict[str, Any]:
    """The business state a user sees, comparable across agents (no local ids or times)."""
    out: dict[str, Any] = {}
    out["plans"] = [
        {k: v for k, v in r.items() if k not in ("id", "created_at", "updated_at")}
        for r in store.all("SELECT * FROM plans ORDER BY name")
    ]
    rows = store.all(
        "SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p ON p.id = s.plan_id ORDER BY s.username"
    )
    out["subscribers"] = [
        {
            **{
                k: v
                for k, v in r.items()
                if k not in ("id", "plan_id", "created_at", "updated_at", "status_changed_at", "password_enc")
            },
            "password": subs.password_of(store, r["username"]),
        }
        for r in rows
    ]
    routers = []
    for r in store.all("SELECT * FROM routers ORDER BY name"):
        name = r["name"]
        routers.append(
            {
                **{
                    k: v
                    for k, v in r.items()
                    if k not in ("id", "created_at", "updated_at", "password_enc", "radius_secret_enc")
                },
                "password": store.unseal(r["password_enc"], f"router:{name}:password")
                if r["password_enc"]
                else None,
                "radius_secret": store.unseal(r["radius_secret_enc"], f"router:{name}:radius_secret"),
            }
        )
    out["routers"] = routers
    money = (
        "SELECT {cols}, s.username FROM {table} t JOIN subscribers s "
        "ON s.id = t.subscriber_id ORDER BY {order}"
    )
    out["payments"] = store.all(
        money.format(
            cols="t.reference, t.amount_minor, t.currency, t.method, t.received_at",
            table="payments",
            order="t.reference",
        )
    )
    out["ledger"] = store.all(
        money.format(
            cols="t.kind, t.reference, t.amount_minor, t.currency, t.at, t.description",
            table="ledger",
            order="t.kind, t.reference",
        )
    )
    out["invoices"] = store.all(
        money.format(
            cols="t.number, t.total_minor, t.status, t.cycle_start, t.cycle_end, t.paid_at",
            table="invoices",
            order="t.number",
        )
    )
    return out


def snap(cfg: Config) -> dict[str, Any]:
    store = Store.open(cfg)
    try:
        return json.loads(json.dumps(snapshot(store), default=str))
    finally:
        store.close()


def sync(*cfgs: Config, rounds: int = 2) -> None:
    """Everyone pushes and pulls; twice, so each sees what the others pushed."""
    for _ in range(rounds):
        for cfg in cfgs:
            syncrun.sync_once(cfg)
