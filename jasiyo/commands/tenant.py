"""`jasiyo tenant ...`: the tenant data key that seals the event log end to end."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import typer

from jasiyo.commands.common import cfg, done, group


def _keys() -> ModuleType:  # imported on use: it pulls in httpx and the crypto stack
    from jasiyo.agent import tenantkeys

    return tenantkeys

app = group("Tenant data keys: create, export for new POPs, rotate.")


@app.command("init")
def init() -> None:
    """Create the tenant data key on the first POP (after `jasiyo agent enroll`)."""
    result = _keys().init_tenant(cfg())
    done(f"tenant key {result['kid']} created in {result['keys']}; export a recovery file "
         "now and keep it offline: `jasiyo tenant export-recovery FILE`", **result)


@app.command("export-recovery")
def export_recovery(
    file: Path = typer.Argument(..., help="Where to write the recovery file (mode 0600)."),
) -> None:
    """Write the tenant keys to FILE: what new POPs and disaster recovery need."""
    result = _keys().export_recovery(cfg(), file)
    done(f"recovery file written to {file}; anyone holding it can read this ISP's data",
         **result)


@app.command("import-recovery")
def import_recovery(
    file: Path = typer.Argument(..., help="A recovery file from `tenant export-recovery`."),
) -> None:
    """Install the tenant keys on another POP of the same ISP."""
    result = _keys().import_recovery(cfg(), file)
    done(f"tenant keys imported ({result['keys']} key(s), current {result['current']})",
         **result)


@app.command("rotate-key")
def rotate_key() -> None:
    """Start sealing with a new key; old keys stay to read old events. Needs the cloud."""
    result = _keys().rotate_key(cfg())
    done(f"now sealing with tenant key {result['kid']} (was {result['previous']}); other "
         "POPs learn it at their next sync. Export a fresh recovery file.", **result)


@app.command("webhook-url")
def webhook_url(
    provider: str = typer.Argument(..., help="Payment provider: mpesa or paystack."),
) -> None:
    """Create a webhook URL for a payment provider (callbacks are sealed to the tenant)."""
    from jasiyo.agent.cloudlink import register_webhook

    result = register_webhook(cfg(), provider)
    done(f"give this URL to {provider}: {result['url']}", **result)


@app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "--output", help="A new or empty directory for the files."),
) -> None:
    """The whole ISP, machine-readable: one JSON file per table and manifest.json (audited)."""
    from jasiyo.agent import export
    from jasiyo.commands.common import actor, store

    with store() as s:
        manifest = export.export_tenant(s, cfg(), output, actor())
    rows = sum(t["rows"] for t in manifest["tables"].values())
    done(f"{len(manifest['tables'])} tables, {rows} rows written to {output}",
         output=str(output), tables=manifest["tables"])
