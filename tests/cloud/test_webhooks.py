"""Payment webhooks: received by the cloud, sealed to the tenant, opened only by its agents."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jasiyo.agent import cloudlink
from jasiyo.agent.store import Store
from jasiyo.errors import SyncError
from tests.sync.harness import Cloud, Tenant, sqlite_cloud


def hooks(cfg, after: int = 0):
    s = Store.open(cfg)
    try:
        with cloudlink.open_client(cfg, s) as client:
            return client.webhooks(after)
    finally:
        s.close()


def test_webhook_is_sealed_at_rest_and_opened_by_every_pop(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path).setup(2)
    a, b = isp.agents
    url = cloudlink.register_webhook(a, "paystack")["url"]
    assert url.startswith(cloud.url + "/v1/hooks/")
    body = b'{"event":"charge.success","data":{"reference":"PSK-REF-777","amount":150000}}'
    with cloud.http() as h:
        r = h.post(
            url, content=body, headers={"x-paystack-signature": "abc123", "content-type": "application/json"}
        )
        assert r.status_code == 200 and r.json() == {"ok": True}
        mpesa = cloudlink.register_webhook(b, "mpesa")["url"]
        r = h.post(mpesa, json={"Body": {"stkCallback": {"ResultCode": 0}}})
        assert r.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    db = sqlite3.connect(cloud.storage.path)  # type: ignore[attr-defined]
    stored = " ".join(r[0] for r in db.execute("SELECT sealed FROM webhooks"))
    db.close()
    assert "PSK-REF-777" not in stored and "UFNLLVJFRi03Nzc" not in stored
    got, cursor = hooks(b)
    assert [w.provider for w in got] == ["paystack", "mpesa"] and cursor == 2
    assert got[0].body == body and got[0].headers["x-paystack-signature"] == "abc123"
    assert hooks(a, after=cursor) == ([], 2)


def test_webhook_refusals(cloud: Cloud, tmp_path: Path) -> None:
    isp = Tenant(cloud, tmp_path / "a").setup(1)
    other = Tenant(cloud, tmp_path / "b").setup(1)
    url = cloudlink.register_webhook(isp.agents[0], "paystack")["url"]
    with cloud.http() as h:
        assert h.post(url[:-4] + "xxxx", content=b"{}").json() == {"error": "not_found"}
        wrong_tenant = url.replace(isp.id, other.id)
        assert h.post(wrong_tenant, content=b"{}").status_code == 404
        assert h.post(url, content=b"x" * (65 * 1024)).status_code == 413
        assert h.post(url, content=b"{}").status_code == 200
    assert hooks(other.agents[0]) == ([], 0)  # another ISP's agent sees none of them
    db = sqlite3.connect(cloud.storage.path)  # type: ignore[attr-defined]
    sealed = db.execute("SELECT sealed FROM webhooks").fetchone()[0]
    db.execute(
        "UPDATE webhooks SET sealed = ?", (sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:],)
    )
    db.commit()
    db.close()
    with pytest.raises(SyncError, match="does not open"):
        hooks(isp.agents[0])


def test_provider_callbacks_have_their_own_larger_rate_limit(tmp_path: Path) -> None:
    """A month-end burst from one provider address is not refused because the same address
    (or the ISP's own agents) used up the API's bucket: a refused C2B confirmation is lost."""
    from jasiyo.cloud.app import CloudSettings

    c = sqlite_cloud(tmp_path, CloudSettings(rate=0.01, burst=5, hook_rate=0.01, hook_burst=40))
    try:
        isp = Tenant(c, tmp_path).setup(1)
        url = cloudlink.register_webhook(isp.agents[0], "mpesa-c2b")["url"]
        with c.http() as h:
            while h.get("/v1/health").status_code != 429:
                pass  # the API bucket of this address is empty now
            codes = [h.post(url, json={"TransID": f"R{i}"}).status_code for i in range(45)]
        assert codes[:40] == [200] * 40  # callbacks still taken ...
        assert 429 in codes[40:]  # ... up to their own limit
    finally:
        c.server.stop()
        c.storage.close()
