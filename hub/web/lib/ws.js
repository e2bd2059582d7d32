// HubSocket: the console's WebSocket to the hub (/ws?token=…, protocol in docs/protocol.md).
//
// - request(type, data) → Promise of the reply's data; a refusal rejects with WsError
//   (code, message) — the hub's own words, e.g. "forbidden: you may not call …".
// - on(topic, fn) → unsubscribe function; fn(data, event) for each event of that topic
//   ("*" receives every event).
// - Reconnects with backoff; "open" fires on every hello (re-sync state then: presence.list,
//   call.pending …), "status" on every change of `state` (connecting|open|closed|stopped).
// - A hub cluster: the hello names the live nodes with their URLs (`hello.cluster.nodes`,
//   kept up to date by `cluster.node` events). A hub shutting down closes sockets with 1001:
//   the socket retries its own node; when that keeps failing (FAILOVER_AFTER attempts) it
//   probes the other nodes and fires "failover" {id, url} for one that answers, so the page
//   can offer to switch (the sign-in is per site: the user signs in again there). It never
//   moves silently: its HTTP calls would still go to the node that is gone.

const PROTOCOL = 1;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const REQUEST_TIMEOUT_MS = 10000;
const FAILOVER_AFTER = 3; // failed attempts on the own node before other nodes are probed
const PROBE_TIMEOUT_MS = 3000;

export class WsError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "WsError";
    this.code = code;
  }
}

export class HubSocket extends EventTarget {
  // token: a string or a function returning the current token.
  constructor(token, { path = "/ws" } = {}) {
    super();
    this.token = typeof token === "function" ? token : () => token;
    this.path = path;
    this.state = "idle";
    this.hello = null;
    this.attempts = 0;
    this.ws = null;
    this._seq = 0;
    this._pending = new Map(); // id → {resolve, reject, timer}
    this._listeners = new Map(); // topic → Set(fn)
    this._retry = null;
    this.nodes = new Map(); // other live hub nodes: id → url (a cluster; empty otherwise)
    this.failover = null; // {id, url} offered since the own node became unreachable
    this._probing = false;
  }

  url() {
    const u = new URL(this.path, location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", this.token());
    return u.href;
  }

  connect() {
    if (this.state === "open" || this.state === "connecting") return;
    clearTimeout(this._retry);
    this._setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (err) {
      this._scheduleRetry(err);
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev);
    ws.onerror = () => {}; // a close follows; handled there
  }

  close() {
    clearTimeout(this._retry);
    this._setState("stopped");
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "bye");
    this._failPending(new WsError("closed", "连接已关闭 Socket closed"));
  }

  get connected() {
    return this.state === "open";
  }

  on(topic, fn) {
    if (!this._listeners.has(topic)) this._listeners.set(topic, new Set());
    this._listeners.get(topic).add(fn);
    return () => this._listeners.get(topic)?.delete(fn);
  }

  request(type, data = {}, { timeout = REQUEST_TIMEOUT_MS } = {}) {
    if (!this.connected) {
      return Promise.reject(new WsError("offline", "未连接到中心 Not connected to the hub"));
    }
    const id = `c${++this._seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new WsError("timeout", `${type}: 无应答 no reply in ${timeout / 1000} s`));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ v: PROTOCOL, id, type, data }));
    });
  }

  _setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...detail } }));
  }

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg.type === "hello") {
      this.hello = msg.data;
      this.attempts = 0;
      this.failover = null;
      this._learnNodes(msg.data.cluster);
      this._setState("open");
      this.dispatchEvent(new CustomEvent("open", { detail: msg.data }));
    } else if (msg.type === "reply" || (msg.type === "error" && msg.re)) {
      const waiting = this._pending.get(msg.re);
      if (!waiting) return;
      this._pending.delete(msg.re);
      clearTimeout(waiting.timer);
      if (msg.type === "reply") waiting.resolve(msg.data);
      else waiting.reject(new WsError(msg.error.code, msg.error.message));
    } else if (msg.type === "error") {
      this.dispatchEvent(new CustomEvent("error", { detail: msg.error }));
    } else if (msg.type === "event") {
      if (msg.topic === "cluster.node" && msg.data && msg.data.node) {
        if (msg.data.state === "down") this.nodes.delete(msg.data.node);
        else if (msg.data.url) this.nodes.set(msg.data.node, msg.data.url);
      }
      this._emit(msg.topic, msg.data, msg);
      this._emit("*", msg.data, msg);
    } else if (msg.type === "lagged") {
      // events were dropped: listeners of "open" reload their state over HTTP/requests
      this.dispatchEvent(new CustomEvent("open", { detail: this.hello }));
    }
  }

  _emit(topic, data, msg) {
    for (const fn of this._listeners.get(topic) || []) {
      try {
        fn(data, msg);
      } catch (err) {
        console.error(`listener of ${topic} failed`, err);
      }
    }
  }

  _onClose(ws, ev) {
    if (this.ws !== ws) return;
    this.ws = null;
    this._failPending(new WsError("closed", `连接断开 Socket closed (${ev.code})`));
    if (this.state === "stopped") return;
    this._scheduleRetry(new Error(`closed ${ev.code} ${ev.reason || ""}`.trim()));
  }

  _learnNodes(cluster) {
    this.nodes.clear();
    if (!cluster) return;
    for (const n of cluster.nodes || []) if (n.id !== cluster.node && n.url) this.nodes.set(n.id, n.url);
  }

  // The first other node whose /api/health answers (an opaque no-cors fetch: it only proves
  // the node is reachable from this browser), or null.
  async _probeNodes() {
    for (const [id, base] of this.nodes) {
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), PROBE_TIMEOUT_MS);
      try {
        await fetch(new URL("/api/health", base).href, { mode: "no-cors", cache: "no-store", signal: ctrl.signal });
        const here = location.pathname + location.search;
        return { id, url: new URL(here, base).href };
      } catch {
        // unreachable too: try the next one
      } finally {
        clearTimeout(timer);
      }
    }
    return null;
  }

  async _maybeFailover() {
    if (this._probing || this.failover || this.attempts < FAILOVER_AFTER || !this.nodes.size) return;
    this._probing = true;
    try {
      const found = await this._probeNodes();
      if (found && this.state !== "open" && this.state !== "stopped") {
        this.failover = found;
        this.dispatchEvent(new CustomEvent("failover", { detail: found }));
      }
    } finally {
      this._probing = false;
    }
  }

  _scheduleRetry(err) {
    const delay = BACKOFF_MS[Math.min(this.attempts, BACKOFF_MS.length - 1)];
    this.attempts += 1;
    this._setState("closed", { error: err, retryIn: delay });
    this._maybeFailover();
    this._retry = setTimeout(() => {
      this.state = "idle";
      this.connect();
    }, delay);
  }

  _failPending(err) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this._pending.clear();
  }
}
