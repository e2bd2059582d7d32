"""A hub's media plane without HTTP: N camera Streams, each with one consumer that drains its
relay (remux only), in one process whose CPU the cameras benchmark samples.

    python -m bench.ingest_worker --url rtsp://127.0.0.1:8554/cam [--url …] --count 100

Camera i pulls the (i mod len)th URL with ?n=i. `--source rtsp` is the hub's own client (streams.rtsp), `pyav` the
PyAV/FFmpeg demuxer in a thread per camera (streams.pyav_source). Prints `READY online/N`
once every stream is online (or after the wait), then answers each `mark` line on stdin with a
JSON line of totals and exits on `quit` or end of input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from streams.media import Source
from streams.registry import SourceOptions, open_source
from streams.relay import Consumer
from streams.stream import Stream, StreamState


class Recording:
    """A source factory that remembers the sources it made (for their RTP counters)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sources: list[Any] = []

    def __call__(self, url: str, options: SourceOptions) -> Source:
        if self.kind == "pyav":
            from streams.pyav_source import PyAVSource

            source: Source = PyAVSource(url, options)
        else:
            source = open_source(url, options)
        self.sources.append(source)
        return source


def rtp_counts(sources: list[Any]) -> tuple[int, int]:
    """(RTP packets received, RTP packets lost) over every RTSP source made so far."""
    received = lost = 0
    for source in sources:
        receiver = getattr(source, "receiver", None)
        if receiver is not None:
            received += receiver.packets
            lost += max(receiver.stats.lost, receiver.depacketizer.lost)
    return received, lost


async def drain(consumer: Consumer, counts: list[int], index: int) -> None:
    async for _packet in consumer:
        counts[index] += 1


async def main(args: argparse.Namespace) -> None:
    factory = Recording(args.source)
    streams = [
        Stream(
            f"cam{i}",
            f"{args.url[i % len(args.url)]}?n={i}",
            SourceOptions(name=f"cam{i}", timeout=10.0),
            always_on=True,
            source_factory=factory,
        )
        for i in range(args.count)
    ]
    counts = [0] * args.count
    tasks = []
    for i, stream in enumerate(streams):
        consumer = stream.relay.subscribe(f"bench{i}", maxsize=250)
        tasks.append(asyncio.create_task(drain(consumer, counts, i)))
        stream.start()
        await asyncio.sleep(args.stagger)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.wait
    # polling: a Stream's state has a waiter per stream only, and this is a test harness
    while loop.time() < deadline and any(s.state is not StreamState.ONLINE for s in streams):  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    online = sum(s.state is StreamState.ONLINE for s in streams)
    print(f"READY {online}/{args.count}", flush=True)
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "mark":
            received, lost = rtp_counts(factory.sources)
            print(
                json.dumps(
                    {
                        "online": sum(s.state is StreamState.ONLINE for s in streams),
                        "consumed": sum(counts),
                        "relay_drops": sum(s.relay.drops for s in streams),
                        "reconnects": sum(s.reconnects for s in streams),
                        "rtp": received,
                        "lost": lost,
                    }
                ),
                flush=True,
            )
        elif line in ("quit", ""):
            break
    await asyncio.gather(*(s.close() for s in streams))
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--source", choices=["rtsp", "pyav"], default="rtsp")
    parser.add_argument("--stagger", type=float, default=0.02, help="seconds between starts")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for online")
    asyncio.run(main(parser.parse_args()))
