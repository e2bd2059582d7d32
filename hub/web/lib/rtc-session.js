// RtcSession: what the WHEP player (whep.js, receives) and the WHIP publisher (whip.js, sends)
// share. One peer connection negotiated by one HTTP POST of the SDP offer, sent once ICE
// gathering is complete (the hub, aiortc, does not trickle; 2 s cap); the Location the hub
// answers with is DELETEd at the end. States go through one setter that fires "statechange"
// {state, error}; "stopped" is final. A failure retries with backoff, except a refusal that a
// retry cannot fix (isFinal): then the state is "error".
//
// A subclass sets LIVE_STATE ("playing" | "live"), BACKOFF_MS and LOST_TEXT, adds its tracks
// in _prepare(pc), and may override _beforeAttempt() and _answered().

import { ApiError, errorFromResponse } from "./api.js";

const GATHER_CAP_MS = 2000;

// The session, room, seat or publication is gone (404 not found, 405 not there any more,
// 409 the room ended or the seat was let go, 410 gone): asking again gets the same answer.
export const GONE_STATUSES = new Set([404, 405, 409, 410]);
// Also final: a bad offer (400), a bad token (401), not in scope (403), too large (413), not SDP (415).
export const FINAL_STATUSES = new Set([400, 401, 403, 413, 415, ...GONE_STATUSES]);

// True when `err` is the hub refusing for good: the session must not be retried.
export function isFinal(err) {
  return err instanceof ApiError && FINAL_STATUSES.has(err.status);
}

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

export class RtcSession extends EventTarget {
  static LIVE_STATE = "live";
  static BACKOFF_MS = [1000, 2000, 4000, 8000];
  static LOST_TEXT = "连接失败 Connection failed";

  // url: the POST target; headers(): extra headers (Authorization) per request;
  // disconnectGraceMs: how long a "disconnected" ICE may take to recover before starting over
  // (null: wait for "failed").
  constructor(url, { headers = () => ({}), iceServers = [], disconnectGraceMs = null } = {}) {
    super();
    this.url = url;
    this.headers = headers;
    this.iceServers = iceServers;
    this.disconnectGraceMs = disconnectGraceMs;
    this.state = "idle";
    this.error = null;
    this.attempts = 0;
    this.pc = null;
    this.location = null;
    this._retryTimer = null;
    this._graceTimer = null;
  }

  async start() {
    this.attempts = 0;
    this.error = null;
    await this._attempt();
  }

  // End for good: close the peer connection and DELETE the session on the hub.
  async stop({ keepalive = false } = {}) {
    this._setState("stopped");
    clearTimeout(this._retryTimer);
    await this._teardown(keepalive);
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
      await this._beforeAttempt();
      await this._connect();
    } catch (err) {
      await this._fail(err);
    }
  }

  async _beforeAttempt() {}

  _prepare(_pc) {}

  _answered() {}

  async _connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    this._prepare(pc);
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
    const where = location ? new URL(location, this.url).href : null;
    if (this.pc !== pc) {
      if (where) this._delete(where, false); // stopped while the POST was in flight
      return;
    }
    this.location = where;
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    this._answered();
  }

  _onConnectionState(pc) {
    if (this.pc !== pc) return;
    const s = pc.connectionState;
    if (s === "connected") {
      clearTimeout(this._graceTimer);
      this.attempts = 0;
      this._setState(this.constructor.LIVE_STATE, null);
    } else if (s === "disconnected" && this.disconnectGraceMs != null) {
      // ICE often recovers by itself; give it a moment before starting over
      clearTimeout(this._graceTimer);
      this._graceTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState !== "connected") {
          this._fail(new Error("连接中断 Connection lost"));
        }
      }, this.disconnectGraceMs);
    } else if (s === "failed" || s === "closed") {
      this._fail(new Error(this.constructor.LOST_TEXT));
    }
  }

  async _fail(err) {
    if (this.state === "stopped" || this.state === "paused") return;
    await this._teardown(false);
    if (isFinal(err)) {
      this._setState("error", err);
      return;
    }
    const backoff = this.constructor.BACKOFF_MS;
    const delay = backoff[Math.min(this.attempts, backoff.length - 1)];
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

  // The hub also ends sessions whose peer goes away: a failed DELETE is reported, not thrown.
  async _delete(location, keepalive) {
    try {
      const resp = await fetch(location, { method: "DELETE", headers: this.headers(), keepalive });
      if (!resp.ok && !GONE_STATUSES.has(resp.status)) throw await errorFromResponse(resp);
    } catch (err) {
      this.dispatchEvent(new CustomEvent("warning", { detail: { error: err } }));
    }
  }
}
