"""H.264 RTP depacketizer (RFC 6184, non-interleaved mode): single NAL unit packets, STAP-A and
FU-A, to Annex-B access units. STAP-B, MTAP and FU-B (interleaved mode, which cameras do not
use) mark the picture as broken.
"""

from __future__ import annotations

from streams.bitstream import NAL_IDR, START_CODE, nal_type
from streams.rtp_depay import Depacketizer

STAP_A = 24
FU_A = 28

# START_CODE + the reconstructed NAL header, for every FU indicator/header combination
_FU_PREFIX = [START_CODE + bytes((value,)) for value in range(256)]


class H264Depacketizer(Depacketizer):
    def _payload(self, payload: memoryview) -> None:
        indicator = payload[0]
        kind = indicator & 0x1F
        if kind == FU_A:
            if len(payload) < 3:
                self._broken_picture()
                return
            fu = payload[1]
            nal_kind = fu & 0x1F
            self._fragment(
                bool(fu & 0x80),
                bool(fu & 0x40),
                _FU_PREFIX[(indicator & 0xE0) | nal_kind],
                payload[2:],
                nal_kind == NAL_IDR,
            )
        elif 0 < kind < STAP_A:
            self._nal(payload, kind == NAL_IDR)
        elif kind == STAP_A:
            self._aggregate(payload, 1)
        else:
            self._broken_picture()

    def _aggregate(self, payload: memoryview, pos: int) -> None:
        size = len(payload)
        while pos + 2 < size:
            length = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if length == 0 or pos + length > size:
                self._broken_picture()
                return
            nal = payload[pos : pos + length]
            self._nal(nal, nal_type(nal) == NAL_IDR)
            pos += length
