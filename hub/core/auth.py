"""Bearer tokens (JWT, HS256) and password checks.

A token carries the user name (`sub`), the role and the centre code. Scope follows the centre
tree: a user acts on its own centre and every centre whose code starts with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from aiohttp import web

from config.schema import Role, UserConfig
from hub.core.centres import within
from hub.core.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "zzhub"
PBKDF2_PREFIX = "pbkdf2_sha256"


class AuthError(Exception):
    """Why a request is not authenticated; safe to show to the caller."""


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: Role
    centre: str

    def can_see(self, centre_code: str) -> bool:
        """Own centre and every centre below it (administrative code prefix)."""
        return within(centre_code, self.centre)


class TokenIssuer:
    def __init__(self, secret: str, default_ttl: int) -> None:
        self._secret = secret
        self.default_ttl = default_ttl

    def issue(
        self,
        user: str,
        role: Role,
        centre: str,
        ttl: int | None = None,
        extra: dict[str, int] | None = None,
    ) -> str:
        """A signed token; `extra` claims (numbers) ride along, e.g. a petitioner link's
        serial."""
        now_ms = int(time.time() * 1000)
        now = now_ms // 1000
        claims: dict[str, object] = {
            **(extra or {}),
            "ims": now_ms,  # issued at, in ms: a sign-out refuses tokens issued before it
            "iss": ISSUER,
            "sub": user,
            "role": str(role),
            "centre": centre,
            "iat": now,
            "exp": now + (ttl if ttl is not None else self.default_ttl),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        return self.verify_issued(token)[0]

    def verify_issued(self, token: str) -> tuple[Principal, int]:
        """The token's identity and its issue time in ms (`ims`, else its `iat` second)."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is not valid") from None
        except jwt.PyJWTError as err:
            raise AuthError(f"token is not valid: {err}") from None
        try:
            role = Role(str(claims.get("role")))
        except ValueError:
            raise AuthError("token carries an unknown role") from None
        centre = claims.get("centre")
        if not isinstance(centre, str) or not centre.isdigit():
            raise AuthError("token carries no centre")
        issued = claims.get("ims")
        if not isinstance(issued, int):
            iat = claims.get("iat")
            issued = iat * 1000 if isinstance(iat, int) else 0
        return Principal(user=str(claims["sub"]), role=role, centre=centre), issued


class LoginThrottle:
    """Repeated wrong passwords slow down, per user name and per address: the first `free`
    failures within `window` seconds cost nothing; after that each attempt must wait twice
    as long as the one before (1 s, 2 s, 4 s … at most `max_wait`), counted from the last
    failure. A success clears the user's count (not the address's: one address guessing many
    names stays slow). At most `max_keys` names and addresses are remembered (oldest go)."""

    def __init__(
        self,
        *,
        free: int = 5,
        window: float = 900.0,
        max_wait: float = 300.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.window, self.max_wait, self.max_keys = free, window, max_wait, max_keys
        self.clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key → (n, last)
        self.failed_total = 0
        self.refused_total = 0

    def wait(self, user: str, address: str) -> float:
        """Seconds before the next attempt for `user` from `address` is heard (0: now)."""
        now = self.clock()
        longest = 0.0
        for key in (f"u:{user}", f"a:{address}"):
            n, last = self._failures.get(key, (0, 0.0))
            if n < self.free or now - last > self.window:
                continue
            longest = max(longest, min(self.max_wait, 2.0 ** (n - self.free)) - (now - last))
        if longest > 0:
            self.refused_total += 1
        return max(0.0, longest)

    def failed(self, user: str, address: str) -> None:
        self.failed_total += 1
        now = self.clock()
        for key in (f"u:{user}", f"a:{address}"):
            n, last = self._failures.pop(key, (0, 0.0))
            self._failures[key] = (1 if now - last > self.window else n + 1, now)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        self._failures.pop(f"u:{user}", None)


def hash_password(password: str, *, iterations: int = 200_000) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"{PBKDF2_PREFIX}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(stored: str | None, given: str) -> bool:
    """Constant-time check against a pbkdf2 hash or a plain-text (demo) password."""
    if not stored:
        return False
    if stored.startswith(PBKDF2_PREFIX + "$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            expected = base64.b64decode(digest)
            actual = hashlib.pbkdf2_hmac(
                "sha256", given.encode(), base64.b64decode(salt), int(iterations)
            )
        except ValueError:
            return False
        return hmac.compare_digest(expected, actual)
    return hmac.compare_digest(stored.encode(), given.encode())


TOKENS = web.AppKey("tokens", TokenIssuer)
USERS = web.AppKey("users", dict[str, UserConfig])
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    p: Principal | None = request.get(PRINCIPAL)
    if p is None:
        raise Unauthenticated("authentication required")
    return p


THROTTLE = web.AppKey("login_throttle", LoginThrottle)
