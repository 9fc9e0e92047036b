"""`jasiyo voucher ...`: prepaid codes for the hotspot, printed or redeemed on the portal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from jasiyo.commands.common import STATE, actor, cfg, console, done, group, lazy, show_list, store, when
from jasiyo.errors import ValidationError

vouchers = lazy("jasiyo.agent.vouchers")

app = group("Vouchers: generate, print, list, revoke and export hotspot codes.")


def _row(v: Any) -> dict[str, Any]:
    d = v.to_dict()
    d["code"] = vouchers.display(v.code)
    for k in ("valid_until", "started_at", "ends_at", "created_at"):
        d[k] = when(d[k]) if d[k] else None
    return d


@app.command("generate")
def generate(
    plan: str = typer.Option(..., "--plan", help="The package each code buys."),
    count: int = typer.Option(..., "--count", help="How many codes, 1 to 100000."),
    output: Path | None = typer.Option(
        None, "--output", help="Write a printable A4 sheet (PDF) of the codes here."
    ),
    valid: str = typer.Option("90d", "--valid", help="Must be first used within, e.g. 90d."),
    batch: str | None = typer.Option(None, "--batch", help="A name for this batch."),
) -> None:
    """Make new voucher codes (unguessable, no look-alike characters)."""
    if output is not None and output.suffix.lower() != ".pdf":
        raise ValidationError(f"--output {output}: give a .pdf file name")
    if output is not None and not output.parent.is_dir():
        raise ValidationError(f"--output {output}: the folder {output.parent} does not exist")
    with store() as s:
        codes = vouchers.generate(s, plan, count, actor(), valid_for=valid, batch=batch)
        items = [vouchers.get(s, c) for c in codes] if output is not None else []
    extra: dict[str, Any] = {"codes": [vouchers.display(c) for c in codes]}
    msg = f"{len(codes)} voucher(s) for {plan}"
    if output is not None:
        from jasiyo.agent.voucher_pdf import write_sheet

        size = write_sheet(cfg(), items, output)
        extra["sheet"] = str(output)
        msg += f"; sheet written to {output} ({size // 1024} KiB)"
    elif not STATE.json and len(codes) <= 50:
        for c in codes:
            console.print(vouchers.display(c))
    done(msg, **extra)


@app.command("list")
def list_(
    status: str | None = typer.Option(
        None, "--status", help="Only this status: new, active, used, expired, revoked."
    ),
    batch: str | None = typer.Option(None, "--batch", help="Only this batch."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many rows."),
) -> None:
    """List vouchers, oldest first."""
    with store() as s:
        rows = [_row(v) for v in vouchers.list_(s, status, batch=batch, limit=limit)]
    show_list(rows, ["code", "plan", "status", "valid_until", "started_at", "mac"], "vouchers")


@app.command("revoke")
def revoke(code: str = typer.Argument(..., help="The voucher code.")) -> None:
    """Cancel a voucher (a device using it is disconnected)."""
    with store() as s:
        v = vouchers.revoke(s, code, actor())
    done(f"voucher {vouchers.display(v.code)} revoked", voucher=_row(v))


@app.command("export")
def export(
    output: Path | None = typer.Option(None, "--output", help="CSV file (default: stdout)."),
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    batch: str | None = typer.Option(None, "--batch", help="Only this batch."),
) -> None:
    """Export vouchers as CSV (times in the tenant's time zone)."""
    with store() as s:
        text = vouchers.export_csv(vouchers.list_(s, status, batch=batch), cfg().billing.timezone)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    done(f"vouchers exported to {output}", file=str(output))
