"""The cloud's side of privacy, on SQLite and PostgreSQL: operator tokens listed and revoked,
a revoked agent's webhook endpoints closed, a deleted tenant leaving no row anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from jasiyo.agent import cloudlink
from jasiyo.cloud.backend import open_storage
from jasiyo.cloud.server import ensure_operator, new_operator_token
from jasiyo.cloud.storage import Storage
from jasiyo.config import Config
from tests.privacy.test_erase_pops import cloud_rows
from tests.sync.harness import Cloud, Tenant, sync

CloudAt = tuple[Cloud, Path | str, str]


def owner(db: str) -> Storage:
    return open_storage(db, owner=True)


def test_a_revoked_operator_token_is_refused(any_cloud: CloudAt,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tests.privacy.conftest import run_cli

    c, _, db = any_cloud
    second = new_operator_token()
    o = owner(db)
    ensure_operator(o, second)
    ids = [i for i, _, _ in o.operators()]
    o.close()
    assert len(ids) == 2
    out = run_cli(capsys, "--json", "cloud", "operators", "--db", db)
    assert [r["id"] for r in out] == ids and all("..." in r["token_hash"] for r in out)
    with c.http() as h:
        ok = h.post("/v1/tenants", json={"name": "x"}, headers={"authorization": f"Bearer {second}"})
        assert ok.status_code == 201
    run_cli(capsys, "cloud", "revoke-operator", ids[1], "--db", db)
    with c.http() as h:
        refused = h.post("/v1/tenants", json={"name": "x"},
                         headers={"authorization": f"Bearer {second}"})
        still = h.post("/v1/tenants", json={"name": "y"},
                       headers={"authorization": f"Bearer {c.operator}"})
    assert refused.status_code == 401 and still.status_code == 201


def test_revoking_an_agent_closes_its_webhook_endpoints(any_cloud: CloudAt,
                                                        tmp_path: Path) -> None:
    c, _, _ = any_cloud
    isp = Tenant(c, tmp_path).setup(2)
    a, b = isp.agents
    url_a = cloudlink.register_webhook(a, "paystack")["url"]
    url_b = cloudlink.register_webhook(b, "paystack")["url"]
    with c.http() as h:
        assert h.post(url_a, content=b"{}").status_code == 200
        r = h.post(f"/v1/tenants/{isp.id}/agents/{_agent_id(a)}/revoke",
                   headers={"authorization": f"Bearer {isp.admin}"})
        assert r.status_code == 200
        assert h.post(url_a, content=b"{}").status_code == 404  # closed with its agent
        assert h.post(url_b, content=b"{}").status_code == 200  # the other POP's still open


def _agent_id(cfg: Config) -> str:
    from jasiyo.agent.store import Store

    s = Store.open(cfg)
    try:
        return s.agent_id
    finally:
        s.close()


def test_deleting_a_tenant_leaves_no_row_of_it(any_cloud: CloudAt, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.privacy.conftest import run_cli
    from tests.privacy.people import add_person

    c, where, db = any_cloud
    gone = Tenant(c, tmp_path / "gone").setup(2)
    kept = Tenant(c, tmp_path / "kept").setup(1)
    for isp in (gone, kept):
        add_person(isp.agents[0], session=False)
        cloudlink.register_webhook(isp.agents[0], "mpesa")
        sync(*isp.agents)
    with c.http() as h:
        h.post(cloudlink.register_webhook(gone.agents[1], "paystack")["url"], content=b"{}")
    before = repr(cloud_rows(where))
    assert gone.id in before and kept.id in before
    code = run_cli(capsys, "cloud", "delete-tenant", gone.id, "--db", db, expect=1)
    assert code == 1  # without --yes nothing happens
    assert gone.id in repr(cloud_rows(where))
    out = run_cli(capsys, "--json", "cloud", "delete-tenant", gone.id, "--db", db, "--yes")
    assert out["deleted"]["events"] > 0 and out["deleted"]["tenants"] == 1
    after = repr(cloud_rows(where))
    assert gone.id not in after and kept.id in after
    sync(*kept.agents)  # the other tenant carries on
