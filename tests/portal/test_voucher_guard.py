"""The voucher form's brute-force guard: a few tries per address and device, then none,
even for a good code."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest

from jasiyo.agent import vouchers
from jasiyo.payments.mpesa.sim import DarajaSim
from jasiyo.payments.paystack.sim import PaystackSim
from tests.agent.agentproc import jasiyo
from tests.agent.billing_support import NasListener
from tests.portal.support import client, csrf_of, running_world

pytestmark = pytest.mark.slow


def test_voucher_guessing_is_stopped(
    tmp_path: Path, daraja: DarajaSim, paystack: PaystackSim, nas: NasListener
) -> None:
    with running_world(tmp_path, daraja, paystack, nas, portal="voucher_per_ip = 4\n") as w:
        jasiyo(
            w.cfg, "plan", "add", "1hour", "--rate", "5M/5M", "--price", "10", "--period", "1h", "--portal"
        )
        store = w.store()
        try:
            (code,) = vouchers.generate(store, "1hour", 1, "test")
        finally:
            store.close()
        params = {"mac": "AA:BB:CC:00:00:07", "link-login-only": "http://10.5.50.1/login"}
        with client(w.url) as c:
            token = csrf_of(c.get("/hotspot?" + urlencode(params)).text)
            codes = [
                c.post("/voucher", data={**params, "csrf": token, "code": f"GUESS{i:04d}"}).status_code
                for i in range(4)
            ]
            assert codes == [400, 400, 400, 400]  # wrong codes, said plainly
            r = c.post("/voucher", data={**params, "csrf": token, "code": code})
            assert r.status_code == 429 and "Too many attempts" in r.text  # even a good one
        assert w.count("SELECT count(*) FROM vouchers WHERE mac IS NOT NULL") == 0
        assert code not in w.agent.log()
