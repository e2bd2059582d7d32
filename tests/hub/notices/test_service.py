"""`Notices` without sockets: who may send to which centres, live delivery to the members
online at the targets, the queue per target centre and its delivery on connect, delivery and
read receipts, per-centre status counts, attachments and who may read them, a cluster's peer
queues (a stub of our own protocol). Real SQLite on tmp_path, real bus, presence and tree."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import hub.notices.service as service
from config import HubConfig
from config.schema import Role
from hub.core.auth import Principal
from hub.core.centres import CentreTree
from hub.core.db import Database
from hub.core.errors import Forbidden, Invalid, NotFound
from hub.core.events import Event, EventBus, Subscription
from hub.core.presence import Presence
from hub.core.scopes import check_sender, targets
from hub.notices.service import Notices, safe_name
from hub.notices.store import Notice, NoticeStore
from tests.conftest import COUNTY, OTHER_TOWN, TOWN, VILLAGE

COUNTY_D = Principal("county-d", Role.DISPATCHER, COUNTY)
TOWN_D = Principal("town-d", Role.DISPATCHER, TOWN)
VILLAGE_T = Principal("village-t", Role.TERMINAL, VILLAGE)
VILLAGE_T2 = Principal("village-t2", Role.TERMINAL, VILLAGE)
TOWN_T = Principal("town-t", Role.TERMINAL, TOWN)
OTHER_T = Principal("other-t", Role.TERMINAL, OTHER_TOWN)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "hub.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def presence(bus: EventBus) -> Presence:
    return Presence(bus)


@pytest.fixture
def tree(hub_config: HubConfig) -> CentreTree:
    return CentreTree.from_config(hub_config)


@pytest.fixture
async def store(db: Database) -> NoticeStore:
    s = NoticeStore(db)
    await s.open()
    return s


@pytest.fixture
def claims() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def notices(
    store: NoticeStore,
    presence: Presence,
    bus: EventBus,
    tree: CentreTree,
    tmp_path: Path,
    claims: list[tuple[str, str]],
) -> Notices:
    files = tmp_path / "notices"
    files.mkdir()
    return Notices(
        store, presence, bus, tree, files, claim=lambda kind, item: claims.append((kind, item))
    )


class FakeConnection:
    def __init__(self, who: Principal) -> None:
        self.principal = who
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def online(presence: Presence, *people: Principal) -> None:
    for p in people:
        presence.connect(p.user, p.role, p.centre)


def drain(sub: Subscription, topic: str = "notice") -> list[Event]:
    events = [e for e in sub._queue if e.topic == topic]
    sub._queue.clear()
    return events


# -- who may send, to which centres -------------------------------------------------------------
def test_only_dispatchers_and_admins_of_a_county_or_township_send(tree: CentreTree) -> None:
    check_sender(COUNTY_D, tree, "notices")
    check_sender(Principal("a", Role.ADMIN, TOWN), tree, "notices")
    for p in (
        Principal("o", Role.OPERATOR, COUNTY),
        Principal("t", Role.TERMINAL, TOWN),
        Principal("m", Role.MEDIATOR, COUNTY),
    ):
        with pytest.raises(Forbidden, match="only dispatchers and admins"):
            check_sender(p, tree, "notices")
    with pytest.raises(Forbidden, match="county or township"):
        check_sender(Principal("v", Role.DISPATCHER, VILLAGE), tree, "notices")


def test_targets_by_list_subtree_and_level(tree: CentreTree) -> None:
    assert targets(COUNTY_D, tree, {"centres": [TOWN, VILLAGE, TOWN]}) == [TOWN, VILLAGE]
    # tree order (by code), the sender's own centre left out
    assert targets(COUNTY_D, tree, {"subtree": COUNTY}) == [TOWN, VILLAGE, OTHER_TOWN]
    assert COUNTY not in targets(COUNTY_D, tree, {"subtree": COUNTY}), "not its own centre"
    assert targets(COUNTY_D, tree, {"subtree": COUNTY, "level": "village"}) == [VILLAGE]
    assert targets(COUNTY_D, tree, {"subtree": COUNTY, "level": "township"}) == [
        TOWN,
        OTHER_TOWN,
    ]
    assert targets(TOWN_D, tree, {"subtree": TOWN}) == [VILLAGE]
    assert targets(TOWN_D, tree, {"centres": [TOWN]}) == [TOWN], "only its own: kept"


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        ({"centres": [OTHER_TOWN]}, Forbidden, "outside your scope"),
        ({"centres": [COUNTY]}, Forbidden, "outside your scope"),
        ({"subtree": OTHER_TOWN}, Forbidden, "outside your scope"),
        ({"centres": ["410922199"]}, NotFound, "no centre"),
        ({}, Invalid, "either centres"),
        ({"centres": [VILLAGE], "subtree": TOWN}, Invalid, "either centres"),
        ({"centres": []}, Invalid, "non-empty"),
        ({"centres": [1]}, Invalid, "list of strings"),
        ({"subtree": TOWN, "level": "county"}, Invalid, "no county centre"),
        ({"subtree": TOWN, "level": "city"}, Invalid, "level must be"),
        ({"subtree": 410922100}, Invalid, "subtree must be"),
    ],
)
def test_bad_targets_are_refused(
    tree: CentreTree, body: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        targets(TOWN_D, tree, body)


# -- sending and live delivery ------------------------------------------------------------------
async def test_send_stores_the_notice_and_its_targets(
    notices: Notices, db: Database, claims: list[tuple[str, str]]
) -> None:
    notice = await notices.send(COUNTY_D, "防汛通知", "今晚有暴雨", [TOWN, VILLAGE], None)
    assert notice.id.startswith("n") and len(notice.id) == 17
    assert (notice.sender, notice.centre, notice.targets) == ("county-d", COUNTY, [TOWN, VILLAGE])
    rows = await db.fetchall("SELECT centre FROM notice_targets WHERE notice = ?", (notice.id,))
    assert sorted(r["centre"] for r in rows) == [TOWN, VILLAGE]
    stored = await notices.store.get(notice.id)
    assert stored == notice
    assert claims == [("notice", notice.id)]
    assert notices.delivered_live == 0


async def test_members_online_at_the_targets_get_it_at_once(
    notices: Notices, presence: Presence, bus: EventBus
) -> None:
    online(presence, VILLAGE_T, TOWN_T, OTHER_T, COUNTY_D)
    subs = {p.user: bus.subscribe(p.user, p.centre) for p in (VILLAGE_T, TOWN_T, OTHER_T, COUNTY_D)}
    notice = await notices.send(COUNTY_D, "t", "x", [VILLAGE], None)
    [event] = drain(subs["village-t"])
    assert event.to_users == frozenset({"village-t"}) and event.data == notice.to_json()
    assert event.centre == COUNTY
    for user in ("town-t", "other-t", "county-d"):  # not targets, not even the centres above
        assert drain(subs[user]) == [], user
    receipts = await notices.store.receipts(notice.id)
    assert [(r["user"], r["centre"], r["read"]) for r in receipts] == [("village-t", VILLAGE, None)]
    assert receipts[0]["delivered"] is not None
    assert notices.delivered_live == 1


async def test_nobody_online_publishes_nothing(notices: Notices, bus: EventBus) -> None:
    sub = bus.subscribe("village-t", VILLAGE)
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE, TOWN], None)
    assert drain(sub) == [] and bus.published == 0
    assert await notices.store.receipts(notice.id) == []


async def test_a_member_gone_offline_is_not_delivered_live(
    notices: Notices, presence: Presence
) -> None:
    online(presence, VILLAGE_T, VILLAGE_T2)
    presence.disconnect("village-t2")
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE], None)
    assert [r["user"] for r in await notices.store.receipts(notice.id)] == ["village-t"]
    assert [n.id for n in await notices.pending(VILLAGE_T2)] == [notice.id]
    assert await notices.pending(VILLAGE_T) == []


# -- the queue per target centre ----------------------------------------------------------------
async def test_pending_is_per_target_centre_oldest_first(notices: Notices) -> None:
    first = await notices.send(COUNTY_D, "one", "", [VILLAGE], None)
    second = await notices.send(COUNTY_D, "two", "", [VILLAGE, OTHER_TOWN], None)
    third = await notices.send(TOWN_D, "three", "", [VILLAGE], None)
    assert [n.id for n in await notices.pending(VILLAGE_T)] == [first.id, second.id, third.id]
    assert [n.id for n in await notices.pending(VILLAGE_T2)] == [first.id, second.id, third.id]
    assert [n.id for n in await notices.pending(OTHER_T)] == [second.id]
    assert await notices.pending(TOWN_T) == [], "a notice to a village is not the township's"
    assert await notices.pending(COUNTY_D) == []


async def test_on_connect_delivers_the_queue_once(notices: Notices) -> None:
    first = await notices.send(COUNTY_D, "one", "a", [VILLAGE], None)
    second = await notices.send(COUNTY_D, "two", "b", [VILLAGE], None)
    conn = FakeConnection(VILLAGE_T)
    await notices.on_connect(conn)
    assert [m["data"]["id"] for m in conn.sent] == [first.id, second.id]
    message = conn.sent[0]
    assert message["type"] == "event" and message["topic"] == "notice"
    assert message["centre"] == COUNTY and message["data"]["queued"] is True
    assert message["data"]["title"] == "one" and message["data"]["text"] == "a"
    assert notices.delivered_queued == 2
    assert await notices.pending(VILLAGE_T) == []
    again = FakeConnection(VILLAGE_T)
    await notices.on_connect(again)
    assert again.sent == [] and notices.delivered_queued == 2
    assert [n.id for n in await notices.pending(VILLAGE_T2)] == [first.id, second.id]
    receipts = await notices.store.receipts(first.id)
    assert [r["user"] for r in receipts] == ["village-t"] and receipts[0]["read"] is None


async def test_a_user_outside_the_targets_gets_nothing_on_connect(notices: Notices) -> None:
    await notices.send(COUNTY_D, "one", "", [VILLAGE], None)
    conn = FakeConnection(OTHER_T)
    await notices.on_connect(conn)
    assert conn.sent == [] and notices.delivered_queued == 0


async def test_old_notices_are_not_delivered_any_more(notices: Notices) -> None:
    old = Notice("nold", "old", "", "county-d", COUNTY, [VILLAGE], None, time.time() - 31 * 86400)
    await notices.store.add(old)
    fresh = await notices.send(COUNTY_D, "new", "", [VILLAGE], None)
    assert [n.id for n in await notices.pending(VILLAGE_T)] == [fresh.id]


async def test_at_most_queue_limit_on_one_connect(
    notices: Notices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "QUEUE_LIMIT", 2)
    sent = [await notices.send(COUNTY_D, f"n{i}", "", [VILLAGE], None) for i in range(3)]
    conn = FakeConnection(VILLAGE_T)
    await notices.on_connect(conn)
    assert [m["data"]["id"] for m in conn.sent] == [sent[0].id, sent[1].id]
    later = FakeConnection(VILLAGE_T)
    await notices.on_connect(later)
    assert [m["data"]["id"] for m in later.sent] == [sent[2].id]


# -- receipts -------------------------------------------------------------------------------
async def test_read_records_delivered_and_read_once(notices: Notices) -> None:
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE], None)
    await notices.read(notice, VILLAGE_T)
    [receipt] = await notices.store.receipts(notice.id)
    assert receipt["user"] == "village-t" and receipt["centre"] == VILLAGE
    assert receipt["delivered"] is not None and receipt["read"] is not None
    first_read = receipt["read"]
    await notices.read(notice, VILLAGE_T)
    [again] = await notices.store.receipts(notice.id)
    assert again["read"] == first_read, "the first read time is kept"
    assert await notices.pending(VILLAGE_T) == [], "read counts as delivered"


async def test_only_a_target_centre_reads(notices: Notices) -> None:
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE], None)
    for who in (OTHER_T, TOWN_T, COUNTY_D):
        with pytest.raises(Forbidden, match="not sent to your centre"):
            await notices.read(notice, who)
    assert await notices.store.receipts(notice.id) == []


async def test_delivered_to_counts_only_notices_of_the_users_centre(notices: Notices) -> None:
    mine = await notices.send(COUNTY_D, "mine", "", [VILLAGE], None)
    other = await notices.send(COUNTY_D, "other", "", [OTHER_TOWN], None)
    counted = await notices.delivered_to(VILLAGE_T, [mine.id, other.id, "nmissing", "BAD ID"])
    assert counted == 1
    assert [r["user"] for r in await notices.store.receipts(mine.id)] == ["village-t"]
    assert await notices.store.receipts(other.id) == []
    assert await notices.pending(VILLAGE_T) == []


# -- get and status ---------------------------------------------------------------------------
async def test_get_for_the_sender_side_and_the_targets_only(notices: Notices) -> None:
    notice = await notices.send(TOWN_D, "t", "", [VILLAGE], None)
    assert (await notices.get(notice.id, TOWN_D)).id == notice.id
    assert (await notices.get(notice.id, VILLAGE_T)).id == notice.id
    assert (await notices.get(notice.id, COUNTY_D)).id == notice.id, "the county sees below"
    assert (await notices.get(notice.id, TOWN_T)).id == notice.id, "same centre as the sender"
    assert notices.is_sender_side(notice, COUNTY_D) and notices.is_sender_side(notice, TOWN_T)
    assert not notices.is_sender_side(notice, VILLAGE_T)
    with pytest.raises(NotFound) as outside:
        await notices.get(notice.id, OTHER_T)
    with pytest.raises(NotFound) as unknown:
        await notices.get("n0000000000000000", OTHER_T)
    assert outside.value.message == f"no notice {notice.id!r} for you"
    assert unknown.value.message == "no notice 'n0000000000000000' for you"
    with pytest.raises(NotFound):
        await notices.get("../../etc/passwd", COUNTY_D)


async def test_status_counts_delivered_and_read_per_target_centre(
    notices: Notices, presence: Presence
) -> None:
    online(presence, VILLAGE_T, OTHER_T)
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE, OTHER_TOWN, TOWN], None)
    await notices.on_connect(FakeConnection(VILLAGE_T2))
    await notices.read(notice, VILLAGE_T)
    await notices.store.delivered(notice.id, [("stranger", "410922102")], time.time())
    status = await notices.status(notice)
    assert status["id"] == notice.id and status["title"] == "t"
    per = {c["centre"]: c for c in status["centres"]}
    assert list(per) == [VILLAGE, OTHER_TOWN, TOWN]
    assert per[VILLAGE]["name"] == "东关村" and per[TOWN]["name"] == "城关镇"
    assert (per[VILLAGE]["delivered"], per[VILLAGE]["read"], per[VILLAGE]["online"]) == (2, 1, 1)
    assert (per[OTHER_TOWN]["delivered"], per[OTHER_TOWN]["read"]) == (1, 0)
    assert (per[TOWN]["delivered"], per[TOWN]["read"], per[TOWN]["online"]) == (0, 0, 0)
    assert [u["user"] for u in per[VILLAGE]["users"]] == ["village-t", "village-t2"]
    assert per[VILLAGE]["users"][0]["read"] is not None
    assert per[VILLAGE]["users"][1]["read"] is None
    assert status["totals"] == {
        "centres": 3,
        "centres_delivered": 2,
        "centres_read": 1,
        "delivered": 3,
        "read": 1,
    }


async def test_status_of_a_fresh_notice_is_all_zero(notices: Notices) -> None:
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE], None)
    status = await notices.status(notice)
    assert status["totals"] == {
        "centres": 1,
        "centres_delivered": 0,
        "centres_read": 0,
        "delivered": 0,
        "read": 0,
    }
    assert status["centres"][0]["users"] == []


# -- attachments ---------------------------------------------------------------------------------
async def test_attachments_keep_a_safe_name_and_type(
    notices: Notices, claims: list[tuple[str, str]]
) -> None:
    a = await notices.save_attachment(
        COUNTY_D, '../../etc/通知"<1>".PDF', "Application/PDF", 1234, "a1"
    )
    assert a.name == "通知1.PDF" and a.content_type == "application/pdf" and a.size == 1234
    assert (a.uploader, a.centre) == ("county-d", COUNTY)
    assert a.to_json() == {
        "id": "a1",
        "name": "通知1.PDF",
        "content_type": "application/pdf",
        "size": 1234,
        "url": "/api/notices/attachments/a1",
    }
    assert await notices.store.attachment("a1") == a
    assert claims == [("notice_attachment", "a1")]
    odd = await notices.save_attachment(COUNTY_D, "x.bin", "text/html; charset=utf-8", 1, "a2")
    assert odd.content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\Users\\x\\报告.docx", "报告.docx"),
        ("/tmp/../a.txt", "a.txt"),
        ("  ..hidden.. ", "hidden"),
        ("a\x00b\nc.txt", "abc.txt"),
        ('q"u<o>t|e*s?:.png', "quotes.png"),
        ("", "attachment"),
        ("...", "attachment"),
        ("x" * 300, "x" * 100),
    ],
)
def test_safe_name(given: str, kept: str) -> None:
    assert safe_name(given) == kept


def test_attachment_paths_stay_in_the_files_dir(notices: Notices) -> None:
    assert notices.attachment_path("abc123") == notices.files / "abc123"
    for bad in ("../x", "ABC", "a/b", "", "a" * 41):
        with pytest.raises(NotFound, match="no such attachment"):
            notices.attachment_path(bad)


async def test_a_notice_carries_its_attachment(notices: Notices) -> None:
    a = await notices.save_attachment(COUNTY_D, "map.png", "image/png", 10, "att1")
    notice = await notices.send(COUNTY_D, "t", "", [VILLAGE], "att1")
    assert notice.attachment == a
    assert notice.to_json()["attachment"]["url"] == "/api/notices/attachments/att1"
    stored = await notices.store.get(notice.id)
    assert stored is not None and stored.attachment == a
    [queued] = await notices.pending(VILLAGE_T)
    assert queued.attachment == a


async def test_only_your_own_upload_may_be_attached(notices: Notices) -> None:
    await notices.save_attachment(COUNTY_D, "map.png", "image/png", 10, "att1")
    for attachment in ("att1", "missing", "BAD/ID"):
        with pytest.raises(NotFound, match="uploaded by you"):
            await notices.send(TOWN_D, "t", "", [VILLAGE], attachment)
    assert await notices.store.ids() == []


async def test_who_may_read_an_attachment(notices: Notices) -> None:
    await notices.save_attachment(TOWN_D, "map.png", "image/png", 10, "att1")
    # before it is sent: its uploader and those who see the uploader's centre
    assert (await notices.readable_attachment("att1", TOWN_D)).id == "att1"
    assert (await notices.readable_attachment("att1", COUNTY_D)).id == "att1"
    assert (await notices.readable_attachment("att1", TOWN_T)).id == "att1"
    for who in (VILLAGE_T, OTHER_T):
        with pytest.raises(NotFound, match="no such attachment"):
            await notices.readable_attachment("att1", who)
    await notices.send(TOWN_D, "t", "", [VILLAGE], "att1")
    # once sent: the target centres too, nobody else
    assert (await notices.readable_attachment("att1", VILLAGE_T)).id == "att1"
    with pytest.raises(NotFound, match="no such attachment"):
        await notices.readable_attachment("att1", OTHER_T)
    for bad in ("missing", "../att1"):
        with pytest.raises(NotFound, match="no such attachment"):
            await notices.readable_attachment(bad, COUNTY_D)


# -- the other nodes' queues (a hub cluster) ---------------------------------------------------
class FakePeers:
    def __init__(self, queued: list[tuple[str, list[dict[str, Any]]]]) -> None:
        self.queued = queued
        self.asked: list[Principal] = []
        self.reported: list[tuple[str, str, list[str]]] = []

    async def pending(self, who: Principal) -> list[tuple[str, list[dict[str, Any]]]]:
        self.asked.append(who)
        return self.queued

    async def delivered(self, node: str, who: Principal, ids: list[str]) -> None:
        self.reported.append((node, who.user, ids))


async def test_on_connect_also_delivers_what_other_nodes_queued(notices: Notices) -> None:
    local = await notices.send(COUNTY_D, "here", "", [VILLAGE], None)
    remote = {"id": "nb1", "title": "there", "centre": TOWN}
    peers = FakePeers([("node-b", [remote]), ("node-c", [])])
    notices.peers = peers
    conn = FakeConnection(VILLAGE_T)
    await notices.on_connect(conn)
    assert [m["data"]["id"] for m in conn.sent] == [local.id, "nb1"]
    assert conn.sent[1]["data"]["queued"] is True and conn.sent[1]["centre"] == TOWN
    assert peers.asked == [VILLAGE_T]
    assert peers.reported == [("node-b", "village-t", ["nb1"])], "nothing to report to node-c"
    assert notices.delivered_queued == 2
