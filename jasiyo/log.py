"""Structured logging: one line per event, ``event key=value ...``, never a secret.

from jasiyo.log import get_logger, event
log = get_logger(__name__)
event(log, "radius.drop", reason="unknown-nas", src="10.0.0.9")
"""

from __future__ import annotations

import json
import logging
import sys
from typing import IO

_SECRET_WORDS = ("password", "secret", "key", "token")
FORMATS = ("text", "json")
_format = "text"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def _fmt(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _masked(fields: dict[str, object]) -> dict[str, object]:
    """``fields`` without None values, those whose name looks secret masked."""
    return {
        k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) else v)
        for k, v in fields.items()
        if v is not None
    }


def kv(**fields: object) -> str:
    """``a=1 b="x y"``; fields whose name looks secret are masked."""
    return " ".join(f"{k}={_fmt(v)}" for k, v in _masked(fields).items())


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one structured line: ``name k=v ...`` (or a JSON object, ``--log-format json``)."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s %s", name, kv(**fields), extra={"jasiyo_event": name, "jasiyo_fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and its fields (journald and
    log shippers parse it without a grammar for ``k=v``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        name = getattr(record, "jasiyo_event", None)
        if name is not None:
            out["event"] = name
            out.update(_masked(dict(getattr(record, "jasiyo_fields", {}))))
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def current_format() -> str:
    """The format :func:`setup` last set (worker processes log the same way)."""
    return _format


def setup(level: str = "info", stream: IO[str] | None = None, fmt: str = "text") -> None:
    """Log to ``stream`` (stderr: journald under systemd) at ``level``, as ``fmt``
    ("text": ``time LEVEL logger event k=v``, or "json")."""
    global _format
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use {' or '.join(FORMATS)}")
    _format = fmt
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
