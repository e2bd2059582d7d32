"""The naive aiortc way, as in aiortc's examples: `MediaPlayer(rtsp_url)` decodes the camera,
`MediaRelay` fans the frames out, and every viewer's sender has its own H.264 encoder.

    python -m bench.naive_server --camera rtsp://127.0.0.1:8554/cam --port 8090

Serves `POST /whep` (SDP offer in, 201 + answer out, no auth) on 127.0.0.1 and prints
`READY http://127.0.0.1:PORT/whep`. H.264 is forced, as the hub sends H.264.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRelay

from signaling.ice import use_host_addresses

PCS = web.AppKey("pcs", set[RTCPeerConnection])
SOURCE = web.AppKey("source", MediaPlayer)
RELAY = web.AppKey("relay", MediaRelay)


async def whep(request: web.Request) -> web.Response:
    offer = RTCSessionDescription(sdp=await request.text(), type="offer")
    pc = RTCPeerConnection()
    request.app[PCS].add(pc)
    video = request.app[SOURCE].video
    assert video is not None
    transceiver = pc.addTransceiver(request.app[RELAY].subscribe(video), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video")
    transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/H264"])
    await pc.setRemoteDescription(offer)
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": "/whep/x"},
    )


async def main(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    app = web.Application()
    app[PCS] = set()
    app[SOURCE] = MediaPlayer(args.camera, options={"rtsp_transport": "tcp"})
    app[RELAY] = MediaRelay()
    app.router.add_post("/whep", whep)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print(f"READY http://127.0.0.1:{args.port}/whep", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for pc in app[PCS]:
        with contextlib.suppress(Exception):
            await pc.close()
    video = app[SOURCE].video
    if video is not None:
        video.stop()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
