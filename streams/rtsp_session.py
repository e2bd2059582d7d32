"""An RTSP client session (RFC 2326): OPTIONS, DESCRIBE, SETUP, PLAY, keepalives, TEARDOWN.

Handles what cameras need from a client: Basic/Digest authentication, one 301/302 redirect,
Content-Base/Content-Location and relative `a=control` resolution, the Session header and its
timeout. Every failure is a `SourceError` whose message names the camera by its redacted URL.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from urllib.parse import unquote, urlsplit, urlunsplit

from streams.media import SourceError
from streams.registry import redact_url
from streams.rtsp_auth import Authenticator
from streams.rtsp_protocol import FrameHandler, RtspConnection, RtspResponse
from streams.sdp import SessionDescription, parse_sdp

log = logging.getLogger(__name__)

USER_AGENT = "zzhub"
DEFAULT_SESSION_TIMEOUT = 60.0


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def control_url(base: str, control: str) -> str:
    """A media's request URL from the base URL and its `a=control` (ffmpeg's rules: an
    absolute control is used as is, a relative one is appended to the base)."""
    if not control or control == "*":
        return base
    if "://" in control:
        return control
    if base.endswith("/") or control.startswith("/"):
        return base + control
    return f"{base}/{control}"


class RtspSession:
    """One camera connection. `open()` connects and describes; then `setup()`, `play()`."""

    def __init__(self, url: str, timeout: float, on_frame: FrameHandler) -> None:
        self.timeout = timeout
        self._on_frame = on_frame
        parts = urlsplit(url)
        self._auth = Authenticator(unquote(parts.username or ""), unquote(parts.password or ""))
        self.url = self._strip_credentials(url)
        self.redacted = redact_url(url)
        self.conn: RtspConnection | None = None
        self.session_id = ""
        self.session_timeout = DEFAULT_SESSION_TIMEOUT
        self.public: set[str] = set()
        self.base_url = self.url
        self._cseq = 0

    @staticmethod
    def _strip_credentials(url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))

    @property
    def connection(self) -> RtspConnection:
        if self.conn is None:
            raise SourceError(f"{self.redacted}: not connected")
        return self.conn

    async def connect(self) -> None:
        parts = urlsplit(self.url)
        secure = parts.scheme.lower() == "rtsps"
        host = parts.hostname or ""
        try:
            port = parts.port or (322 if secure else 554)
        except ValueError as exc:
            raise SourceError(f"{self.redacted}: bad port") from exc
        context: ssl.SSLContext | None = None
        if secure:  # cameras use self-signed certificates; encrypt but do not verify
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, self.conn = await loop.create_connection(
                    lambda: RtspConnection(self._on_frame), host, port, ssl=context
                )
        except TimeoutError as exc:
            raise SourceError(
                f"{self.redacted}: connect timed out after {self.timeout:g} s"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise SourceError(f"{self.redacted}: cannot connect: {reason}") from exc

    def _address(self, which: str) -> str:
        transport = self.connection.transport
        address = transport.get_extra_info(which) if transport is not None else None
        return str(address[0]) if address else ""

    def local_host(self) -> str:
        """The address of our end of the control connection (UDP binds to the same one)."""
        return self._address("sockname") or "0.0.0.0"

    def peer_host(self) -> str:
        return self._address("peername")

    async def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, within: float = 0.0
    ) -> RtspResponse:
        """Send a request and wait for its response, answering one auth challenge."""
        for _ in range(3):
            response = await self._exchange(method, url, headers or {}, within or self.timeout)
            if response.status != 401:
                return response
            if not self._auth.challenge(response.header_all("www-authenticate")):
                who = "wrong user or password"
                if not self._auth.has_credentials:
                    who = "credentials needed"
                raise SourceError(f"{self.redacted}: 401 Unauthorized ({who}) on {method}")
        raise SourceError(f"{self.redacted}: 401 Unauthorized on {method}")

    async def _exchange(
        self, method: str, url: str, headers: dict[str, str], within: float
    ) -> RtspResponse:
        conn = self.connection
        self._cseq += 1
        cseq = self._cseq
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
        authorization = self._auth.header(method, url)
        if authorization:
            lines.append(f"Authorization: {authorization}")
        if self.session_id:
            lines.append(f"Session: {self.session_id}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        waiter = conn.expect(cseq)
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            async with asyncio.timeout(within):
                return await waiter
        except TimeoutError as exc:
            raise SourceError(f"{self.redacted}: no answer to {method} in {within:g} s") from exc
        finally:
            conn.forget(cseq)

    def _check(self, method: str, response: RtspResponse) -> None:
        if response.status in (301, 302) and method == "DESCRIBE":
            location = response.header("location")
            if location:
                raise _Redirect(location)
        if response.status == 404:
            raise SourceError(f"{self.redacted}: 404 stream not found")
        if not 200 <= response.status < 300:
            raise SourceError(
                f"{self.redacted}: {method} failed: {response.status} {response.reason}".rstrip()
            )

    async def open(self) -> SessionDescription:
        """Connect, OPTIONS, DESCRIBE (following one redirect); the camera's SDP."""
        for attempt in range(2):
            await self.connect()
            options = await self.request("OPTIONS", self.url)
            if options.status == 200:
                public = options.header("public")
                self.public = {m.strip().upper() for m in public.split(",") if m.strip()}
            response = await self.request("DESCRIBE", self.url, {"Accept": "application/sdp"})
            try:
                self._check("DESCRIBE", response)
            except _Redirect as redirect:
                if attempt:
                    raise SourceError(f"{self.redacted}: redirected more than once") from None
                log.info("%s: redirected to %s", self.redacted, redact_url(redirect.location))
                self.close()
                self.url = self._strip_credentials(redirect.location)
                self.base_url = self.url
                continue
            self.base_url = (
                response.header("content-base") or response.header("content-location") or self.url
            )
            return parse_sdp(response.body.decode("utf-8", "replace"))
        raise AssertionError("unreachable")

    async def setup(self, url: str, transport: str) -> str:
        """SETUP one media; the camera's Transport header."""
        response = await self.request("SETUP", url, {"Transport": transport})
        self._check("SETUP", response)
        session = response.header("session")
        if session:
            ident, _, params = session.partition(";")
            self.session_id = ident.strip()
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key.lower() == "timeout":
                    try:
                        self.session_timeout = max(float(value), 2.0)
                    except ValueError:
                        pass
        return response.header("transport")

    async def play(self, url: str) -> None:
        response = await self.request("PLAY", url, {"Range": "npt=0.000-"})
        self._check("PLAY", response)

    async def keepalive(self) -> None:
        """One keepalive request; an unanswered one is not an error (some cameras ignore it)."""
        method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
        try:
            await self.request(method, self.base_url, within=min(self.timeout, 5.0))
        except SourceError as exc:
            log.debug("keepalive: %s", exc)

    async def teardown(self, url: str, within: float = 0.5) -> None:
        """Best effort: tell the camera we are leaving, wait a moment for its answer."""
        if self.conn is None or self.conn.closed.done() or not self.session_id:
            return
        try:
            await self._exchange("TEARDOWN", url, {}, within)
        except SourceError:
            pass

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            if not self.conn.closed.cancelled():
                self.conn.closed.exception()  # retrieved: run() has reported it or moved on
            self.conn = None
