// How every page starts (pages/*.js): boot({ page, roles, start }) signs in, fills the shared
// header, opens the WebSocket, shows errors in the banner, then calls start(ctx) with
// ctx = { api, me, socket, signOut }.
//
// - Sign-in: the token kept in sessionStorage (api.js). The page with the sign-in form (the
//   console, index.html) signs in in place (sign-in.js) and, after a sign-out or a refused
//   token, shows the form again and calls start anew. Every other page sends the user there
//   with ?next=<this page>, and comes back once signed in. A page opened with a credential
//   of its own (`token`: the kiosk's petitioner link) does neither: a refusal is shown.
// - Header: #me gets "name · role · centre"; the console's #me-name, #me-role and #me-centre
//   one each; #ws-state the socket's state; #logout signs out. The cluster banner
//   (cluster.js) follows the socket. Errors go to #page-error (dom.js showError).
// - roles: who may use the page; others see why and body[data-page=<page>-refused].
// - stop(ctx): the page lets go of what it holds (players, timers) on a sign-out, called
//   while the old token still works.

import { Api, ApiError, describeError } from "./api.js";
import { attachClusterBanner } from "./cluster.js";
import { $, showError } from "./dom.js";
import { personName, ROLES } from "./format.js";
import { SignInForm } from "./sign-in.js";
import { HubSocket } from "./ws.js";

const WS_STATES = {
  connecting: "连接中 Connecting…",
  open: "● 已连接 Connected",
  closed: "○ 已断开，重连中 Disconnected, retrying…",
  stopped: "○ 已断开 Disconnected",
};

// The pages the console's sign-in may send the user back to (?next=…); nothing else.
const RETURN_TO = /^\/static\/(dispatch|terminal|room|desk|kiosk|case|wall|recordings|broadcast|notices)\.html(\?|$)/;

export function returnTo(search) {
  const next = new URLSearchParams(search).get("next") || "";
  return RETURN_TO.test(next) ? next : null;
}

function toSignIn() {
  const next = location.pathname + location.search;
  location.href = `/?next=${encodeURIComponent(next)}`;
}

// The shared header: whichever of its parts this page has.
export function showMe(me) {
  const role = ROLES[me.role] || me.role;
  const line = $("me");
  if (line) line.textContent = `${personName(me)} · ${role} · ${me.centre_name || me.centre}`;
  const parts = { "me-name": personName(me), "me-role": role, "me-centre": `${me.centre_name || ""} ${me.centre}`.trim() };
  for (const [id, text] of Object.entries(parts)) if ($(id)) $(id).textContent = text;
}

class Boot {
  constructor({ page, roles = null, token = null, socket = true, api = null, start, stop = null }) {
    this.page = page;
    this.roles = roles;
    this.live = socket; // false: no WebSocket (ctx.socket is null)
    this.api = api || new Api();
    this.start = start;
    this.stop = stop;
    this.ctx = null;
    this.socket = null;
    if (token) this.api.setToken(token);
    this.form = token ? null : SignInForm.find(this.api, () => this.enter());
    if (this.form) {
      this.api.onUnauthorized = (err) => this.signOut(`登录已过期 Session ended: ${err.message}`);
    } else if (!token) {
      this.api.onUnauthorized = () => this.signOut();
    }
    const logout = $("logout");
    if (logout) logout.addEventListener("click", () => this.signOut("", true));
    window.addEventListener("pagehide", () => this.socket && this.socket.close());
  }

  async run() {
    if (this.form) {
      if (!this.api.token) return this.form.show();
      return this.enter().catch((err) => this.form.show(describeError(err)));
    }
    if (!this.api.token) return toSignIn();
    let me;
    try {
      me = await this.api.me();
    } catch (err) {
      // a refused token has sent the user to sign in already (onUnauthorized)
      if (!(err instanceof ApiError && err.status === 401 && this.api.onUnauthorized)) {
        this.refuse(`无法加载 Cannot load: ${describeError(err)}`);
      }
      return undefined;
    }
    return this.open(me).catch((err) => showError(describeError(err)));
  }

  // Signed in on the console's form (or its token kept): /api/me, then the page. Rejects when
  // either fails, and the form shows why.
  async enter() {
    const me = await this.api.me();
    const next = returnTo(location.search);
    if (next) {
      location.replace(next); // a page sent us here to sign in
      return;
    }
    try {
      await this.open(me);
    } catch (err) {
      this.closeSocket();
      throw err;
    }
    this.form.hide();
    showError("");
  }

  async open(me) {
    showMe(me);
    if (this.roles && !this.roles.includes(me.role)) {
      const allowed = this.roles.map((r) => ROLES[r] || r).join("、");
      this.refuse(`此页面仅供 ${allowed} 使用 This page is for: ${this.roles.join(", ")} (你是 you are ${me.role})`);
      return;
    }
    if (this.live) this.openSocket();
    document.body.dataset.user = me.user;
    this.ctx = { api: this.api, me, socket: this.socket, signOut: (message) => this.signOut(message) };
    await this.start(this.ctx);
  }

  refuse(text) {
    showError(text);
    document.body.dataset.page = `${this.page}-refused`;
  }

  openSocket() {
    const socket = new HubSocket(() => this.api.token);
    const state = $("ws-state");
    socket.addEventListener("status", (ev) => {
      if (!state) return;
      state.dataset.state = ev.detail.state;
      state.textContent = WS_STATES[ev.detail.state] || ev.detail.state;
    });
    attachClusterBanner(socket); // cluster degraded, a node down, this node unreachable
    socket.connect();
    this.socket = socket;
  }

  closeSocket() {
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  // Let go of the page (its stop, the socket), drop the token, and sign in again: the form
  // here, or the console's.
  // `revoke` (the sign-out button): the hub also refuses this token from now on, on every
  // node (POST /api/logout), once the page's own clean-up has gone out under it.
  async signOut(message = "", revoke = false) {
    const ctx = this.ctx;
    this.ctx = null;
    const stopping = ctx && this.stop ? this.stop(ctx) : null; // still under the old token
    this.closeSocket();
    if (revoke) {
      await stopping;
      try {
        await this.api.request("/api/logout", { method: "POST" });
      } catch {
        // unreachable or already refused: the token is dropped here all the same
      }
    }
    this.api.setToken("");
    if (this.form) this.form.show(message);
    else toSignIn();
    await stopping;
  }
}

// Starts the page; resolves once start(ctx) has run (or the page cannot go on).
export async function boot(options) {
  const booted = new Boot(options);
  await booted.run();
  return booted;
}

// Map code → name of the centres the caller sees (an empty map if they cannot be loaded).
export async function centreNames(api) {
  try {
    const centres = await api.centres();
    return { centres, names: new Map(centres.map((c) => [c.code, c.name])) };
  } catch {
    return { centres: [], names: new Map() };
  }
}
