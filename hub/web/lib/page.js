// What the dispatch, terminal and room pages share: sign-in check, /api/me, the WebSocket and
// its state in the top bar, an error banner, the cluster banner (cluster.js), centre names.

import { Api, ApiError, describeError } from "./api.js";
import { attachClusterBanner } from "./cluster.js";
import { HubSocket } from "./ws.js";

export const $ = (id) => document.getElementById(id);

export const ROLES = {
  admin: "管理员 Admin",
  dispatcher: "指挥调度 Dispatcher",
  receptionist: "接访员 Receptionist",
  mediator: "调解员 Mediator",
  operator: "监控员 Operator",
  terminal: "终端 Terminal",
  petitioner: "来访群众 Petitioner",
};

const WS_STATES = {
  connecting: "连接中 Connecting…",
  open: "● 已连接 Connected",
  closed: "○ 已断开，重连中 Disconnected, retrying…",
  stopped: "○ 已断开 Disconnected",
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export function button(text, onClick, className = "") {
  const b = el("button", className, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

export function showError(text, id = "page-error") {
  const box = $(id);
  if (!box) return;
  box.textContent = text || "";
  box.hidden = !text;
}

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
    const name = me.display_name && me.display_name !== me.user ? `${me.display_name} (${me.user})` : me.user;
    who.textContent = `${name} · ${ROLES[me.role] || me.role} · ${me.centre_name || me.centre}`;
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

export function fmtTime(epoch) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getMonth() + 1}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtSeconds(s) {
  if (s == null) return "";
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
}
