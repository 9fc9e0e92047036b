"""The RADIUS dictionaries Jasiyo ships (RFC, Microsoft, MikroTik, WISPr), and their loader.

The files are FreeRADIUS 3.x dictionaries (see the header of ``dictionary``), so the same
directory can be passed to FreeRADIUS tools: ``radclient -d jasiyo/radius/dictionaries``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pyrad.dictionary import Dictionary, ParseError

from jasiyo.errors import RadiusError

#: The directory holding ``dictionary`` and the files it includes.
DICTIONARY_DIR: Path = Path(__file__).resolve().parent


@cache
def load_dictionary() -> Dictionary:
    """The parsed dictionary, shared: parse once per process, never modify it.

    Raises :class:`RadiusError` if the shipped files are missing or unreadable, which means
    a broken installation.
    """
    path = DICTIONARY_DIR / "dictionary"
    try:
        return Dictionary(str(path))
    except (OSError, ParseError) as exc:
        raise RadiusError(f"cannot load the RADIUS dictionary {path}: {exc}") from exc
