"""Cameras: listing, snapshots and WHEP live view."""

from __future__ import annotations

from aiohttp import web

from hub import keys
from hub.cameras import Camera
from hub.errors import ApiError
from hub.turn import client_ice_servers_for, link_header
from signaling.whep import OfferError
from streams.snapshot import SnapshotUnavailable
from streams.stream import StreamState


def visible_camera(request: web.Request) -> Camera:
    """The camera named in the path, if the caller may see it. 404 either way otherwise, so
    a caller cannot probe which ids exist outside its scope."""
    p = keys.principal(request)
    cam = request.app[keys.CAMERAS].get(request.match_info["camera"])
    if cam is None or not p.can_see(cam.centre):
        raise ApiError(404, f"no camera {request.match_info['camera']!r} in your scope")
    return cam


async def list_cameras(request: web.Request) -> web.Response:
    p = keys.principal(request)
    cams = request.app[keys.CAMERAS].visible_to(p.centre)
    return web.json_response([c.to_json() for c in cams])


async def get_camera(request: web.Request) -> web.Response:
    return web.json_response(visible_camera(request).to_json())


async def snapshot(request: web.Request) -> web.Response:
    cam = visible_camera(request)
    timeout = request.app[keys.CONFIG].streams.connect_timeout
    try:
        jpeg = await cam.snapshot(timeout)
    except SnapshotUnavailable as err:
        raise ApiError(503, f"no picture from camera {cam.id}: {err}") from None
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def whep_offer(request: web.Request) -> web.Response:
    cam = visible_camera(request)  # authorization before the body is read
    if request.content_type != "application/sdp":
        raise ApiError(415, "WHEP offers must be sent as Content-Type: application/sdp")
    raw = await request.read()
    try:
        offer = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the SDP offer is not UTF-8 text") from None
    cfg = request.app[keys.CONFIG]
    stream = cam.stream
    playback = None
    if "start" in request.query:  # recorded playback from a moment: hub/api/recordings.py
        from hub.api import recordings as recordings_api

        stream, playback = await recordings_api.playback_stream(request, cam)
    if stream.relay.info is None and cfg.streams.first_packet_wait > 0:
        # learn the codec first so a non-H.264 camera gets its transcoder from the start
        lease = stream.acquire("whep-probe")
        try:
            await stream.wait_state(
                StreamState.ONLINE, StreamState.OFFLINE, timeout=cfg.streams.first_packet_wait
            )
        except TimeoutError:
            pass
        finally:
            lease.release()
    p = keys.principal(request)
    try:
        session, answer = await request.app[keys.WHEP].create(stream, offer, user=p.user)
    except OfferError as err:
        raise ApiError(400, str(err)) from None
    if playback is not None:
        recordings_api.playback_started(request, playback, session.id)
    location = f"/api/cameras/{cam.id}/whep/{session.id}"
    headers = {"Location": location, "ETag": f'"{session.id}"'}
    links = link_header(client_ice_servers_for(cfg.webrtc, p.user))  # incl. TURN credentials
    if links:
        headers["Link"] = links
    return web.Response(status=201, text=answer, content_type="application/sdp", headers=headers)


async def whep_delete(request: web.Request) -> web.Response:
    cam = visible_camera(request)
    p = keys.principal(request)
    sessions = request.app[keys.WHEP]
    session = sessions.get(request.match_info["session"])
    if session is None or session.camera != cam.id:
        raise ApiError(404, "no such WHEP session")
    if session.user != p.user and p.role != "admin":
        raise ApiError(403, "this session belongs to another user")
    await sessions.close(session.id, reason=f"deleted by {p.user}")
    return web.Response(status=200)


async def whep_patch(request: web.Request) -> web.Response:
    visible_camera(request)
    raise ApiError(
        405, "trickle ICE is not supported: send a complete offer", "trickle_unsupported"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cameras", list_cameras)
    app.router.add_get("/api/cameras/{camera}", get_camera)
    app.router.add_get("/api/cameras/{camera}/snapshot.jpg", snapshot)
    app.router.add_post("/api/cameras/{camera}/whep", whep_offer)
    app.router.add_delete("/api/cameras/{camera}/whep/{session}", whep_delete)
    app.router.add_patch("/api/cameras/{camera}/whep/{session}", whep_patch)
