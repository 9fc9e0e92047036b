"""`jasiyo portal hotspot-files`: the customer's pages, as the router needs them."""

from __future__ import annotations

from pathlib import Path

import typer

from jasiyo.commands.common import cfg, done, group
from jasiyo.errors import ValidationError

app = group("The customer portal: hotspot files for the router.")


@app.callback()
def _group() -> None:
    """The customer portal: hotspot files for the router."""


def portal_url(url: str | None) -> str:
    conf = cfg()
    found = url or conf.portal.url or conf.web.public_url
    if not found:
        raise ValidationError(
            "no portal URL: give --url, or set [portal] url (how devices on "
            "the hotspot reach this agent's web listener)"
        )
    return found


@app.command("hotspot-files")
def hotspot_files(
    output: Path = typer.Option(..., "--output", help="Folder to write the files into."),
    url: str | None = typer.Option(None, "--url", help="Portal URL (default: [portal] url)."),
) -> None:
    """Write login.html and alogin.html to upload to the router's hotspot/ folder."""
    from jasiyo.portal.hotspot import hotspot_files as files_for

    base = portal_url(url)
    files = files_for(base)
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (output / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write to {output}: {exc.strerror or exc}") from None
    done(
        f"wrote {', '.join(sorted(files))} to {output} (portal {base}); upload them to the "
        "router's hotspot/ folder",
        files=sorted(files),
        portal=base,
    )
