"""The TLS context every outgoing HTTPS client verifies with, made once per trust store.

``httpx.Client()`` otherwise builds its own context, and loading the CA bundle costs about
20 ms of CPU (several times that on a busy machine): every CLI command, sync round and
provider client paid it. A shared
``SSLContext`` is safe across threads. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still choose the
trust store, as they do for httpx.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx


def client_context() -> ssl.SSLContext:
    """httpx's default verifying context, for the trust store the environment names."""
    return _context(os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))


@functools.cache
def _context(cert_file: str, cert_dir: str) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the same two variables
