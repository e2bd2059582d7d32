"""The GB/T 28181 slice in the app: with `gb28181.enabled`, the SIP server devices register
to, the watch that marks silent devices offline, the devices' channels as cameras
(`Channels`), their live view (`LiveView`), the device list and the metric families.

Set up after the cameras (channels are added to the `CameraRegistry`). At shutdown the
channels' streams stop first, so their BYEs go out while the SIP server is still open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from config.schema import HubConfig
from hub.cameras.service import CAMERAS
from hub.core.centres import CENTRES
from hub.core.events import EVENTS
from hub.core.state import CONFIG
from hub.gb28181 import api
from hub.gb28181.channels import Channels, GbCamera
from hub.gb28181.dialer import Dialer
from hub.gb28181.live import LiveView
from hub.gb28181.server import SipServer
from hub.gb28181.service import REGISTRAR, Registrar
from hub.http.metrics import METRICS, Family
from streams.media import Source
from streams.registry import SourceOptions

SERVER = web.AppKey("gb28181_server", SipServer)
CHANNELS = web.AppKey("gb28181_channels", Channels)
LIVE = web.AppKey("gb28181_live", LiveView)


def setup(app: web.Application, config: HubConfig) -> None:
    api.add_routes(app)
    if not config.gb28181.enabled:
        return
    app.cleanup_ctx.append(_gb28181_ctx)
    app[METRICS].add("gb28181", lambda family: _families(app, family))


async def _gb28181_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    cfg = config.gb28181
    centres = {c.code for c in app[CENTRES].visible_from("")}
    registrar = Registrar(cfg, app[EVENTS], centres)
    server = SipServer(registrar, announce=cfg.announce)
    await server.start(cfg.host, cfg.port)
    dialer = Dialer(cfg, server)
    live = LiveView(cfg, dialer, cfg.host)
    registrar.dialogs = live.dialog_request

    def make_source(camera: GbCamera, options: SourceOptions) -> Source:
        assert camera.device is not None
        return live.source(camera.device, camera.id, options)

    channels = Channels(cfg, config.streams, registrar, dialer, app[CAMERAS], centres, make_source)
    app[REGISTRAR] = registrar
    app[SERVER] = server
    app[CHANNELS] = channels
    app[LIVE] = live
    watch = asyncio.get_running_loop().create_task(_watch(registrar), name="gb28181:watch")
    try:
        yield
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await channels.close()
        cameras = [cam for device in channels.devices for cam in channels.of(device)]
        await asyncio.gather(*(cam.stream.close() for cam in cameras))
        await live.close()
        registrar.dialogs = None
        await server.close()


async def _watch(registrar: Registrar) -> None:
    """Devices whose registration expired or that stopped keeping alive go offline."""
    period = min(registrar.config.keepalive_interval, 5.0)
    while True:
        await asyncio.sleep(period)
        registrar.sweep()


def _families(app: web.Application, family: Family) -> None:
    registrar, server = app.get(REGISTRAR), app.get(SERVER)
    if registrar is None or server is None:
        return
    online = sum(1 for d in registrar.devices.values() if d.online)
    family("zzhub_gb28181_devices_online", "gauge", "Devices registered.", [("", float(online))])
    family(
        "zzhub_gb28181_register_refused_total",
        "counter",
        "REGISTERs refused (unknown device, wrong password).",
        [("", float(registrar.refused))],
    )
    family(
        "zzhub_gb28181_malformed_total",
        "counter",
        "SIP messages dropped as malformed.",
        [("", float(server.malformed))],
    )
    live, channels = app.get(LIVE), app.get(CHANNELS)
    if live is None or channels is None:
        return
    family(
        "zzhub_gb28181_channels",
        "gauge",
        "Device channels that are cameras of the hub.",
        [("", float(sum(len(channels.of(d)) for d in channels.devices)))],
    )
    family(
        "zzhub_gb28181_live_sessions",
        "gauge",
        "INVITE sessions open.",
        [("", float(len(live.sessions)))],
    )
    for name, help_, value in (
        ("invites", "INVITEs sent to devices.", live.invites),
        ("invites_failed", "INVITEs refused or unanswered.", live.invite_failed),
        (
            "media_strangers",
            "Media packets from another address than the device's.",
            live.strangers,
        ),
        (
            "media_wrong_ssrc",
            "Media packets with another SSRC than the session's.",
            live.wrong_ssrc,
        ),
        ("media_lost", "RTP packets lost (sequence gaps) in ended sessions.", live.lost),
        (
            "queries_failed",
            "Catalog and DeviceInfo queries unanswered or refused.",
            channels.queries_failed,
        ),
        ("channel_conflicts", "Channels whose ID is another camera's.", channels.conflicts),
        ("stray_responses", "Responses matching no request of ours.", server.pending.stray),
        (
            "register_limited",
            "REGISTERs dropped: over gb28181.register_rate from one address.",
            server.registers.limited,
        ),
    ):
        family(f"zzhub_gb28181_{name}_total", "counter", help_, [("", float(value))])
