"""Vouchers and portal purchases as the library gives them: codes, redeem, pending purchase."""

from __future__ import annotations

import pytest

from jasiyo.agent import hotspot, payments, plans, vouchers
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError


def _plans(store: Store) -> None:
    plans.add(store, plans.build("1h", rate="2M/2M", price="10", period="1h", portal=True), "t")
    plans.add(store, plans.build("2gb", rate="5M/5M", price="100", period="7d", data="2G", portal=True), "t")
    plans.add(store, plans.build("home", rate="10M", price="1500"), "t")


def test_plan_fields_data_devices_portal(store: Store) -> None:
    _plans(store)
    p = plans.get(store, "2gb")
    assert (p.data_bytes, p.devices, p.portal) == (2_000_000_000, 1, True)
    assert plans.get(store, "home").data_bytes is None
    p = plans.update(store, "home", "t", devices=3, data="")
    assert p.devices == 3
    with pytest.raises(ValidationError, match="devices"):
        plans.update(store, "home", "t", devices=0)


def test_subscriber_mac_is_normalised(store: Store) -> None:
    _plans(store)
    s = subs.add(
        store, subs.NewSubscriber.build("ann", password="pw", plan="home", mac="aa-bb-cc-00-11-22"), "t"
    )
    assert s.mac == "AA:BB:CC:00:11:22"
    assert subs.update(store, "ann", "t", mac="").mac is None
    with pytest.raises(ValidationError, match="MAC"):
        subs.update(store, "ann", "t", mac="not-a-mac")


def test_codes_avoid_look_alikes_and_are_unique(store: Store) -> None:
    _plans(store)
    codes = vouchers.generate(store, "1h", 500, "t")
    assert len(set(codes)) == 500
    assert all(len(c) == vouchers.CODE_LEN and set(c) <= set(vouchers.ALPHABET) for c in codes)
    assert not set("0O1IL2Z5S8B") & set(vouchers.ALPHABET)
    c = codes[0]
    assert vouchers.canonical(vouchers.display(c).lower()) == c
    assert vouchers.canonical("hello") is None


def test_redeem_gives_the_code_as_credentials_and_binds_the_device(cfg: Config, store: Store) -> None:
    _plans(store)
    (code,) = vouchers.generate(store, "1h", 1, "t")
    access = vouchers.redeem(
        store, cfg, vouchers.display(code).lower(), mac="aa:bb:cc:dd:ee:01", ip="10.5.0.9"
    )
    assert access == vouchers.Access(username=code, password=code, plan="1h")
    assert vouchers.get(store, code).mac == "AA:BB:CC:DD:EE:01"
    # the same device again is fine; another device is refused
    vouchers.redeem(store, cfg, code, mac="AA:BB:CC:DD:EE:01", ip=None)
    with pytest.raises(vouchers.VoucherRefused, match="another device"):
        vouchers.redeem(store, cfg, code, mac="AA:BB:CC:DD:EE:02", ip=None)


def test_redeem_refuses_unknown_revoked_used_and_expired(cfg: Config, store: Store) -> None:
    _plans(store)
    with pytest.raises(vouchers.VoucherRefused, match="not valid"):
        vouchers.redeem(store, cfg, "ACDEF-GHJKM", mac=None, ip=None)
    a, b, c = vouchers.generate(store, "1h", 3, "t")
    vouchers.revoke(store, a, "t")
    with pytest.raises(vouchers.VoucherRefused, match="cancelled"):
        vouchers.redeem(store, cfg, a, mac=None, ip=None)
    with store.transaction():
        vouchers.note_use(store, b, None, store.now() - 7200)  # used two hours ago, 1h plan
    with pytest.raises(vouchers.VoucherRefused, match="used up"):
        vouchers.redeem(store, cfg, b, mac=None, ip=None)
    store.conn.execute("UPDATE vouchers SET valid_until = ? WHERE code = ?", (store.now() - 1, c))
    with pytest.raises(vouchers.VoucherRefused, match="expired"):
        vouchers.redeem(store, cfg, c, mac=None, ip=None)
    assert {v.code: v.status for v in vouchers.list_(store)} == {a: "revoked", b: "used", c: "expired"}


def test_pending_purchase_is_activated_by_its_payment(cfg: Config, store: Store) -> None:
    _plans(store)
    with pytest.raises(ValidationError, match="not sold on the portal"):
        hotspot.pending_purchase(store, cfg, plan="home", phone="0712345678", mac=None)
    access = hotspot.pending_purchase(store, cfg, plan="1h", phone="0712345678", mac="AA:BB:CC:DD:EE:0F")
    sub = subs.get(store, access.username)
    assert (sub.status, sub.service, sub.mac, sub.clock_pending, sub.phone) == (
        "suspended",
        "hotspot",
        "AA:BB:CC:DD:EE:0F",
        True,
        "+254712345678",
    )
    assert subs.password_of(store, access.username) == access.password
    recorded = payments.record(store, cfg, access.username, "10", "QWE123RTY", method="mpesa", actor="t")
    assert recorded.periods_bought == 1 and recorded.restored
    sub = subs.get(store, access.username)
    assert sub.status == "active" and sub.paid_until is not None
