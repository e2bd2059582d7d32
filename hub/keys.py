"""Typed keys of the shared state the application holds, and the caller's identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from config.schema import HubConfig, UserConfig
from hub.alerts import Alerts
from hub.alerts_watch import AlertWatch
from hub.audit import AuditLog
from hub.auth import Principal, TokenIssuer
from hub.calls import Calls
from hub.cameras import CameraRegistry
from hub.centres import CentreTree
from hub.db import Database
from hub.duty import DutyChecks
from hub.errors import ApiError
from hub.events import EventBus
from hub.presence import Presence
from hub.recordings import RecordingService
from hub.recordings_playback import PlaybackRegistry
from hub.rollcall import RollCalls
from hub.rooms import Rooms
from hub.walls import Walls
from hub.walls_sources import PictureSources
from signaling.whep import WhepSessions

if TYPE_CHECKING:
    from hub.cluster import Cluster
    from hub.cluster_cameras import RemoteCameras
    from hub.cluster_presence import ClusterPresence
    from hub.cluster_proxy import ClusterProxy
    from hub.petitions import Petitions
    from hub.petitions_hearing import HearingRecorder
    from hub.room_media import RoomMedia
    from hub.ws import WsRouter

CONFIG = web.AppKey("config", HubConfig)
CENTRES = web.AppKey("centres", CentreTree)
CAMERAS = web.AppKey("cameras", CameraRegistry)
WHEP = web.AppKey("whep", WhepSessions)
TOKENS = web.AppKey("tokens", TokenIssuer)
USERS = web.AppKey("users", dict[str, UserConfig])
STARTED = web.AppKey("started", float)
DB = web.AppKey("db", Database)
PRESENCE = web.AppKey("presence", Presence)
ROOMS = web.AppKey("rooms", Rooms)
ROOM_MEDIA: web.AppKey[RoomMedia] = web.AppKey("room_media")
WS: web.AppKey[WsRouter] = web.AppKey("ws")
EVENTS = web.AppKey("events", EventBus)
AUDIT = web.AppKey("audit", AuditLog)
RECORDINGS = web.AppKey("recordings", RecordingService)
PLAYBACKS = web.AppKey("playbacks", PlaybackRegistry)
# monitoring room (issue 6): decoded pictures, alerts, walls, duty checks
PICTURES = web.AppKey("pictures", PictureSources)
ALERTS = web.AppKey("alerts", Alerts)
ALERT_WATCH = web.AppKey("alert_watch", AlertWatch)
WALLS = web.AppKey("walls", Walls)
DUTY = web.AppKey("duty", DutyChecks)
# calls and roll calls (issue 3)
CALLS = web.AppKey("calls", Calls)
ROLLCALLS = web.AppKey("rollcalls", RollCalls)
# scale-out (issue 8): Redis presence, ownership map, cross-node events
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
# cameras other nodes own, viewed here through one relay leg each (issue 8)
REMOTE_CAMERAS: web.AppKey[RemoteCameras] = web.AppKey("remote_cameras")
# members connected to the other nodes, and owner forwarding / merged lists (issue 8)
CLUSTER_PRESENCE: web.AppKey[ClusterPresence] = web.AppKey("cluster_presence")
CLUSTER_PROXY: web.AppKey[ClusterProxy] = web.AppKey("cluster_proxy")
# petitions (issue 4): cases and the recorder of their hearings
PETITIONS: web.AppKey[Petitions] = web.AppKey("petitions")
HEARINGS: web.AppKey[HearingRecorder] = web.AppKey("hearings")
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    p: Principal | None = request.get(PRINCIPAL)
    if p is None:
        raise ApiError(401, "authentication required")
    return p
