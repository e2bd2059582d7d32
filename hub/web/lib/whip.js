// Local camera + microphone, and publishing them into a room or broadcast by WHIP: an
// RtcSession (rtc-session.js) that sends the stream's tracks sendonly.

import { RtcSession } from "./rtc-session.js";

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

export class Publisher extends RtcSession {
  static LIVE_STATE = "live";
  static BACKOFF_MS = [1000, 2000, 4000, 8000];
  static LOST_TEXT = "发布连接失败 Publishing connection failed";

  // url: POST target (/api/rooms/{id}/publish); headers(): Authorization; beforeRetry():
  // awaited before each new attempt (the room client takes its seat again there).
  constructor(url, stream, { headers = () => ({}), iceServers = [], beforeRetry = null } = {}) {
    super(url, { headers, iceServers });
    this.beforeRetry = beforeRetry;
    this.stream = stream;
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

  async _beforeAttempt() {
    if (this.attempts && this.beforeRetry) await this.beforeRetry();
  }

  _prepare(pc) {
    for (const track of this.stream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [this.stream] });
    }
  }

  _answered() {
    this.dispatchEvent(new CustomEvent("published", { detail: { location: this.location } }));
  }
}
