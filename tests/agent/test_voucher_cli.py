"""`jasiyo voucher ...` and `plan/subscriber --data/--devices/--portal/--mac` from the CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zlib
from pathlib import Path

import pytest

from jasiyo.cli import main
from jasiyo.commands.common import STATE
from jasiyo.config import Config


@pytest.fixture
def jasiyo(cfg: Config, capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> tuple[int, str, str]:
        STATE.config_path, STATE.json, STATE._config = None, False, None
        code = main(["--config", str(cfg.path), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _dump(cfg: Config) -> list[str]:
    conn = sqlite3.connect(cfg.db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _pdf_text(data: bytes) -> str:
    """The text drawn in a (compressed) fpdf2 document: its content streams inflated."""
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(m.group(1)).decode("latin-1"))
        except zlib.error:
            out.append(m.group(1).decode("latin-1"))
    return "\n".join(out)


def test_plan_and_subscriber_options(jasiyo) -> None:
    assert (
        jasiyo(
            "plan",
            "add",
            "2gb",
            "--rate",
            "5M",
            "--price",
            "100",
            "--period",
            "7d",
            "--data",
            "2G",
            "--devices",
            "2",
            "--portal",
        )[0]
        == 0
    )
    code, out, _ = jasiyo("plan", "show", "2gb", "--json")
    p = json.loads(out)
    assert (p["data_bytes"], p["devices"], p["portal"]) == (2_000_000_000, 2, True)
    assert jasiyo("plan", "update", "2gb", "--data", "", "--no-portal")[0] == 0
    p = json.loads(jasiyo("plan", "show", "2gb", "--json")[1])
    assert (p["data_bytes"], p["portal"]) == (None, False)
    assert (
        jasiyo("subscriber", "add", "ann", "--plan", "2gb", "--password", "pw", "--mac", "aa.bb.cc.dd.ee.ff")[
            0
        ]
        == 0
    )
    s = json.loads(jasiyo("subscriber", "show", "ann", "--json")[1])
    assert s["mac"] == "AA:BB:CC:DD:EE:FF"


def test_bad_input_is_one_line_and_changes_nothing(jasiyo, cfg: Config) -> None:
    jasiyo("plan", "add", "1h", "--rate", "2M", "--price", "10", "--period", "1h")
    before = _dump(cfg)
    for args, message in (
        (("plan", "update", "1h", "--devices", "0"), "bad devices"),
        (("plan", "update", "1h", "--data", "lots"), "bad size"),
        (("subscriber", "add", "x", "--plan", "1h", "--password", "p", "--mac", "zz"), "bad MAC"),
        (("voucher", "generate", "--plan", "1h", "--count", "0"), "bad --count"),
        (("voucher", "generate", "--plan", "nope", "--count", "3"), "no plan named"),
        (("voucher", "generate", "--plan", "1h", "--count", "3", "--valid", "soon"), "--valid"),
        (("voucher", "generate", "--plan", "1h", "--count", "3", "--output", "x.txt"), ".pdf"),
        (("voucher", "revoke", "ACDEF-GHJKM"), "no voucher"),
        (("voucher", "list", "--status", "bogus"), "bad status"),
    ):
        code, _, err = jasiyo(*args)
        assert code != 0 and message in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _dump(cfg) == before


def test_generate_list_revoke_export_and_the_sheet(jasiyo, tmp_path: Path) -> None:
    jasiyo(
        "plan", "add", "24h", "--rate", "5M", "--price", "50", "--period", "24h", "--data", "2G", "--portal"
    )
    sheet = tmp_path / "sheet.pdf"
    code, out, err = jasiyo(
        "voucher", "generate", "--plan", "24h", "--count", "30", "--output", str(sheet), "--json"
    )
    assert code == 0, err
    codes = json.loads(out)["codes"]
    assert len(codes) == 30 and all(re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", c) for c in codes)
    pdf = sheet.read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") == 2  # 24 cards a page
    text = _pdf_text(pdf)
    assert codes[0] in text and codes[29] in text
    assert "KES 50.00, 24 hours or 2 GB" in text and "Use by" in text

    assert jasiyo("voucher", "revoke", codes[0].lower())[0] == 0
    rows = json.loads(jasiyo("voucher", "list", "--status", "revoked", "--json")[1])
    assert [r["code"] for r in rows] == [codes[0]]
    assert len(json.loads(jasiyo("voucher", "list", "--status", "new", "--json")[1])) == 29
    code, out, _ = jasiyo("voucher", "export")
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 30 and table[0]["code"] == codes[0] and table[0]["status"] == "revoked"
    assert table[1]["valid_until"].endswith("+03:00")  # the tenant's zone, with its offset


def test_the_sheet_names_the_business_and_the_number_to_call(jasiyo, cfg: Config, tmp_path: Path) -> None:
    text = cfg.path.read_text()
    assert "[agent]" in text
    cfg.path.write_text(
        text.replace(
            "[agent]\n", '[agent]\nbusiness_name = "Kilele Net"\nsupport_phone = "+254 700 123 456"\n', 1
        )
    )
    jasiyo("plan", "add", "1h", "--rate", "5M", "--price", "20", "--period", "1h", "--portal")
    sheet = tmp_path / "sheet.pdf"
    code, _, err = jasiyo("voucher", "generate", "--plan", "1h", "--count", "2", "--output", str(sheet))
    assert code == 0, err
    text = _pdf_text(sheet.read_bytes())
    assert "Kilele Net" in text and "Help: +254 700 123 456" in text


def test_a_support_phone_that_is_not_a_number_is_refused(jasiyo, cfg: Config) -> None:
    text = cfg.path.read_text()
    cfg.path.write_text(text.replace("[agent]\n", '[agent]\nsupport_phone = "call us"\n', 1))
    code, _, err = jasiyo("voucher", "list")
    assert code != 0 and "[agent] support_phone" in err and "Traceback" not in err


def test_a_long_plan_name_stays_inside_its_card(jasiyo, cfg: Config, tmp_path: Path) -> None:
    from fpdf import FPDF

    from jasiyo.agent.voucher_pdf import COLS, _fit

    jasiyo("plan", "add", "weekly-unlimited-family", "--rate", "5M", "--price", "1500", "--period", "7d")
    jasiyo("plan", "update", "weekly-unlimited-family", "--data", "50G", "--portal")
    sheet = tmp_path / "sheet.pdf"
    code, _, err = jasiyo(
        "voucher", "generate", "--plan", "weekly-unlimited-family", "--count", "1", "--output", str(sheet)
    )
    assert code == 0, err
    text = _pdf_text(sheet.read_bytes())
    size = re.search(
        r"/F\d+ ([\d.]+) Tf ET\s+BT [\d. ]+Td \(weekly-unlimited-family: KES 1,500.00, 7 days or 50 GB\)",
        text,
    )
    assert size and float(size.group(1)) < 7  # whole, in a font small enough for the card
    pdf = FPDF()
    room = (210 - 16 - (COLS - 1) * 2) / COLS - 4
    pdf.set_font("Helvetica", "", 7)
    cut = _fit(pdf, "x" * 200, "Helvetica", "", 7, room)
    assert cut.endswith("...") and pdf.get_string_width(cut) <= room
