"""Small shared pieces: the hub's refusals, time formats, TURN credentials and Link headers."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from hub.core import errors
from hub.core.errors import Conflict, HubError, Invalid
from hub.core.times import compact, iso
from hub.core.turn import link_header, turn_credentials, turn_password

KINDS = [
    errors.Invalid,
    errors.Unauthenticated,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.NotAllowed,
    errors.TooLarge,
    errors.Unsupported,
    errors.Unavailable,
]


def test_every_refusal_is_a_hub_error_with_its_own_code() -> None:
    codes = [kind.code for kind in KINDS]
    assert len(set(codes)) == len(codes)
    for kind in KINDS:
        err = kind("m")
        assert isinstance(err, HubError) and isinstance(err, Exception)
        assert err.args == ("m",)


def test_a_refined_code_is_per_instance() -> None:
    refined = Conflict("taken", "already_answered")
    assert refined.code == "already_answered" and refined.message == "taken"
    assert Conflict("again").code == "conflict"
    assert Conflict.code == "conflict"
    assert Invalid("x", None).code == "bad_request"


def test_refusals_are_raised_and_caught_as_hub_errors() -> None:
    with pytest.raises(HubError) as caught:
        raise errors.NotFound("no camera 'x'")
    assert caught.value.code == "not_found" and str(caught.value) == "no camera 'x'"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_764_722_160_123, "2025-12-03T00:36:00.123Z"),
        (1_796_256_000_999, "2026-12-03T00:00:00.999Z"),
    ],
)
def test_iso_is_utc_with_milliseconds(ms: int, text: str) -> None:
    assert iso(ms) == text


def test_compact_is_for_file_names() -> None:
    assert compact(1_796_256_000_999) == "20261203T000000Z"
    assert compact(1_763_859_060_000) == "20251123T005100Z"


def test_turn_password_is_base64_hmac_sha1() -> None:
    password = turn_password("north", "1458848286:alice")
    digest = hmac.new(b"north", b"1458848286:alice", hashlib.sha1).digest()
    assert password == base64.b64encode(digest).decode()
    assert len(password) == 28 and password.endswith("=")
    assert turn_password("south", "1458848286:alice") != password


def test_turn_credentials_expire_ttl_after_now() -> None:
    username, credential = turn_credentials("s" * 32, "li", 600, now=1000.9)
    assert username == "1600:li"
    assert credential == turn_password("s" * 32, "1600:li")


def test_link_header_lists_each_url() -> None:
    servers: list[dict[str, object]] = [
        {"urls": ["stun:stun.example:3478"]},
        {
            "urls": ["turn:t.example:3478?transport=udp", "turns:t.example:5349"],
            "username": "1600:li",
            "credential": "pw",
        },
    ]
    assert link_header(servers) == (
        '<stun:stun.example:3478>; rel="ice-server", '
        '<turn:t.example:3478?transport=udp>; rel="ice-server"; username="1600:li"; '
        'credential="pw"; credential-type="password", '
        '<turns:t.example:5349>; rel="ice-server"; username="1600:li"; '
        'credential="pw"; credential-type="password"'
    )
    assert link_header([]) == ""
