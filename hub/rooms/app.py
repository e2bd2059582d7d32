"""The rooms slice in the app: who sits in which room (`Rooms`, from the start), the SFU and
its glue to the rooms (`RoomMedia`, while the hub runs), their routes and metric families.

Rooms exist before any cleanup context runs, so every slice can listen to them
(`on_end`, `on_seat_left`, `on_published`) from its own start. The SFU comes up after calls
and roll calls and before petitions, notices and broadcasts (hub/app.py), so the slices that
publish into rooms are torn down before it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.http.metrics import METRICS, Family, label
from hub.rooms import api
from hub.rooms.model import ROOMS, Rooms
from hub.rooms.service import ROOM_MEDIA, RoomMedia
from signaling.publish import Publication, Publications


def setup(app: web.Application, config: HubConfig) -> None:
    app[ROOMS] = Rooms(app[EVENTS])
    app.cleanup_ctx.append(rooms_ctx)
    api.add_routes(app)
    app[METRICS].add("rooms", lambda family: _families(app, family))


async def rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    media: RoomMedia | None = None

    def closed(publication: Publication, reason: str) -> None:
        if media is not None:
            media.publication_closed(publication, reason)

    publications = Publications(
        cfg.webrtc.ice_servers,
        connect_timeout=cfg.webrtc.session_timeout,
        on_close=closed,
        fast_rtp=cfg.webrtc.fast_rtp,
    )
    media = RoomMedia(app[ROOMS], publications)
    app[ROOM_MEDIA] = media
    media.start()
    yield
    await media.close()


def _families(app: web.Application, family: Family) -> None:
    rooms = app[ROOMS].active()
    by_kind = Counter(str(r.kind) for r in rooms)
    family(
        "zzhub_rooms",
        "gauge",
        "Rooms not ended, by kind.",
        [(f"kind={label(k)}", float(n)) for k, n in sorted(by_kind.items())],
    )
    seats = sum(1 for r in rooms for s in r.seats.values() if s.present)
    family("zzhub_room_seats", "gauge", "Seats present in rooms.", [("", float(seats))])
    media = app.get(ROOM_MEDIA)
    if media is None:
        return
    pubs = media.publications
    family(
        "zzhub_room_publications",
        "gauge",
        "Browser tracks published into rooms.",
        [("", float(len(pubs.publications())))],
    )
    family(
        "zzhub_room_subscribers",
        "gauge",
        "Subscriptions to room publications.",
        [("", float(len(pubs.subscriptions())))],
    )
    family(
        "zzhub_room_publish_failed_total",
        "counter",
        "Room publish/subscribe offers refused or failed.",
        [("", float(pubs.failed))],
    )
