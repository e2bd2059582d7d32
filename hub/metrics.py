"""Prometheus text exposition of the counters that live on streams, relays and sessions."""

from __future__ import annotations

from aiohttp import web

from hub import keys


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(app: web.Application) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")

    cameras = app[keys.CAMERAS].all()

    def per_camera(attr: str) -> list[tuple[str, float]]:
        out = []
        for cam in cameras:
            stats = cam.stream.stats()
            value = stats[attr]
            assert isinstance(value, int | float)
            out.append((f'camera="{_escape(cam.id)}",centre="{cam.centre}"', float(value)))
        return out

    family(
        "zzhub_camera_packets_total",
        "counter",
        "Packets received from the camera.",
        per_camera("packets"),
    )
    family(
        "zzhub_camera_bytes_total",
        "counter",
        "Bytes received from the camera.",
        per_camera("bytes"),
    )
    family(
        "zzhub_camera_drops_total",
        "counter",
        "Packets dropped for slow consumers.",
        per_camera("drops"),
    )
    family(
        "zzhub_camera_reconnects_total", "counter", "Reconnect attempts.", per_camera("reconnects")
    )
    family("zzhub_camera_viewers", "gauge", "Leases held on the camera.", per_camera("viewers"))
    family("zzhub_camera_consumers", "gauge", "Relay consumers.", per_camera("consumers"))
    family("zzhub_camera_fps", "gauge", "Measured frame rate.", per_camera("fps"))
    family(
        "zzhub_camera_up",
        "gauge",
        "1 when the camera is online.",
        [
            (
                f'camera="{_escape(c.id)}",centre="{c.centre}"',
                1.0 if c.status() == "online" else 0.0,
            )
            for c in cameras
        ],
    )
    whep = app[keys.WHEP]
    family("zzhub_whep_sessions", "gauge", "Open WHEP viewer sessions.", [("", float(len(whep)))])
    family(
        "zzhub_whep_sessions_created_total",
        "counter",
        "WHEP sessions created.",
        [("", float(whep.created))],
    )
    family(
        "zzhub_whep_sessions_failed_total",
        "counter",
        "WHEP offers refused or failed.",
        [("", float(whep.failed))],
    )
    return "\n".join(lines) + "\n"
