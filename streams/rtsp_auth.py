"""RTSP client authentication: Basic and Digest (RFC 2617 / 7616 with MD5, with and without
qop=auth). Cameras answer 401 with one or more `WWW-Authenticate` challenges; Digest is
preferred over Basic when both are offered.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """('digest', {'realm': ..., 'nonce': ...}) from a WWW-Authenticate value."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = value.replace('\\"', '"')
    return scheme.lower(), params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_response(
    user: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str = "",
    nc: str = "00000001",
    cnonce: str = "",
    algorithm: str = "MD5",
) -> str:
    """The `response` value of a Digest Authorization header."""
    ha1 = _md5(f"{user}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


class Authenticator:
    """Answers a camera's challenges for one RTSP connection."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._password = password
        self._scheme = ""
        self._params: dict[str, str] = {}
        self._nc = 0

    @property
    def has_credentials(self) -> bool:
        return bool(self.user or self._password)

    def challenge(self, headers: list[str]) -> bool:
        """Take the 401's WWW-Authenticate values; False if retrying cannot help (no
        credentials, unknown scheme, or the same challenge already answered)."""
        if not self.has_credentials:
            return False
        offers = dict(parse_challenge(h) for h in headers)
        if "digest" in offers:
            params = offers["digest"]
            algorithm = params.get("algorithm", "MD5").upper()
            if algorithm not in ("MD5", "MD5-SESS") or "nonce" not in params:
                return False
            stale = params.get("stale", "").lower() == "true"
            if self._scheme == "digest" and params["nonce"] == self._params.get("nonce"):
                return False
            if (
                self._scheme == "digest"
                and not stale
                and self._params.get("realm") == params.get("realm")
            ):
                # a new nonce for the same realm without stale=true: the password was refused
                return False
            self._scheme, self._params, self._nc = "digest", params, 0
            return True
        if "basic" in offers and self._scheme != "basic":
            self._scheme, self._params = "basic", offers["basic"]
            return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        """The Authorization header value for a request, or None before any challenge."""
        if self._scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self._password}".encode()).decode()
            return f"Basic {token}"
        if self._scheme != "digest":
            return None
        params = self._params
        realm, nonce = params.get("realm", ""), params["nonce"]
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        qop = "auth" if "auth" in qops else ""
        algorithm = params.get("algorithm", "MD5")
        fields = [
            f'username="{self.user}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{uri}"',
        ]
        if qop:
            self._nc += 1
            nc = f"{self._nc:08x}"
            cnonce = os.urandom(8).hex()
            response = digest_response(
                self.user, self._password, realm, nonce, method, uri, qop, nc, cnonce, algorithm
            )
            fields += [f'response="{response}"', f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = digest_response(
                self.user, self._password, realm, nonce, method, uri, algorithm=algorithm
            )
            fields.append(f'response="{response}"')
        if "algorithm" in params:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in params:
            fields.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(fields)
