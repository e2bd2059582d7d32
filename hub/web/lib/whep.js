// WhepPlayer: plays one WHEP resource into a <video>, reconnects with backoff, reports stats.
//
// The hub (aiortc) does not trickle ICE, so the offer is POSTed once gathering is complete
// (or after a 2 s cap). States: idle → connecting → playing; reconnecting after a failure;
// paused while suspended (tab hidden); error when the hub refuses for good; stopped.

import { ApiError, errorFromResponse } from "./api.js";

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
const GATHER_CAP_MS = 2000;
const DISCONNECT_GRACE_MS = 4000;
// Refusals that a retry cannot fix: bad offer, bad token, not in scope, wrong content type.
const FINAL_STATUSES = new Set([400, 401, 403, 404, 405, 413, 415]);

export function waitGathering(pc, capMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, capMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class WhepPlayer extends EventTarget {
  // url: the camera's WHEP endpoint; headers(): extra headers (Authorization) per request;
  // audio: also receive an audio track (room seats), played by the same <video>.
  constructor(url, { headers = () => ({}), iceServers = [], audio = false } = {}) {
    super();
    this.url = url;
    this.headers = headers;
    this.iceServers = iceServers;
    this.audio = audio;
    this.state = "idle";
    this.error = null;
    this.attempts = 0;
    this.video = null;
    this.pc = null;
    this.location = null;
    this._retryTimer = null;
    this._graceTimer = null;
    this._last = null; // {t, frames, fps} at the last measurement, for a measured fps
  }

  async start(videoEl) {
    this.video = videoEl;
    this.attempts = 0;
    this.error = null;
    await this._attempt();
  }

  // End for good: close the peer connection and DELETE the session on the hub.
  async stop({ keepalive = false } = {}) {
    this._setState("stopped");
    clearTimeout(this._retryTimer);
    await this._teardown(keepalive);
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

  _setState(state, error = this.error) {
    if (this.state === "stopped" && state !== "stopped") return;
    this.state = state;
    this.error = error;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, error } }));
  }

  async _attempt() {
    if (this.state === "stopped") return;
    this._setState(this.attempts ? "reconnecting" : "connecting");
    try {
      await this._connect();
    } catch (err) {
      await this._fail(err);
    }
  }

  async _connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
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
    pc.onconnectionstatechange = () => this._onConnectionState(pc);
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc, GATHER_CAP_MS);
    if (this.pc !== pc) return; // stopped or suspended meanwhile
    let resp;
    try {
      resp = await fetch(this.url, {
        method: "POST",
        headers: { ...this.headers(), "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
    } catch (err) {
      throw new ApiError(0, "network", String(err.message || err));
    }
    if (resp.status !== 201) throw await errorFromResponse(resp);
    const location = resp.headers.get("Location");
    const answer = await resp.text();
    if (location) {
      const where = new URL(location, this.url).href;
      if (this.pc !== pc) {
        this._delete(where, false); // stopped while the POST was in flight
        return;
      }
      this.location = where;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
  }

  _onConnectionState(pc) {
    if (this.pc !== pc) return;
    const s = pc.connectionState;
    if (s === "connected") {
      clearTimeout(this._graceTimer);
      this.attempts = 0;
      this._setState("playing", null);
    } else if (s === "disconnected") {
      // ICE often recovers by itself; give it a moment before starting over
      clearTimeout(this._graceTimer);
      this._graceTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState !== "connected") {
          this._fail(new Error("连接中断 Connection lost"));
        }
      }, DISCONNECT_GRACE_MS);
    } else if (s === "failed" || s === "closed") {
      this._fail(new Error("连接失败 Connection failed"));
    }
  }

  async _fail(err) {
    if (this.state === "stopped" || this.state === "paused") return;
    await this._teardown(false);
    if (err instanceof ApiError && FINAL_STATUSES.has(err.status)) {
      this._setState("error", err);
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    this._setState("reconnecting", err);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._attempt(), delay);
  }

  async _teardown(keepalive) {
    clearTimeout(this._graceTimer);
    const pc = this.pc;
    const location = this.location;
    this.pc = null;
    this.location = null;
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    if (location) await this._delete(location, keepalive);
  }

  async _delete(location, keepalive) {
    try {
      const resp = await fetch(location, { method: "DELETE", headers: this.headers(), keepalive });
      if (!resp.ok && resp.status !== 404) throw await errorFromResponse(resp);
    } catch (err) {
      // the hub also closes sessions whose peer goes away; report, do not throw
      this.dispatchEvent(new CustomEvent("warning", { detail: { error: err } }));
    }
  }
}
