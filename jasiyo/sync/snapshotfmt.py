"""The plain form of a snapshot: events as JSON lines, gzip-compressed, cut into parts that
each fit one envelope (sealed separately by the sync client)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from typing import Any

from jasiyo.errors import SyncError

#: Compressed bytes per part: sealed and base64-encoded it stays under MAX_ENVELOPE.
PART_BYTES = 180_000


def encode(events: Iterable[dict[str, Any]]) -> list[bytes]:
    lines = b"".join(json.dumps(e, sort_keys=True, separators=(",", ":"), default=str).encode()
                     + b"\n" for e in events)
    raw = gzip.compress(lines, compresslevel=6)
    return [raw[i:i + PART_BYTES] for i in range(0, len(raw), PART_BYTES)] or [gzip.compress(b"")]


def decode(chunks: list[bytes]) -> list[dict[str, Any]]:
    try:
        lines = gzip.decompress(b"".join(chunks)).splitlines()
        out = [json.loads(line) for line in lines if line]
    except (OSError, ValueError, EOFError) as exc:
        raise SyncError(f"a snapshot does not decode: {type(exc).__name__}") from None
    for d in out:
        if not (isinstance(d, dict) and all(isinstance(d.get(k), str) for k in (
                "id", "hlc", "origin", "entity", "key", "op")) and isinstance(d.get("data"), dict)):
            raise SyncError("a snapshot holds something that is not an event")
    return out
