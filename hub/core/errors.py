"""The hub's refusals: what a service raises when a request cannot be met.

Services, stores and watchers raise these and know nothing of HTTP. `hub.http.errors` turns
them into a status and the JSON error shape `{"error": {"code": "...", "message": "..."}}`;
the WebSocket router turns them into its error frames with the same code and message.
`code` is the stable, machine-readable name clients branch on; each kind has a default that a
raise may refine (`Conflict("…", "already_answered")`).
"""

from __future__ import annotations


class HubError(Exception):
    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Invalid(HubError):
    """The request itself is wrong: a field missing, out of range, malformed."""

    code = "bad_request"


class Unauthenticated(HubError):
    """No identity, or one that is no longer valid."""

    code = "unauthorized"


class Forbidden(HubError):
    """The identity is known but may not do this (role, centre scope)."""

    code = "forbidden"


class NotFound(HubError):
    code = "not_found"


class Conflict(HubError):
    """The object is not in a state that allows this (already answered, ended, full)."""

    code = "conflict"


class NotAllowed(HubError):
    """An action this object never takes (trickle ICE on a session that wants one offer)."""

    code = "method_not_allowed"


class TooLarge(HubError):
    code = "body_too_large"


class Unsupported(HubError):
    """A body of a type this endpoint does not take."""

    code = "unsupported_media_type"


class TooMany(HubError):
    """Too many attempts: wait `retry_after` seconds."""

    code = "too_many_requests"

    def __init__(self, message: str, code: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class Unavailable(HubError):
    """Something this needs is away for now (a camera, Redis, a peer node): retry later."""

    code = "unavailable"
