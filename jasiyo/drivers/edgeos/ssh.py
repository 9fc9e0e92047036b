"""One SSH connection to an EdgeRouter: verified host key, login, scripts over exec.

Host key policy, checked right after key exchange and before anything else is sent (no
password, no command):

1. ``config.fingerprint`` (or ``options["host_key_fingerprint"]``): the SHA-256 of the
   host key, as OpenSSH prints it (``SHA256:base64``) or as hex (colons optional);
2. else ``options["known_hosts"]``: an OpenSSH known_hosts file (``[host]:port`` entries
   for ports other than 22);
3. else a key learned earlier by this same connection object (trust on first use);
4. else, only with ``options["trust_on_first_use"]`` true: the key is accepted and its
   fingerprint kept in :attr:`SSHLink.learned_host_key` so the agent can pin it.

Anything else is refused with ``ConnectError``. Login: ``options["key_file"]`` (private key,
``options["key_passphrase"]``) and/or ``config.password``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import socket
from collections.abc import Mapping

import paramiko

from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.errors import AuthError, ConnectError
from jasiyo.log import event, get_logger

log = get_logger(__name__)
DEFAULT_PORT = 22


def truthy(opts: Mapping[str, object], key: str) -> bool:
    """An option that may be stored as a bool or as text (``"true"``, ``"yes"``, ``"1"``)."""
    val = opts.get(key, False)
    return val is True or str(val).strip().lower() in ("1", "true", "yes", "on")


def pin_digest(pin: str) -> bytes:
    """The 32 bytes of a SHA-256 pin given as ``SHA256:base64`` or hex; ``ConnectError``
    when it is neither (a typo in the router's settings must not pass silently)."""
    text = pin.strip()
    try:
        if text.upper().startswith("SHA256:"):
            b64 = text[7:]
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        else:
            raw = bytes.fromhex(text.replace(":", ""))
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise ConnectError(
            f"the pinned host key fingerprint {pin!r} is not a SHA-256 "
            "fingerprint (expected SHA256:<base64> or 64 hex digits)"
        )
    return raw


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<base64, no padding>`` of a public key, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SSHLink:
    """A logged-in SSH transport; :meth:`run` sends one script over one exec channel."""

    def __init__(self, config: RouterConfig, learned: str | None = None) -> None:
        self.config = config
        self.port = config.port or DEFAULT_PORT
        self.learned_host_key = learned
        self.transport: paramiko.Transport | None = None

    @property
    def where(self) -> str:
        return f"router {self.config.label()} ({self.config.host}:{self.port})"

    # ------------------------------------------------------------------ connect

    def connect(self) -> None:
        """TCP, key exchange, host key check, login; raises ConnectError / AuthError."""
        timeout = self.config.timeout
        try:
            sock = socket.create_connection((self.config.host, self.port), timeout=timeout)
        except TimeoutError:
            raise ConnectError(f"{self.where} did not answer within {timeout:g}s") from None
        except OSError as exc:
            raise ConnectError(f"{self.where} is unreachable: {exc.strerror or exc}") from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            try:
                transport.start_client(timeout=timeout)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ConnectError(
                    f"{self.where} did not answer the SSH handshake within {timeout:g}s ({exc})"
                ) from None
            # start_client returns quietly when its timeout passes mid-negotiation.
            if not (transport.is_active() and transport.initial_kex_done):
                raise ConnectError(f"{self.where} did not answer the SSH handshake within {timeout:g}s")
            self._check_host_key(transport.get_remote_server_key())
            self._login(transport)
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(30)
        self.transport = transport

    def _check_host_key(self, key: paramiko.PKey) -> None:
        opts = self.config.options or {}
        seen = fingerprint(key)
        pin = self.config.fingerprint or opts.get("host_key_fingerprint")
        refused = (
            f"{self.where} presented host key {seen} ({key.get_name()}), which "
            "does not match the pinned {what}; refusing to connect (nothing was sent). "
            "If the router was replaced or its key regenerated, check the key on the "
            "router's console and pin the new fingerprint."
        )
        if pin:
            if hashlib.sha256(key.asbytes()).digest() != pin_digest(str(pin)):
                raise ConnectError(refused.format(what=f"fingerprint {pin}"))
            return
        known_path = opts.get("known_hosts")
        if known_path:
            entry = self._known_hosts_entry(str(known_path))
            if entry:
                if entry.get(key.get_name()) == key:
                    return
                raise ConnectError(refused.format(what=f"key in {known_path}"))
        if self.learned_host_key:
            if seen != self.learned_host_key:
                raise ConnectError(refused.format(what=f"key learned at first use ({self.learned_host_key})"))
            return
        if truthy(opts, "trust_on_first_use"):
            self.learned_host_key = seen
            event(log, "edgeos.host_key_learned", router=self.config.label(), fingerprint=seen)
            return
        raise ConnectError(
            f"{self.where} presented host key {seen} ({key.get_name()}), which is not "
            "pinned; refusing to connect (nothing was sent). Check it on the router "
            "(ssh-keygen -lf /config/ssh/ssh_host_*_key.pub), then pin it: `jasiyo router "
            f"update {self.config.name or 'NAME'} --fingerprint {seen}` (or remove the router "
            "and add it again with --trust-on-first-use)."
        )

    def _known_hosts_entry(self, path: str) -> Mapping[str, paramiko.PKey] | None:
        try:
            keys = paramiko.HostKeys(path)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise ConnectError(f"cannot read known_hosts file {path}: {exc}") from None
        name = self.config.host if self.port == 22 else f"[{self.config.host}]:{self.port}"
        return keys.lookup(name)

    def _login(self, transport: paramiko.Transport) -> None:
        opts = self.config.options or {}
        user = self.config.username
        key_file = opts.get("key_file")
        try:
            if key_file:
                try:
                    pkey = paramiko.PKey.from_path(str(key_file), password=opts.get("key_passphrase"))
                except (OSError, paramiko.SSHException, ValueError) as exc:
                    raise AuthError(f"cannot load SSH key {key_file} for {self.where}: {exc}") from None
                try:
                    transport.auth_publickey(user, pkey)
                    return
                except paramiko.AuthenticationException:
                    if not self.config.password:
                        raise
            transport.auth_password(user, self.config.password)
        except paramiko.BadAuthenticationType as exc:
            raise AuthError(
                f"{self.where} refused the login for {user!r}: it only allows {', '.join(exc.allowed_types)}"
            ) from None
        except paramiko.AuthenticationException:
            raise AuthError(f"{self.where} refused the login for {user!r} (wrong password or key)") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectError(f"{self.where}: connection lost during login ({exc})") from None

    # ------------------------------------------------------------------ commands

    @property
    def active(self) -> bool:
        return self.transport is not None and self.transport.is_active()

    def run(self, script: str, timeout: float | None = None) -> tuple[int, str]:
        """Run ``script`` in one ``vbash`` on the router; return (exit status, output).

        Stdout and stderr come back merged in order. ``timeout`` bounds the silence
        between two pieces of output (default ``config.timeout``). Raises ``ConnectError``
        when the connection is lost or the router goes silent; the link is then closed.
        """
        if not self.active:
            raise ConnectError(f"{self.where}: not connected")
        assert self.transport is not None
        limit = timeout or self.config.timeout
        chunks: list[bytes] = []
        try:
            chan = self.transport.open_session(timeout=self.config.timeout)
            try:
                chan.settimeout(limit)
                chan.set_combine_stderr(True)
                chan.exec_command("/bin/vbash -s")
                chan.sendall(script.encode())
                chan.shutdown_write()
                while data := chan.recv(65536):
                    chunks.append(data)
                # paramiko reports -1 when the channel closed without an exit status.
                status = chan.recv_exit_status() if chan.exit_status_ready() else -1
                if status < 0:
                    raise ConnectError(f"{self.where}: connection lost before the reply was complete")
            finally:
                chan.close()
        except TimeoutError:
            self.close()
            raise ConnectError(f"{self.where} did not answer within {limit:g}s; connection lost") from None
        except ConnectError:
            self.close()
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise ConnectError(f"{self.where}: connection lost ({exc})") from None
        return status, b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            except Exception:  # noqa: BLE001 - closing must never raise
                pass
            self.transport = None
