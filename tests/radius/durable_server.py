"""A RadiusServer over a backend that fsyncs each batch to a file: for the SIGKILL test.

python -m tests.radius.durable_server JOURNAL   # prints "PORTS auth acct", serves forever
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from jasiyo.radius.backend import AcctRecord, NasClient
from jasiyo.radius.memory import MemoryBackend
from jasiyo.radius.server import RadiusServer


class JournalBackend(MemoryBackend):
    """Durable before returning: one write and one fsync per batch."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def record_accounting(self, records: Sequence[AcctRecord]) -> None:
        lines = "".join(json.dumps(asdict(r)) + "\n" for r in records)
        os.write(self._fd, lines.encode())
        os.fsync(self._fd)
        super().record_accounting(records)


async def main(path: str) -> None:
    backend = JournalBackend(path)
    backend.add_nas(NasClient("core-1", "127.0.0.1", b"testing123"))
    server = RadiusServer(backend, "127.0.0.1", 0, 0)
    await server.start()
    print(f"PORTS {server.auth_port} {server.acct_port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
