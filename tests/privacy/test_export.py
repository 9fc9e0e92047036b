"""Export: one subscriber's document (checked against the documented schema) and the ISP."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema
import pytest

from jasiyo.agent import audit, export
from jasiyo.agent.store import Store
from jasiyo.config import Config
from tests.privacy.people import (
    FRAMED_IP,
    MAC,
    MESSAGE,
    NAME,
    OTHER,
    PASSWORD,
    PHONE,
    add_person,
    voucher_used_by,
)

ROOT = Path(__file__).resolve().parents[2]


def documented_schema() -> dict:
    return json.loads((ROOT / "docs" / "export-schema.json").read_text())


def test_documented_schema_is_the_packaged_one() -> None:
    assert documented_schema() == export.schema()
    jsonschema.Draft202012Validator.check_schema(documented_schema())


def test_subscriber_export_holds_everything_and_matches_the_schema(
        jasiyo, cfg: Config, tmp_path: Path) -> None:
    add_person(cfg)
    voucher = voucher_used_by(cfg, MAC)
    voucher_used_by(cfg, OTHER["mac"])  # someone else's
    out = tmp_path / "wanjiku.json"
    code, _, err = jasiyo("subscriber", "export", "wanjiku", "--output", str(out),
                          "--csv", str(tmp_path / "csv"))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, documented_schema(), format_checker=jsonschema.FormatChecker())
    assert doc["subscriber"]["name"] == NAME and doc["subscriber"]["phone"] == PHONE
    assert PASSWORD not in out.read_text()  # held sealed; never exported
    assert [p["reference"] for p in doc["payments"]] == ["QK7PAY001"]
    assert doc["payments"][0]["amount_minor"] == 150000
    assert any(e["kind"] == "payment" for e in doc["ledger"])
    assert doc["invoices"] and doc["balance_minor"] == sum(e["amount_minor"] for e in doc["ledger"])
    (sess,) = doc["sessions"]
    assert sess["framed_ip"] == FRAMED_IP and sess["calling_station_id"] == MAC
    assert sess["output_octets"] == 90000 and len(doc["usage"]) == 2
    assert MESSAGE in [m["message"] for m in doc["messages"]]
    assert doc["consent"][0]["given"] == 1 and doc["plan_history"][0]["plan"] == "home"
    assert {a["action"] for a in doc["audit"]} >= {"subscriber.add"}
    assert [v["code"] for v in doc["vouchers"]] == [voucher]
    assert doc["vouchers"][0]["used_by_mac"] == MAC and doc["vouchers"][0]["plan"] == "home"
    assert doc["exported_at"].endswith("+03:00")  # Africa/Nairobi, the default zone
    assert (tmp_path / "csv" / "payments.csv").read_text().count("QK7PAY001") == 1
    s = Store.open(cfg)
    (line,) = audit.list_(s, action="subscriber.export")
    s.close()
    assert line.target == "subscriber:wanjiku" and line.detail["output"] == str(out)


def test_export_refuses_to_overwrite_and_unknown_subscriber(jasiyo, cfg: Config,
                                                            tmp_path: Path) -> None:
    add_person(cfg, session=False)
    out = tmp_path / "x.json"
    out.write_text("keep me")
    code, _, err = jasiyo("subscriber", "export", "wanjiku", "--output", str(out))
    assert code != 0 and "exists" in err and out.read_text() == "keep me"
    code, _, err = jasiyo("subscriber", "export", "nobody")
    assert code != 0 and "nobody" in err and "Traceback" not in err


def test_tenant_export_writes_every_table_with_a_manifest(jasiyo, cfg: Config,
                                                          tmp_path: Path) -> None:
    add_person(cfg)
    add_person(cfg, "baraka", ref="QK7PAY002", session=False, **OTHER)
    dest = tmp_path / "isp"
    code, _, err = jasiyo("tenant", "export", "--output", str(dest))
    assert code == 0, err
    manifest = json.loads((dest / "manifest.json").read_text())
    jsonschema.validate(manifest, documented_schema())
    assert manifest["tables"]["subscribers"]["rows"] == 2
    subs = json.loads((dest / "subscribers.json").read_text())
    assert {s["username"] for s in subs} == {"wanjiku", "baraka"} and subs[0]["plan"] == "home"
    pays = json.loads((dest / "payments.json").read_text())
    assert {p["username"] for p in pays} == {"wanjiku", "baraka"}
    assert PASSWORD not in "".join(p.read_text() for p in dest.iterdir())
    code, _, err = jasiyo("tenant", "export", "--output", str(dest))
    assert code != 0 and "not empty" in err


@pytest.mark.parametrize("section", ["sessions", "messages", "payments"])
def test_each_section_is_only_that_subscriber(cfg: Config, section: str) -> None:
    add_person(cfg)
    add_person(cfg, "baraka", ref="QK7PAY002", **OTHER)
    s = Store.open(cfg)
    doc = export.subscriber_document(s, cfg, "baraka")
    s.close()
    assert doc[section] and "wanjiku" not in json.dumps(doc[section])
