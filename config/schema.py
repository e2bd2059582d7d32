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


class CameraConfig(Strict):
    id: str
    name: str
    url: str = Field(description="rtsp://, rtmp://, http(s)://, file:// or synthetic:// URL")
    substream_url: str | None = None
    transport: Literal["tcp", "udp"] = "tcp"
    record: RecordMode = RecordMode.OFF
    analyse: bool = False
    always_on: bool = False

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


class AuthConfig(Strict):
    secret: str = Field(
        min_length=32, description="HS256 signing secret (>= 32 bytes); use env:VAR"
    )
    token_ttl: int = Field(12 * 3600, ge=60, description="seconds")


class WebRTCConfig(Strict):
    # Local addresses to gather ICE host candidates on and advertise. Empty: every interface,
    # except when the hub listens on a loopback address, then loopback only.
    ice_addresses: list[str] = []
    ice_servers: list[IceServer] = []
    session_timeout: float = Field(30.0, gt=0, description="seconds to reach ICE connected")
    # lean RTP send loop for passthrough viewers (signaling/fastpath.py); false: aiortc's own
    fast_rtp: bool = True


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


class RedisConfig(Strict):
    url: str | None = None


class HubConfig(Strict):
    http: HttpConfig = HttpConfig()
    auth: AuthConfig
    webrtc: WebRTCConfig = WebRTCConfig()
    streams: StreamsConfig = StreamsConfig()
    redis: RedisConfig = RedisConfig()
    centres: Annotated[list[CentreConfig], Field(min_length=1)]
    users: list[UserConfig] = []

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
