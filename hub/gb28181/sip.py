"""SIP messages (RFC 3261) as GB/T 28181 devices and platforms exchange them.

`parse_message` reads one message from a UDP datagram, `SipStreamParser` frames messages
out of a TCP byte stream by Content-Length, and `SipRequest.to_bytes` / `SipResponse.to_bytes`
write them. Anything malformed raises `SipParseError` and nothing else, so a server answers
400 (or drops the datagram, or closes the TCP connection) without guarding against other
exception types. `response_to` builds a UAS response as RFC 3261 §8.2.6 says.

The parser is strict where a mistake would mislead a server (the start line, Via, From, To,
Call-ID, CSeq, Content-Length, numeric fields; RFC 4475's invalid cases) and lenient where
devices are known to be sloppy (bare LF line ends, a Status-Line without its reason, a missing
Content-Length on TCP). Header values are kept as received (unfolded); the structured views
(`Via`, `NameAddr`, `SipUri`, `CSeq`) are parsed from them on access.

This module is over ~500 lines because the grammar pieces (URI, name-addr, Via, parameters,
framing) share one tokenizer and one error type; split, each would re-export the others.
"""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_MESSAGE = 64 * 1024
MAX_HEADERS = 200
MAX_LIST = 64  # values in one comma-separated header (Via, Contact, Route)
_MAX_CSEQ = 2**31 - 1
_MAX_DELTA = 2**32 - 1


class SipParseError(ValueError):
    """The bytes are not a SIP message this parser accepts (the server answers 400 or drops)."""


COMPACT = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "v": "Via",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
}
_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT.values(),
        "CSeq",
        "Max-Forwards",
        "Expires",
        "Route",
        "Record-Route",
        "Authorization",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "User-Agent",
        "Server",
        "Allow",
        "Date",
        "Retry-After",
        "Require",
        "Timestamp",
        "Subscription-State",
    )
}

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_DIGITS = re.compile(r"[0-9]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = "A-Za-z0-9\\-_.!~*'()"
_USER = re.compile(rf"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD = re.compile(rf"[{_UNRESERVED}%&=+$,]*")
_PARAMCHARS = re.compile(rf"[{_UNRESERVED}%\[\]/:&+$]+")
_HEADERCHARS = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$=&]+")
_GEN_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")  # token / host
_WSP = " \t"
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def canonical(name: str) -> str:
    """A header name as this module stores it: compact forms expanded, known names spelled."""
    lower = name.lower()
    if lower in COMPACT:
        return COMPACT[lower]
    return _CANONICAL.get(lower, name)


def _number(text: str, limit: int, what: str) -> int:
    text = text.strip(_WSP)
    # the length check keeps int() off huge digit strings (and their ValueError)
    if not _DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(limit)):
        raise SipParseError(f"{what} is not a number up to {limit}: {text[:40]!r}")
    value = int(text.lstrip("0") or "0")
    if value > limit:
        raise SipParseError(f"{what} is larger than {limit}")
    return value


# --- parameters and lists ---------------------------------------------------------------


def _quoted(text: str, start: int) -> int:
    """The index just past the quoted-string that starts at text[start] == '"'."""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated quoted string")


def unquote(text: str) -> str:
    """The content of a quoted-string (quotes removed, quoted-pairs resolved)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.DOTALL)


def split_list(value: str) -> list[str]:
    """Comma-separated values, ignoring commas inside quotes and angle brackets."""
    out: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(value):
        ch = value[i]
        if ch == '"':
            i = _quoted(value, i)
            continue
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(value[start:i].strip(_WSP))
            start = i + 1
        i += 1
    out.append(value[start:].strip(_WSP))
    if len(out) > MAX_LIST:
        raise SipParseError(f"more than {MAX_LIST} values in one header")
    return out


def parse_params(text: str) -> dict[str, str | None]:
    """`;name=value;flag` (with LWS around ; and =) → {name.lower(): value or None}."""
    params: dict[str, str | None] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WSP:
            i += 1
        if i >= n:
            return params
        if text[i] != ";":
            raise SipParseError(f"expected ';' in parameters: {text[i : i + 20]!r}")
        i += 1
        while i < n and text[i] in _WSP:
            i += 1
        match = _TOKEN.match(text, i)
        if match is None:
            raise SipParseError("empty parameter name")
        name = match.group().lower()
        i = match.end()
        while i < n and text[i] in _WSP:
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WSP:
                i += 1
            if i < n and text[i] == '"':
                end = _quoted(text, i)
                value, i = text[i:end], end
            else:
                vm = _GEN_VALUE.match(text, i)
                if vm is None:
                    raise SipParseError(f"parameter {name} has no value")
                value, i = vm.group(), vm.end()
        params[name] = value


def _render_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


# --- URIs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SipUri:
    """A sip:/sips: URI split into its parts, or any other absolute URI kept opaque.

    Parts keep their %-escapes; `text` is the URI as received.
    """

    scheme: str
    text: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> SipUri:
        if not text or any(ch in text for ch in ' \t\r\n<>"') or ":" not in text:
            raise SipParseError(f"not a URI: {text[:60]!r}")
        scheme, _, rest = text.partition(":")
        if not _SCHEME.fullmatch(scheme):
            raise SipParseError(f"bad URI scheme: {scheme[:20]!r}")
        scheme = scheme.lower()
        if scheme not in ("sip", "sips"):
            if not rest:
                raise SipParseError("empty URI")
            return cls(scheme=scheme, text=text)
        user = password = None
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, colon, pw = userinfo.partition(":")
            if not _USER.fullmatch(user) or _ESCAPE.search(user):
                raise SipParseError(f"bad user part in {text[:60]!r}")
            if colon:
                if not _PASSWORD.fullmatch(pw) or _ESCAPE.search(pw):
                    raise SipParseError(f"bad password part in {text[:60]!r}")
                password = pw
        rest, question, headers = rest.partition("?")
        if question and (not _HEADERCHARS.fullmatch(headers) or _ESCAPE.search(headers)):
            raise SipParseError(f"bad URI headers in {text[:60]!r}")
        hostport, _, paramtext = rest.partition(";")
        match = _HOST.match(hostport)
        if match is None:
            raise SipParseError(f"bad host in {text[:60]!r}")
        host, tail = match.group(), hostport[match.end() :]
        port = None
        if tail:
            if tail[0] != ":":
                raise SipParseError(f"bad host in {text[:60]!r}")
            port = _number(tail[1:], 65535, "URI port")
        params: dict[str, str | None] = {}
        if paramtext:
            for piece in paramtext.split(";"):
                name, eq, value = piece.partition("=")
                if not _PARAMCHARS.fullmatch(name) or _ESCAPE.search(piece):
                    raise SipParseError(f"bad URI parameter in {text[:60]!r}")
                if eq and (not _PARAMCHARS.fullmatch(value)):
                    raise SipParseError(f"bad URI parameter in {text[:60]!r}")
                params[name.lower()] = value if eq else None
        return cls(
            scheme=scheme,
            text=text,
            user=user,
            password=password,
            host=host,
            port=port,
            params=params,
            headers=headers if question else None,
        )


@dataclass(frozen=True)
class NameAddr:
    """From, To, Contact, Route: `"Display" <uri>;params` or `uri;params` (addr-spec)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        shown = f"{self.display} " if self.display else ""
        return f"{shown}<{self.uri}>{_render_params(self.params)}"

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        text = value.strip(_WSP)
        display: str | None = None
        if text.startswith('"'):
            end = _quoted(text, 0)
            display = text[:end]
            text = text[end:].lstrip(_WSP)
            if not text.startswith("<"):
                raise SipParseError("a quoted display name must be followed by <uri>")
        lt = text.find("<")
        if lt >= 0:
            shown = text[:lt].strip(_WSP)
            if shown:
                if display is not None or not all(_TOKEN.fullmatch(w) for w in shown.split()):
                    raise SipParseError(f"display name is not tokens: {shown[:40]!r}")
                display = shown
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError("'<' without '>'")
            uri = SipUri.parse(text[lt + 1 : gt])
            return cls(uri=uri, display=display, params=parse_params(text[gt + 1 :]))
        # addr-spec: a URI with ',', '?' or ';' in it must be in <> (RFC 3261 §20)
        spec, semi, rest = text.partition(";")
        spec = spec.rstrip(_WSP)
        if "?" in spec or "," in spec:
            raise SipParseError("a URI with '?' or ',' must be enclosed in <>")
        return cls(uri=SipUri.parse(spec), params=parse_params(semi + rest))


@dataclass(frozen=True)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=…;received=…;rport=…`."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value and _DIGITS.fullmatch(value) and len(value) < 6 else None

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{_render_params(self.params)}"

    _SENT = re.compile(
        r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)"
        r"[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)"
        r"(?:[ \t]*:[ \t]*([0-9]+))?"
    )

    @classmethod
    def parse(cls, value: str) -> Via:
        match = cls._SENT.match(value)
        if match is None:
            raise SipParseError(f"bad Via: {value[:60]!r}")
        name, version, transport, host, port = match.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError(f"bad Via protocol: {name}/{version}")
        return cls(
            transport=transport.upper(),
            host=host,
            port=_number(port, 65535, "Via port") if port is not None else None,
            params=parse_params(value[match.end() :]),
        )


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"

    @classmethod
    def parse(cls, value: str) -> CSeq:
        parts = value.split()
        if len(parts) != 2 or not _TOKEN.fullmatch(parts[1]):
            raise SipParseError(f"bad CSeq: {value[:40]!r}")
        return cls(_number(parts[0], _MAX_CSEQ, "CSeq"), parts[1])


# --- headers and messages ---------------------------------------------------------------


class Headers:
    """Header fields in order, names case-insensitive and compact forms expanded."""

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields: list[tuple[str, str]] = []
        for name, value in fields or []:
            self.add(name, value)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.values(name))

    def add(self, name: str, value: str) -> None:
        self._fields.append((canonical(name), value))

    def values(self, name: str) -> list[str]:
        """The value of each header line of this name, in order."""
        key = canonical(name).lower()
        return [v for n, v in self._fields if n.lower() == key]

    def get(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def items(self, name: str) -> list[str]:
        """Every comma-separated value of every line of this name (Via, Contact, Route…)."""
        return [item for line in self.values(name) for item in split_list(line)]

    def remove(self, name: str) -> None:
        key = canonical(name).lower()
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]

    def set(self, name: str, value: str) -> None:
        """Replace every line of this name by one, where the first was (or at the end)."""
        key = canonical(name).lower()
        at = next((i for i, (n, _) in enumerate(self._fields) if n.lower() == key), None)
        self.remove(name)
        entry = (canonical(name), value)
        self._fields.insert(len(self._fields) if at is None else at, entry)

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of a list header (the top Via), the rest left as sent."""
        key = canonical(name).lower()
        for i, (n, line) in enumerate(self._fields):
            if n.lower() == key:
                rest = split_list(line)[1:]
                self._fields[i] = (n, ", ".join([value, *rest]))
                return
        raise KeyError(name)

    def copy(self) -> Headers:
        return Headers(list(self._fields))


@dataclass
class SipMessage(ABC):
    headers: Headers
    body: bytes = b""

    def _one(self, name: str) -> str:
        found = self.headers.values(name)
        if len(found) != 1 or ("," in found[0] and name in ("Call-ID", "CSeq")):
            raise SipParseError(f"{name} must appear exactly once")
        return found[0]

    @property
    def call_id(self) -> str:
        value = self._one("Call-ID").strip(_WSP)
        if not value or any(ch in value for ch in _WSP):
            raise SipParseError("bad Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._one("CSeq"))

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._one("From"))

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._one("To"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.items("Via")]

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; an empty list for none and for `Contact: *`."""
        items = self.headers.items("Contact")
        return [] if items == ["*"] else [NameAddr.parse(v) for v in items]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip(_WSP).lower() if value else None

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        return None if value is None else _number(value, _MAX_DELTA, "Expires")

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return None if value is None else _number(value, 255, "Max-Forwards")

    @abstractmethod
    def _start_line(self) -> str:
        """The request or status line (each kind of message writes its own)."""

    def to_bytes(self) -> bytes:
        """The message on the wire, Content-Length set to the body's length."""
        headers = self.headers.copy()
        headers.set("Content-Length", str(len(self.body)))
        lines = [self._start_line(), *(f"{n}: {v}" for n, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def validate(self) -> None:
        """Raise SipParseError unless the headers every message needs are well formed."""
        vias = self.vias
        if not vias:
            raise SipParseError("no Via")
        _ = (self.call_id, self.cseq, self.from_, self.to, self.contacts)
        _ = (self.expires, self.max_forwards)
        retry = self.headers.get("Retry-After")
        if retry is not None:
            _number(retry.split(";")[0].split("(")[0], _MAX_DELTA, "Retry-After")


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: SipUri = field(default_factory=lambda: SipUri.parse("sip:invalid"))

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def validate(self) -> None:
        super().validate()
        if self.cseq.method != self.method:
            raise SipParseError(f"CSeq method {self.cseq.method} is not {self.method}")
        if self.uri.headers is not None:
            raise SipParseError("a Request-URI carries no headers")

    def stamp_received(self, host: str, port: int) -> None:
        """What a server does on receipt (RFC 3261 §18.2.1, RFC 3581): note the source
        address in the top Via (received=, and rport= when the client asked for it)."""
        vias = self.vias
        top = vias[0]
        params = dict(top.params)
        if top.host != host:
            params["received"] = host
        if "rport" in params:
            params["rport"] = str(port)
            params["received"] = host
        stamped = str(Via(top.transport, top.host, top.port, params, top.protocol))
        self.headers.replace_first("Via", stamped)


@dataclass
class SipResponse(SipMessage):
    status: int = 200
    reason: str = ""

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    481: "Call/Transaction Does Not Exist",
    483: "Too Many Hops",
    486: "Busy Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


def new_tag() -> str:
    return secrets.token_hex(8)


def new_branch() -> str:
    """A Via branch with RFC 3261's magic cookie."""
    return "z9hG4bK" + secrets.token_hex(10)


def response_to(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """A UAS response (RFC 3261 §8.2.6): Via lines in order, From, To (with our tag when it
    has none and this is not a 100), Call-ID and CSeq copied; Timestamp copied into a 100.

    Pass the same `to_tag` for every response of one transaction (and of one dialog).
    """
    if not 100 <= status <= 699:
        raise ValueError(f"not a status code: {status}")
    headers = Headers()
    for value in request.headers.values("Via"):
        headers.add("Via", value)
    headers.add("From", request._one("From"))
    to = request._one("To")
    if status != 100 and request.to.tag is None:
        to = f"{to.rstrip(_WSP)};tag={to_tag or new_tag()}"
    headers.add("To", to)
    headers.add("Call-ID", request._one("Call-ID"))
    headers.add("CSeq", request._one("CSeq"))
    timestamp = request.headers.get("Timestamp")
    if status == 100 and timestamp is not None:
        headers.add("Timestamp", timestamp)
    if body and content_type:
        headers.add("Content-Type", content_type)
    return SipResponse(headers, body, status=status, reason=reason or REASONS.get(status, ""))


# --- parsing ----------------------------------------------------------------------------


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """(header section, rest) at the first empty line, CRLF or bare LF."""
    match = _HEAD_END.search(data)
    if match is None:
        return None
    return data[: match.start()], data[match.end() :]


def _decode(head: bytes) -> str:
    for codec in ("utf-8", "gb18030"):
        try:
            return head.decode(codec)
        except UnicodeDecodeError:
            continue
    raise SipParseError("header bytes are neither UTF-8 nor GB18030")


def _content_length(headers: Headers) -> int | None:
    values = headers.items("Content-Length")
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("more than one Content-Length")
    return _number(values[0], MAX_MESSAGE, "Content-Length")


def _parse_head(head: bytes) -> tuple[str, Headers]:
    lines = _decode(head).split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if len(lines) > MAX_HEADERS * 4:
        raise SipParseError("too many header lines")
    start = lines[0]
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if "\r" in line:
            raise SipParseError("bare CR in a header")
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("a continuation line right after the start line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip(_WSP)}".strip(_WSP))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(_WSP)
        if not colon or not _TOKEN.fullmatch(name):
            raise SipParseError(f"bad header line: {line[:40]!r}")
        fields.append((name, value.strip(_WSP)))
    if len(fields) > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} headers")
    return start, Headers(fields)


def _parse_start(start: str, headers: Headers, body: bytes) -> SipRequest | SipResponse:
    if start[:4].upper() == "SIP/":
        version, _, rest = start.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError(f"unknown SIP version {version[:20]!r}")
        if len(code) != 3 or not _DIGITS.fullmatch(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code[:20]!r}")
        if any(ord(ch) < 32 and ch != "\t" for ch in reason):
            raise SipParseError("control character in the reason phrase")
        return SipResponse(headers, body, status=int(code), reason=reason)
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError(f"bad request line: {start[:60]!r}")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise SipParseError(f"bad method {method[:20]!r}")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unknown SIP version {version[:20]!r}")
    return SipRequest(headers, body, method=method, uri=SipUri.parse(target))


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE) -> SipRequest | SipResponse:
    """One message from a datagram (RFC 3261 §18.3): octets past Content-Length are
    discarded; a body shorter than Content-Length is an error; without Content-Length the
    body is the rest of the datagram."""
    if len(data) > max_size:
        raise SipParseError(f"message larger than {max_size} bytes")
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: CRLFs before the start line are ignored
    split = _split_head(data)
    if split is None:
        raise SipParseError("no empty line after the headers")
    head, rest = split
    start, headers = _parse_head(head)
    length = _content_length(headers)
    if length is not None:
        if len(rest) < length:
            raise SipParseError(f"Content-Length {length} but {len(rest)} body bytes")
        rest = rest[:length]
    message = _parse_start(start, headers, rest)
    message.validate()
    return message


class SipStreamParser:
    """Frames messages out of a TCP stream: feed it what each read returned, take the whole
    messages it gives back; a partial message stays buffered for the next read.

    CRLF keep-alives between messages (RFC 5626) are skipped. After a SipParseError the
    stream cannot be resynchronised: close the connection.
    """

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max = max_size
        self._scanned = 0  # bytes of the buffer searched for the end of headers so far
        self._total: int | None = None  # the next message's length, once its headers are in

    @property
    def pending(self) -> int:
        """Bytes buffered towards the next message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[SipRequest | SipResponse]:
        self._buffer += data
        out: list[SipRequest | SipResponse] = []
        while True:
            if self._total is None:
                while self._buffer and self._buffer[0] in b"\r\n":
                    del self._buffer[:1]
                # resume the search a little before where the last one stopped (each read
                # is scanned once, so a byte-by-byte trickle costs linear time)
                match = _HEAD_END.search(self._buffer, max(0, self._scanned - 3))
                if match is None:
                    self._scanned = len(self._buffer)
                    if len(self._buffer) > self._max:
                        raise SipParseError(f"headers longer than {self._max} bytes")
                    return out
                _, headers = _parse_head(bytes(self._buffer[: match.start()]))
                length = _content_length(headers) or 0  # RFC 3261 wants it; devices forget
                self._total = match.end() + length
                if self._total > self._max:
                    raise SipParseError(f"message larger than {self._max} bytes")
            if len(self._buffer) < self._total:
                return out
            frame = bytes(self._buffer[: self._total])
            del self._buffer[: self._total]
            self._total, self._scanned = None, 0
            out.append(parse_message(frame, max_size=self._max))
