// The room page: /static/room.html?id=ROOM joins that room (tiles, local preview, active
// speaker, host controls); without an id it lists the open rooms and creates a meeting.
// Tests reach the objects through window.zzroom ({client, view, api}).

import { describeError } from "../lib/api.js";
import { $, button, el, showError } from "../lib/dom.js";
import { boot, centreNames } from "../lib/boot.js";
import { RoomClient } from "../lib/room-client.js";
import { RoomView } from "../widgets/room-view.js";

const KINDS = { meeting: "会议 Meeting", call: "通话 Call", rollcall: "查岗 Roll call", hearing: "接访 Hearing" };
const CREATORS = ["admin", "dispatcher", "receptionist", "mediator", "operator"];

const state = { client: null, view: null, api: null };
window.zzroom = state;

async function start(ctx) {
  const { api, me, socket } = ctx;
  state.api = api;
  const { centres, names } = await centreNames(api);
  const id = new URLSearchParams(location.search).get("id");
  if (!id) {
    await lobby(api, me, centres);
    return;
  }
  const cameras = await api.cameras().catch(() => []);
  const client = new RoomClient(api, socket, id, me, { iceServers: me.ice_servers || [] });
  const root = $("room");
  root.hidden = false;
  const view = new RoomView(root, client, {
    names,
    cameras,
    onLeave: async () => {
      await client.leave();
    },
  });
  Object.assign(state, { client, view });
  client.addEventListener("closed", (ev) => closed(ev.detail.reason));
  window.addEventListener("pagehide", () => client.leave({ keepalive: true }));
  document.body.dataset.page = "room";
  try {
    await client.start();
  } catch (err) {
    showError(`无法进入会议 Cannot join the room: ${describeError(err)}`);
    document.body.dataset.page = "room-error";
  }
}

function closed(reason) {
  const text = {
    left: "你已离开会议 You left the room.",
    ended: "会议已结束 The room has ended.",
    removed: "你已被主持人移出会议 The host removed you from the room.",
    unavailable: "会议所在节点离线，会议已中断 The room's hub node went offline; the room ended.",
  }[reason] || `会议已关闭 Closed (${reason})`;
  state.view?.destroy();
  $("room").hidden = true;
  const box = $("room-closed");
  box.replaceChildren(el("span", "", text + " "), Object.assign(el("a", "", "返回列表 Back to the list"), { href: "/static/room.html" }));
  box.hidden = false;
  document.body.dataset.page = `room-${reason}`;
}

async function lobby(api, me, centres) {
  $("lobby").hidden = false;
  document.body.dataset.page = "lobby";
  const list = $("room-list");
  const load = async () => {
    try {
      const rooms = await api.request("/api/rooms");
      list.replaceChildren();
      for (const room of rooms) {
        const tr = el("tr");
        const enter = Object.assign(el("a", "", "进入 Enter"), { href: `/static/room.html?id=${encodeURIComponent(room.id)}` });
        const present = room.seats.filter((s) => s.present).length;
        for (const text of [room.title, KINDS[room.kind] || room.kind, room.host, String(present)]) tr.append(el("td", "", text));
        const td = el("td");
        td.append(enter);
        tr.append(td);
        list.append(tr);
      }
      if (!rooms.length) list.append(Object.assign(el("tr"), { innerHTML: '<td colspan="5" class="empty">暂无 None</td>' }));
    } catch (err) {
      showError(`无法加载会议 Cannot list rooms: ${describeError(err)}`);
    }
  };
  await load();
  const form = $("create-form");
  if (!CREATORS.includes(me.role)) {
    form.replaceChildren(el("p", "empty", `${me.role} 不能创建会议 cannot open rooms`));
    return;
  }
  const select = $("create-centres");
  for (const c of centres) if (c.code !== me.centre) select.append(new Option(`${c.name} ${c.code}`, c.code));
  form.append(button("刷新 Refresh", load));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const users = $("create-users").value.split(/[,，\s]+/).filter(Boolean);
    const chosen = [...select.selectedOptions].map((o) => o.value);
    try {
      const room = await api.request("/api/rooms", {
        method: "POST",
        json: { title: $("create-title").value.trim(), kind: "meeting", centres: chosen, users },
      });
      location.href = `/static/room.html?id=${encodeURIComponent(room.id)}${location.search.includes("video=") ? `&${location.search.slice(1)}` : ""}`;
    } catch (err) {
      showError(`创建失败 Cannot create: ${describeError(err)}`);
    }
  });
}

boot({ page: "room", start });
