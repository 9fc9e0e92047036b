"""A tenant with a real POP (`agent run`, enrolled, holding the tenant keys) that created a
subscriber and a payment, and a headless Chromium that signs in to the dashboard the cloud
serves at /app/. Shared by the browser test and the cloud-learns-nothing scan."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from jasiyo.config import Config
from jasiyo.payments.mpesa.sim import DarajaSim
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.billing_support import NAS_SECRET, NasListener
from tests.agent.money_support import exchange, full_service, payments_toml
from tests.portal.browser import CHROMIUM
from tests.radius.support import auth_request
from tests.support.config import make_config
from tests.support.wait import until
from tests.sync.harness import Cloud

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "dashboard"
PASSPHRASE = "correct horse battery staple"
USER, PASSWORD = "wkamau7", "wk-secret-pw"
NAME, PHONE, PHONE_SHOWN = "Wanjiku Kamau", "0712 345 678", "712345678"
PAYMENT_REF, PAYMENT, PAYMENT_SHOWN = "QJX7ABC123", "1537", "1,537.00"
CASH, CASH_SHOWN = "512.35", "512.35"
#: What the browser shows that the cloud must never see (names, phones, amounts).
SECRETS = (
    NAME,
    "Wanjiku",
    "Kamau",
    PHONE_SHOWN,
    USER,
    PAYMENT_SHOWN,
    "153700",
    "1537.00",
    CASH_SHOWN,
    "51235",
)
DESKTOP = {"width": 1280, "height": 860}
PHONE_VIEWPORT = {"width": 360, "height": 740}


@dataclass
class Pop:
    cloud: Cloud
    tenant: str
    admin: str
    cfg: Config
    agent: AgentProcess
    recovery: Path
    nas: NasListener

    def radius_full_service(self) -> bool:
        """The POP's RADIUS answer for the subscriber: full service (Accept, no walled garden)?"""
        req = auth_request(
            User_Name=USER, User_Password=PASSWORD, NAS_IP_Address="127.0.0.1", secret=NAS_SECRET.encode()
        )
        return full_service(exchange(self.cfg.radius.auth_port, req))


@contextmanager
def pop_in(cloud: Cloud, tmp: Path, daraja: DarajaSim | None = None) -> Iterator[Pop]:
    """A POP enrolled in ``cloud``'s new tenant, with the tenant keys, a plan, a subscriber
    with a name and phone, a payment, and its `agent run` syncing every second; with
    ``daraja``, M-Pesa callbacks reach it through the cloud's webhook URLs."""
    tenant, admin = cloud.tenant()
    nas = NasListener()
    (tmp / "pop").mkdir()
    cfg = make_config(tmp / "pop", "[sync]\ninterval = 1\n" + (payments_toml(daraja, None) if daraja else ""))
    jasiyo(cfg, "agent", "enroll", cloud.url, cloud.enrolment(tenant, admin))
    jasiyo(cfg, "tenant", "init")
    recovery = tmp / "recovery.json"
    jasiyo(cfg, "tenant", "export-recovery", str(recovery))
    jasiyo(cfg, "plan", "add", "home", "--rate", "10M/10M", "--price", "1500")
    jasiyo(cfg, "plan", "add", "fibre", "--rate", "50M/50M", "--price", "3000")
    jasiyo(
        cfg,
        "router",
        "add",
        "local",
        "--driver",
        "mikrotik",
        "--host",
        "127.0.0.1",
        "--radius-secret",
        NAS_SECRET,
        "--coa-port",
        str(nas.port),
    )
    jasiyo(cfg, "subscriber", "add", USER, "--plan", "home", "--password", PASSWORD, "--phone", PHONE)
    jasiyo(cfg, "subscriber", "update", USER, "--name", NAME)
    jasiyo(cfg, "payment", "record", USER, PAYMENT, "--ref", PAYMENT_REF, "--method", "mpesa")
    if daraja:
        jasiyo(cfg, "payment", "register-urls")
    agent = AgentProcess(cfg, tmp / "agent.log")
    try:
        pop = Pop(cloud, tenant, admin, cfg, agent, recovery, nas)
        until(pop.radius_full_service, timeout=20)
        yield pop
    finally:
        if agent.proc.poll() is None:
            agent.terminate()
        nas.close()


#: The loggers of the cloud's code (the in-process CLI runs of the POP's setup log too, as
#: jasiyo.agent / jasiyo.commands: those are the POP's logs, which may name subscribers).
CLOUD_LOGGERS = ("jasiyo.cloud", "jasiyo.serving", "uvicorn", "starlette")


@contextmanager
def captured_logs() -> Iterator[StringIO]:
    """What the in-process cloud logs, as text, at every level."""
    out = StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(lambda r: r.name.startswith(CLOUD_LOGGERS))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


class Shots:
    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name, self.n = page, name, 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{name}-[0-9][0-9]-*.png"):  # an earlier run's, numbered otherwise
            old.unlink()

    def __call__(self, label: str) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.name}-{self.n:02d}-{re.sub(r'[^a-z0-9_-]', '_', label)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browser_page(name: str, viewport: dict[str, int] = PHONE_VIEWPORT) -> Iterator[Any]:
    """Debian's Chromium, headless; ``page.shots(label)`` keeps a screenshot; the page's
    console errors and uncaught exceptions collected in ``page.errors``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --dev installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        try:
            context = browser.new_context(viewport=viewport, locale="en-GB")
            page = context.new_page()
            page.set_default_timeout(30000)
            page.errors = []  # type: ignore[attr-defined]
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
            page.shots = Shots(page, name)  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def sign_in(page: Any, pop: Pop, name: str = "front-desk") -> None:
    """First time on this browser: admin token + recovery file, choose a passphrase."""
    page.goto(pop.cloud.url + "/app/")
    page.wait_for_selector("#signin")
    page.fill("#admin-token", pop.admin)
    page.fill("#dash-name", name)
    page.set_input_files("#recovery-file", str(pop.recovery))
    page.fill("#new-pass", PASSPHRASE)
    page.fill("#new-pass2", PASSPHRASE)
    page.click("#signin-go")
    wait_synced(page)


def wait_synced(page: Any) -> None:
    # (Locators, not wait_for_function: the app's CSP forbids the eval that would need.)
    expect(page.locator("#sync-status")).to_have_text("up to date", timeout=60000)


def open_subscriber(page: Any, username: str = USER) -> None:
    page.click("#tab-subscribers")
    page.fill("#search", username)
    row = page.locator(f'#sub-list [data-username="{username}"]')
    row.wait_for()
    row.click()
    page.wait_for_selector("#detail-info dl")


def suspend_and_pay(page: Any, pop: Pop) -> None:
    """Suspend the subscriber (the POP's RADIUS answer changes), then ask the POP to
    record a cash payment and wait until it answers done."""
    open_subscriber(page)
    page.fill("#suspend-reason", "unpaid installation fee")
    page.click("#act-suspend")
    expect(page.locator("#action-msg")).to_contain_text("Suspended")
    until(lambda: not pop.radius_full_service(), timeout=30)
    expect(page.locator("#detail-status")).to_have_text("suspended")
    page.fill("#cash-amount", CASH)
    page.click("#act-pay")
    expect(page.locator("#action-msg")).to_contain_text(f"cash payment KES {CASH} for")
    page.wait_for_selector("#detail-requests li.req.pending, #detail-requests li.req.done")
    expect(page.locator("#detail-requests li.req .what").first).to_contain_text(f"KES {CASH}")
    page.wait_for_selector("#detail-requests li.req.done", timeout=60000)
