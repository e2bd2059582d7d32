"""HTTPS/WSS for the hub: a local certificate authority and a server certificate.

Browsers give a page camera and microphone only in a secure context, so every centre PC that
is not the hub's own machine needs HTTPS. Centres rarely have a public name, so `zzhub cert`
makes a small local CA (kept in the output folder and reused on the next run, so the CA that
centre PCs trust stays the same) and signs a server certificate for the hub's LAN names and
IP addresses. The CA certificate is installed once on each centre PC (docs/deploy.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from config.schema import HttpConfig

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
CA_DAYS = 3650


@dataclass(frozen=True, slots=True)
class CertFiles:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    ca_created: bool  # False: an existing CA in the folder was reused
    names: tuple[str, ...]
    not_after: dt.datetime


def split_names(raw: str) -> list[str]:
    """`hub.local,10.20.30.40` → ["hub.local", "10.20.30.40"]; blanks dropped, order kept."""
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    return names


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _load_ca(out: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = out / CA_CERT, out / CA_KEY
    if not (cert_path.exists() and key_path.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: expected an EC private key (made by zzhub cert)")
    return cert, key


def _make_ca(out: Path, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zzhub local CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"zzhub local CA {now:%Y-%m-%d}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(out / CA_KEY, key)
    (out / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_certificates(out: Path, names: list[str], days: int = 825) -> CertFiles:
    """Create (or reuse) the CA in `out` and sign a server certificate for `names`.

    825 days is the longest lifetime Apple platforms accept for a TLS server certificate.
    """
    if not names:
        raise ValueError("give at least one name or IP address (--names hub.local,10.20.30.40)")
    if days < 1:
        raise ValueError("--days must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    existing = _load_ca(out)
    ca_cert, ca_key = existing if existing is not None else _make_ca(out, now)
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out / SERVER_KEY, key)
    (out / SERVER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertFiles(
        out / CA_CERT,
        out / CA_KEY,
        out / SERVER_CERT,
        out / SERVER_KEY,
        existing is None,
        tuple(names),
        not_after,
    )


def server_ssl_context(http: HttpConfig) -> ssl.SSLContext | None:
    """The TLS context to serve with, or None when no certificate is configured (plain HTTP)."""
    if not (http.tls_cert and http.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(http.tls_cert, http.tls_key)
    return ctx


def install_hints(files: CertFiles) -> list[str]:
    """What to do with the files, for the operator (printed by `zzhub cert`)."""
    made = "created" if files.ca_created else "reused (existing CA kept)"
    return [
        f"CA certificate {made}: {files.ca_cert}",
        f"  CA private key: {files.ca_key}  (keep it OFF the centre PCs; back it up offline)",
        f"server certificate: {files.cert}  for {', '.join(files.names)}",
        f"  valid until {files.not_after:%Y-%m-%d}; server key: {files.key}",
        "on the hub, in the config file:",
        "  http:",
        f"    tls_cert: {files.cert}",
        f"    tls_key: {files.key}",
        f"on every centre PC, install {files.ca_cert.name} as a trusted root CA:",
        "  Windows:  certutil -addstore -f Root ca.crt   (as administrator)",
        "  Debian/UOS/Kylin:  cp ca.crt /usr/local/share/ca-certificates/zzhub-ca.crt"
        " && update-ca-certificates",
        "  Firefox keeps its own store: Settings → Certificates → Import (trust for websites)",
        "see docs/deploy.md, section TLS",
    ]
