"""Bearer tokens, the principal's scope, and password checks."""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from config.schema import Role
from hub.core.auth import (
    ALGORITHM,
    ISSUER,
    PBKDF2_PREFIX,
    PRINCIPAL,
    AuthError,
    Principal,
    TokenIssuer,
    check_password,
    hash_password,
    principal,
)
from hub.core.errors import Unauthenticated
from tests.conftest import COUNTY, OTHER_TOWN, SECRET, TOWN, VILLAGE

OTHER_SECRET = "another-secret-0123456789abcdef-012345"


def raw_token(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def good_claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": "wang",
        "role": "operator",
        "centre": TOWN,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(changes)
    return claims


def test_issue_then_verify_round_trips() -> None:
    issuer = TokenIssuer(SECRET, 3600)
    p = issuer.verify(issuer.issue("li", Role.DISPATCHER, VILLAGE))
    assert p == Principal(user="li", role=Role.DISPATCHER, centre=VILLAGE)
    assert isinstance(p.role, Role)


def test_issue_sets_claims_and_default_ttl() -> None:
    issuer = TokenIssuer(SECRET, 1234)
    before = int(time.time())
    claims = jwt.decode(
        issuer.issue("li", Role.ADMIN, COUNTY), SECRET, algorithms=[ALGORITHM], issuer=ISSUER
    )
    assert claims["sub"] == "li" and claims["role"] == "admin" and claims["centre"] == COUNTY
    assert claims["iss"] == "zzhub"
    assert claims["exp"] - claims["iat"] == 1234
    assert before <= claims["iat"] <= int(time.time())


def test_explicit_ttl_overrides_default_even_zero() -> None:
    issuer = TokenIssuer(SECRET, 3600)
    claims = jwt.decode(
        issuer.issue("li", Role.ADMIN, COUNTY, ttl=5),
        SECRET,
        algorithms=[ALGORITHM],
        issuer=ISSUER,
    )
    assert claims["exp"] - claims["iat"] == 5
    expired = issuer.issue("li", Role.ADMIN, COUNTY, ttl=-10)
    with pytest.raises(AuthError, match=r"^token expired$"):
        issuer.verify(expired)


def test_wrong_secret_is_refused() -> None:
    token = TokenIssuer(OTHER_SECRET, 60).issue("li", Role.ADMIN, COUNTY)
    with pytest.raises(AuthError, match=r"^token signature is not valid$"):
        TokenIssuer(SECRET, 60).verify(token)


def test_garbage_token_is_refused() -> None:
    with pytest.raises(AuthError, match=r"^token is not valid: "):
        TokenIssuer(SECRET, 60).verify("not.a.jwt")


@pytest.mark.parametrize("missing", ["exp", "sub", "iss"])
def test_required_claims(missing: str) -> None:
    claims = good_claims()
    del claims[missing]
    with pytest.raises(AuthError, match=r"^token is not valid: "):
        TokenIssuer(SECRET, 60).verify(raw_token(claims))


def test_wrong_issuer_is_refused() -> None:
    with pytest.raises(AuthError, match=r"^token is not valid: "):
        TokenIssuer(SECRET, 60).verify(raw_token(good_claims(iss="someone-else")))


def test_unsigned_alg_none_token_is_refused() -> None:
    token = jwt.encode(good_claims(), "", algorithm="none")
    with pytest.raises(AuthError, match=r"^token is not valid: "):
        TokenIssuer(SECRET, 60).verify(token)


@pytest.mark.parametrize("role", ["root", "", None])
def test_unknown_role_is_refused(role: object) -> None:
    claims = good_claims(role=role)
    with pytest.raises(AuthError, match=r"^token carries an unknown role$"):
        TokenIssuer(SECRET, 60).verify(raw_token(claims))


@pytest.mark.parametrize("centre", [None, "", "41092a", 410922])
def test_bad_centre_is_refused(centre: object) -> None:
    claims = good_claims(centre=centre)
    if centre is None:
        del claims["centre"]
    with pytest.raises(AuthError, match=r"^token carries no centre$"):
        TokenIssuer(SECRET, 60).verify(raw_token(claims))


def test_every_role_survives_the_round_trip() -> None:
    issuer = TokenIssuer(SECRET, 60)
    for role in Role:
        assert issuer.verify(issuer.issue("u", role, TOWN)).role is role


def test_can_see_own_centre_and_below_only() -> None:
    town = Principal("wang", Role.OPERATOR, TOWN)
    assert town.can_see(TOWN)
    assert town.can_see(VILLAGE)
    assert not town.can_see(COUNTY)
    assert not town.can_see(OTHER_TOWN)
    county = Principal("admin", Role.ADMIN, COUNTY)
    assert all(county.can_see(c) for c in (COUNTY, TOWN, OTHER_TOWN, VILLAGE))
    assert not county.can_see("410923")
    village = Principal("t", Role.TERMINAL, VILLAGE)
    assert village.can_see(VILLAGE) and not village.can_see(TOWN)


def test_hash_password_format_and_salt() -> None:
    stored = hash_password("s3cret", iterations=1000)
    prefix, iterations, salt, digest = stored.split("$")
    assert prefix == PBKDF2_PREFIX and iterations == "1000"
    assert salt and digest
    assert hash_password("s3cret", iterations=1000) != stored  # fresh salt each time


def test_check_password_against_hash() -> None:
    stored = hash_password("s3cret", iterations=1000)
    assert check_password(stored, "s3cret")
    assert not check_password(stored, "s3cret ")
    assert not check_password(stored, "")


def test_check_password_plain_text_demo() -> None:
    assert check_password("demo-pass", "demo-pass")
    assert not check_password("demo-pass", "demo-Pass")
    assert check_password("口令", "口令")


@pytest.mark.parametrize("stored", [None, ""])
def test_no_stored_password_never_matches(stored: str | None) -> None:
    assert not check_password(stored, "")
    assert not check_password(stored, "anything")


@pytest.mark.parametrize(
    "stored",
    [
        f"{PBKDF2_PREFIX}$notanumber$c2FsdA==$ZGlnZXN0",
        f"{PBKDF2_PREFIX}$1000$onlythree",
        f"{PBKDF2_PREFIX}$1000$!!!$ZGlnZXN0",
    ],
)
def test_malformed_hash_is_false_not_an_error(stored: str) -> None:
    assert check_password(stored, "x") is False


def test_principal_of_a_request() -> None:
    request = make_mocked_request("GET", "/api/me", app=web.Application())
    with pytest.raises(Unauthenticated, match="authentication required") as err:
        principal(request)
    assert err.value.code == "unauthorized"
    who = Principal("li", Role.ADMIN, COUNTY)
    request[PRINCIPAL] = who
    assert principal(request) is who
