// The hearing desk (接访台) for receptionists and mediators: the queue of the caller's scope
// with 红黄蓝 deadline badges, accept, the hearing video with the petitioner, invite (会诊),
// timestamped notes, petitioner link, resolve. Invited mediators get `petition.invited` and
// join from the "in hearing" list. Tests reach the state through window.zzdesk.

import { describeError } from "../lib/api.js";
import { $, button, el, showError } from "../lib/dom.js";
import { fmtSeconds } from "../lib/format.js";
import { boot } from "../lib/boot.js";
import { RoomClient } from "../lib/room-client.js";

const CATEGORIES = { wage_arrears: "欠薪", land: "土地", neighbours: "邻里", family: "婚姻家庭",
  property: "物业", labour: "劳动", other: "其他" };
const COLOURS = { blue: "蓝 正常", yellow: "黄 临期", red: "红 超期" };
const esc = encodeURIComponent;
const state = { api: null, me: null, socket: null, code: null, client: null, cases: [] };
window.zzdesk = state;

export function badge(c) {
  return el("span", `badge badge-${c.colour}`, COLOURS[c.colour] || c.colour);
}

async function start(ctx) {
  Object.assign(state, ctx);
  document.body.dataset.page = "desk";
  for (const topic of ["petition.queued", "petition.updated", "petition.invited", "petition.overdue"]) {
    state.socket.on(topic, () => load());
  }
  $("reload").onclick = load;
  $("h-invite-go").onclick = invite;
  $("h-note-go").onclick = note;
  $("h-resolve").onclick = resolve;
  $("h-link").onclick = link;
  setInterval(load, 5000);
  await load();
}

async function load() {
  try {
    const [waiting, hearing] = await Promise.all([
      state.api.request("/api/petitions?status=waiting"),
      state.api.request("/api/petitions?status=hearing"),
    ]);
    state.cases = [...waiting, ...hearing];
    render($("queue"), waiting, (c) => [c.code, `${CATEGORIES[c.category]}${c.urgent ? " 急" : ""}`, c.text, fmtSeconds(c.waited)],
      (c) => button("接诊 Accept", () => accept(c.code), "primary"));
    render($("hearings"), hearing, (c) => [c.code, c.host || ""],
      (c) => (c.code === state.code ? el("span", "", "当前 Current") : button("进入 Join", () => open(c))));
  } catch (err) {
    showError(describeError(err));
  }
}

function render(body, cases, cells, action) {
  body.replaceChildren();
  for (const c of cases) {
    const tr = el("tr");
    tr.dataset.code = c.code;
    const due = el("td");
    due.append(badge(c));
    tr.append(due);
    for (const text of cells(c)) tr.append(el("td", "", text));
    const td = el("td");
    td.append(action(c));
    tr.append(td);
    body.append(tr);
  }
  if (!cases.length) body.append(Object.assign(el("tr"), { innerHTML: '<td colspan="6" class="empty">暂无 None</td>' }));
}

async function accept(code) {
  try {
    const c = await state.api.request(`/api/petitions/${esc(code)}/accept`, { method: "POST" });
    await open(c);
  } catch (err) {
    showError(`接诊失败 Cannot accept: ${describeError(err)}`);
  }
  await load();
}

async function open(c) {
  if (state.client) await state.client.leave();
  state.code = c.code;
  $("hearing").hidden = false;
  $("h-code").textContent = c.code;
  $("h-case").href = `/static/case.html?code=${esc(c.code)}`;
  $("h-video").replaceChildren();
  $("h-notes").replaceChildren();
  $("h-link-out").textContent = "";
  const client = new RoomClient(state.api, state.socket, c.room, state.me, { iceServers: state.me.ice_servers || [] });
  state.client = client;
  client.addEventListener("tile-added", (ev) => {
    const box = el("div");
    box.dataset.user = ev.detail.tile.id;
    box.append(ev.detail.tile.video, el("div", "small", ev.detail.tile.id));
    ev.detail.tile.box = box;
    $("h-video").append(box);
  });
  client.addEventListener("tile-removed", (ev) => ev.detail.tile.box?.remove());
  client.addEventListener("local", (ev) => { $("h-self").srcObject = ev.detail.stream; });
  client.addEventListener("closed", () => { if (state.client === client) state.client = null; });
  document.body.dataset.page = "desk-hearing";
  await client.start();
}

async function act(action, json) {
  return state.api.request(`/api/petitions/${esc(state.code)}/${action}`, { method: "POST", json });
}

async function invite() {
  const users = $("h-invite").value.split(/[,，\s]+/).filter(Boolean);
  if (!users.length) return;
  try {
    await act("invite", { users, note: "会诊 joint hearing" });
    $("h-invite").value = "";
  } catch (err) {
    showError(`邀请失败 Cannot invite: ${describeError(err)}`);
  }
}

async function note() {
  const text = $("h-note").value.trim();
  if (!text) return;
  try {
    await act("notes", { text });
    const at = new Date().toLocaleTimeString();
    $("h-notes").append(el("li", "", `${at} ${text}`));
    $("h-note").value = "";
  } catch (err) {
    showError(`记录失败 Cannot add the note: ${describeError(err)}`);
  }
}

async function link() {
  try {
    const out = await act("link", {});
    $("h-link-out").textContent = new URL(out.url, location.href).href;
  } catch (err) {
    showError(describeError(err));
  }
}

async function resolve() {
  try {
    await act("resolve", { outcome: $("h-outcome").value, note: "" });
    if (state.client) await state.client.leave();
    state.client = null;
    $("hearing").hidden = true;
    document.body.dataset.page = "desk-resolved";
    location.href = `/static/case.html?code=${esc(state.code)}`;
  } catch (err) {
    showError(`办结失败 Cannot resolve: ${describeError(err)}`);
  }
  await load();
}

boot({ page: "desk", roles: ["receptionist", "mediator", "dispatcher", "admin"], start });
