"""The browser's core modules against a real cloud and a real agent, in Chromium: a
dashboard enrols with its own Ed25519 key, pulls and opens what a POP wrote, and a
suspension it seals and pushes is what the POP then applies. (The app's views over the same
modules are tests/dashboard/test_dashboard_browser.py.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from jasiyo.agent import payments, plans, syncrun
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.agent.synclog import AgentLog
from tests.portal.browser import phone_page
from tests.sync.harness import Cloud, Tenant

pytestmark = pytest.mark.slow


def _page_result(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_selector("#result[data-done]", state="attached", timeout=60000)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    return result


def test_a_dashboard_reads_what_a_pop_wrote_and_its_suspension_reaches_the_pop(
    cloud: Cloud, tmp_path: Path
) -> None:
    tenant = Tenant(cloud, tmp_path).setup(n=1)
    pop = tenant.agents[0]
    store = Store.open(pop)
    try:
        plans.add(store, plans.build("home", rate="10M/10M", price="1500"), "t")
        subs.add(store, subs.NewSubscriber.build("wanjiru", password="wanjiru-pw-1", plan="home"), "t")
        payments.record(store, pop, "wanjiru", 150000, "QK7LIVE01", method="mpesa", actor="t")
    finally:
        store.close()
    syncrun.sync_once(pop)
    recovery = base64.urlsafe_b64encode(tenant.recovery.read_bytes()).decode().rstrip("=")
    fragment = f"#tenant={tenant.id}&admin={tenant.admin}&recovery={recovery}&user=wanjiru"

    with phone_page("dashboard-core-live") as page:
        result = _page_result(page, f"{cloud.url}/app/vectors/live.html{fragment}")

    assert result["stranger"].startswith("this dashboard was revoked or is not enrolled")
    assert result["reused"].startswith("the enrolment token is unknown, already used or expired")
    before = result["before"]
    assert before["subscriber"]["status"] == "active" and before["subscriber"]["plan"] == "home"
    assert "password" not in before["subscriber"] and "password_enc" not in before["subscriber"]
    assert [(p["reference"], p["amount_minor"], p["username"]) for p in before["payments"]] == [
        ("QK7LIVE01", 150000, "wanjiru")
    ]
    assert result["refused"] == []
    assert result["pushed"]["accepted"] == 1
    assert result["after"]["status"] == "suspended"
    assert result["snapshot"] is None
    assert result["wrappedBefore"] is None
    assert result["wrappedIterations"] == 600000
    assert result["wrongPassphrase"] == "wrong passphrase: the tenant keys did not unlock"
    assert result["unlocked"]["tenantId"] == tenant.id
    assert result["unlocked"]["kids"] == result["unlocked"]["same"]
    assert {"agent_id": result["me"], "name": "front desk", "kind": "dashboard"} in result["agents"]

    syncrun.sync_once(pop)
    store = Store.open(pop)
    try:
        row = store.one(
            "SELECT status, status_reason, manual_suspend FROM subscribers WHERE username = 'wanjiru'"
        )
        assert row == {"status": "suspended", "status_reason": "manual", "manual_suspend": 1}
        assert AgentLog(store).quarantined() == []
    finally:
        store.close()
