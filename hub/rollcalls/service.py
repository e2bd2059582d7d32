"""Roll call (一键查岗): ask the duty terminals of many centres to show they are staffed.

`RollCalls` owns the running roll calls (in memory, at most `max_live`), one timeout task each,
and the ledger writes (`RollCallLedger`). Starting one opens a `RoomKind.ROLLCALL` room hosted
by the dispatcher with the centres invited; each connected duty terminal gets
`rollcall.check` and answers (automatically, or by pressing 在岗), then publishes its video
into the room through the room endpoints, so the dispatcher sees a grid. A centre with no duty
terminal connected is `offline` at once. The roll call closes at its timeout, when every
centre answered, when the dispatcher closes it, or when its room ends; the room itself stays
open for the dispatcher (the grid) until it is ended. Snapshots of a centre's video are stored
by `attach_snapshot` under DATA_DIR/rollcall/<id>/<centre>.jpg.

In a hub cluster the node that runs a roll call owns it (`claim("rollcall", id)`, the ledger
included: re-claimed at start) and `Presence` knows the duty terminals of every node: they are
checked wherever they are connected and answer through `hub.cluster.proxy`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from config.schema import Role
from hub.core.auth import Principal
from hub.core.centres import Centre
from hub.core.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub.core.events import EventBus
from hub.core.presence import Presence
from hub.rollcalls.model import EntryStatus, RollCall, RollCallEntry, RollCallState
from hub.rollcalls.store import RollCallLedger
from hub.rooms.model import Room, RoomKind, Rooms, Seat
from signaling.publish import Publication
from streams.hooks import Connection
from streams.snapshot import SnapshotUnavailable, snapshot_jpeg
from streams.tasks import TaskSet

log = logging.getLogger(__name__)
SNAPSHOT_WAIT = 10.0  # seconds for a roll-call terminal's first keyframe

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SNAPSHOT = 4 * 1024 * 1024


class RollCalls:
    def __init__(
        self,
        ledger: RollCallLedger,
        rooms: Rooms,
        presence: Presence,
        events: EventBus,
        *,
        data_dir: Path,
        timeout: float,
        duty_users: set[str],
        max_live: int = 500,
        claim: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self._claim = claim  # a hub cluster: (kind, id) is owned by this node
        self._hooked: list[Connection] = []  # disconnected at close
        self._rooms = rooms
        self._presence = presence
        self._events = events
        self.snapshot_dir = data_dir / "rollcall"
        self.timeout = timeout
        self._duty_users = duty_users
        self.max_live = max_live
        self._live: dict[str, RollCall] = {}
        self._by_room: dict[str, str] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks = TaskSet(__name__, log)  # timers (cancellable) and writes (awaited)

    async def start(self) -> None:
        closed = await self.ledger.open()
        if closed:
            log.warning("closed %d roll call(s) left running by the previous run", closed)
        if self._claim is not None:
            for rollcall_id in await self.ledger.ids():
                self._claim("rollcall", rollcall_id)
        self._hooked += [
            self._rooms.on_end.connect(self._room_ended),
            self._rooms.on_published.connect(self.seat_published),
        ]

    async def close(self) -> None:
        for hook in self._hooked:
            hook.disconnect()
        for rc in list(self._live.values()):
            self._close(rc, "shutdown")
        self._timers.clear()
        await self._tasks.close()

    # -- running a roll call ---------------------------------------------------------------
    async def run(
        self, host: Principal, centres: list[Centre], *, timeout: float | None, label: str
    ) -> RollCall:
        """Check `centres` (scope already checked by `hub.core.scopes.rollcall_targets`)."""
        if not centres:
            raise Invalid("no centre to check")
        if len(self._live) >= self.max_live:
            raise Unavailable(f"too many running roll calls (limit {self.max_live})")
        room = self._rooms.create(
            host,
            kind=RoomKind.ROLLCALL,
            title=f"一键查岗 {label}",
            centres=[c.code for c in centres],
        )
        rc = RollCall(
            id=secrets.token_urlsafe(9),
            room=room.id,
            started_by=host.user,
            started_by_centre=host.centre,
            label=label,
            timeout=timeout or self.timeout,
            entries={},
        )
        for centre in centres:
            duty = [m for m in self._presence.online_in(centre.code) if m.duty]
            status = EntryStatus.CHECKING if duty else EntryStatus.OFFLINE
            entry = RollCallEntry(centre.code, centre.name, status, [m.user for m in duty])
            rc.entries[centre.code] = entry
            for member in duty:
                self._events.publish(
                    "rollcall.check", centre.code, self._check(rc, entry), to_users={member.user}
                )
        self._live[rc.id] = rc
        self._by_room[room.id] = rc.id
        if self._claim is not None:
            self._claim("rollcall", rc.id)
        self._timers[rc.id] = self._spawn(self._expire(rc))
        self._updated(rc)
        await self._saved(rc)
        return rc

    async def answer(self, rollcall_id: str, who: Principal, *, auto: bool = False) -> RollCall:
        rc = await self._running(rollcall_id, who)
        entry = rc.entries.get(who.centre)
        if entry is None:
            raise Forbidden(f"roll call {rc.id} does not check your centre {who.centre}")
        if who.role is not Role.TERMINAL and who.user not in self._duty_users:
            raise Forbidden("only a terminal of the centre answers a roll call")
        if entry.answered:
            raise Conflict(f"{entry.centre} already answered (by {entry.answered_by})")
        entry.move(rc.id, EntryStatus.ANSWERED)
        entry.answered_by, entry.auto = who.user, auto
        entry.answered_at = time.time()
        entry.response_time = round(entry.answered_at - rc.started, 3)
        if all(e.answered for e in rc.entries.values()):
            self._close(rc, "all_answered")
        else:
            self._updated(rc, entry.centre)
        await self._saved(rc)
        return rc

    async def finish(self, rollcall_id: str, who: Principal) -> RollCall:
        """Close a running roll call early (its host or an admin)."""
        rc = await self._running(rollcall_id, who)
        if who.user != rc.started_by and who.role is Role.ADMIN and not self.visible(rc, who):
            raise NotFound(f"no roll call {rollcall_id!r} in your scope")  # another township's
        if who.user != rc.started_by and who.role is not Role.ADMIN:
            raise Forbidden(f"only {rc.started_by} (who ran it) may close this roll call")
        write = self._close(rc, "closed")
        if write is not None:
            await asyncio.shield(write)
        return rc

    def running(self) -> list[RollCall]:
        """The roll calls running now (on this node)."""
        return list(self._live.values())

    def seat_published(
        self, room: Room, seat: Seat, publication: Publication
    ) -> Coroutine[Any, Any, None] | None:
        """`Rooms.on_published`: a duty terminal answering a roll call publishes its video;
        keep one picture of it in the roll-call ledger (the coroutine is RoomMedia's to run)."""
        if room.kind is not RoomKind.ROLLCALL or seat.user == room.host:
            return None
        rollcall_id = self.for_room(room.id)
        if rollcall_id is None:
            return None
        return self._take_snapshot(rollcall_id, seat.centre, publication)

    async def _take_snapshot(self, rollcall_id: str, centre: str, publication: Publication) -> None:
        relay = publication.video
        if not await relay.wait_keyframe(SNAPSHOT_WAIT) or relay.info is None:
            log.info("roll call %s: no picture from %s", rollcall_id, centre)
            return
        try:
            jpeg = await snapshot_jpeg(relay.info, relay.gop()[:8])
        except SnapshotUnavailable as err:
            log.info("roll call %s: no snapshot from %s: %s", rollcall_id, centre, err)
            return
        await self.attach_snapshot(rollcall_id, centre, jpeg)

    def for_room(self, room_id: str) -> str | None:
        """The roll call whose grid is this room (until the room ends), if any."""
        return self._by_room.get(room_id)

    async def attach_snapshot(self, rollcall_id: str, centre: str, jpeg: bytes) -> str:
        """Store a JPEG of `centre`'s video for this roll call (the hook room media calls once
        a terminal publishes; terminals may also upload one). Returns the stored path."""
        if not ID_RE.match(rollcall_id) or not centre.isdigit():
            raise Invalid("bad roll call id or centre code")
        if not jpeg.startswith(b"\xff\xd8") or len(jpeg) > MAX_SNAPSHOT:
            raise Invalid(f"a snapshot is a JPEG of at most {MAX_SNAPSHOT} bytes")
        rc = self._live.get(rollcall_id) or await self.ledger.get(rollcall_id)
        if rc is None or centre not in rc.entries:
            raise NotFound(f"roll call {rollcall_id} did not check {centre}")
        relative = f"rollcall/{rollcall_id}/{centre}.jpg"
        path = self.snapshot_dir / rollcall_id / f"{centre}.jpg"
        await asyncio.to_thread(_write_file, path, jpeg)
        live = self._live.get(rollcall_id)
        if live is not None:
            live.entries[centre].snapshot = relative
            await self._saved(live)
        else:
            await self.ledger.set_snapshot(rollcall_id, centre, relative)
        return relative

    async def read_snapshot(self, rc: RollCall, centre: str) -> bytes:
        entry = rc.entries.get(centre)
        if entry is None or entry.snapshot is None:
            raise NotFound(f"no snapshot of {centre} in roll call {rc.id}")
        path = self.snapshot_dir / rc.id / f"{centre}.jpg"
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"the snapshot of {centre} is gone") from None

    # -- reading ---------------------------------------------------------------------------
    async def get(self, rollcall_id: str, who: Principal) -> RollCall:
        rc = self._live.get(rollcall_id) or await self.ledger.get(rollcall_id)
        if rc is None or not self.visible(rc, who):
            raise NotFound(f"no roll call {rollcall_id!r} in your scope")
        return rc

    @staticmethod
    def visible(rc: RollCall, who: Principal) -> bool:
        return who.can_see(rc.started_by_centre) or any(who.can_see(c) for c in rc.entries)

    async def page(self, who: Principal, page: int, per_page: int) -> tuple[list[RollCall], int]:
        rcs, total = await self.ledger.page(who.centre, page, per_page)
        return [self._live.get(rc.id, rc) for rc in rcs], total

    def pending_for(self, who: Principal) -> list[dict[str, Any]]:
        """Checks `who`'s centre has not answered yet (a terminal connecting late asks)."""
        return [
            self._check(rc, rc.entries[who.centre])
            for rc in self._live.values()
            if rc.running and who.centre in rc.entries and not rc.entries[who.centre].answered
        ]

    # -- internals -------------------------------------------------------------------------
    async def _running(self, rollcall_id: str, who: Principal) -> RollCall:
        rc = self._live.get(rollcall_id)
        if rc is not None and rc.running:
            return rc
        closed = rc or await self.ledger.get(rollcall_id)
        if closed is None or not self.visible(closed, who):
            raise NotFound(f"no roll call {rollcall_id!r} in your scope")
        raise Conflict(f"roll call {rollcall_id} is closed ({closed.close_reason})")

    @staticmethod
    def _check(rc: RollCall, entry: RollCallEntry) -> dict[str, Any]:
        return {
            "rollcall": rc.id,
            "room": rc.room,
            "centre": entry.centre,
            "from": rc.started_by,
            "from_centre": rc.started_by_centre,
            "expires_at": rc.expires_at,
            "auto_answer": True,
        }

    async def _expire(self, rc: RollCall) -> None:
        await asyncio.sleep(max(0.0, rc.expires_at - time.time()))
        self._timers.pop(rc.id, None)
        write = self._close(rc, "timeout")
        if write is not None:
            await asyncio.shield(write)

    def _close(self, rc: RollCall, reason: str) -> asyncio.Task[None] | None:
        if not rc.running:
            return None
        for entry in rc.entries.values():
            if entry.status is EntryStatus.CHECKING:
                entry.move(rc.id, EntryStatus.NO_ANSWER)
        rc.set_state(RollCallState.CLOSED)
        rc.closed_at, rc.close_reason = time.time(), reason
        timer = self._timers.pop(rc.id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self._updated(rc)
        write = self._save(rc)
        write.add_done_callback(lambda _: self._forget(rc))
        return write

    def _forget(self, rc: RollCall) -> None:
        # `_by_room` keeps the grid room → roll call link until the room ends: terminals that
        # answer last still publish into the grid (and get their snapshot filed)
        self._live.pop(rc.id, None)

    def _room_ended(self, room: Room) -> None:
        rc = self._live.get(self._by_room.pop(room.id, ""))
        if rc is not None:
            self._close(rc, "room_ended")

    def _updated(self, rc: RollCall, *centres: str) -> None:
        """The whole ledger to who ran it; to a checked centre's terminals only their own
        entry, and only when it changed (or the roll call closed): O(centres) per change."""
        self._events.publish(
            "rollcall.updated", rc.started_by_centre, rc.to_json(), to_users={rc.started_by}
        )
        for code in centres or (rc.entries if not rc.running else ()):
            entry = rc.entries[code]
            people = {*entry.asked, *([entry.answered_by] if entry.answered_by else [])}
            if people - {rc.started_by}:
                data = rc.to_json(code.__eq__)
                self._events.publish("rollcall.updated", code, data, to_users=people)

    async def _saved(self, rc: RollCall) -> None:
        await asyncio.shield(self._save(rc))

    def _save(self, rc: RollCall) -> asyncio.Task[None]:
        return self._spawn(self.ledger.save(self.ledger.snapshot(rc)), write=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], write: bool = False) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, cancellable=not write)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


ROLLCALLS = web.AppKey("rollcalls", RollCalls)
