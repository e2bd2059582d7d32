"""HTTPS/WSS: `zzhub cert` makes a CA and a server certificate; the hub serves TLS with them."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from config import ConfigError, parse_config
from hub.app import build_app
from hub.cli import main
from hub.core.tls import make_certificates, server_ssl_context, split_names
from tests.conftest import topology


def test_split_names() -> None:
    assert split_names(" hub.local, 10.20.30.40,,hub.local ") == ["hub.local", "10.20.30.40"]


def test_certificate_names_and_ca_reuse(tmp_path: Path) -> None:
    first = make_certificates(tmp_path, ["hub.local", "10.20.30.40", "::1"], days=30)
    assert first.ca_created
    assert (first.key.stat().st_mode & 0o777) == 0o600
    assert (first.ca_key.stat().st_mode & 0o777) == 0o600
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.local"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.20.30.40", "::1"]
    ca_pem = first.ca_cert.read_bytes()
    ca = x509.load_pem_x509_certificate(ca_pem)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    second = make_certificates(tmp_path, ["hub2.local"], days=30)
    assert not second.ca_created  # the CA centre PCs trust stays the same
    assert second.ca_cert.read_bytes() == ca_pem
    x509.load_pem_x509_certificate(second.cert.read_bytes()).verify_directly_issued_by(ca)


def test_cert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tls"
    assert main(["cert", "--out", str(out), "--names", "hub.local,127.0.0.1", "--days", "7"]) == 0
    printed = capsys.readouterr().out
    assert "tls_cert:" in printed and "certutil -addstore" in printed
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "server.crt", "server.key"]
    assert main(["cert", "--out", str(out), "--names", " , "]) == 2


def test_tls_pair_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls_cert and http\.tls_key"):
        parse_config(topology(http={"tls_cert": str(tmp_path / "server.crt")}))
    assert server_ssl_context(parse_config(topology()).http) is None


@pytest.fixture
async def tls_hub(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    files = make_certificates(tmp_path / "tls", ["localhost", "127.0.0.1"])
    cfg = parse_config(topology(http={"tls_cert": str(files.cert), "tls_key": str(files.key)}))
    ctx = server_ssl_context(cfg.http)
    assert ctx is not None
    runner = web.AppRunner(build_app(cfg), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    assert runner.addresses
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}", files.ca_cert
    finally:
        await runner.cleanup()


async def test_https_and_wss_with_the_ca(
    tls_hub: tuple[str, Path], token: Callable[..., str]
) -> None:
    addr, ca = tls_hub
    trust = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://{addr}/api/health", ssl=trust) as resp:
            assert resp.status == 200
            health: dict[str, Any] = await resp.json()
            assert health["status"] == "ok"
        url = f"wss://{addr}/ws?token={token()}"
        async with session.ws_connect(url, ssl=trust) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello" and hello["data"]["user"] == "tester"


async def test_refused_without_the_ca(tls_hub: tuple[str, Path]) -> None:
    addr, _ = tls_hub
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(f"https://{addr}/api/health", ssl=ssl.create_default_context()):
                pass
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.ws_connect(f"wss://{addr}/ws", ssl=ssl.create_default_context())


async def test_plain_http_to_a_tls_port_gets_nothing(tls_hub: tuple[str, Path]) -> None:
    addr, _ = tls_hub
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://{addr}/api/health") as resp:
                await resp.read()
