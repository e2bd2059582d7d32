"""Device channels as cameras of a centre.

When a device comes online (registers), the hub asks its Catalog (a MANSCDP Query MESSAGE)
and its DeviceInfo. The catalog comes back in MESSAGE batches (SN, SumNum); each batch's
camera channels (type code 131/132 in the 20-digit ID) are added to the `CameraRegistry` as
they arrive, as `GbCamera`s with `source: gb28181` — so they obey every scope rule of
cameras, and recorders, walls, alerts and WHEP viewers use them like any other camera. A
channel's stream is pulled on demand by `hub.gb28181.live.GbSource` (one INVITE per channel
whatever the number of consumers; the Stream's linger, reconnect and GOP cache).

Where a channel belongs (`ChannelMapper.centre_of`), first match wins:
1. `gb28181.channels`: the longest channel-ID prefix configured;
2. the device's configured `centre`;
3. its `CivilCode` through `gb28181.civil_codes` (codes of 2/4/6/8 digits as devices send
   them), else the longest centre code the CivilCode starts with;
4. the device's centre (from its ID).
A CivilCode outside the device's own centre is not followed (a village NVR cannot put its
cameras in another township's view): the device's centre is used and the case counted.

A channel is `offline` while its device is offline, while its catalog says `Status: OFF`,
or after a complete catalog no longer lists it; each change raises the cameras' usual
`camera_offline` / `camera_online` alerts (`Camera.notify`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from config.schema import CameraConfig, Gb28181Config, StreamsConfig
from hub.cameras.service import Camera, CameraRegistry
from hub.core.centres import within
from hub.gb28181 import manscdp
from hub.gb28181.dialer import Dialer
from hub.gb28181.manscdp import CatalogAssembler, CatalogItem
from hub.gb28181.service import Device, Registrar
from hub.gb28181.uac import SipRequestError
from streams.media import Source
from streams.registry import SourceOptions
from streams.stream import Stream
from streams.tasks import TaskSet

log = logging.getLogger(__name__)

CAMERA_TYPES = frozenset({"131", "132"})  # camera, network camera
MAX_CHANNELS = 20_000  # cameras the hub takes from all devices together


def type_code(gb_id: str) -> str:
    """Digits 11-13 of a 20-digit GB/T 28181 ID: the kind of thing (131 camera, 118 NVR …)."""
    return gb_id[10:13] if len(gb_id) == 20 and gb_id.isascii() and gb_id.isdigit() else ""


def is_camera(item: CatalogItem) -> bool:
    return type_code(item.device_id) in CAMERA_TYPES


class ChannelMapper:
    def __init__(self, config: Gb28181Config, centres: set[str]) -> None:
        self.config = config
        self.centres = centres
        self.refused_civil = 0  # CivilCodes pointing outside the device's centre

    def centre_of(self, device: Device, item: CatalogItem) -> str:
        cid = item.device_id
        prefixes = [c for c in self.config.channels if cid.startswith(c.prefix)]
        if prefixes:
            return max(prefixes, key=lambda c: len(c.prefix)).centre
        configured = self._device_centre(device.id)
        if configured:
            return configured
        civil = item.civil_code.strip()
        found = self._civil(civil) if civil.isascii() and civil.isdigit() else None
        if found is not None:
            if within(found, device.centre):
                return found
            self.refused_civil += 1
            log.info(
                "GB/T 28181: channel %s of %s says CivilCode %s, outside the device's centre %s",
                cid,
                device.id,
                civil,
                device.centre,
            )
        return device.centre

    def _device_centre(self, device_id: str) -> str | None:
        matches = [d for d in self.config.devices if device_id.startswith(d.id)]
        if not matches:
            return None
        return max(matches, key=lambda d: len(d.id)).centre

    def _civil(self, civil: str) -> str | None:
        table = self.config.civil_codes
        if civil in table:
            return table[civil]
        found = [c for c in self.centres if civil.startswith(c)]
        return max(found, key=len) if found else None


@dataclass(eq=False)
class GbCamera(Camera):
    """A channel of a GB/T 28181 device."""

    device: Device | None = None
    item: CatalogItem | None = None
    listed: bool = True  # in the device's latest complete catalog

    @property
    def source(self) -> str:
        return "gb28181"

    @property
    def reachable(self) -> bool:
        if self.device is None or not self.device.online or not self.listed:
            return False
        status = self.item.status if self.item is not None else ""
        return status == "" or self.item is None or self.item.online

    def status(self) -> str:
        """offline while the device or the channel is; else online, or offline while a pull
        is failing (the device does not answer INVITE)."""
        if not self.reachable:
            return "offline"
        pulled = super().status()
        return "offline" if pulled == "offline" else "online"

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        item = self.item
        out["url"] = None
        out["gb28181"] = {
            "device": self.device.id if self.device else None,
            "channel": self.id,
            "channel_status": item.status or None if item else None,
            "civil_code": item.civil_code or None if item else None,
            "manufacturer": item.manufacturer or None if item else None,
            "model": item.model or None if item else None,
            "address": item.address or None if item else None,
            "listed": self.listed,
        }
        return out


@dataclass
class _DeviceChannels:
    cameras: dict[str, GbCamera] = field(default_factory=dict)
    others: int = 0  # catalog items that are not cameras (groups, alarm inputs …)


SourceMaker = Callable[["GbCamera", SourceOptions], Source]


class Channels:
    """The catalog side of the platform: asks devices for their channels and keeps them as
    cameras. `make_source(camera, options)` opens a channel's live view."""

    def __init__(
        self,
        config: Gb28181Config,
        streams: StreamsConfig,
        registrar: Registrar,
        dialer: Dialer,
        cameras: CameraRegistry,
        centres: set[str],
        make_source: SourceMaker,
    ) -> None:
        self.config = config
        self.streams = streams
        self.registrar = registrar
        self.dialer = dialer
        self.cameras = cameras
        self.mapper = ChannelMapper(config, centres)
        self.make_source = make_source
        self.assembler = CatalogAssembler()
        self.devices: dict[str, _DeviceChannels] = {}
        self.tasks = TaskSet("gb28181 channels", log)
        self._sn = itertools.count(1)
        self._connections = [
            registrar.on_change.connect(self._device_changed),
            registrar.on_message.connect(self._message),
        ]
        # counters
        self.conflicts = 0  # channel IDs that are already another camera's id
        self.queries_failed = 0
        self.dropped = 0  # channels past MAX_CHANNELS

    async def close(self) -> None:
        for connection in self._connections:
            connection.disconnect()
        await self.tasks.close()

    def of(self, device_id: str) -> list[GbCamera]:
        known = self.devices.get(device_id)
        return list(known.cameras.values()) if known else []

    # -- devices -----------------------------------------------------------------------------
    def _device_changed(self, device: Device) -> None:
        for cam in self.of(device.id):
            cam.notify()
        if device.online:
            self.tasks.spawn(self._ask(device, "Catalog"), name=f"gb28181:catalog:{device.id}")
            self.tasks.spawn(self._ask(device, "DeviceInfo"), name=f"gb28181:info:{device.id}")

    async def _ask(self, device: Device, cmd_type: str) -> None:
        body = manscdp.build_query(cmd_type, device.id, next(self._sn))
        try:
            response = await self.dialer.message(device, body, timeout=self.config.query_timeout)
        except SipRequestError as err:
            self.queries_failed += 1
            log.info("GB/T 28181: %s query to %s failed: %s", cmd_type, device.id, err)
            return
        if response.status >= 300:
            self.queries_failed += 1
            log.info("GB/T 28181: %s query to %s answered %d", cmd_type, device.id, response.status)

    def _message(self, device: Device, body: manscdp.Manscdp) -> None:
        try:
            if body.kind == "Response" and body.cmd_type == "Catalog":
                self._catalog_batch(device, body)
            elif body.kind == "Response" and body.cmd_type == "DeviceInfo":
                info = body.device_info()
                device.name = _printable(info.device_name)
                device.manufacturer, device.model = info.manufacturer, info.model
        except manscdp.ManscdpError as err:
            log.info("GB/T 28181: %s from %s ignored: %s", body.cmd_type, device.id, err)

    # -- catalog -----------------------------------------------------------------------------
    def _catalog_batch(self, device: Device, body: manscdp.Manscdp) -> None:
        for item in body.catalog():
            self._apply(device, item)
        complete = self.assembler.add(body)
        if complete is None:
            return
        listed = {item.device_id for item in complete}
        known = self.devices.setdefault(device.id, _DeviceChannels())
        known.others = sum(1 for item in complete if not is_camera(item))
        for cam in known.cameras.values():
            if cam.listed != (cam.id in listed):
                cam.listed = cam.id in listed
                cam.notify()
        device.channels = sum(1 for c in known.cameras.values() if c.listed)

    def _apply(self, device: Device, item: CatalogItem) -> None:
        if not is_camera(item):
            return
        known = self.devices.setdefault(device.id, _DeviceChannels())
        cam = known.cameras.get(item.device_id)
        if cam is not None:
            before = cam.status()
            cam.item, cam.listed = item, True
            if cam.status() != before:
                cam.notify()
            device.channels = sum(1 for c in known.cameras.values() if c.listed)
            return
        if self.cameras.get(item.device_id) is not None:
            self.conflicts += 1
            log.warning(
                "GB/T 28181: channel %s of %s has the id of another camera; not added",
                item.device_id,
                device.id,
            )
            return
        if len(self.cameras.all()) >= MAX_CHANNELS:
            self.dropped += 1
            return
        cam = self._camera(device, item)
        known.cameras[cam.id] = cam
        self.cameras.add(cam)
        device.channels = sum(1 for c in known.cameras.values() if c.listed)

    def _camera(self, device: Device, item: CatalogItem) -> GbCamera:
        s = self.streams
        channel = item.device_id
        config = CameraConfig(
            id=channel,
            name=_printable(item.name) or channel,
            url=f"gb28181://{device.id}/{channel}",
        )
        holder: list[GbCamera] = []

        def source(url: str, options: SourceOptions) -> Source:
            return self.make_source(holder[0], options)

        stream = Stream(
            channel,
            config.url,
            SourceOptions(name=channel, timeout=s.connect_timeout),
            linger=s.linger,
            instant_start=s.instant_start,
            backoff=s.backoff,
            source_factory=source,
        )
        cam = GbCamera(config, self.mapper.centre_of(device, item), stream, device=device)
        cam.item = item
        holder.append(cam)
        return cam


def _printable(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable())[:100].strip()
