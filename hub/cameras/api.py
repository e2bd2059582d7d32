"""Cameras: listing, snapshots and WHEP live view.

In a hub cluster the cameras other nodes own are listed and viewed here too (with `node` and
`available`), each through one hub-to-hub relay leg shared by every viewer on this node
(the cluster add-on, hub/cluster/cameras.py).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from hub.cameras.service import CAMERAS, PLAYBACK, WHEP, Camera, require_node
from hub.core.audit import AUDIT
from hub.core.auth import principal
from hub.core.cluster import link_of
from hub.core.errors import (
    Forbidden,
    Invalid,
    NotAllowed,
    NotFound,
    Unavailable,
    Unsupported,
)
from hub.core.state import CONFIG
from hub.core.turn import client_ice_servers_for, link_header
from hub.http.request import check_offer
from signaling.whep import OfferError
from streams.snapshot import SnapshotUnavailable
from streams.stream import StreamState


async def viewable_camera(request: web.Request) -> Camera:
    """The camera named in the path (this node's or another's) if the caller may see it."""
    return await request.app[CAMERAS].viewable(request.match_info["camera"], principal(request))


async def list_cameras(request: web.Request) -> web.Response:
    p = principal(request)
    app = request.app
    registry = app[CAMERAS]
    cams = [c.to_json() for c in registry.visible_to(p.centre)]
    link = link_of(app)
    if link.active:
        for cam in cams:
            cam["node"], cam["available"] = link.node_id, True
    if registry.remote is not None:
        cams.extend(registry.remote.visible_to(p.centre))
    return web.json_response(cams)


async def get_camera(request: web.Request) -> web.Response:
    return web.json_response((await viewable_camera(request)).to_json())


async def snapshot(request: web.Request) -> web.Response:
    cam = await viewable_camera(request)
    require_node(cam)
    timeout = request.app[CONFIG].streams.connect_timeout
    try:
        jpeg = await cam.snapshot(timeout)
    except SnapshotUnavailable as err:
        raise Unavailable(f"no picture from camera {cam.id}: {err}") from None
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def whep_offer(request: web.Request) -> web.Response:
    cam = await viewable_camera(request)  # authorization before the body is read
    if cam.node and "start" in request.query:
        raise NotFound(f"recordings of camera {cam.id} are kept by hub node {cam.node}")
    require_node(cam)
    if request.content_type != "application/sdp":
        raise Unsupported("WHEP offers must be sent as Content-Type: application/sdp")
    raw = await request.read()
    try:
        offer = check_offer(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Invalid("the SDP offer is not UTF-8 text") from None
    cfg = request.app[CONFIG]
    stream = cam.stream
    p = principal(request)
    started: Callable[[str], None] | None = None
    if "start" in request.query:  # recorded playback from a moment (the recordings slice)
        source = request.app.get(PLAYBACK)
        if source is None:
            raise NotFound("this hub keeps no recordings")
        stream, started = await source.open(cam, request.query["start"], p.user)
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
    try:
        session, answer = await request.app[WHEP].create(stream, offer, user=p.user)
    except OfferError as err:
        raise Invalid(str(err)) from None
    if started is not None:
        started(session.id)
    if cam.node:  # another node's camera: the audit hook knows this node's cameras only
        request.app[AUDIT].record(
            p.user,
            "view.start",
            f"camera:{cam.id}",
            {"session": session.id, "node": cam.node},
            cam.centre,
        )
    location = f"/api/cameras/{cam.id}/whep/{session.id}"
    headers = {"Location": location, "ETag": f'"{session.id}"'}
    links = link_header(client_ice_servers_for(cfg.webrtc, p.user))  # incl. TURN credentials
    if links:
        headers["Link"] = links
    return web.Response(status=201, text=answer, content_type="application/sdp", headers=headers)


async def whep_delete(request: web.Request) -> web.Response:
    p = principal(request)
    sessions = request.app[WHEP]
    session = sessions.get(request.match_info["session"])
    own = session is not None and session.user == p.user
    if own and session is not None and session.camera == request.match_info["camera"]:
        # one's own session ends whatever the camera's scope (a camera a room's host shared
        # with a participant outside it)
        await sessions.close(session.id, reason=f"deleted by {p.user}")
        return web.Response(status=200)
    cam = await viewable_camera(request)
    if session is None or session.camera != cam.id:
        raise NotFound("no such WHEP session")
    if session.user != p.user and p.role != "admin":
        raise Forbidden("this session belongs to another user")
    await sessions.close(session.id, reason=f"deleted by {p.user}")
    return web.Response(status=200)


async def whep_patch(request: web.Request) -> web.Response:
    await viewable_camera(request)
    raise NotAllowed("trickle ICE is not supported: send a complete offer", "trickle_unsupported")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cameras", list_cameras)
    app.router.add_get("/api/streams", streams)
    app.router.add_get("/api/cameras/{camera}", get_camera)
    app.router.add_get("/api/cameras/{camera}/snapshot.jpg", snapshot)
    app.router.add_post("/api/cameras/{camera}/whep", whep_offer)
    app.router.add_delete("/api/cameras/{camera}/whep/{session}", whep_delete)
    app.router.add_patch("/api/cameras/{camera}/whep/{session}", whep_patch)


async def streams(request: web.Request) -> web.Response:
    p = principal(request)
    out = []
    for cam in request.app[CAMERAS].visible_to(p.centre):
        out.append({"camera": cam.id, "centre": cam.centre, **cam.stream.stats()})
    return web.json_response(out)
