"""Recordings: coverage and gaps, clip and evidence exports, event marks, playback control.

Scope first: a camera outside the caller's centre answers 404 as if it did not exist, before
any query parameter is looked at. Ids come from the path and the index; no request input is
ever joined into a file path (segment paths are read from the index and checked to stay
inside the recordings root).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from hub.cameras.service import CAMERAS, Camera
from hub.core.audit import AUDIT
from hub.core.auth import Principal, principal
from hub.core.errors import Conflict, Forbidden, HubError, Invalid, NotFound
from hub.core.state import CONFIG
from hub.core.times import compact, iso
from hub.http.files import send_file
from hub.http.request import read_json
from hub.http.ws import WS, Request, WsClient, WsError
from hub.recordings.export import inside, temp_path, write_export_zip
from hub.recordings.playback import PLAYBACKS, Playback
from hub.recordings.service import RECORDINGS, valid_tag
from hub.recordings.store import SegmentRow, coverage
from streams.playback import PlaylistItem
from streams.playback_clip import NothingRecorded, write_clip
from streams.stream import Stream

MAX_LIST_RANGE_MS = 31 * 86400 * 1000


MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_time(value: str | None, name: str) -> int | None:
    """ISO 8601 (naive means UTC) or milliseconds since the epoch -> ms."""
    if value is None or value == "":
        return None
    if value.isascii() and value.isdigit():
        ms = int(value)
    else:
        try:
            when = datetime.fromisoformat(value.replace(" ", "+"))  # '+' arrives as a space
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            ms = int(when.timestamp() * 1000)
        except (ValueError, OverflowError):
            raise Invalid(f"{name} must be ISO 8601 or epoch milliseconds") from None
    if not 0 <= ms <= MAX_MS:
        raise Invalid(f"{name} must be a time between 1970 and 9999")
    return ms


def time_range(request: web.Request, default_span_ms: int | None) -> tuple[int, int]:
    q = request.query
    to_ms = parse_time(q.get("to"), "to")
    from_ms = parse_time(q.get("from"), "from")
    if default_span_ms is None and (from_ms is None or to_ms is None):
        raise Invalid("from and to are required")
    to_ms = to_ms if to_ms is not None else int(time.time() * 1000)
    from_ms = from_ms if from_ms is not None else to_ms - (default_span_ms or 0)
    if to_ms <= from_ms:
        raise Invalid("to must be after from")
    return from_ms, to_ms


def _spans(pairs: list[tuple[int, int]]) -> list[dict[str, object]]:
    return [{"from": iso(a), "to": iso(b), "from_ms": a, "to_ms": b} for a, b in pairs]


async def list_recordings(request: web.Request) -> web.Response:
    p = principal(request)
    q = request.query
    index = request.app[RECORDINGS].index
    camera, tag = q.get("camera"), q.get("tag")
    if camera:
        cam = request.app[CAMERAS].get(camera)
        if cam is None or not p.can_see(cam.centre):
            raise NotFound(f"no camera {camera!r} in your scope")
    elif not tag:
        raise Invalid("camera= or tag= is required")
    elif not valid_tag(tag):
        raise Invalid("tag is not a valid case tag")
    elif not await request.app[RECORDINGS].may_read_tag(tag, p):
        raise NotFound(f"no recordings for {tag!r} in your scope")
    from_ms, to_ms = time_range(request, 86400 * 1000)
    if to_ms - from_ms > MAX_LIST_RANGE_MS:
        raise Invalid("the range may span at most 31 days")
    if camera:
        rows = await index.between(camera, from_ms, to_ms)
    else:
        rows = [
            r
            for r in await index.by_tag(str(tag))
            if p.can_see(r.centre) and r.start_ms < to_ms and r.until_ms > from_ms
        ]
    spans, gaps = coverage(rows, from_ms, to_ms)
    recorder = request.app[RECORDINGS].recorders.get(camera or "")
    return web.json_response(
        {
            "camera": camera,
            "tag": tag,
            "from": iso(from_ms),
            "to": iso(to_ms),
            "from_ms": from_ms,
            "to_ms": to_ms,
            "mode": str(recorder.mode) if recorder else None,
            "recording": bool(recorder and recorder.recording),
            "segments": [{**r.to_json(), "from": iso(r.start_ms)} for r in rows],
            "coverage": _spans(spans),
            "gaps": _spans(gaps),
        }
    )


async def _segments_for_export(
    request: web.Request, cam: Camera
) -> tuple[int, int, list[SegmentRow]]:
    from_ms, to_ms = time_range(request, None)
    limit = request.app[CONFIG].recording.max_clip_seconds * 1000
    if to_ms - from_ms > limit:
        raise Invalid(f"a clip may span at most {limit / 1000:.0f} s")
    rows = await request.app[RECORDINGS].index.between(cam.id, from_ms, to_ms)
    if not rows:
        raise NotFound("nothing was recorded in that range")
    return from_ms, to_ms, rows


async def clip(request: web.Request) -> web.StreamResponse:
    cam = request.app[CAMERAS].visible(request.match_info["camera"], principal(request))
    p = principal(request)
    from_ms, to_ms, rows = await _segments_for_export(request, cam)
    root = request.app[RECORDINGS].root
    items = [PlaylistItem(inside(root, r.name), r.start_ms, r.end_ms) for r in rows]
    title = f"{cam.config.name} ({cam.id}) {iso(from_ms)} – {iso(to_ms)}"
    metadata = {
        "title": title,
        "artist": p.user,
        "date": iso(from_ms),
        "comment": f"camera {cam.id}, {iso(from_ms)} to {iso(to_ms)}, "
        f"exported by {p.user} at {iso(int(time.time() * 1000))}",
        "zzhub_camera": cam.id,
        "zzhub_from": iso(from_ms),
        "zzhub_to": iso(to_ms),
        "zzhub_exported_by": p.user,
    }
    out = temp_path(request.app[RECORDINGS].root, ".mp4")
    try:
        result = await asyncio.to_thread(write_clip, items, from_ms, to_ms, out, metadata)
    except NothingRecorded:
        out.unlink(missing_ok=True)
        raise NotFound("nothing was recorded in that range") from None
    request.app[AUDIT].record(
        p.user,
        "export.clip",
        f"camera:{cam.id}",
        {
            "from": iso(from_ms),
            "to": iso(to_ms),
            "packets": result.packets,
            "segments": [r.sha256 for r in rows],
        },
        cam.centre,
    )
    name = f"{cam.id}_{compact(from_ms)}_{compact(to_ms)}.mp4"
    return await send_file(request, out, name, "video/mp4")


async def export_zip(request: web.Request) -> web.StreamResponse:
    """Evidence export of a camera's range: original segments + hash-chained manifest."""
    cam = request.app[CAMERAS].visible(request.match_info["camera"], principal(request))
    p = principal(request)
    from_ms, to_ms, rows = await _segments_for_export(request, cam)
    closed = [r for r in rows if r.end_ms is not None]
    if not closed:
        raise Conflict("the range is still being recorded; try again when it closes")
    header = {
        "camera": cam.id,
        "camera_name": cam.config.name,
        "centre": cam.centre,
        "from": iso(from_ms),
        "to": iso(to_ms),
        "exported_by": p.user,
        "exported_at": iso(int(time.time() * 1000)),
    }
    return await _export(request, closed, header, f"{cam.id}_{compact(from_ms)}_{compact(to_ms)}")


async def export_tag(request: web.Request) -> web.StreamResponse:
    """Evidence export of a case (hearing recordings bound to `tag`)."""
    p = principal(request)
    tag = request.query.get("tag", "")
    if not valid_tag(tag):
        raise Invalid("tag= (a case tag) is required")
    if not await request.app[RECORDINGS].may_read_tag(tag, p):
        raise NotFound(f"no closed recordings for {tag!r} in your scope")
    rows = [
        r
        for r in await request.app[RECORDINGS].index.by_tag(tag)
        if p.can_see(r.centre) and r.end_ms is not None
    ]
    if not rows:
        raise NotFound(f"no closed recordings for {tag!r} in your scope")
    header = {"tag": tag, "exported_by": p.user, "exported_at": iso(int(time.time() * 1000))}
    return await _export(request, rows, header, f"case_{tag}")


async def _export(
    request: web.Request, rows: list[SegmentRow], header: Mapping[str, object], stem: str
) -> web.StreamResponse:
    p = principal(request)
    out = temp_path(request.app[RECORDINGS].root, ".zip")
    root = request.app[RECORDINGS].root
    manifest = await asyncio.to_thread(write_export_zip, root, rows, dict(header), out)
    target = f"camera:{header['camera']}" if "camera" in header else f"case:{header['tag']}"
    centre = str(header.get("centre", p.centre))
    request.app[AUDIT].record(
        p.user, "export.evidence", target, {"head": manifest["head"], "segments": len(rows)}, centre
    )
    return await send_file(request, out, f"{stem}.zip", "application/zip")


async def mark(request: web.Request) -> web.Response:
    """A manual event mark: starts (or extends) an on_alert recording with its pre-event."""
    cam = request.app[CAMERAS].visible(request.match_info["camera"], principal(request))
    p = principal(request)
    note = ""
    if request.can_read_body:
        body = await read_json(request)
        note = str(body.get("note", ""))[:200]
    service = request.app[RECORDINGS]
    recorder = service.recorders.get(cam.id)
    if recorder is None:
        raise Conflict(f"camera {cam.id} is not set to record (record: off)")
    service.trigger(cam.id, "mark")
    request.app[AUDIT].record(
        p.user, "recording.mark", f"camera:{cam.id}", {"note": note}, cam.centre
    )
    return web.json_response(
        {
            "camera": cam.id,
            "mode": str(recorder.mode),
            "recording": recorder.recording,
            "at": iso(int(time.time() * 1000)),
        }
    )


# -- playback -----------------------------------------------------------------------------
class CameraPlayback:
    """The cameras slice's `PlaybackSource`: `POST /api/cameras/{camera}/whep?start=…` plays
    the recordings of the camera from then, audited as `playback.start`."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def open(
        self, camera: Camera, start: str, user: str
    ) -> tuple[Stream, Callable[[str], None]]:
        start_ms = parse_time(start, "start")
        if start_ms is None:
            raise Invalid("start must be ISO 8601 or epoch milliseconds")
        if not await self.app[RECORDINGS].index.playlist(camera.id, start_ms, 1):
            raise NotFound(
                f"nothing of camera {camera.id} was recorded at or after {iso(start_ms)}"
            )
        playback = self.app[PLAYBACKS].create(camera, start_ms, user)

        def started(session_id: str) -> None:
            self.app[PLAYBACKS].bind(playback, session_id)
            self.app[AUDIT].record(
                playback.user,
                "playback.start",
                f"camera:{playback.camera}",
                {"session": session_id, "start": iso(playback.start_ms)},
                playback.centre,
            )

        return playback.stream, started


def _own_playback(request: web.Request) -> Playback:
    return _owned(request.app, principal(request), request.match_info["session"])


def _owned(app: web.Application, p: Principal, session_id: str) -> Playback:
    playback = app[PLAYBACKS].get(session_id)
    if playback is None or not p.can_see(playback.centre):
        raise NotFound("no such playback session")
    if playback.user != p.user and p.role != "admin":
        raise Forbidden("this playback belongs to another user")
    return playback


async def playback_status(request: web.Request) -> web.Response:
    return web.json_response(_own_playback(request).to_json())


async def playback_control(request: web.Request) -> web.Response:
    playback = _own_playback(request)
    _control(playback, await read_json(request))
    return web.json_response(playback.to_json())


def _control(playback: Playback, body: dict[str, Any]) -> None:
    """seek / pause / resume / speed, from REST or the WebSocket."""
    action, ctl = body.get("action"), playback.control
    if action == "seek":
        at = parse_time(str(body.get("at", "")), "at")
        if at is None:
            raise Invalid("seek needs at (ISO 8601 or epoch ms)")
        if at > time.time() * 1000 + 60_000:
            raise Invalid("seek to a moment that has been recorded (not the future)")
        ctl.seek(at)
    elif action == "pause":
        ctl.pause()
    elif action == "resume":
        ctl.resume()
    elif action == "speed":
        try:
            ctl.set_speed(float(str(body.get("speed"))))
        except ValueError as err:
            raise Invalid(str(err)) from None
    else:
        raise Invalid("action must be seek, pause, resume or speed")


class PlaybackControl(Request):
    session: str = Field(min_length=1, max_length=64)
    action: Literal["seek", "pause", "resume", "speed"]
    at: str | int | None = None
    speed: float | None = None


def register_ws(app: web.Application) -> None:
    """`playback.control` over /ws: the same actions as POST /api/playback/{session}/control."""

    async def control(client: WsClient, req: PlaybackControl) -> dict[str, Any]:
        try:
            playback = _owned(app, client.principal, req.session)
            _control(playback, req.model_dump(exclude={"session"}, exclude_none=True))
        except HubError as err:
            raise WsError(err.code, err.message) from None
        return playback.to_json()

    app[WS].register("playback.control", PlaybackControl, control)


async def recorder_stats(request: web.Request) -> web.Response:
    """Counters of the recorders visible to the caller (packets, drops, segments, errors)."""
    p = principal(request)
    visible = {c.id for c in request.app[CAMERAS].visible_to(p.centre)}
    stats = request.app[RECORDINGS].stats()
    recorders = [r for r in stats["recorders"] if r["source"] in visible]  # type: ignore[attr-defined]
    return web.json_response(
        {
            **stats,
            "recorders": recorders,
            "rooms": [],
            "root": None if p.role != "admin" else stats["root"],
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/stats", recorder_stats)
    app.router.add_get("/api/recordings/export.zip", export_tag)
    app.router.add_get("/api/cameras/{camera}/clip.mp4", clip)
    app.router.add_get("/api/cameras/{camera}/export.zip", export_zip)
    app.router.add_post("/api/cameras/{camera}/mark", mark)
    app.router.add_get("/api/playback/{session}", playback_status)
    app.router.add_post("/api/playback/{session}/control", playback_control)
    register_ws(app)
