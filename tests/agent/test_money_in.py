"""Money in without an engineer, on an agent with no cloud: the real `agent run`, the Daraja
and Paystack simulators calling its web listener, a NAS that receives the Disconnect.

(The same flows through the cloud are in tests/sync/test_money_in_cloud.py.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyrad.packet import DisconnectRequest

from jasiyo.agent import charge
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.provider import signature as paystack_signature
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.agentproc import AgentProcess, jasiyo
from tests.agent.billing_support import NasListener
from tests.agent.money_support import (
    PHONE,
    cli_json,
    full_service,
    login,
    post,
    seed,
    standalone_config,
    start_session,
    until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def daraja() -> Iterator[DarajaSim]:
    sim = DarajaSim(callback_delay=0.3)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def paystack() -> Iterator[PaystackSim]:
    sim = PaystackSim(callback_delay=0.3)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def setup(
    tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim, nas: NasListener
) -> Iterator[tuple[Config, AgentProcess]]:
    cfg = standalone_config(tmp_path, daraja, paystack)
    seed(cfg, nas.port)
    agent = AgentProcess(cfg, tmp_path / "agent.log")
    try:
        until(lambda: "web.start" in agent.log())
        start_session(cfg)
        yield cfg, agent
    finally:
        if agent.proc.poll() is None:
            agent.terminate()


def payments_of(cfg: Config) -> list[dict]:
    return cli_json(cfg, "payment", "list")


def disconnects(nas: NasListener, user: str = "alice") -> list:
    return [p for p in nas.received if p.code == DisconnectRequest and p["User-Name"] == [user]]


def test_stk_push_pays_restores_and_disconnects(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim, nas: NasListener
) -> None:
    cfg, agent = setup
    assert not full_service(login(cfg))  # suspended: walled garden
    out = cli_json(cfg, "payment", "request", "alice", "--wait", "--timeout", "30")
    assert out["ok"] and out["request"]["status"] == "paid"
    (push,) = daraja.pushes.values()
    assert (push.phone, push.amount, push.account) == (PHONE, 1500, "alice")
    assert push.callback_url.startswith(cfg.web.public_url + "/hooks/")
    assert "mpesa" not in push.callback_url  # Daraja refuses such URLs
    (paid,) = payments_of(cfg)
    assert (paid["username"], paid["amount_minor"], paid["method"]) == ("alice", 150000, "mpesa")
    assert paid["reference"] == push.receipt
    until(lambda: disconnects(nas))  # the walled-garden session is kicked to log in again
    assert full_service(login(cfg))
    sub = cli_json(cfg, "subscriber", "show", "alice")
    assert sub["status"] == "active"
    assert "alice-pw" not in agent.log() and daraja.passkey not in agent.log()


def test_cancelled_prompt_exits_nonzero_and_credits_nothing(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim
) -> None:
    cfg, _ = setup
    daraja.script(PHONE, "cancel")
    r = jasiyo(cfg, "payment", "request", "alice", "--wait", "--timeout", "30", check=False)
    assert r.returncode == 1 and "cancelled" in r.stderr
    assert payments_of(cfg) == []
    (req,) = cli_json(cfg, "payment", "requests")
    assert req["status"] == "cancelled" and "1032" in req["result"]
    assert not full_service(login(cfg))


def test_lost_callback_is_recovered_by_the_query(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim
) -> None:
    cfg, agent = setup
    daraja.faults.lose_next_callbacks(1)
    cli_json(cfg, "payment", "request", "alice")  # no --wait: only the agent works now
    until(lambda: payments_of(cfg), timeout=30)
    (paid,) = payments_of(cfg)
    assert paid["amount_minor"] == 150000
    assert "payments.recovered" in agent.log()
    until(lambda: full_service(login(cfg)))


def test_five_duplicate_callbacks_credit_once(setup: tuple[Config, AgentProcess], daraja: DarajaSim) -> None:
    cfg, _ = setup
    daraja.faults.duplicate_callbacks = 5
    cli_json(cfg, "payment", "request", "alice", "--amount", "3000")
    until(lambda: len(cli_json(cfg, "payment", "inbox")) >= 5)
    until(lambda: all(i["status"] in ("applied", "duplicate") for i in cli_json(cfg, "payment", "inbox")))
    statuses = sorted(i["status"] for i in cli_json(cfg, "payment", "inbox"))
    assert statuses.count("applied") == 1 and statuses.count("duplicate") == 4
    (paid,) = payments_of(cfg)
    assert paid["amount_minor"] == 300000
    assert cli_json(cfg, "subscriber", "statement", "alice")[-1]["balance_minor"] == 0


def test_wrong_amount_in_the_callback_is_refused_then_the_query_credits_what_was_asked(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim
) -> None:
    cfg, _ = setup
    daraja.faults.wrong_amount_minor = -100000  # callback claims KES 500 of the 1,500
    cli_json(cfg, "payment", "request", "alice")
    until(lambda: cli_json(cfg, "payment", "unmatched", "--refused"))
    (refused,) = cli_json(cfg, "payment", "unmatched", "--refused")
    assert "differs" in refused["detail"]
    until(lambda: payments_of(cfg), timeout=30)  # STK Query confirms the request itself
    (paid,) = payments_of(cfg)
    assert paid["amount_minor"] == 150000


def test_forged_stk_callback_for_a_request_never_issued(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim
) -> None:
    cfg, agent = setup
    store = Store.open(cfg)
    url = charge.callback_url(store, cfg, "mpesa-stk")
    store.close()
    forged = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "29115-34620561-1",
                "CheckoutRequestID": "ws_CO_191220191020363925",
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": 1500.0},
                        {"Name": "MpesaReceiptNumber", "Value": "NLJ7RT61SV"},
                        {"Name": "TransactionDate", "Value": 20191219102115},
                        {"Name": "PhoneNumber", "Value": 254712345678},
                    ]
                },
            }
        }
    }
    assert post(url, json.dumps(forged).encode()).status_code == 200
    until(lambda: cli_json(cfg, "payment", "unmatched", "--refused"), timeout=40)
    (refused,) = cli_json(cfg, "payment", "unmatched", "--refused")
    assert "never issued" in refused["detail"]
    assert payments_of(cfg) == []
    assert "payments.refused" in agent.log()
    # a wrong token is a 404 and nothing is kept
    bad = url.rsplit("/", 2)[0] + "/" + "0" * 40 + "/stk"
    assert post(bad, json.dumps(forged).encode()).status_code == 404
    assert len(cli_json(cfg, "payment", "inbox")) == 1


def test_c2b_paybill_credits_by_account_and_unknown_goes_to_suspense(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim, nas: NasListener
) -> None:
    cfg, _ = setup
    out = cli_json(cfg, "payment", "register-urls")
    assert "mpesa-c2b" in out["urls"]
    reg = daraja.registrations[daraja.shortcode]
    assert reg["ConfirmationURL"] == out["urls"]["mpesa-c2b"]
    # validation is on in the simulator: an unknown account is refused before money moves
    refused = daraja.c2b_pay(PHONE, 1500, "nobody-here")
    assert not refused.accepted
    # the account number as a customer types it: case, spaces and dashes ignored
    daraja.c2b_pay(PHONE, 1500, " ALI-CE ")
    until(lambda: payments_of(cfg))
    (paid,) = payments_of(cfg)
    assert (paid["username"], paid["amount_minor"]) == ("alice", 150000)
    until(lambda: disconnects(nas))
    assert full_service(login(cfg))

    # Through the cloud validation is always accepted; simulate a confirmation for an
    # account nobody has (what then arrives): it lands in suspense, then is allocated.
    daraja.external_validation = False
    daraja.c2b_pay(PHONE, 700, "unknown-acct")
    until(lambda: cli_json(cfg, "payment", "unmatched"))
    (u,) = cli_json(cfg, "payment", "unmatched")
    assert u["amount_minor"] == 70000 and "unknown-acct" in u["reason"]
    assert len(payments_of(cfg)) == 1  # nothing guessed
    done = cli_json(cfg, "payment", "allocate", u["reference"], "alice")
    assert done["ok"] and len(payments_of(cfg)) == 2
    assert cli_json(cfg, "payment", "unmatched") == []
    r = jasiyo(cfg, "payment", "allocate", u["reference"], "alice", check=False)
    assert r.returncode == 1 and "already allocated" in r.stderr


def test_c2b_for_another_shortcode_is_refused(setup: tuple[Config, AgentProcess], daraja: DarajaSim) -> None:
    cfg, _ = setup
    cli_json(cfg, "payment", "register-urls")
    daraja.external_validation = False
    reg = daraja.registrations[daraja.shortcode]
    doc = {
        "TransactionType": "Pay Bill",
        "TransID": "RKTQDM7W6S",
        "TransTime": "20191122063845",
        "TransAmount": "1500.00",
        "BusinessShortCode": "600999",
        "BillRefNumber": "alice",
        "MSISDN": "25470****149",
        "FirstName": "JOHN",
    }
    post(reg["ConfirmationURL"], json.dumps(doc).encode())
    until(lambda: cli_json(cfg, "payment", "unmatched", "--refused"))
    (refused,) = cli_json(cfg, "payment", "unmatched", "--refused")
    assert "600999" in refused["detail"] and payments_of(cfg) == []


def test_paystack_link_webhook_verified_and_applied(
    setup: tuple[Config, AgentProcess], paystack: PaystackSim, nas: NasListener
) -> None:
    cfg, _ = setup
    urls = cli_json(cfg, "payment", "register-urls")["urls"]
    paystack.webhook_url = urls["paystack"]  # what the ISP pastes in the dashboard
    out = cli_json(cfg, "payment", "link", "alice", "--email", "alice@example.com")
    link = out["request"]
    assert link["checkout_url"].startswith(paystack.url)
    paystack.faults.duplicate_callbacks = 3
    paystack.paystack_complete(link["request_id"])
    until(lambda: payments_of(cfg))
    until(
        lambda: (
            len(cli_json(cfg, "payment", "inbox")) == 3
            and all(i["status"] in ("applied", "duplicate") for i in cli_json(cfg, "payment", "inbox"))
        )
    )
    (paid,) = payments_of(cfg)
    assert (paid["method"], paid["amount_minor"]) == ("paystack", 150000)
    until(lambda: disconnects(nas))
    assert full_service(login(cfg))


def test_paystack_forged_signature_is_refused_and_never_credited(
    setup: tuple[Config, AgentProcess], paystack: PaystackSim
) -> None:
    cfg, agent = setup
    urls = cli_json(cfg, "payment", "register-urls")["urls"]
    paystack.webhook_url = urls["paystack"]
    link = cli_json(cfg, "payment", "link", "alice", "--email", "a@example.com")["request"]
    paystack.faults.bad_signature = True
    paystack.paystack_complete(link["request_id"])
    until(lambda: cli_json(cfg, "payment", "unmatched", "--refused"))
    (refused,) = cli_json(cfg, "payment", "unmatched", "--refused")
    assert "signature" in refused["detail"].lower()
    # The customer did pay: the agent asks Paystack (verify) about its pending checkout and
    # credits it, once, whatever the forged webhook said.
    until(lambda: payments_of(cfg), timeout=30)
    assert jasiyo(cfg, "payment", "reconcile").returncode == 0
    (paid,) = payments_of(cfg)
    assert paid["reference"] == link["request_id"].upper()

    # A correctly signed charge.success for a checkout nobody completed: verify says it is
    # not paid, so it is never credited.
    other = cli_json(cfg, "payment", "link", "alice", "--email", "a@example.com", "--amount", "700")[
        "request"
    ]
    body = json.dumps(
        {
            "event": "charge.success",
            "data": {
                "reference": other["request_id"],
                "amount": 70000,
                "currency": "KES",
                "status": "success",
                "metadata": {"account": "alice"},
            },
        }
    ).encode()
    post(urls["paystack"], body, {"x-paystack-signature": paystack_signature(paystack.secret_key, body)})
    until(
        lambda: any(
            i["status"] in ("retry", "refused") for i in cli_json(cfg, "payment", "inbox") if i["id"] == 2
        )
    )
    assert jasiyo(cfg, "payment", "reconcile").returncode == 0
    assert len(payments_of(cfg)) == 1
    assert base64.b64encode(body).decode() not in agent.log()  # bodies are not logged


def test_hostile_bodies_to_the_listener_store_nothing_wrong(setup: tuple[Config, AgentProcess]) -> None:
    cfg, _ = setup
    store = Store.open(cfg)
    url = charge.callback_url(store, cfg, "mpesa-stk")
    store.close()
    for body in (
        b"not json",
        b"[" * 60000,
        json.dumps({"Body": {}}).encode(),
        json.dumps({"Body": {"stkCallback": {"ResultCode": "x"}}}).encode(),
    ):
        assert post(url, body).status_code in (200, 413)
    assert post(url, b"x" * (70 * 1024)).status_code == 413
    until(lambda: all(i["status"] == "refused" for i in cli_json(cfg, "payment", "inbox")))
    assert len(cli_json(cfg, "payment", "inbox")) == 4
    assert payments_of(cfg) == []


def test_metrics_count_callbacks_and_no_person_is_a_label(
    setup: tuple[Config, AgentProcess], daraja: DarajaSim
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    cfg, agent = setup
    port = int(cfg.web.public_url.rsplit(":", 1)[1])
    cli_json(cfg, "payment", "request", "alice")
    until(lambda: payments_of(cfg))
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    applied = [s for s in families["jasiyo_payment_callbacks"].samples if s.labels == {"status": "applied"}]
    assert applied and applied[0].value == 1
    assert "jasiyo_radius_requests" in text or any(n.startswith("jasiyo_radius") for n in families)
    assert "alice" not in text and PHONE not in text


def test_providers_check_says_which_credentials_work(
    tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim
) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    cfg = standalone_config(tmp_path / "ok", daraja, paystack)
    out = cli_json(cfg, "payment", "providers", "check")
    assert out["ok"] and set(out["providers"]) == {"mpesa", "paystack"}
    assert all(v.startswith("ok") for v in out["providers"].values())
    bad = PaystackSim(secret_key="sk_test_other").start()
    try:
        cfg2 = standalone_config(tmp_path / "bad", daraja, bad)
        text = cfg2.path.read_text().replace('secret_key = "sk_test_other"', 'secret_key = "sk_test_wrong"')
        cfg2.path.write_text(text)
        r = jasiyo(cfg2, "payment", "providers", "check", check=False)
        assert r.returncode == 1 and "paystack: FAILED" in r.stderr and "mpesa: ok" in r.stderr
        assert "sk_test_wrong" not in r.stderr + r.stdout  # the secret is never printed
    finally:
        bad.stop()
