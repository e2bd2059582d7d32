// The village kiosk (视频接访): one big button files a request from this terminal; then the
// case code, the position in the queue and an estimate; once a receptionist accepts, the
// hearing video. Opened with #case=CODE&token=TOKEN (a petitioner link) it follows that case
// only: a link has no WebSocket (the hub allows it its case and hearing room only), so it polls.
// Tests reach the state through window.zzkiosk ({api, code, client, case}).

import { describeError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, showError } from "../lib/dom.js";
import { openLocalMedia } from "../lib/whip.js";
import { RoomClient } from "../lib/room-client.js";

const POLL_MS = 2000;
const LABELS = { triaged: "排队等候 Waiting", transferred: "已转诊，排队等候 Transferred, waiting",
  in_hearing: "接访中 In hearing", joint_hearing: "会诊中 Joint hearing",
  resolved: "已办结 Resolved", followed_up: "已回访 Followed up", archived: "已归档 Archived" };
const state = { api: null, me: null, socket: null, code: null, client: null, case: null, preview: null };
window.zzkiosk = state;

// A link has no socket: RoomClient gets a silent one and is refreshed by polling.
const quietSocket = { on: () => () => {}, addEventListener() {}, removeEventListener() {} };

function show(id) {
  for (const s of ["request", "waiting", "hearing", "done"]) $(s).hidden = s !== id;
  document.body.dataset.page = `kiosk-${id}`;
}

async function start(ctx) {
  Object.assign(state, ctx);
  if (link) {
    state.socket = quietSocket;
    state.code = link.get("case");
    $("me").textContent = `来访群众 Petitioner · ${state.code}`;
    $("case-code").textContent = state.code; // before the first poll answers
    show("waiting");
  } else {
    state.socket.on("petition.updated", (c) => c.code === state.code && apply(c));
    await request();
  }
  setInterval(poll, POLL_MS);
  await poll();
}

async function request() {
  $("ask").onclick = ask;
  show("request");
  try {
    state.preview = await openLocalMedia();
    if (state.code) stopPreview(); // filed meanwhile
    else $("preview").srcObject = state.preview;
    $("preview-state").textContent = "摄像头已就绪 Camera ready";
  } catch (err) {
    $("preview-state").textContent = describeError(err);
  }
}

async function ask() {
  $("ask").disabled = true;
  try {
    const body = { category: $("category").value, urgent: $("urgent").checked, text: $("text").value.trim() };
    const c = await state.api.request("/api/petitions", { method: "POST", json: body });
    state.code = c.code;
    stopPreview();
    apply(c); // fills the waiting card, then shows it
    show("waiting");
  } catch (err) {
    showError(`提交失败 Cannot file the request: ${describeError(err)}`);
  } finally {
    $("ask").disabled = false;
  }
}

function stopPreview() {
  if (state.preview) for (const t of state.preview.getTracks()) t.stop();
  state.preview = null;
}

async function poll() {
  if (!state.code) return;
  try {
    apply(await state.api.request(`/api/petitions/${encodeURIComponent(state.code)}`));
    if (state.client && state.socket === quietSocket) await state.client.refresh();
  } catch (err) {
    showError(describeError(err));
  }
}

function apply(c) {
  state.case = { ...state.case, ...c };
  c = state.case;
  $("case-code").textContent = c.code;
  $("case-status").textContent = LABELS[c.status] || c.status;
  $("position").textContent = c.position != null ? String(c.position - 1) : "-";
  $("estimate").textContent = c.estimate != null ? `${Math.round(c.estimate / 60)} 分钟 min` : "-";
  const hearing = c.status === "in_hearing" || c.status === "joint_hearing";
  if (hearing && c.room && (!state.client || state.client.roomId !== c.room)) join(c.room);
  if (!hearing && state.client) leave();
  if (["resolved", "followed_up", "archived"].includes(c.status)) {
    $("done-text").textContent = `${c.code}：${LABELS[c.status]}`;
    show("done");
    $("again").onclick = () => location.reload();
  } else if (!hearing && state.code) {
    show("waiting");
  }
}

async function join(roomId) {
  if (state.client) await leave();
  show("hearing");
  const client = new RoomClient(state.api, state.socket, roomId, state.me, { iceServers: state.me.ice_servers || [] });
  state.client = client;
  client.addEventListener("tile-added", (ev) => $("remote").append(ev.detail.tile.video));
  client.addEventListener("tile-removed", (ev) => ev.detail.tile.video.remove());
  client.addEventListener("local", (ev) => { $("self").srcObject = ev.detail.stream; });
  try {
    await client.start();
  } catch (err) {
    showError(`无法进入接访 Cannot join the hearing: ${describeError(err)}`);
  }
}

async function leave() {
  const client = state.client;
  state.client = null;
  if (client) await client.leave();
  $("remote").replaceChildren();
}

// A petitioner link (#case=…&token=…) signs in with its own token and has no socket.
const hash = new URLSearchParams(location.hash.slice(1));
const link = hash.get("token") && hash.get("case") ? hash : null;
if (link) boot({ page: "kiosk", token: link.get("token"), socket: false, start });
else boot({ page: "kiosk", roles: ["terminal", "admin", "receptionist"], start });
