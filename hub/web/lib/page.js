// What the dispatch, terminal and room pages share: sign-in check, /api/me, the WebSocket and
// its state in the top bar, an error banner, the cluster banner (cluster.js), centre names.

import { Api, ApiError, describeError } from "./api.js";
import { attachClusterBanner } from "./cluster.js";
import { $, showError } from "./dom.js";
import { personName, ROLES } from "./format.js";
import { HubSocket } from "./ws.js";

const WS_STATES = {
  connecting: "连接中 Connecting…",
  open: "● 已连接 Connected",
  closed: "○ 已断开，重连中 Disconnected, retrying…",
  stopped: "○ 已断开 Disconnected",
};

function toLogin() {
  const next = location.pathname + location.search;
  location.href = `/?next=${encodeURIComponent(next)}`;
}

// Signs in (or sends to the console's sign-in and back), loads /api/me, opens the socket.
// roles: who may use the page; others see an explanation. Returns null when it cannot go on.
export async function boot({ roles = null } = {}) {
  const api = new Api();
  if (!api.token) {
    toLogin();
    return null;
  }
  api.onUnauthorized = () => {
    api.setToken("");
    toLogin();
  };
  let me;
  try {
    me = await api.me();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showError(`无法加载 Cannot load: ${describeError(err)}`);
    }
    return null;
  }
  const who = $("me");
  if (who) {
    who.textContent = `${personName(me)} · ${ROLES[me.role] || me.role} · ${me.centre_name || me.centre}`;
  }
  if (roles && !roles.includes(me.role)) {
    const allowed = roles.map((r) => ROLES[r] || r).join("、");
    showError(`此页面仅供 ${allowed} 使用 This page is for: ${roles.join(", ")} (你是 you are ${me.role})`);
    return null;
  }
  const socket = new HubSocket(() => api.token);
  const state = $("ws-state");
  socket.addEventListener("status", (ev) => {
    if (!state) return;
    state.dataset.state = ev.detail.state;
    state.textContent = WS_STATES[ev.detail.state] || ev.detail.state;
  });
  attachClusterBanner(socket); // cluster degraded, a node down, this node unreachable
  socket.connect();
  window.addEventListener("pagehide", () => socket.close());
  document.body.dataset.user = me.user;
  return { api, me, socket };
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
