"""The tenant dashboard in a real browser (Debian's Chromium, headless) against a real
cloud and a real POP: sign in with the recovery file, lock and unlock with the passphrase,
see what the POP created, suspend (the POP's RADIUS answer changes), a cash payment the POP
executes, a screenshot of each view (tests/artifacts/dashboard/), and the refusals a person
must understand: a wrong passphrase and an event the cloud tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from jasiyo.payments.mpesa.sim import DarajaSim
from tests.dashboard.dash_support import (
    CASH_SHOWN,
    DESKTOP,
    NAME,
    PASSPHRASE,
    PAYMENT_REF,
    PAYMENT_SHOWN,
    PHONE_SHOWN,
    USER,
    Pop,
    browser_page,
    open_subscriber,
    pop_in,
    sign_in,
    suspend_and_pay,
    wait_synced,
)
from tests.support.wait import until
from tests.sync.harness import Cloud

pytestmark = pytest.mark.slow

VIEWS = ("subscribers", "plans", "payments", "suspense", "pops", "vouchers", "sms", "changes")


@pytest.fixture
def daraja() -> Iterator[DarajaSim]:
    sim = DarajaSim(callback_delay=0.3).start()
    yield sim
    sim.stop()


@pytest.fixture
def pop(cloud: Cloud, tmp_path: Path, daraja: DarajaSim) -> Iterator[Pop]:
    with pop_in(cloud, tmp_path, daraja) as p:
        yield p


def tamper(pop: Pop) -> str:
    """What a cloud (or whoever holds its database) could do: store a copy of a real event
    under a new id with one ciphertext byte flipped. Returns the new event's id."""
    from jasiyo.sync.ids import uuid7

    events, _ = pop.cloud.storage.pull(pop.tenant, 0, 1)
    env = events[0].envelope
    head, body = env.rsplit(".", 1)
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    forged = uuid7()
    pop.cloud.storage.push(
        pop.tenant, [(forged, events[0].origin, f"{head}.{flipped}")], events[0].received_at
    )
    # (No long-poll wake-up: the dashboard's wait re-reads the log every few seconds.)
    return forged


#: Every record this app keeps in IndexedDB, its strings and bytes searched for ``needles``.
AT_REST = """async (needles) => {
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open("jasiyo-dashboard");
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
  const records = await new Promise((ok) => {
    const out = [];
    const c = db.transaction("kv").objectStore("kv").openCursor();
    c.onsuccess = () => {
      if (!c.result) return ok(out);
      out.push([c.result.key, c.result.value]);
      c.result.continue();
    };
  });
  const text = [];
  const walk = (v) => {
    if (v instanceof Uint8Array || v instanceof ArrayBuffer) text.push(new TextDecoder("latin1").decode(v));
    else if (typeof v === "string") text.push(v);
    else if (v && typeof v === "object" && !(v instanceof CryptoKey)) Object.values(v).forEach(walk);
  };
  records.forEach(([, v]) => walk(v));
  const all = text.join("\\n");
  return [records.map(([k]) => k), needles.filter((n) => all.includes(n))];
}"""


def at_rest(page: Any, needles: list[str]) -> tuple[list[str], list[str]]:
    keys, found = page.evaluate(AT_REST, needles)
    return keys, found


def test_staff_sign_in_see_suspend_and_record_cash(pop: Pop, daraja: DarajaSim) -> None:
    with browser_page("dashboard") as page:
        sign_in(page, pop)
        page.locator(f'#sub-list [data-username="{USER}"]').wait_for()
        assert NAME in page.inner_text("#sub-list")
        page.shots("subscribers-phone")

        # Lock: nothing readable stays in the page; a wrong passphrase is refused plainly.
        page.click("#lock")
        page.wait_for_selector("#unlock")
        assert NAME not in page.content()
        keys, found = at_rest(page, [NAME, PHONE_SHOWN, PAYMENT_SHOWN, "153700", "front-desk"])
        assert {"identity", "wrapped", "state", "state.0", "view", "view.0"} <= set(keys)
        assert found == ["front-desk"]  # the dashboard's own name is stored plainly; tenant data is not
        page.fill("#passphrase", "not the passphrase at all")
        page.click("#unlock-go")
        expect(page.locator("#unlock-msg")).to_contain_text("wrong passphrase")
        page.shots("wrong-passphrase")
        page.fill("#passphrase", PASSPHRASE)
        page.click("#unlock-go")
        # The cached (sealed) state shows at once, before the long-poll catches up.
        page.locator(f'#sub-list [data-username="{USER}"]').wait_for(timeout=5000)
        wait_synced(page)

        open_subscriber(page)
        assert "active" in page.inner_text("#detail-status")
        assert PAYMENT_SHOWN in page.inner_text("#detail-info")
        page.click("#tab-payments")
        page.locator(f'#payment-list [data-reference="{PAYMENT_REF}"]').wait_for()
        assert PAYMENT_SHOWN in page.inner_text(f'#payment-list [data-reference="{PAYMENT_REF}"]')

        assert pop.radius_full_service()
        suspend_and_pay(page, pop)
        done = page.inner_text("#detail-requests li.req.done")
        assert CASH_SHOWN in done and "applied at POP" in done
        until(lambda: CASH_SHOWN in page.inner_text("#detail-payments"), timeout=30)
        page.shots("subscriber-detail-phone")

        # Money for an account nobody has: unmatched, allocated from the browser.
        daraja.c2b_pay("254700111222", 730, "no-such-account")
        page.click("#tab-suspense")
        row = page.locator("#suspense .row.suspense.open")
        row.wait_for(timeout=60000)
        expect(row).to_contain_text("730.00")
        row.locator(".alloc-user").fill(USER)
        row.locator(".alloc-go").click()
        expect(page.locator("#suspense .row.suspense.allocated")).to_contain_text(
            f"allocated to {USER}", timeout=60000
        )
        page.shots("unmatched-allocated")

        page.set_viewport_size(DESKTOP)
        for view in VIEWS:
            page.click(f"#tab-{view}")
            page.wait_for_selector(f"#tab-{view}.on")
            page.wait_for_timeout(200)
            page.shots(view)
        page.click("#tab-pops")
        until(
            lambda: "s ago" in page.inner_text("#pops") or "min ago" in page.inner_text("#pops"), timeout=30
        )
        page.shots("pops-contact")

        forged = tamper(pop)
        page.wait_for_selector("#alert:not([hidden])", timeout=40000)
        alert = page.inner_text("#alert")
        assert forged in alert and "failed authentication" in alert
        assert "DashError" not in alert and ".js:" not in alert  # a sentence, not a stack trace
        page.shots("tampered-event")
        assert not page.errors, page.errors


def dashboards(pop: Pop) -> list[dict]:
    with pop.cloud.http() as h:
        r = h.get(f"/v1/tenants/{pop.tenant}/agents", headers={"authorization": f"Bearer {pop.admin}"})
    assert r.status_code == 200, r.text
    return [a for a in r.json()["agents"] if a["kind"] == "dashboard"]


def test_a_second_browser_signs_in_with_the_passphrase_and_a_revoked_one_is_told(pop: Pop) -> None:
    with browser_page("dashboard_first") as page:
        sign_in(page, pop, "front-desk")  # wraps the keys and gives the cloud the wrapped copy
    with browser_page("dashboard_second") as page:
        page.goto(pop.cloud.url + "/app/")
        page.fill("#admin-token", pop.admin)
        page.fill("#dash-name", "manager-laptop")
        page.check("#how-pass")
        page.fill("#cloud-pass", "a guess that is wrong")
        page.click("#signin-go")
        expect(page.locator("#signin-msg")).to_contain_text("wrong passphrase")
        page.shots("second-browser-wrong-passphrase")
        page.fill("#cloud-pass", PASSPHRASE)
        page.click("#signin-go")
        wait_synced(page)
        page.locator(f'#sub-list [data-username="{USER}"]').wait_for()
        (second,) = [d for d in dashboards(pop) if d["name"] == "manager-laptop"]
        assert {d["name"] for d in dashboards(pop)} == {"front-desk", "manager-laptop"}

        with pop.cloud.http() as h:
            r = h.post(
                f"/v1/tenants/{pop.tenant}/agents/{second['agent_id']}/revoke",
                headers={"authorization": f"Bearer {pop.admin}"},
            )
        assert r.status_code == 200, r.text
        page.wait_for_selector("#revoked", timeout=40000)  # the waiting long-poll ends with 401
        assert "revoked" in page.inner_text("#revoked")
        assert NAME not in page.content()
        page.shots("revoked")
        page.click("#forget")
        page.wait_for_selector("#signin")  # nothing of the tenant is left in this browser
