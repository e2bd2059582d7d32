"""The demo's GB/T 28181 device: a simulated NVR of 城关镇 that registers to the demo hub over
loopback SIP (digest, keepalive), answers its Catalog and DeviceInfo queries, and streams PS
over RTP when a channel is watched — the same code paths a real NVR exercises. Its two
channels carry the CivilCodes of two villages, so they appear as cameras of 东关村 and 西关村.
"""

from __future__ import annotations

import logging

from aiohttp import web

from config.schema import HubConfig
from hub.gb28181.app import SERVER
from hub.gb28181.device import SimChannel, SimulatedDevice

log = logging.getLogger(__name__)

DEMO_NVR = "41092210001180000001"  # 城关镇 (410922100), type 118: an NVR
PICTURES = "size=640x360&fps=15&gop=30"


def demo_channels() -> list[SimChannel]:
    return [
        SimChannel(
            "41092210001310000001",
            "东关村文化广场",
            f"synthetic://gb-dongguan-square?{PICTURES}",
            civil_code="410922100201",
        ),
        SimChannel(
            "41092210001310000002",
            "西关村村委会门口",
            f"synthetic://gb-xiguan-office?{PICTURES}",
            civil_code="410922100202",
        ),
    ]


async def start_demo_device(app: web.Application, config: HubConfig) -> SimulatedDevice | None:
    """Start the NVR against the app's SIP server (None when GB/T 28181 is off or the config
    does not allow the NVR), registered before this returns."""
    server = app.get(SERVER)
    gb = config.gb28181
    allowed = [d for d in gb.devices if DEMO_NVR.startswith(d.id)]
    if server is None or not allowed:
        return None
    entry = max(allowed, key=lambda d: len(d.id))
    device = SimulatedDevice(
        DEMO_NVR,
        demo_channels(),
        hub=("127.0.0.1", server.udp_port),
        server_id=gb.server_id,
        domain=gb.domain,
        password=entry.password or gb.password,
        keepalive=min(gb.keepalive_interval, 30.0),
        name="演示 NVR (simulated)",
    )
    try:
        await device.start()
        if not device.registered.is_set():
            raise RuntimeError(f"the hub refused the REGISTER of {DEMO_NVR}")
    except BaseException:
        await device.close()
        raise
    log.info("demo GB/T 28181 NVR %s registered on udp port %d", DEMO_NVR, server.udp_port)
    return device
