"""WebRTC: aiortc peers, WHEP endpoints' session logic, ICE configuration, relay tracks.

Owns: `RelayTrack` (camera packets to an aiortc sender without re-encoding), WHEP sessions and
their lifetimes, the ICE address setting.
May import: `config`, `streams`, aiortc, PyAV. Never `hub`.
"""
