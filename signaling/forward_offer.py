"""Offers of room participants: what they carry, and the codecs the hub answers with.

A publisher (WHIP-style) offers to send a camera and a microphone; a subscriber offers to
receive one publication's video and audio. Both are checked here before a peer connection is
made, so that a garbage or empty offer is an `OfferError` with a reason, not a traceback.
"""

from __future__ import annotations

from aiortc import RTCRtpCodecCapability, RTCRtpReceiver, RTCRtpSender

from signaling.whep import OfferError

KINDS = ("video", "audio")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def media_sections(sdp: str) -> list[tuple[str, str]]:
    """(kind, direction) of each active (port ≠ 0) audio and video m-line of an offer."""
    found: list[tuple[str, str]] = []
    kind: str | None = None
    direction = "sendrecv"
    for line in [*sdp.replace("\r\n", "\n").split("\n"), "m=end 0"]:
        if line.startswith("m="):
            if kind is not None:
                found.append((kind, direction))
            parts = line[2:].split()
            active = len(parts) >= 2 and parts[1] != "0"  # port 0: a rejected m-line
            kind = parts[0] if parts and parts[0] in KINDS and active else None
            direction = "sendrecv"
        elif line.startswith("a=") and line[2:].strip() in DIRECTIONS:
            direction = line[2:].strip()
    return found


def check_offer(sdp: str, *, publish: bool) -> set[str]:
    """The media kinds the offer can use; OfferError (with the reason) when it is unusable.

    A publication is one camera and one microphone: one video and one audio section at most,
    sending. A subscription only receives: a section that would send to the hub is refused
    (the hub would have to take in, and aiortc decode, media nobody asked for)."""
    if not sdp.strip():
        raise OfferError("empty SDP offer")
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError("not an SDP offer (must start with v=0)")
    if "ice-ufrag" not in sdp or "fingerprint" not in sdp:
        raise OfferError("the offer lacks ICE credentials or a DTLS fingerprint")
    sections = media_sections(sdp)
    if not sections:
        raise OfferError("the offer has no audio or video media section")
    if publish:
        for kind in KINDS:
            if sum(k == kind for k, _ in sections) > 1:
                raise OfferError(f"a publication sends one {kind} track: the offer has several")
        usable = {k for k, d in sections if d in ("sendrecv", "sendonly")}
    else:
        sending = [k for k, d in sections if d == "sendonly"]
        if sending:
            raise OfferError(f"a subscription only receives: the {sending[0]} section sends")
        usable = {k for k, d in sections if d in ("sendrecv", "recvonly")}
    if not usable:
        what = "sends" if publish else "receives"
        raise OfferError(f"the offer {what} no audio or video (sections: {sections})")
    return usable


def _codecs(kind: str, *, send: bool) -> list[RTCRtpCodecCapability]:
    caps = (RTCRtpSender if send else RTCRtpReceiver).getCapabilities(kind)
    return list(caps.codecs) if caps is not None else []


def publisher_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """What the hub accepts from a publisher: H.264 first (forwarded as is to every browser),
    VP8 when that is all the browser sends; Opus for audio."""
    codecs = _codecs(kind, send=False)
    if kind == "audio":
        return [c for c in codecs if c.mimeType.lower() == "audio/opus"]
    order = ("video/h264", "video/vp8", "video/rtx")
    return sorted(
        (c for c in codecs if c.mimeType.lower() in order),
        key=lambda c: order.index(c.mimeType.lower()),
    )


def subscriber_preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """What the hub sends a subscriber: exactly the publication's codec (no transcoding)."""
    wanted = f"{kind}/{'opus' if kind == 'audio' else codec}".lower()
    keep = (wanted, "video/rtx") if kind == "video" else (wanted,)
    return [c for c in _codecs(kind, send=True) if c.mimeType.lower() in keep]
