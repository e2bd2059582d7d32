// WhepPlayer: plays one WHEP resource into a <video>, reconnects with backoff, reports stats.
//
// An RtcSession (rtc-session.js: the POST of a complete offer, the DELETE, the retry rule).
// States: idle → connecting → playing; reconnecting after a failure; paused while suspended
// (tab hidden); error when the hub refuses for good; stopped.

import { RtcSession } from "./rtc-session.js";

const DISCONNECT_GRACE_MS = 4000;

export class WhepPlayer extends RtcSession {
  static LIVE_STATE = "playing";
  static BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

  // url: the camera's WHEP endpoint; headers(): extra headers (Authorization) per request;
  // audio: also receive an audio track (room seats), played by the same <video>.
  constructor(url, { headers = () => ({}), iceServers = [], audio = false } = {}) {
    super(url, { headers, iceServers, disconnectGraceMs: DISCONNECT_GRACE_MS });
    this.audio = audio;
    this.video = null;
    this._last = null; // {t, frames, fps} at the last measurement, for a measured fps
  }

  async start(videoEl) {
    this.video = videoEl;
    await super.start();
  }

  // End for good: close the peer connection and DELETE the session on the hub.
  async stop({ keepalive = false } = {}) {
    await super.stop({ keepalive });
    if (this.video) this.video.srcObject = null;
  }

  // Release the hub session but keep the player, to resume() later (hidden tab).
  async suspend() {
    if (this.state === "stopped" || this.state === "error") return;
    clearTimeout(this._retryTimer);
    this._setState("paused");
    await this._teardown(false);
  }

  async resume() {
    if (this.state !== "paused") return;
    this.attempts = 0;
    await this._attempt();
  }

  async getStats() {
    const out = { framesDecoded: 0, fps: 0, width: 0, height: 0, bytesReceived: 0, packetsLost: 0 };
    const pc = this.pc;
    if (!pc) return out;
    const receiver = pc.getReceivers().find((r) => r.track && r.track.kind === "video");
    const report = await (receiver ? receiver.getStats() : pc.getStats());
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.framesDecoded = s.framesDecoded || 0;
        out.width = s.frameWidth || 0;
        out.height = s.frameHeight || 0;
        out.bytesReceived = s.bytesReceived || 0;
        out.packetsLost = s.packetsLost || 0;
      }
    });
    // Measured between calls at least 0.5 s apart. Not Chromium's framesPerSecond: the hub
    // replays the current GOP to a new viewer, and that burst would read as 100+ fps. The
    // first window with frames is skipped for the same reason.
    const now = performance.now();
    const last = this._last;
    if (!last || last.frames === 0 || out.framesDecoded < last.frames) {
      this._last = { t: now, frames: out.framesDecoded, fps: 0 };
    } else if (now - last.t >= 500) {
      const measured = ((out.framesDecoded - last.frames) * 1000) / (now - last.t);
      this._last = { t: now, frames: out.framesDecoded, fps: measured };
    }
    out.fps = this._last.fps;
    return out;
  }

  _prepare(pc) {
    this._last = null;
    pc.addTransceiver("video", { direction: "recvonly" });
    if (this.audio) pc.addTransceiver("audio", { direction: "recvonly" });
    const tracks = new MediaStream(); // video and audio in one stream, whatever the msids say
    pc.ontrack = (ev) => {
      if (this.pc !== pc || !this.video) return;
      if (this.audio) {
        tracks.addTrack(ev.track);
        if (this.video.srcObject !== tracks) this.video.srcObject = tracks;
        this.video.play().catch(() => {});
        return;
      }
      this.video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      this.video.play().catch(() => {}); // autoplay of a muted video; a click also resumes
    };
  }
}
