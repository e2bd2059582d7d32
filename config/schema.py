"""The config schema. Every model forbids unknown keys so a typo is an error, not a default."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CODE_RE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")
CAMERA_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(enum.StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


def level_of(code: str) -> Level:
    return {6: Level.COUNTY, 9: Level.TOWNSHIP, 12: Level.VILLAGE}[len(code)]


def parent_of(code: str) -> str | None:
    """The parent centre's code: village → township (9 digits) → county (6 digits)."""
    return {12: code[:9], 9: code[:6]}.get(len(code))


class Role(enum.StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    RECEPTIONIST = "receptionist"
    MEDIATOR = "mediator"
    OPERATOR = "operator"
    TERMINAL = "terminal"
    PETITIONER = "petitioner"


class RecordMode(enum.StrEnum):
    OFF = "off"
    CONTINUOUS = "continuous"
    ON_ALERT = "on_alert"


class MotionZoneConfig(Strict):
    name: str = "zone"
    # normalised (x, y) points, 0..1 from the picture's top-left corner; at least 3
    polygon: Annotated[list[tuple[float, float]], Field(min_length=3)]

    @field_validator("polygon")
    @classmethod
    def _inside(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if any(not (0 <= x <= 1 and 0 <= y <= 1) for x, y in v):
            raise ValueError("zone points are normalised: x and y between 0 and 1")
        return v


class ScheduleWindowConfig(Strict):
    """Weekdays (1 = Monday … 7 = Sunday) and a time range "HH:MM"; an end at or before the
    start runs past midnight (e.g. 18:00 → 08:00, after hours)."""

    days: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5, 6, 7]
    start: str = "00:00"
    end: str = "00:00"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"time {v!r} must be HH:MM (24 h)")
        return v


class MotionConfig(Strict):
    """Motion analysis of a camera with `analyse: true` (streams/motion.py)."""

    enabled: bool = True
    zones: list[MotionZoneConfig] = []  # empty: the whole picture
    schedule: list[ScheduleWindowConfig] = []  # empty: always armed
    timezone: str = "Asia/Shanghai"
    fps: float = Field(5.0, gt=0, le=30)
    height: int = Field(100, ge=32, le=1080, description="analysis picture height, px")
    threshold: int = Field(25, ge=1, le=255, description="luma difference")
    min_area: float = Field(0.005, gt=0, le=1, description="largest blob, share of picture")
    alpha: float = Field(0.1, gt=0, le=1, description="running-average weight")
    min_frames: int = Field(2, ge=1)
    quiet: float = Field(3.0, ge=0, description="seconds without motion ending an episode")
    cooldown: float = Field(30.0, ge=0, description="seconds between two motion alerts")
    keyframes_only: bool = False  # decode keyframes alone (cameras with a short GOP)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class CameraConfig(Strict):
    id: str
    name: str
    url: str = Field(description="rtsp://, rtmp://, http(s)://, file:// or synthetic:// URL")
    substream_url: str | None = None
    transport: Literal["tcp", "udp"] = "tcp"
    record: RecordMode = RecordMode.OFF
    analyse: bool = False
    always_on: bool = False
    motion: MotionConfig = MotionConfig()  # used when `analyse` is true
    fire_experimental: bool = False  # EXPERIMENTAL fire-like colour/flicker alerts (analyse)
    # record: on_alert — seconds of video kept in memory and written before the event
    # (default: recording.pre_event_seconds)
    pre_event: float | None = Field(None, ge=0, le=120)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not CAMERA_ID_RE.match(v):
            raise ValueError("camera id must be 1-64 of A-Z a-z 0-9 _ . - (starting alphanumeric)")
        return v


class CentreConfig(Strict):
    code: str = Field(description="administrative division code: 6, 9 or 12 digits")
    name: str
    cameras: list[CameraConfig] = []

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_RE.match(v):
            raise ValueError(
                f"centre code {v!r} must be 6 (county), 9 (township) or 12 (village) digits"
            )
        return v

    @property
    def level(self) -> Level:
        return level_of(self.code)

    @property
    def parent(self) -> str | None:
        return parent_of(self.code)


class UserConfig(Strict):
    name: str
    role: Role
    centre: str
    display_name: str = ""
    # one of: "pbkdf2_sha256$ITER$SALT$HASH" (see `zzhub hash-password`), "env:VAR", or plain
    # text (accepted for demos; `zzhub check` warns)
    password: str | None = None
    duty: bool = False  # terminals: the centre's duty room (may auto-answer)


class IceServer(Strict):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class HttpConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    data_dir: str = "./data"
    # HTTPS/WSS when both are set (PEM files; `zzhub cert` makes a local CA and a server pair)
    tls_cert: str = ""
    tls_key: str = ""

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpConfig:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("http.tls_cert and http.tls_key go together: set both or neither")
        return self


class AuthConfig(Strict):
    secret: str = Field(
        min_length=32, description="HS256 signing secret (>= 32 bytes); use env:VAR"
    )
    token_ttl: int = Field(12 * 3600, ge=60, description="seconds")


class TurnConfig(Strict):
    """A TURN server with coturn's `use-auth-secret` (the TURN REST API scheme): the hub hands
    each client a username `<expiry>:<user>` and base64(HMAC-SHA1(secret, username))."""

    urls: Annotated[list[str], Field(min_length=1)]  # e.g. turn:10.20.30.40:3478?transport=udp
    secret: str = Field(min_length=16, description="coturn static-auth-secret; use env:VAR")
    ttl: int = Field(24 * 3600, ge=60, le=7 * 24 * 3600, description="credential lifetime, s")


class WebRTCConfig(Strict):
    # Local addresses to gather ICE host candidates on and advertise. Empty: every interface,
    # except when the hub listens on a loopback address, then loopback only.
    ice_addresses: list[str] = []
    ice_servers: list[IceServer] = []
    session_timeout: float = Field(30.0, gt=0, description="seconds to reach ICE connected")
    # lean RTP send loop for passthrough viewers (signaling/fastpath.py); false: aiortc's own
    fast_rtp: bool = True
    turn: TurnConfig | None = None  # time-limited TURN credentials for clients (hub/core/turn.py)


class StreamsConfig(Strict):
    linger: float = Field(
        10.0, ge=0, description="seconds a camera stays pulled after its last viewer"
    )
    queue_packets: int = Field(120, ge=8, description="bounded queue per consumer, packets")
    # replay the cached GOP (packets since the last keyframe) to a new viewer so it starts at
    # once; false makes new viewers wait for the camera's next keyframe (a benchmark baseline)
    instant_start: bool = True
    connect_timeout: float = Field(10.0, gt=0)
    first_packet_wait: float = Field(
        5.0, ge=0, description="WHEP waits this long for a camera to connect"
    )
    # reconnect backoff: a list of [delay_seconds, times]; the last delay repeats forever
    backoff: list[tuple[float, int]] = [(1.0, 5), (5.0, 5), (10.0, 10), (60.0, 1)]


class RecordingConfig(Strict):
    """The recorder (streams/recorder.py) and its store (hub/recordings/service.py)."""

    dir: str = Field("", description="recordings root; empty: DATA_DIR/recordings")
    segment_seconds: float = Field(60.0, ge=2, le=3600, description="cut on the next keyframe")
    fragment_seconds: float = Field(2.0, gt=0, le=10, description="max MP4 fragment (crash loss)")
    queue_packets: int = Field(250, ge=8, description="bounded writer queue per recording")
    retention_days: float = Field(30.0, gt=0, description="segments older than this are deleted")
    quota_bytes: int = Field(0, ge=0, description="max bytes of recordings; 0: no quota")
    min_free_bytes: int = Field(
        1_000_000_000, ge=0, description="keep this much disk free (delete oldest first)"
    )
    cleanup_interval: float = Field(30.0, gt=0, description="seconds between retention passes")
    pre_event_seconds: float = Field(10.0, ge=0, le=120)
    pre_event_max_bytes: int = Field(8_000_000, ge=0, description="per camera ring bound")
    post_event_seconds: float = Field(30.0, ge=1, description="on_alert: record this long after")
    max_clip_seconds: float = Field(4 * 3600.0, gt=0, description="longest clip.mp4 export")


class AlertsConfig(Strict):
    pre_event: float = Field(10.0, ge=0, description="seconds of recording before an alert")
    camera_status: bool = True  # camera_offline / camera_online alerts


class DutyConfig(Strict):
    """值班查岗: prompts at random intervals to on-duty users, escalated when unanswered."""

    enabled: bool = False
    min_interval: float = Field(1800.0, gt=0, description="seconds")
    max_interval: float = Field(5400.0, gt=0, description="seconds")
    answer_within: float = Field(300.0, gt=0, description="seconds before escalation")
    roles: list[Role] = [Role.OPERATOR]
    users: list[str] = []  # empty: every configured user with one of `roles`
    hours: list[ScheduleWindowConfig] = []  # empty: around the clock
    timezone: str = "Asia/Shanghai"

    @model_validator(mode="after")
    def _range(self) -> DutyConfig:
        if self.max_interval < self.min_interval:
            raise ValueError("duty.max_interval must be >= duty.min_interval")
        return self


class WallConfig(Strict):
    """A wall mosaic defined in the config (a physical video wall), like POST /api/walls."""

    id: str
    name: str = ""
    centre: str
    layout: Literal[1, 4, 9, 16] = 4
    cameras: list[str] = []
    width: int = Field(1920, ge=160, le=3840)
    height: int = Field(1080, ge=90, le=2160)
    fps: float = Field(15.0, gt=0, le=30)


class CallsConfig(Strict):
    """Calls and roll calls (hub/calls/service.py, hub/rollcalls/service.py)."""

    ring_timeout: float = Field(30.0, ge=1, le=600, description="seconds a call rings (missed)")
    rollcall_timeout: float = Field(
        60.0, ge=1, le=3600, description="seconds duty terminals have to answer a roll call"
    )
    max_live: int = Field(500, ge=1, le=100_000, description="live calls, and live roll calls")


PETITION_CATEGORIES = (
    "wage_arrears",
    "land",
    "neighbours",
    "family",
    "property",
    "labour",
    "other",
)
# hours may be fractional ("1.5h"); working days are whole days ("3wd")
DEADLINE_RE = re.compile(r"^(\d+(\.\d+)?)(h)$|^(\d+)()(wd)$")


class PetitionsConfig(Strict):
    """视频接访 (hub/petitions/service.py): queue routing, 限时办结 deadlines, working days."""

    # a village or township code (prefix) → the township or county centre whose queue takes
    # its requests; the longest matching prefix wins; default: the requester's township
    routes: dict[str, str] = {}
    # per category (and `urgent`, for urgent/stability cases): "2h" hours or "7wd" working days
    deadlines: dict[str, str] = {
        "urgent": "2h",
        "property": "2wd",  # public services
        "wage_arrears": "7wd",
        "land": "7wd",
        "neighbours": "7wd",
        "family": "7wd",
        "labour": "7wd",
        "other": "7wd",
    }
    workdays: list[Annotated[int, Field(ge=1, le=7)]] = [1, 2, 3, 4, 5]  # 1 = Monday
    holidays: list[str] = []  # "YYYY-MM-DD" days off (法定节假日)
    timezone: str = "Asia/Shanghai"
    minutes_per_case: float = Field(15.0, gt=0, description="queue estimate per case ahead")
    check_interval: float = Field(60.0, gt=0, description="seconds between overdue checks")
    link_ttl: int = Field(24 * 3600, ge=60, description="petitioner link lifetime, seconds")

    @field_validator("routes")
    @classmethod
    def _routes(cls, v: dict[str, str]) -> dict[str, str]:
        for src, dst in v.items():
            if not CODE_RE.match(src) or len(src) == 6:
                raise ValueError(f"petitions.routes: {src!r} is not a village or township code")
            if not CODE_RE.match(dst) or len(dst) == 12:
                raise ValueError(f"petitions.routes: {dst!r} is not a township or county code")
        return v

    @field_validator("deadlines")
    @classmethod
    def _deadlines(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key != "urgent" and key not in PETITION_CATEGORIES:
                raise ValueError(f"petitions.deadlines: unknown category {key!r}")
            if not DEADLINE_RE.match(value):
                raise ValueError(f"petitions.deadlines.{key}: {value!r} must be like 2h or 7wd")
        return v

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, v: list[str]) -> list[str]:
        import datetime

        for day in v:
            try:
                datetime.date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"petitions.holidays: {day!r} is not YYYY-MM-DD") from None
        return v


class NoticesConfig(Strict):
    """Notices (信息发布, hub/notices/service.py)."""

    max_attachment_bytes: int = Field(
        10_000_000, ge=1024, le=1_000_000_000, description="largest notice attachment"
    )


class RedisConfig(Strict):
    url: str | None = None
    # scale-out (hub/cluster/): this node's id (empty: HOSTNAME-PORT) and the base URL other
    # nodes reach it on (empty: derived from http.host/port and TLS)
    node_id: str = Field("", pattern=r"^[A-Za-z0-9_.:-]{0,64}$")
    advertise_url: str = ""
    heartbeat: float = Field(1.0, gt=0, le=60, description="seconds between presence beats")
    node_ttl: float = Field(5.0, gt=0, le=600, description="a silent node is gone after this")
    # CA file (PEM) that verifies other nodes' HTTPS for relay legs; empty: the system's CAs
    peer_ca: str = ""


class Gb28181Device(Strict):
    """A GB/T 28181 device (camera, DVR, NVR) allowed to register, by its 20-digit ID or an
    ID prefix. `auth: none` is for equipment that cannot do digest (off unless said)."""

    id: str = Field(pattern=r"^\d{1,20}$", description="the device's ID, or a prefix of IDs")
    password: str = ""  # empty: the section's password; env:VAR allowed
    auth: Literal["digest", "none"] = "digest"
    centre: str | None = Field(None, pattern=CODE_RE.pattern)  # empty: from the ID's prefix


class Gb28181Channels(Strict):
    """Channels whose 20-digit ID starts with `prefix` are cameras of `centre`."""

    prefix: str = Field(pattern=r"^\d{1,20}$")
    centre: str = Field(pattern=CODE_RE.pattern)


class Gb28181Config(Strict):
    """The hub as a GB/T 28181 platform: devices register to it over SIP (UDP and TCP)."""

    enabled: bool = False
    host: str = "0.0.0.0"
    # the address devices reach the hub at, for Via, Contact and the SDP of INVITEs ("": the
    # local address towards each device)
    announce: str = ""
    port: int = Field(5060, ge=0, le=65535)  # 0: any free port (tests)
    server_id: str = Field("41092200002000000001", pattern=r"^\d{20}$")
    domain: str = Field("4109220000", pattern=r"^\d{10}$")  # also the digest realm
    password: str = ""  # devices' default password; env:VAR allowed
    devices: list[Gb28181Device] = []
    keepalive_interval: float = Field(60.0, gt=0, le=3600, description="seconds")
    missed_keepalives: int = Field(3, ge=1, le=100)  # offline after this many intervals
    max_expires: int = Field(3600, ge=60, le=86400)  # a REGISTER's Expires is capped to it
    # where a channel's camera belongs: by channel-ID prefix first, then the device's
    # `centre`, then its CivilCode (through `civil_codes`, else a centre code it starts with)
    channels: list[Gb28181Channels] = []
    # CivilCode (2, 4, 6 or 8 digits, as devices send it) → our centre code
    civil_codes: dict[str, str] = {}
    invite_timeout: float = Field(10.0, gt=0, le=60, description="seconds for a 200 to INVITE")
    query_timeout: float = Field(8.0, gt=0, le=60, description="seconds for a catalog batch")
    # how live video comes: udp, tcp_passive (the device connects to us) or tcp_active (we
    # connect to the device)
    media_transport: Literal["udp", "tcp_passive", "tcp_active"] = "udp"
    # REGISTERs from one source address (a village router, a township's line: every camera
    # behind it) beyond this rate are dropped and counted; the burst covers them all
    # registering at once after a restart (two REGISTERs each: challenge, then digest)
    register_rate: float = Field(20.0, gt=0, le=10_000, description="per second per address")
    register_burst: int = Field(400, ge=1, le=100_000)


class HubConfig(Strict):
    http: HttpConfig = HttpConfig()
    auth: AuthConfig
    webrtc: WebRTCConfig = WebRTCConfig()
    streams: StreamsConfig = StreamsConfig()
    redis: RedisConfig = RedisConfig()
    calls: CallsConfig = CallsConfig()
    notices: NoticesConfig = NoticesConfig()
    recording: RecordingConfig = RecordingConfig()
    centres: Annotated[list[CentreConfig], Field(min_length=1)]
    users: list[UserConfig] = []
    alerts: AlertsConfig = AlertsConfig()
    duty: DutyConfig = DutyConfig()
    walls: list[WallConfig] = []
    petitions: PetitionsConfig = PetitionsConfig()
    gb28181: Gb28181Config = Gb28181Config()

    @model_validator(mode="after")
    def _walls(self) -> HubConfig:
        cameras = {cam.id for c in self.centres for cam in c.cameras}
        centres = {c.code for c in self.centres}
        ids: set[str] = set()
        for wall in self.walls:
            if wall.id in ids:
                raise ValueError(f"wall id {wall.id!r} is used twice")
            ids.add(wall.id)
            if wall.centre not in centres:
                raise ValueError(f"wall {wall.id!r}: centre {wall.centre} is not in centres")
            if len(wall.cameras) > wall.layout:
                raise ValueError(
                    f"wall {wall.id!r}: {len(wall.cameras)} cameras for {wall.layout} tiles"
                )
            for cam in wall.cameras:
                if cam and cam not in cameras:
                    raise ValueError(f"wall {wall.id!r}: unknown camera {cam!r}")
        return self

    @model_validator(mode="after")
    def _gb28181(self) -> HubConfig:
        gb = self.gb28181
        centres = {c.code for c in self.centres}
        named = [(f"device {d.id}", d.centre) for d in gb.devices if d.centre]
        named += [(f"channels {c.prefix}", c.centre) for c in gb.channels]
        for civil, centre in gb.civil_codes.items():
            if not (civil.isascii() and civil.isdigit() and 2 <= len(civil) <= 12):
                raise ValueError(f"gb28181.civil_codes: {civil!r} is not a code of 2-12 digits")
            named.append((f"civil code {civil}", centre))
        for what, centre in named:
            if centre not in centres:
                raise ValueError(f"gb28181 {what}: centre {centre} is not in centres")
        return self

    @model_validator(mode="after")
    def _tree(self) -> HubConfig:
        codes = [c.code for c in self.centres]
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                raise ValueError(f"centre {code} is listed twice")
            seen.add(code)
        for centre in self.centres:
            parent = centre.parent
            if parent is not None and parent not in seen:
                raise ValueError(
                    f"centre {centre.code} ({centre.name}): its parent {parent} is not in centres"
                )
        camera_ids: set[str] = set()
        for centre in self.centres:
            for cam in centre.cameras:
                if cam.id in camera_ids:
                    raise ValueError(f"camera id {cam.id!r} is used twice")
                camera_ids.add(cam.id)
        names: set[str] = set()
        for user in self.users:
            if user.name in names:
                raise ValueError(f"user {user.name!r} is listed twice")
            names.add(user.name)
            if user.centre not in seen:
                raise ValueError(f"user {user.name!r}: centre {user.centre} is not in centres")
        return self
