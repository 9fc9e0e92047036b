"""Structured logging: one line per event, ``event key=value ...``, never a secret.

    from jasiyo.log import get_logger, event
    log = get_logger(__name__)
    event(log, "radius.drop", reason="unknown-nas", src="10.0.0.9")
"""

from __future__ import annotations

import logging
import sys

_SECRET_WORDS = ("password", "secret", "key", "token")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def _fmt(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(**fields: object) -> str:
    """``a=1 b="x y"``; fields whose name looks secret are masked."""
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        if any(w in k.lower() for w in _SECRET_WORDS):
            v = "***"
        parts.append(f"{k}={_fmt(v)}")
    return " ".join(parts)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one structured line: ``name k=v ...``."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s %s", name, kv(**fields))


def setup(level: str = "info", stream=None) -> None:  # noqa: ANN001 - a text stream
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
