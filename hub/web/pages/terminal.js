// A centre's room terminal (kiosk): idle screen with the centre name, incoming-call screen
// (接听 / 拒绝, auto-answer for duty terminals), roll-call prompt (在岗, auto for duty
// terminals), then the room. ?auto=0 turns auto-answer off. Tests: window.zzterminal.

import { describeError } from "../lib/api.js";
import { $, showError } from "../lib/dom.js";
import { fmtTime } from "../lib/format.js";
import { boot, centreNames } from "../lib/boot.js";
import { RoomClient } from "../lib/room-client.js";
import { RoomView } from "../widgets/room-view.js";
import { Ringer, snapshotJpeg } from "../lib/terminal-media.js";

const SCREENS = ["idle", "ringing", "checking", "room"];
const AUTO = new URLSearchParams(location.search).get("auto") !== "0";

class Terminal {
  constructor(ctx, names) {
    Object.assign(this, ctx); // api, me, socket
    this.names = names;
    this.ring = null; // the call.ringing data shown
    this.check = null; // the rollcall.check data shown
    this.client = null;
    this.view = null;
    this.roomKind = null;
    this.skew = 0; // server time − local time, seconds
    this.ringer = new Ringer();
    this.log = []; // what happened, for the idle screen and the tests
    this.timer = setInterval(() => this.tick(), 500);
  }

  start() {
    $("idle-centre").textContent = this.me.centre_name || this.me.centre;
    $("ring-accept").addEventListener("click", () => this.accept(false));
    $("ring-decline").addEventListener("click", () => this.decline());
    $("check-answer").addEventListener("click", () => this.answer(false));
    const s = this.socket;
    s.on("call.ringing", (d) => this.onRinging(d));
    s.on("call.updated", (call) => this.onCallUpdated(call));
    s.on("rollcall.check", (d) => this.onCheck(d));
    s.on("rollcall.updated", (rc) => this.onRollcallUpdated(rc));
    s.addEventListener("open", (ev) => this.onOpen(ev.detail));
    if (s.connected) this.onOpen(s.hello); // the hello came while the page was loading
    window.addEventListener("pagehide", () => this.client?.leave({ keepalive: true }));
    this.show("idle");
    this.tick();
  }

  show(screen) {
    for (const name of SCREENS) $(`screen-${name}`).hidden = name !== screen;
    document.body.dataset.screen = screen;
    document.body.dataset.page = "terminal";
    if (screen !== "ringing") this.ringer.stop();
  }

  note(text) {
    this.log.push(text);
    $("idle-last").textContent = `${fmtTime(Date.now() / 1000)} ${text}`;
  }

  async onOpen(hello) {
    if (hello && hello.server_time) this.skew = hello.server_time - Date.now() / 1000;
    if (this.client) return;
    try {
      const [rings, checks] = await Promise.all([
        this.socket.request("call.pending"),
        this.socket.request("rollcall.pending"),
      ]);
      for (const d of checks) this.onCheck(d);
      for (const d of rings) this.onRinging(d);
    } catch (err) {
      showError(`同步失败 Sync failed: ${describeError(err)}`);
    }
  }

  remaining(expiresAt) {
    return Math.max(0, Math.round(expiresAt - (Date.now() / 1000 + this.skew)));
  }

  tick() {
    const now = new Date();
    $("idle-clock").textContent = now.toLocaleTimeString("zh-CN", { hour12: false });
    if (this.ring) $("ring-countdown").textContent = `${this.remaining(this.ring.expires_at)} 秒 s`;
    if (this.check) $("check-countdown").textContent = `${this.remaining(this.check.expires_at)} 秒 s`;
  }

  // -- calls ------------------------------------------------------------------------------
  onRinging(d) {
    if (this.client || (this.ring && this.ring.call !== d.call)) return; // busy: let it ring
    this.ring = d;
    $("ring-caller").textContent = d.from;
    const from = this.names.get(d.from_centre);
    $("ring-title").textContent = `${d.title || ""} · 来自 from ${from || ""} ${d.from_centre}`;
    this.show("ringing");
    this.tick();
    if (d.auto_answer && AUTO) {
      this.accept(true);
      return;
    }
    this.ringer.start();
  }

  async accept(auto) {
    const d = this.ring;
    if (!d) return;
    try {
      const call = await this.socket.request("call.accept", { call: d.call });
      this.note(`${auto ? "自动接听 Auto-answered" : "已接听 Accepted"} ${d.from}`);
      this.ring = null;
      await this.enterRoom(call.room, "call");
    } catch (err) {
      this.ring = null;
      this.show("idle");
      showError(`接听失败 Cannot accept: ${describeError(err)}`);
    }
  }

  async decline() {
    const d = this.ring;
    this.ring = null;
    this.show("idle");
    if (!d) return;
    try {
      await this.socket.request("call.decline", { call: d.call });
      this.note(`已拒绝 Declined ${d.from}`);
    } catch (err) {
      showError(`拒绝失败 Cannot decline: ${describeError(err)}`);
    }
  }

  onCallUpdated(call) {
    if (!this.ring || this.ring.call !== call.id) return;
    const mine = call.targets.find((t) => t.rung.includes(this.me.user));
    if (call.state === "ended" || (mine && mine.state !== "ringing")) {
      this.note(`未接来电 Missed or cancelled: ${call.caller}`);
      this.ring = null;
      this.show("idle");
    }
  }

  // -- roll call --------------------------------------------------------------------------
  onCheck(d) {
    if (this.client && this.client.roomId === d.room) return;
    if (this.client) return; // in a call: the dispatcher sees us as not answering
    this.check = d;
    const from = this.names.get(d.from_centre) || d.from_centre;
    $("check-from").textContent = `${d.from} · ${from}`;
    this.show("checking");
    this.tick();
    if (d.auto_answer && AUTO) this.answer(true);
  }

  async answer(auto) {
    const d = this.check;
    if (!d) return;
    try {
      await this.socket.request("rollcall.answer", { rollcall: d.rollcall, auto });
      this.note(`${auto ? "自动应答查岗 Roll call auto-answered" : "已应答查岗 Roll call answered"}`);
      this.check = null;
      await this.enterRoom(d.room, "rollcall", d);
    } catch (err) {
      this.check = null;
      this.show("idle");
      showError(`应答失败 Cannot answer: ${describeError(err)}`);
    }
  }

  onRollcallUpdated(rc) {
    if (this.check && this.check.rollcall === rc.id && rc.state === "closed") {
      this.note("查岗已结束 Roll call closed");
      this.check = null;
      this.show("idle");
    }
  }

  // -- the room ---------------------------------------------------------------------------
  async enterRoom(roomId, kind, check = null) {
    showError("");
    // a roll call is the dispatcher looking in: receive only the host, not the other villages
    const subscribe = kind === "rollcall" ? (seat, room) => seat.user === room.host : null;
    const client = new RoomClient(this.api, this.socket, roomId, this.me, {
      subscribe,
      iceServers: this.me.ice_servers || [],
    });
    this.client = client;
    this.roomKind = kind;
    this.show("room");
    this.view = new RoomView($("terminal-room"), client, { names: this.names });
    client.addEventListener("closed", (ev) => this.onRoomClosed(ev.detail.reason));
    if (check) {
      client.addEventListener("publish", (ev) => {
        if (ev.detail.state === "live") this.uploadSnapshot(check);
      });
    }
    try {
      await client.start();
    } catch (err) {
      showError(`无法进入房间 Cannot join: ${describeError(err)}`);
      await client.leave();
    }
  }

  async uploadSnapshot(check) {
    if (this.me.role !== "terminal" || this.me.centre !== check.centre || check.uploaded) return;
    check.uploaded = true;
    const jpeg = await snapshotJpeg(this.view.local.video);
    if (!jpeg) return;
    const path = `/api/rollcalls/${encodeURIComponent(check.rollcall)}/centres/${check.centre}/snapshot.jpg`;
    try {
      await fetch(this.api.url(path), {
        method: "POST",
        headers: this.api.authHeaders({ "Content-Type": "image/jpeg" }),
        body: jpeg,
      });
    } catch {
      // the ledger keeps the entry without a picture
    }
  }

  onRoomClosed(reason) {
    const text = {
      ended: "通话已结束 The call ended",
      removed: "已被移出 Removed by the host",
      left: "已离开 Left",
      unavailable: "通话所在节点离线，通话已中断 The call's hub node went offline",
    };
    this.note(text[reason] || reason);
    this.view?.destroy();
    this.view = null;
    this.client = null;
    this.roomKind = null;
    this.show("idle");
  }
}

async function start(ctx) {
  const { names } = await centreNames(ctx.api);
  const terminal = new Terminal(ctx, names);
  window.zzterminal = terminal;
  terminal.start();
}

boot({ page: "terminal", start });
