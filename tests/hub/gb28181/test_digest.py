"""Digest authentication: RFC 2617 vectors, server ↔ client round trips, refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest

from hub.gb28181.digest import (
    Challenge,
    Credentials,
    DigestAuthority,
    DigestError,
    Verdict,
    authorize,
    digest_response,
    parse_digest,
)
from hub.gb28181.sip import SipRequest, parse_message
from tests.hub.gb28181.test_sip_torture import wire

DEVICE = "34020000001320000001"
REALM = "3402000000"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_rfc2617_example_with_qop_auth() -> None:
    """RFC 2617 §3.5: Mufasa / "Circle Of Life" (the published response, and the formula)."""
    ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    ha2 = md5("GET:/dir/index.html")
    nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    expected = md5(f"{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}")
    got = digest_response(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce=nonce,
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert got == expected == "6629fae49393a05397450978507c4ef1"


def test_sip_register_without_qop_rfc2069_form() -> None:
    uri = f"sip:34020000002000000001@{REALM}"
    expected = md5(f"{md5(f'{DEVICE}:{REALM}:12345678')}:abc123:{md5(f'REGISTER:{uri}')}")
    got = digest_response(
        username=DEVICE,
        realm=REALM,
        password="12345678",
        method="REGISTER",
        uri=uri,
        nonce="abc123",
    )
    assert got == expected


def test_challenge_header_round_trip() -> None:
    authority = DigestAuthority(REALM)
    challenge = authority.challenge()
    value = challenge.header_value()
    assert value.startswith(f'Digest realm="{REALM}", nonce="')
    assert "algorithm=MD5" in value and 'qop="auth"' in value
    assert Challenge.parse(value) == challenge
    stale = DigestAuthority(REALM, qop=False).challenge(stale=True)
    assert "stale=true" in stale.header_value() and "qop" not in stale.header_value()
    assert Challenge.parse(stale.header_value()).stale


@pytest.mark.parametrize("qop", [True, False])
def test_round_trip_client_and_server(qop: bool) -> None:
    authority = DigestAuthority(REALM, qop=qop)
    challenge = Challenge.parse(authority.challenge().header_value())
    creds = authorize(
        challenge,
        method="REGISTER",
        uri=f"sip:34020000002000000001@{REALM}",
        username=DEVICE,
        password="12345678",
    )
    assert (creds.qop == "auth") is qop
    parsed = Credentials.parse(creds.header_value())
    assert parsed == creds
    assert authority.verify("REGISTER", parsed, "12345678") is Verdict.ACCEPTED
    assert authority.verify("REGISTER", parsed, "wrong") is Verdict.REJECTED
    assert authority.verify("MESSAGE", parsed, "12345678") is Verdict.REJECTED


def test_the_uri_the_client_sent_is_the_one_checked() -> None:
    authority = DigestAuthority(REALM)
    challenge = authority.challenge()
    # a device that puts the server's address with a port in uri, not our Request-URI
    creds = authorize(
        challenge,
        method="REGISTER",
        uri="sip:34020000002000000001@192.168.1.10:5060",
        username=DEVICE,
        password="pw",
    )
    assert authority.verify("REGISTER", creds, "pw") is Verdict.ACCEPTED


def test_a_device_authorization_header_as_sent() -> None:
    authority = DigestAuthority(REALM, qop=False)
    nonce = authority.challenge().nonce
    uri = f"sip:34020000002000000001@{REALM}"
    response = md5(f"{md5(f'{DEVICE}:{REALM}:12345678')}:{nonce}:{md5(f'REGISTER:{uri}')}")
    data = wire(f"""\
REGISTER sip:34020000002000000001@{REALM} SIP/2.0
Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1
From: <sip:{DEVICE}@{REALM}>;tag=1
To: <sip:{DEVICE}@{REALM}>
Call-ID: 1
CSeq: 2 REGISTER
Authorization: Digest username="{DEVICE}", realm="{REALM}", nonce="{nonce}", uri="{uri}", response="{response.upper()}", algorithm=MD5
Content-Length: 0
""")
    request = parse_message(data)
    assert isinstance(request, SipRequest)
    header = request.headers.get("authorization")
    assert header is not None
    creds = Credentials.parse(header)
    assert authority.verify(request.method, creds, "12345678") is Verdict.ACCEPTED


def test_wrong_realm_and_foreign_nonce_are_rejected() -> None:
    authority = DigestAuthority(REALM)
    other = DigestAuthority("4401000000")
    creds = authorize(other.challenge(), method="REGISTER", uri="sip:x", username="u", password="p")
    assert authority.verify("REGISTER", creds, "p") is Verdict.REJECTED
    forged = Challenge(REALM, "1800000000.abcd.00000000000000000000000000000000", qop="auth")
    creds = authorize(forged, method="REGISTER", uri="sip:x", username="u", password="p")
    assert authority.verify("REGISTER", creds, "p") is Verdict.REJECTED
    tampered = authority.challenge().nonce.replace(".", "9.", 1)  # a later issue time
    creds = authorize(
        Challenge(REALM, tampered), method="REGISTER", uri="sip:x", username="u", password="p"
    )
    assert authority.verify("REGISTER", creds, "p") is Verdict.REJECTED


def test_nonce_past_its_lifetime_is_stale_only_with_the_right_password() -> None:
    clock = Clock()
    authority = DigestAuthority(REALM, lifetime=60, clock=clock)
    challenge = authority.challenge()
    creds = authorize(challenge, method="REGISTER", uri="sip:x", username="u", password="p")
    assert authority.verify("REGISTER", creds, "p") is Verdict.ACCEPTED
    clock.now += 61
    replay = authorize(challenge, method="REGISTER", uri="sip:x", username="u", password="p", nc=2)
    assert authority.verify("REGISTER", replay, "p") is Verdict.STALE
    assert authority.verify("REGISTER", replay, "wrong") is Verdict.REJECTED
    fresh = authority.challenge(stale=True)
    assert fresh.stale and fresh.nonce != challenge.nonce


def test_a_nonce_count_that_does_not_grow_is_a_replay() -> None:
    authority = DigestAuthority(REALM)
    challenge = authority.challenge()

    def creds(nc: int) -> Credentials:
        return authorize(
            challenge, method="MESSAGE", uri="sip:x", username="u", password="p", nc=nc, cnonce="c"
        )

    assert authority.verify("MESSAGE", creds(1), "p") is Verdict.ACCEPTED
    assert authority.verify("MESSAGE", creds(1), "p") is Verdict.REJECTED
    assert authority.verify("MESSAGE", creds(2), "p") is Verdict.ACCEPTED


def test_nonce_counts_are_bounded() -> None:
    authority = DigestAuthority(REALM, remembered=3)
    for _ in range(10):
        c = authorize(authority.challenge(), method="M", uri="u", username="u", password="p")
        assert authority.verify("M", c, "p") is Verdict.ACCEPTED
    assert len(authority._counts) == 3


def test_unsupported_algorithm_and_qop() -> None:
    authority = DigestAuthority(REALM)
    challenge = authority.challenge()
    good = authorize(challenge, method="M", uri="u", username="u", password="p")
    sha = dataclasses.replace(good, algorithm="SHA-256")
    assert authority.verify("M", sha, "p") is Verdict.REJECTED
    authint = dataclasses.replace(good, qop="auth-int")
    assert authority.verify("M", authint, "p") is Verdict.REJECTED
    with pytest.raises(DigestError):
        authorize(
            Challenge(REALM, "n", algorithm="SHA-256"),
            method="M",
            uri="u",
            username="u",
            password="p",
        )
    with pytest.raises(DigestError):
        authorize(
            Challenge(REALM, "n", qop="auth-int"), method="M", uri="u", username="u", password="p"
        )
    offered = authorize(
        Challenge(REALM, "n", qop="auth-int, auth"), method="M", uri="u", username="u", password="p"
    )
    assert offered.qop == "auth"


def test_regaut01_unknown_authorization_scheme_is_a_digest_error() -> None:
    """RFC 4475 §3.3.7: `Authorization: NoOneKnowsThisScheme opaque-data=here` → 401."""
    with pytest.raises(DigestError):
        Credentials.parse("NoOneKnowsThisScheme opaque-data=here")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        "Digest realm",
        'Digest realm="unterminated',
        'Digest realm="a" nonce="b"',
        'Digest realm="a", realm="b"',
        'Digest realm="a",, nonce="b"',
        'Digest username="u", realm="r", nonce="n", uri="u", response="x", qop=auth',
        'Digest username="u", realm="r", nonce="n", uri="u"',
    ],
)
def test_malformed_headers_raise_digest_error(value: str) -> None:
    with pytest.raises(DigestError):
        Credentials.parse(value)


def test_parse_digest_quoting() -> None:
    params = parse_digest('digest  Realm = "a \\"b\\", c" ,nonce=xyz')
    assert params == {"realm": 'a "b", c', "nonce": "xyz"}
    with pytest.raises(DigestError):
        Challenge.parse('Digest realm="a"')


def test_fuzz_only_digest_error_escapes() -> None:
    rng = random.Random(2617)
    header = (
        'Digest username="u", realm="r", nonce="n", uri="sip:a@b", response="0123", '
        'qop=auth, nc=00000001, cnonce="c", algorithm=MD5, opaque="o"'
    )
    authority = DigestAuthority("r")
    for _ in range(5000):
        chars = list(header)
        for _ in range(rng.randrange(1, 6)):
            chars[rng.randrange(len(chars))] = rng.choice('",= \\\t;x\x00é')
        value = "".join(chars)
        for parser in (Credentials.parse, Challenge.parse):
            try:
                parsed = parser(value)
            except DigestError:
                continue
            if isinstance(parsed, Credentials):
                assert authority.verify("REGISTER", parsed, "p") is Verdict.REJECTED
