// Local camera + microphone, and publishing them into a room by WHIP (POST an SDP offer with
// sendonly video+audio once ICE gathering is complete — the hub does not trickle).

import { ApiError, errorFromResponse } from "./api.js";
import { waitGathering } from "./whep.js";

const GATHER_CAP_MS = 2000;
const BACKOFF_MS = [1000, 2000, 4000, 8000];
const FINAL_STATUSES = new Set([400, 401, 403, 404, 409, 413, 415]);

// The camera size: ?video=320x240 in the page URL (tests, weak terminals), else 640x360.
export function videoConstraints() {
  const wanted = new URLSearchParams(location.search).get("video") || "640x360";
  const [w, h] = wanted.split("x").map(Number);
  return { width: { ideal: w || 640 }, height: { ideal: h || 360 }, frameRate: { ideal: 15 } };
}

// What a getUserMedia failure means to a person at a terminal.
export function describeMediaError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return "摄像头/麦克风权限被拒绝 Camera/microphone permission denied — 请在浏览器中允许 allow it in the browser";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return "未找到摄像头或麦克风 No camera or microphone found";
  }
  if (name === "NotReadableError") {
    return "摄像头被其他程序占用 The camera is in use by another program";
  }
  return `无法打开摄像头 Cannot open the camera: ${err && err.message ? err.message : err}`;
}

// Camera and microphone; falls back to whichever exists. Throws with a readable message.
export async function openLocalMedia() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    throw new Error("此浏览器不支持摄像头 This browser cannot open a camera (https or localhost needed)");
  }
  const video = videoConstraints();
  const tries = [{ video, audio: true }, { video }, { audio: true }];
  let first = null;
  for (const constraints of tries) {
    try {
      return await md.getUserMedia(constraints);
    } catch (err) {
      first = first || err;
      if (err.name === "NotAllowedError" || err.name === "SecurityError") break;
    }
  }
  const error = new Error(describeMediaError(first));
  error.cause = first;
  throw error;
}

export class Publisher extends EventTarget {
  // url: POST target (/api/rooms/{id}/publish); headers(): Authorization; beforeRetry():
  // awaited before each new attempt (the room client takes its seat again there).
  constructor(url, stream, { headers = () => ({}), iceServers = [], beforeRetry = null } = {}) {
    super();
    this.beforeRetry = beforeRetry;
    this.url = url;
    this.stream = stream;
    this.headers = headers;
    this.iceServers = iceServers;
    this.pc = null;
    this.location = null;
    this.state = "idle";
    this.error = null;
    this.attempts = 0;
    this._retry = null;
  }

  async start() {
    this.attempts = 0;
    await this._attempt();
  }

  async stop({ keepalive = false } = {}) {
    this._set("stopped");
    clearTimeout(this._retry);
    await this._teardown(keepalive);
  }

  // Start over (the hub dropped the publication): tear down, then retry with backoff.
  restart(reason) {
    if (this.state !== "stopped") this._fail(reason);
  }

  async getStats() {
    const out = { framesEncoded: 0, bytesSent: 0, codec: "" };
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    const codecs = new Map();
    report.forEach((s) => {
      if (s.type === "codec") codecs.set(s.id, s.mimeType);
    });
    report.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") {
        out.framesEncoded = s.framesEncoded || 0;
        out.bytesSent = s.bytesSent || 0;
        out.codec = codecs.get(s.codecId) || "";
      }
    });
    return out;
  }

  _set(state, error = this.error) {
    if (this.state === "stopped" && state !== "stopped") return;
    this.state = state;
    this.error = error;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, error } }));
  }

  async _attempt() {
    if (this.state === "stopped") return;
    this._set(this.attempts ? "reconnecting" : "connecting");
    try {
      if (this.attempts && this.beforeRetry) await this.beforeRetry();
      await this._connect();
    } catch (err) {
      await this._fail(err);
    }
  }

  async _connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    for (const track of this.stream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
    }
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const s = pc.connectionState;
      if (s === "connected") {
        this.attempts = 0;
        this._set("live", null);
      } else if (s === "failed" || s === "closed") {
        this._fail(new Error("发布连接失败 Publishing connection failed"));
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc, GATHER_CAP_MS);
    if (this.pc !== pc) return;
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
    if (location) this.location = new URL(location, this.url).href;
    if (this.pc !== pc) {
      await this._teardown(false);
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    this.dispatchEvent(new CustomEvent("published", { detail: { location: this.location } }));
  }

  async _fail(err) {
    if (this.state === "stopped") return;
    await this._teardown(false);
    if (err instanceof ApiError && FINAL_STATUSES.has(err.status)) {
      this._set("error", err);
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    this._set("reconnecting", err);
    clearTimeout(this._retry);
    this._retry = setTimeout(() => this._attempt(), delay);
  }

  async _teardown(keepalive) {
    const pc = this.pc;
    const location = this.location;
    this.pc = null;
    this.location = null;
    if (pc) {
      pc.onconnectionstatechange = null;
      pc.close();
    }
    if (location) {
      try {
        await fetch(location, { method: "DELETE", headers: this.headers(), keepalive });
      } catch {
        // the hub ends a publication whose peer goes away anyway
      }
    }
  }
}
