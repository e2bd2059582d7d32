"""H.265 RTP depacketizer (RFC 7798): single NAL unit packets, aggregation packets (AP) and
fragmentation units (FU), to Annex-B access units.

Decoding order numbers (sprop-max-don-diff > 0) are not supported; cameras do not send them.
PACI packets mark the picture as broken.
"""

from __future__ import annotations

from streams.bitstream import START_CODE, hevc_is_irap, hevc_nal_type
from streams.rtp_depay import Depacketizer

AP = 48
FU = 49


class H265Depacketizer(Depacketizer):
    def _payload(self, payload: memoryview) -> None:
        if len(payload) < 3:
            self._broken_picture()
            return
        kind = hevc_nal_type(payload)
        if kind < AP:
            self._nal(payload, hevc_is_irap(kind))
        elif kind == FU:
            if len(payload) < 4:
                self._broken_picture()
                return
            fu = payload[2]
            unit_kind = fu & 0x3F
            header = START_CODE + bytes(((payload[0] & 0x81) | (unit_kind << 1), payload[1]))
            self._fragment(
                bool(fu & 0x80),
                bool(fu & 0x40),
                header,
                payload[3:],
                hevc_is_irap(unit_kind),
            )
        elif kind == AP:
            pos, size = 2, len(payload)
            while pos + 2 < size:
                length = (payload[pos] << 8) | payload[pos + 1]
                pos += 2
                if length < 2 or pos + length > size:
                    self._broken_picture()
                    return
                unit = payload[pos : pos + length]
                self._nal(unit, hevc_is_irap(hevc_nal_type(unit)))
                pos += length
        else:
            self._broken_picture()
