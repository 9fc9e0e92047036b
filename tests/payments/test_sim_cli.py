"""`jasiyo dev daraja-sim` / `paystack-sim`: a real process a test or curl can drive."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from jasiyo.payments.models import Outcome, PaymentRequest
from jasiyo.payments.mpesa import DarajaProvider
from jasiyo.payments.paystack import PaystackProvider
from tests.payments.receiver import Receiver


def run_sim(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jasiyo.cli", "dev", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the simulator says where it listens
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    if found is None:
        proc.kill()
        pytest.fail(f"no address in {line!r}: {proc.stderr.read() if proc.stderr else ''}")
    return proc, found.group(0)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


@pytest.mark.slow
def test_daraja_sim_command(receiver: Receiver) -> None:
    proc, url = run_sim(
        "daraja-sim",
        "--consumer-key",
        "ck",
        "--consumer-secret",
        "cs",
        "--shortcode",
        "600000",
        "--passkey",
        "pk",
        "--callback-delay",
        "0",
    )
    try:
        httpx.post(url + "/sim/script", json={"phone": "254712345678", "outcome": "cancel"})
        with DarajaProvider(
            {
                "base_url": url,
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "shortcode": "600000",
                "passkey": "pk",
            }
        ) as p:
            started = p.request_payment(
                PaymentRequest(
                    account="alice",
                    amount_minor=100,
                    currency="KES",
                    phone="254712345678",
                    callback_url=receiver.url + "/stk",
                )
            )
            [got] = receiver.wait("/stk")
            answer = p.parse_callback("stk", got.headers, got.body)
            assert answer.request_id == started.request_id
            assert getattr(answer, "outcome", None) is Outcome.CANCELLED
        assert len(httpx.get(url + "/sim/requests").json()) == 2  # token, push
    finally:
        stop(proc)
    assert proc.returncode == 0


@pytest.mark.slow
def test_paystack_sim_command(receiver: Receiver) -> None:
    proc, url = run_sim(
        "paystack-sim",
        "--secret-key",
        "sk_test_cli",
        "--webhook-url",
        receiver.url + "/webhook",
        "--callback-delay",
        "0",
    )
    try:
        with PaystackProvider({"base_url": url, "secret_key": "sk_test_cli"}) as p:
            started = p.request_payment(
                PaymentRequest(account="alice", amount_minor=5000, currency="NGN", email="a@example.com")
            )
            httpx.post(started.checkout_url, data={"action": "success"})
            [hook] = receiver.wait("/webhook")
            answer = p.parse_callback("webhook", hook.headers, hook.body)
            assert getattr(answer, "outcome", None) is Outcome.PAID
    finally:
        stop(proc)
    assert proc.returncode == 0
