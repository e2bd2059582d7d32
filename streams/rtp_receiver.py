"""From the camera's video RTP packets to the sink: depacketize, unwrap the 32-bit RTP clock
into a pts starting near 0, learn the StreamInfo (size from the SPS, fps from the SDP, the
VUI or the first two pictures) and call `on_info()` once before the first `on_packet()`.
"""

from __future__ import annotations

from streams import bitstream
from streams.media import CLOCK_RATE, Codec, Packet, PacketSink, StreamInfo
from streams.rtp import ReceptionStats, RtpPacket, parse_rtp
from streams.rtp_depay import Depacketizer
from streams.rtp_h264 import H264Depacketizer
from streams.rtp_h265 import H265Depacketizer
from streams.sdp import MediaDescription


class VideoReceiver:
    """One video media of an RTSP session. Not thread-safe: event loop thread only."""

    def __init__(self, codec: Codec, media: MediaDescription, sink: PacketSink) -> None:
        self.codec = codec
        self.payload_type = media.payload_type
        self.sink = sink
        self.stats = ReceptionStats()
        self.packets = 0  # RTP packets of the video stream
        self.bytes = 0
        self.depacketizer: Depacketizer = (
            H264Depacketizer(self._on_access_unit)
            if codec == Codec.H264
            else H265Depacketizer(self._on_access_unit)
        )
        self._parameter_sets = media.parameter_sets()
        self._fps = media.framerate
        self._clock_rate = media.clock_rate or CLOCK_RATE
        self._origin = -1  # extended RTP timestamp of the first picture
        self._last_ts = 0
        self._extended = 0
        self._info: StreamInfo | None = None
        self._held: Packet | None = None  # first picture, while fps is being measured

    def on_rtp(self, data: memoryview, arrival: float) -> None:
        packet = parse_rtp(data)
        if packet is not None:
            self.feed(packet, arrival)

    def feed(self, packet: RtpPacket, arrival: float) -> None:
        if packet.payload_type != self.payload_type:
            return
        self.packets += 1
        self.bytes += len(packet.payload)
        self.stats.update(packet.seq, packet.ssrc)
        self.depacketizer.feed(packet.seq, packet.timestamp, packet.marker, packet.payload, arrival)

    def _on_access_unit(self, data: bytes, timestamp: int, keyframe: bool, arrival: float) -> None:
        if self._origin < 0:
            self._origin = self._extended = self._last_ts = timestamp
        else:
            delta = (timestamp - self._last_ts) & 0xFFFFFFFF
            self._extended += delta - 0x100000000 if delta >= 0x80000000 else delta
            self._last_ts = timestamp
        pts = self._extended - self._origin
        if self._clock_rate != CLOCK_RATE:
            pts = pts * CLOCK_RATE // self._clock_rate
        packet = Packet(data=data, pts=pts, keyframe=keyframe, captured=arrival)
        if self._info is None:
            self._first_pictures(packet)
            return
        self.sink.on_packet(packet)

    def _first_pictures(self, packet: Packet) -> None:
        if self._held is None:
            self._held = packet
            if not self._fps:
                self._fps = self._fps_from_sps(packet.data)
            if not self._fps:
                return  # measure it from the next picture's timestamp
        elif packet.pts > self._held.pts:
            self._fps = round(CLOCK_RATE / (packet.pts - self._held.pts), 3)
        self._info = self._stream_info(self._held)
        self.sink.on_info(self._info)
        first, self._held = self._held, None
        self.sink.on_packet(first)
        if packet is not first:
            self.sink.on_packet(packet)

    def _sps(self, data: bytes) -> bytes:
        return bitstream.find_sps(self.codec, data)

    def _fps_from_sps(self, first: bytes) -> float:
        if self.codec != Codec.H264:
            return 0.0
        sps = self._sps(self._parameter_sets) or self._sps(first)
        fps = bitstream.sps_fps(sps) if sps else 0.0
        return fps if 0 < fps <= 240 else 0.0

    def _stream_info(self, first: Packet) -> StreamInfo:
        parameter_sets = self._parameter_sets
        if not parameter_sets:
            parameter_sets = bitstream.inband_parameter_sets(self.codec, first.data)
        width = height = 0
        sps = self._sps(first.data) or self._sps(parameter_sets)
        if sps:
            try:
                if self.codec == Codec.H264:
                    width, height = bitstream.sps_dimensions(sps)
                else:
                    width, height = bitstream.hevc_sps_dimensions(sps)
            except ValueError:
                pass
        return StreamInfo(self.codec, width, height, self._fps, parameter_sets)
