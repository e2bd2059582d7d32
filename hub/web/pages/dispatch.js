// The dispatcher's page (指挥调度): centre tree with live presence, 呼叫 call and 一键查岗 roll
// call over the ticked centres (or every village of a township), the room of the current call
// or roll call as a grid, the roll-call ledger (CSV), and the history. Tests: window.zzdispatch.

import { describeError } from "../lib/api.js";
import { HistoryTable, LedgerTable, TARGET_STATE } from "../widgets/ledger.js";
import { $, el, showError } from "../lib/dom.js";
import { boot, centreNames } from "../lib/boot.js";
import { PresenceTree } from "../widgets/presence-tree.js";
import { RoomClient } from "../lib/room-client.js";
import { RoomView } from "../widgets/room-view.js";

const CALL_STATE = { ringing: "呼叫中 Ringing", active: "通话中 Active", ended: "已结束 Ended" };

// How far a call or roll call has got: targets, entries and states only move forward, so an
// older copy (an HTTP answer overtaken by WS events) scores lower and is not shown.
function progress(x) {
  if (x.targets) {
    const settled = x.targets.filter((t) => t.state !== "ringing").length;
    return settled + { ringing: 0, active: 1000, ended: 2000 }[x.state];
  }
  const settled = (x.entries || []).filter((e) => e.status === "answered" || e.status === "no_answer");
  return settled.length + x.answered + (x.state === "closed" ? 1000 : 0);
}

class Dispatch {
  constructor(ctx, centres, names, cameras) {
    Object.assign(this, ctx); // api, me, socket
    this.centres = centres;
    this.names = names;
    this.cameras = cameras;
    this.session = null; // {kind: "call"|"rollcall", id, room, client, view, ended}
    this.latest = new Map(); // call / roll-call id → the most advanced copy seen
    this.ledger = new LedgerTable($("ledger"), this.api);
    this.history = new HistoryTable($("history"), this.api, { onRollcall: (id) => this.showLedger(id) });
  }

  start() {
    this.tree = new PresenceTree($("ptree"), this.centres, this.socket, {
      me: this.me,
      onChange: (codes) => this.picked(codes),
    });
    $("do-call").addEventListener("click", () => this.call(this.tree.selected()));
    $("do-rollcall").addEventListener("click", () => this.rollcall({ centres: this.tree.selected() }));
    $("do-clear").addEventListener("click", () => this.tree.setSelected([]));
    const select = $("township");
    for (const t of this.tree.townships()) select.append(new Option(t.name, t.code));
    if (!select.options.length) select.append(new Option("（无乡镇 no township）", ""));
    $("do-township").addEventListener("click", () =>
      select.value && this.rollcall({ township: select.value, level: "village" }),
    );
    $("session-cancel").addEventListener("click", () => this.callAction("cancel"));
    $("session-hangup").addEventListener("click", () => this.callAction("hangup"));
    $("session-close-rc").addEventListener("click", () => this.closeRollcall());
    $("session-dismiss").addEventListener("click", () => this.dismiss());
    $("tab-calls").addEventListener("click", () => this.tab("calls"));
    $("tab-rollcalls").addEventListener("click", () => this.tab("rollcalls"));
    this.socket.on("call.updated", (call) => this.onCall(call));
    this.socket.on("rollcall.updated", (rc) => this.onRollcall(rc));
    window.addEventListener("pagehide", () => this.session?.client.leave({ keepalive: true }));
    this.history.load("calls", 1);
    document.body.dataset.page = "dispatch";
  }

  picked(codes) {
    $("do-call").disabled = !codes.length;
    $("do-rollcall").disabled = !codes.length;
    const names = codes.map((c) => this.names.get(c) || c);
    $("picked").textContent = codes.length ? `已选 ${codes.length}: ${names.join("、")}` : "未选择 Nothing selected";
  }

  tab(kind) {
    $("tab-calls").setAttribute("aria-selected", String(kind === "calls"));
    $("tab-rollcalls").setAttribute("aria-selected", String(kind === "rollcalls"));
    this.history.load(kind, 1);
  }

  async call(codes) {
    if (!codes.length) return;
    try {
      const call = await this.api.request("/api/calls", { method: "POST", json: { centres: codes } });
      showError("");
      await this.open("call", call.id, call.room, call.title);
      this.onCall(call);
    } catch (err) {
      showError(`呼叫失败 Call failed: ${describeError(err)}`);
    }
  }

  async rollcall(body) {
    if (body.centres && !body.centres.length) return;
    try {
      const rc = await this.api.request("/api/rollcalls", { method: "POST", json: body });
      showError("");
      await this.open("rollcall", rc.id, rc.room, `一键查岗 ${rc.label}`);
      this.onRollcall(rc);
    } catch (err) {
      showError(`查岗失败 Roll call failed: ${describeError(err)}`);
    }
  }

  // The room of a new call or roll call: join as its host, send our camera, show the grid.
  async open(kind, id, roomId, title) {
    await this.dismiss();
    const client = new RoomClient(this.api, this.socket, roomId, this.me, {
      iceServers: this.me.ice_servers || [],
    });
    const view = new RoomView($("session-room"), client, {
      names: this.names,
      cameras: this.cameras,
      title: false, // the session head names it
      onLeave: () => client.leave(),
    });
    this.session = { kind, id, room: roomId, client, view, ended: false };
    $("session").hidden = false;
    $("session").dataset.kind = kind;
    $("session-title").textContent = title;
    $("targets").replaceChildren();
    $("ledger").hidden = kind !== "rollcall";
    $("session-close-rc").hidden = kind !== "rollcall";
    $("session-cancel").hidden = kind !== "call";
    $("session-hangup").hidden = kind !== "call";
    $("session-dismiss").hidden = true;
    client.addEventListener("closed", (ev) => this.roomClosed(ev.detail.reason));
    client.start().catch((err) => showError(`无法进入房间 Cannot join the room: ${describeError(err)}`));
  }

  // Keep the most advanced copy of a call or roll call: WS events and HTTP answers race.
  newest(x) {
    const seen = this.latest.get(x.id);
    if (seen && progress(seen) > progress(x)) return seen;
    this.latest.set(x.id, x);
    return x;
  }

  onCall(update) {
    const call = this.newest(update);
    const s = this.session;
    if (this.history.kind === "calls") this.reloadHistory();
    if (!s || s.kind !== "call" || s.id !== call.id) return;
    $("session-state").textContent = CALL_STATE[call.state] || call.state;
    $("session").dataset.state = call.state;
    $("session-cancel").hidden = !call.targets.some((t) => t.state === "ringing");
    const chips = call.targets.map((t) => {
      const chip = el("span", "target", `${t.centre_name || t.user || t.centre} · ${TARGET_STATE[t.state] || t.state}`);
      chip.dataset.state = t.state;
      chip.dataset.centre = t.centre;
      return chip;
    });
    $("targets").replaceChildren(...chips);
    if (call.state === "ended") this.ended(`通话结束 Call ended (${call.end_reason || ""})`);
  }

  onRollcall(update) {
    const rc = this.newest(update);
    const s = this.session;
    if (s && s.kind === "rollcall" && s.id === rc.id) {
      $("session-state").textContent = rc.state === "running" ? "查岗中 Checking" : "查岗结束 Closed";
      $("session").dataset.state = rc.state;
      $("session-close-rc").hidden = rc.state !== "running";
      if (rc.entries) this.ledger.show(rc);
    }
    if (this.history.kind === "rollcalls") this.reloadHistory();
  }

  // Coalesce the reloads a burst of events would cause.
  reloadHistory() {
    clearTimeout(this._historyTimer);
    this._historyTimer = setTimeout(() => this.history.load(), 300);
  }

  async showLedger(id) {
    try {
      this.ledger.show(await this.api.request(`/api/rollcalls/${encodeURIComponent(id)}`));
    } catch (err) {
      showError(`无法加载台账 Cannot load the ledger: ${describeError(err)}`);
    }
  }

  async callAction(action) {
    const s = this.session;
    if (!s || s.kind !== "call") return;
    try {
      this.onCall(await this.api.request(`/api/calls/${encodeURIComponent(s.id)}/${action}`, { method: "POST" }));
    } catch (err) {
      showError(`操作失败 ${action} failed: ${describeError(err)}`);
    }
  }

  async closeRollcall() {
    const s = this.session;
    if (!s || s.kind !== "rollcall") return;
    try {
      this.onRollcall(await this.api.request(`/api/rollcalls/${encodeURIComponent(s.id)}/close`, { method: "POST" }));
    } catch (err) {
      showError(`结束查岗失败 Cannot close: ${describeError(err)}`);
    }
  }

  roomClosed(reason) {
    const text = { ended: "房间已结束 The room ended", left: "已离开 You left", removed: "已被移出 Removed", error: "无法进入 Could not join" };
    this.ended(text[reason] || reason);
  }

  ended(text) {
    const s = this.session;
    if (!s || s.ended) return;
    s.ended = true;
    $("session-state").textContent = text;
    $("session-cancel").hidden = true;
    $("session-hangup").hidden = true;
    $("session-dismiss").hidden = false;
    if (!s.client.closed) s.client.leave();
  }

  async dismiss() {
    const s = this.session;
    this.session = null;
    if (s) {
      await s.client.leave();
      s.view.destroy();
    }
    $("session").hidden = true;
  }
}

async function start(ctx) {
  const [{ centres, names }, cameras] = await Promise.all([
    centreNames(ctx.api),
    ctx.api.cameras().catch(() => []),
  ]);
  const dispatch = new Dispatch(ctx, centres, names, cameras);
  window.zzdispatch = dispatch;
  dispatch.start();
}

boot({ page: "dispatch", roles: ["dispatcher", "admin"], start });
