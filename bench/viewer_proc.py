"""A process of aiortc viewers that receive RTP but do not decode (so that 50 viewers do not
starve the hub of CPU on a 2-core machine).

    python -m bench.viewer_proc --count 10 --whep URL --token T
    python -m bench.viewer_proc --count 10 --janus http://127.0.0.1:8088/janus --mountpoint 1

aiortc's receiver decodes every complete frame in a thread; here its `get_decoder` is swapped
for one that only counts the frames the jitter buffer completes. Prints `READY n` once every
viewer has received a frame, then answers each `mark` line on stdin with a JSON line of
totals (frames, RTP packets from getStats) and exits on `quit` or end of input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
from typing import Any

import aiohttp
import aiortc.rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.janus import VETH_ADDRESS, JanusClient
from signaling.ice import use_host_addresses


class FrameCounter:
    def __init__(self) -> None:
        self.frames = 0
        self._lock = threading.Lock()

    def decode(self, encoded_frame: Any) -> list[Any]:
        with self._lock:
            self.frames += 1
        return []


COUNTER = FrameCounter()


def no_decoder(codec: Any) -> FrameCounter:
    return COUNTER


async def whep_viewer(http: aiohttp.ClientSession, url: str, token: str) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    async with http.post(url, data=pc.localDescription.sdp, headers=headers) as resp:
        body = await resp.text()
        if resp.status != 201:
            raise RuntimeError(f"WHEP POST answered {resp.status}: {body[:200]}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return pc


async def janus_viewer(janus: JanusClient, mountpoint: int) -> RTCPeerConnection:
    session = await janus.watch(mountpoint)
    pc = RTCPeerConnection()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=session.offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    await janus.start(session, pc.localDescription.sdp)
    return pc


async def packets_received(pcs: list[RTCPeerConnection]) -> int:
    total = 0
    for pc in pcs:
        report = await pc.getStats()
        total += sum(
            int(getattr(s, "packetsReceived", 0))
            for s in report.values()
            if s.type == "inbound-rtp"
        )
    return total


async def main(args: argparse.Namespace) -> None:
    use_host_addresses([VETH_ADDRESS if args.janus else "127.0.0.1"])
    aiortc.rtcrtpreceiver.get_decoder = no_decoder  # type: ignore[attr-defined, assignment]
    pcs: list[RTCPeerConnection] = []
    async with aiohttp.ClientSession() as http:
        janus = JanusClient(http, args.janus) if args.janus else None
        for _ in range(args.count):
            if janus is not None:
                pcs.append(await janus_viewer(janus, args.mountpoint))
            else:
                pcs.append(await whep_viewer(http, args.whep, args.token))
        async with asyncio.timeout(60):
            # polling: frames are counted in the receivers' decoder threads
            while COUNTER.frames < args.count or any(  # noqa: ASYNC110
                pc.connectionState != "connected" for pc in pcs
            ):
                await asyncio.sleep(0.1)
        print(f"READY {len(pcs)}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line == "mark":
                connected = sum(pc.connectionState == "connected" for pc in pcs)
                print(
                    json.dumps(
                        {
                            "frames": COUNTER.frames,
                            "connected": connected,
                            "packets": await packets_received(pcs),
                        }
                    ),
                    flush=True,
                )
            elif line in ("quit", ""):
                break
        for pc in pcs:
            with contextlib.suppress(Exception):
                await pc.close()
        if janus is not None:
            await janus.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--whep", help="WHEP endpoint URL")
    parser.add_argument("--token", default="")
    parser.add_argument("--janus", help="Janus HTTP API URL")
    parser.add_argument("--mountpoint", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
