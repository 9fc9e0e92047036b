"""A small certificate authority for RadSec, for ISPs without a PKI of their own.

``jasiyo radsec ca`` makes a CA (EC P-256, ten years) and the agent's server certificate
signed by it; ``jasiyo radsec issue ROUTER`` makes a router's client certificate, its name
in the subject CN and the subjectAltName, so the agent knows the router by the name alone
(the fingerprint can also be pinned with ``router update --radsec-fingerprint``). Keys are
written 0600 and never leave the files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jasiyo.errors import RadiusError

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest validity TLS clients still accept for a leaf


@dataclass(frozen=True)
class Issued:
    """A certificate written to disk: where, and its SHA-256 fingerprint (hex)."""

    certificate: Path
    private_key: Path
    fingerprint: str


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, lower-case hex: what routers are pinned by."""
    return hashlib.sha256(der).hexdigest()


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def _load_ca(ca_cert: Path, ca_key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise RadiusError(f"no RadSec CA at {exc.filename}: make one with `jasiyo radsec ca`") from None
    except (ValueError, TypeError) as exc:
        raise RadiusError(f"the RadSec CA in {ca_cert.parent} is unreadable: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise RadiusError(f"{ca_key} is not an EC key made by `jasiyo radsec ca`")
    return cert, key


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    name: str,
    hosts: list[str],
    usage: x509.ObjectIdentifier,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = []
    for host in [name, *hosts]:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(alt))), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def make_ca(directory: Path, server_name: str, hosts: list[str], force: bool = False) -> Issued:
    """Create ``ca.pem``/``ca.key`` and the agent's ``server.pem``/``server.key`` in
    ``directory``; returns the server certificate. Refuses to replace an existing CA
    (every router certificate hangs off it) unless ``force``."""
    ca_cert, ca_key_path = directory / "ca.pem", directory / "ca.key"
    if ca_cert.exists() and not force:
        raise RadiusError(
            f"a RadSec CA already exists in {directory}; replacing it "
            "invalidates every router certificate (use --force to do it)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Jasiyo RadSec CA {server_name}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    _write(ca_key_path, _key_bytes(key), private=True)
    _write(ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    return issue(directory, server_name, hosts, out=directory, server=True)


def issue(
    directory: Path,
    name: str,
    hosts: list[str] | None = None,
    *,
    out: Path | None = None,
    server: bool = False,
) -> Issued:
    """A certificate for ``name`` signed by the CA in ``directory``: the agent's
    (``server.pem``) or a router's (``NAME.pem``/``NAME.key`` in ``out``)."""
    ca, ca_key = _load_ca(directory / "ca.pem", directory / "ca.key")
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert, key = _leaf(ca, ca_key, name, hosts or [], usage)
    out = out or directory
    stem = "server" if server else name
    cert_path, key_path = out / f"{stem}.pem", out / f"{stem}.key"
    _write(key_path, _key_bytes(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, fingerprint(cert.public_bytes(serialization.Encoding.DER)))


def file_fingerprint(path: Path) -> str:
    """The SHA-256 fingerprint of the PEM certificate in ``path``."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise RadiusError(f"no certificate at {path}") from None
    except ValueError as exc:
        raise RadiusError(f"{path} is not a PEM certificate: {exc}") from None
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


__all__ = ["Issued", "file_fingerprint", "fingerprint", "issue", "make_ca"]
