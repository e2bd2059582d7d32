"""The DESCRIBE SDP parser, with answers written in the style of real cameras."""

from __future__ import annotations

from streams import bitstream
from streams.bitstream import hevc_nal_type, hevc_sps_dimensions
from streams.media import Codec
from streams.rtsp_session import control_url
from streams.sdp import parse_sdp

HIKVISION = """v=0\r
o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64\r
s=Media Presentation\r
e=NONE\r
b=AS:5050\r
t=0 0\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast\r
m=video 0 RTP/AVP 96\r
c=IN IP4 0.0.0.0\r
b=AS:5000\r
a=recvonly\r
a=x-dimensions:1920,1080\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast\r
a=rtpmap:96 H264/90000\r
a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z2QAKKzZQHgCJ+WEAAADAAQAAAMAyDxgxlg=,aO48gA==\r
m=audio 0 RTP/AVP 0\r
c=IN IP4 0.0.0.0\r
b=AS:50\r
a=recvonly\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2?transportmode=unicast\r
a=rtpmap:0 PCMU/8000\r
a=Media_header:MEDIAINFO=494D4B48010100000400010010710110401F000000FA000000000000000000000000000000000000;\r
a=appversion:1.0\r
"""

DAHUA = """v=0\r
o=- 2253417385 2253417385 IN IP4 0.0.0.0\r
s=Media Server\r
c=IN IP4 0.0.0.0\r
t=0 0\r
a=control:*\r
a=packetization-supported:DH\r
a=rtppayload-supported:DH\r
a=range:npt=now-\r
m=video 0 RTP/AVP 98\r
a=control:trackID=0\r
a=framerate:25.000000\r
a=rtpmap:98 H265/90000\r
a=fmtp:98 profile-id=1;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBEHy5ZWVKTC5oCAAAADAIAAAAyE;sprop-pps=RAHA8vA8kA==;sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwB4mZgJ\r
a=recvonly\r
m=audio 0 RTP/AVP 8\r
a=control:trackID=1\r
a=rtpmap:8 PCMA/8000\r
a=recvonly\r
"""

MJPEG_STATIC = """v=0
o=- 0 0 IN IP4 10.0.0.5
s=Axis
t=0 0
m=video 0 RTP/AVP 26
a=control:video
a=x-framerate:12
"""

AUDIO_FIRST = """v=0\r
s=x\r
m=audio 0 RTP/AVP 97\r
a=rtpmap:97 MPEG4-GENERIC/16000/1\r
m=video 0 RTP/AVP 96\r
a=rtpmap:96 MP4V-ES/90000\r
a=fmtp:96 profile-level-id=1;config=000001B001\r
"""


def test_hikvision_h264() -> None:
    sdp = parse_sdp(HIKVISION)
    assert sdp.control.endswith("/101/?transportmode=unicast")
    video = sdp.video
    assert video is not None
    assert (video.payload_type, video.codec, video.clock_rate) == (96, "H264", 90000)
    assert Codec.from_name(video.codec) == Codec.H264
    assert video.fmtp["packetization-mode"] == "1"
    assert video.control.endswith("trackID=1?transportmode=unicast")
    sets = video.parameter_sets()
    assert bitstream.nal_types(sets) == [bitstream.NAL_SPS, bitstream.NAL_PPS]
    assert bitstream.sps_dimensions(bitstream.split_annexb(sets)[0]) == (1920, 1080)
    assert [m.kind for m in sdp.media] == ["video", "audio"]
    assert sdp.media[1].codec == "PCMU"


def test_dahua_h265() -> None:
    sdp = parse_sdp(DAHUA)
    assert sdp.control == "*"
    video = sdp.video
    assert video is not None
    assert Codec.from_name(video.codec) == Codec.HEVC
    assert video.framerate == 25.0 and video.control == "trackID=0"
    nals = bitstream.split_annexb(video.parameter_sets())
    assert [hevc_nal_type(n) for n in nals] == [32, 33, 34]  # VPS, SPS, PPS in that order
    assert hevc_sps_dimensions(nals[1]) == (1920, 1080)


def test_static_payload_type_without_rtpmap() -> None:
    video = parse_sdp(MJPEG_STATIC).video  # bare \n line ends too
    assert video is not None
    assert (video.codec, video.clock_rate, video.framerate) == ("JPEG", 90000, 12.0)
    assert Codec.from_name(video.codec) == Codec.MJPEG
    assert video.parameter_sets() == b""


def test_video_after_audio_and_mpeg4() -> None:
    video = parse_sdp(AUDIO_FIRST).video
    assert video is not None and video.payload_type == 96
    assert Codec.from_name(video.codec) == Codec.MPEG4


def test_malformed_lines_are_skipped() -> None:
    sdp = parse_sdp(
        "garbage\r\nm=video\r\na=rtpmap:xx\r\na=framerate:abc\r\nm=video 0 RTP/AVP 96\r\n"
    )
    video = sdp.video
    assert video is not None and video.payload_type == -1 and video.codec == ""
    assert parse_sdp("").video is None


def test_bad_base64_in_sprop_is_ignored() -> None:
    sdp = parse_sdp(
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=fmtp:96 sprop-parameter-sets=Z0LAHtoCgPaEAAADAAQAAAMAyDxYuoA,!!!,aM48gA==\r\n"
    )
    assert sdp.video is not None
    assert bitstream.nal_types(sdp.video.parameter_sets()) == [bitstream.NAL_SPS, bitstream.NAL_PPS]


def test_control_url_resolution() -> None:
    base = "rtsp://10.0.0.2/cam/realmonitor?channel=1&subtype=0/"  # Dahua's Content-Base
    assert control_url(base, "trackID=0") == base + "trackID=0"
    assert control_url("rtsp://h/test", "stream=0") == "rtsp://h/test/stream=0"
    assert control_url("rtsp://h/test/", "*") == "rtsp://h/test/"
    assert control_url("rtsp://h/test/", "") == "rtsp://h/test/"
    absolute = "rtsp://h:554/Streaming/Channels/101/trackID=1?transportmode=unicast"
    assert control_url("rtsp://h/x/", absolute) == absolute
