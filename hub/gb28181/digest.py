"""MD5 digest authentication for SIP (RFC 2617, as RFC 3261 §22.4 uses it).

Server side: `DigestAuthority` makes the `WWW-Authenticate` challenge of a 401 and checks
the `Authorization` a device sends back (`verify`). Its nonces carry their issue time and an
HMAC, so no table of issued nonces is kept: a nonce of ours past its lifetime whose digest is
right is `STALE` (answer a fresh challenge with `stale=true`, the device retries without
asking its user), anything else wrong is `REJECTED`. With qop=auth a nonce count that does not
grow is a replay and is rejected (the last count of recent nonces is kept, bounded).

Client side: `authorize` answers a challenge, for a platform registering with its upper
platform (cascade).

The digest is computed over the `uri` the client put in its Authorization, not over our idea
of the Request-URI: devices differ (with or without port, with the server ID or the domain).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


class DigestError(ValueError):
    """An Authorization or WWW-Authenticate value that is not a Digest this module reads."""


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """RFC 2617 §3.2.2.1: KD(H(A1), nonce[:nc:cnonce:qop]:H(A2)) with MD5, no auth-int."""
    ha1 = md5_hex(f"{username}:{realm}:{password}")
    ha2 = md5_hex(f"{method}:{uri}")
    if qop is None:
        return md5_hex(f"{ha1}:{nonce}:{ha2}")
    return md5_hex(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


_PARAM = re.compile(r'[ \t]*([A-Za-z0-9_\-]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s,"]*)[ \t]*')


def parse_digest(value: str) -> dict[str, str]:
    """`Digest a=b, c="d"` → {"a": "b", "c": "d"} (names lower-cased, quotes removed)."""
    scheme, _, rest = value.strip(" \t").partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"not a Digest: {scheme[:20]!r}")
    params: dict[str, str] = {}
    at = 0
    while True:
        match = _PARAM.match(rest, at)
        if match is None:
            raise DigestError(f"bad Digest parameters near {rest[at : at + 30]!r}")
        name, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name in params:
            raise DigestError(f"Digest parameter {name} twice")
        params[name] = raw
        at = match.end()
        if at >= len(rest):
            return params
        if rest[at] != ",":
            raise DigestError(f"bad Digest parameters near {rest[at : at + 30]!r}")
        at += 1


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Challenge:
    """What a 401 carries in WWW-Authenticate (or a 407 in Proxy-Authenticate)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = None  # "auth", or what the server offered ("auth,auth-int")
    opaque: str | None = None
    stale: bool = False

    def header_value(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop is not None:
            parts.append(f"qop={_quote(self.qop)}")
        return "Digest " + ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> Challenge:
        params = parse_digest(value)
        if "realm" not in params or "nonce" not in params:
            raise DigestError("a Digest challenge needs realm and nonce")
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=params.get("algorithm", "MD5"),
            qop=params.get("qop"),
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )


@dataclass(frozen=True)
class Credentials:
    """What a client sends in Authorization (or Proxy-Authorization)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def header_value(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
        ]
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={_quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        return "Digest " + ", ".join(parts)

    @classmethod
    def parse(cls, value: str) -> Credentials:
        params = parse_digest(value)
        missing = {"username", "realm", "nonce", "uri", "response"} - params.keys()
        if missing:
            raise DigestError(f"Authorization lacks {', '.join(sorted(missing))}")
        qop = params.get("qop")
        if qop is not None and ("nc" not in params or "cnonce" not in params):
            raise DigestError("qop without nc and cnonce")
        return cls(
            username=params["username"],
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=params["response"],
            algorithm=params.get("algorithm"),
            qop=qop,
            nc=params.get("nc"),
            cnonce=params.get("cnonce"),
            opaque=params.get("opaque"),
        )


def authorize(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> Credentials:
    """The client's answer to a challenge (qop=auth when the server offered it)."""
    if challenge.algorithm.upper() != "MD5":
        raise DigestError(f"algorithm {challenge.algorithm} is not supported")
    offered = [q.strip(" \t").lower() for q in (challenge.qop or "").split(",") if q.strip()]
    if offered and "auth" not in offered:
        raise DigestError(f"qop {challenge.qop} is not supported")
    qop = "auth" if offered else None
    count = f"{nc:08x}" if qop else None
    cnonce = (cnonce or secrets.token_hex(8)) if qop else None
    response = digest_response(
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=count,
        cnonce=cnonce,
    )
    return Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm="MD5",
        qop=qop,
        nc=count,
        cnonce=cnonce,
        opaque=challenge.opaque,
    )


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    STALE = "stale"  # right password, old nonce: challenge again with stale=true
    REJECTED = "rejected"


class DigestAuthority:
    """Challenges and checks for one realm (a GB/T 28181 platform: its 10-digit domain)."""

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        lifetime: float = 300.0,
        qop: bool = True,
        clock: Callable[[], float] = time.time,
        remembered: int = 4096,
    ) -> None:
        self.realm = realm
        self._secret = secret or secrets.token_bytes(32)
        self._lifetime = lifetime
        self._qop = qop
        self._clock = clock
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._remembered = remembered

    def _sign(self, stamp: str, salt: str) -> str:
        mac = hmac.new(self._secret, f"{stamp}:{salt}:{self.realm}".encode(), "sha256")
        return mac.hexdigest()[:32]

    def challenge(self, *, stale: bool = False) -> Challenge:
        stamp, salt = str(int(self._clock())), secrets.token_hex(8)
        nonce = f"{stamp}.{salt}.{self._sign(stamp, salt)}"
        return Challenge(self.realm, nonce, qop="auth" if self._qop else None, stale=stale)

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since we issued `nonce`, or None when it is not one of ours."""
        stamp, _, rest = nonce.partition(".")
        salt, _, mac = rest.partition(".")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            return None
        if not hmac.compare_digest(mac.encode(), self._sign(stamp, salt).encode()):
            return None
        return self._clock() - int(stamp)

    def verify(self, method: str, credentials: Credentials, password: str) -> Verdict:
        """Check `credentials` (parsed from the Authorization of a `method` request) against
        the user's password. The caller looks the password up by `credentials.username`."""
        if credentials.realm != self.realm:
            return Verdict.REJECTED
        if (credentials.algorithm or "MD5").upper() != "MD5":
            return Verdict.REJECTED
        if credentials.qop is not None and credentials.qop.lower() != "auth":
            return Verdict.REJECTED
        # without qop (RFC 2069 clients: many cameras ignore the qop we offer) the digest
        # is still checked, but a replay within the nonce's lifetime cannot be told apart
        age = self._nonce_age(credentials.nonce)
        if age is None or age < -5:
            return Verdict.REJECTED
        expected = digest_response(
            username=credentials.username,
            realm=self.realm,
            password=password,
            method=method,
            uri=credentials.uri,
            nonce=credentials.nonce,
            qop=credentials.qop.lower() if credentials.qop else None,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
        )
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return Verdict.REJECTED
        if age > self._lifetime:
            return Verdict.STALE
        if credentials.qop is not None and not self._count(credentials):
            return Verdict.REJECTED
        return Verdict.ACCEPTED

    def _count(self, credentials: Credentials) -> bool:
        """Whether nc grew since the last use of this nonce (a replay otherwise)."""
        nc = credentials.nc or ""
        if len(nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc):
            return False
        count = int(nc, 16)
        if count <= self._counts.get(credentials.nonce, 0):
            return False
        self._counts[credentials.nonce] = count
        self._counts.move_to_end(credentials.nonce)
        while len(self._counts) > self._remembered:
            self._counts.popitem(last=False)
        return True
