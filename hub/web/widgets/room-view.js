// RoomView: the tiles of one room (local preview, every seat, every shared camera), the active
// speaker highlighted, and the host's controls (mute, remove, lock, end for all, add a camera).
// Used by room.html, the dispatcher's grid and the terminal's room screen.

import { describeError } from "../lib/api.js";
import { button, el } from "../lib/dom.js";

const STATES = {
  idle: "…",
  connecting: "连接中 Connecting",
  reconnecting: "重连中 Reconnecting",
  playing: "",
  live: "",
  paused: "暂停 Paused",
  error: "错误 Error",
  stopped: "已停止 Stopped",
};

export class RoomView {
  // names: Map centre code → name; cameras: [{id, name}] the host may add; onLeave(): the
  // page's "leave" (default: client.leave()).
  constructor(root, client, { names = new Map(), cameras = [], onLeave = null, title = true } = {}) {
    this.root = root;
    this.showTitle = title;
    this.client = client;
    this.names = names;
    this.cameras = cameras;
    this.onLeave = onLeave || (() => client.leave());
    this.tiles = new Map(); // key → {root, video, state, frames}
    this.timer = setInterval(() => this.updateStats(), 1000);
    root.replaceChildren();
    root.classList.add("room-view");
    this.bar = el("div", "room-bar");
    this.error = el("p", "error room-error");
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;
    this.grid = el("div", "room-tiles");
    root.append(this.bar, this.error, this.grid);
    this.local = this._tile("local", "我 Me", null);
    this.local.root.classList.add("local");
    this.local.state.textContent = "打开摄像头 Opening camera…";
    client.addEventListener("room", () => this.render());
    client.addEventListener("local", (ev) => {
      this.local.video.srcObject = ev.detail.stream;
      this.local.video.play().catch(() => {});
    });
    client.addEventListener("publish", (ev) => this._onPublish(ev.detail));
    client.addEventListener("tile-added", (ev) => this._attach(ev.detail.tile));
    client.addEventListener("tile-removed", (ev) => this._detach(ev.detail.tile));
    client.addEventListener("speaker", () => this.markSpeaker());
    client.addEventListener("closed", () => clearInterval(this.timer));
    if (!client.publishing) this.local.root.hidden = true;
    if (client.room) this.render();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async act(what, fn) {
    try {
      await fn();
      this.showError("");
    } catch (err) {
      this.showError(`${what}失败 failed: ${describeError(err)}`);
    }
  }

  _tile(key, label, kind) {
    const root = el("div", "room-tile");
    root.dataset.key = key;
    const video = el("video");
    Object.assign(video, { autoplay: true, playsInline: true, muted: true });
    const wait = el("div", "room-wait", "等待视频 Waiting for video");
    const bar = el("div", "room-tile-bar");
    const name = el("span", "room-tile-name", label);
    const badges = el("span", "room-badges");
    const state = el("span", "room-tile-state");
    const tools = el("span", "room-tools");
    bar.append(name, badges, state, tools);
    root.append(video, wait, bar);
    const t = { key, kind, root, video, wait, name, badges, state, tools, frames: 0 };
    this.tiles.set(key, t);
    this.grid.append(root);
    return t;
  }

  _label(seat) {
    const centre = this.names.get(seat.centre) || seat.centre;
    return `${centre} · ${seat.user}`;
  }

  _cameraLabel(id) {
    const cam = this.cameras.find((c) => c.id === id);
    return `摄像头 ${cam ? cam.name : id}`;
  }

  render() {
    const room = this.client.room;
    if (!room) return;
    this._renderBar(room);
    const keep = new Set(["local"]);
    for (const seat of room.seats) {
      if (seat.user === this.client.me.user || !seat.present || !this.client.wants(seat, room)) continue;
      const key = `seat:${seat.user}`;
      keep.add(key);
      const t = this.tiles.get(key) || this._tile(key, this._label(seat), "seat");
      t.root.dataset.user = seat.user;
      t.root.classList.toggle("muted", seat.muted);
      t.badges.textContent = `${seat.user === room.host ? "主持 Host " : ""}${seat.muted ? "已静音 Muted" : ""}`;
      if (!seat.publication && !this.client.tiles.has(key)) t.state.textContent = "未发布 Not sending";
      this._seatTools(t, seat, room);
    }
    for (const cam of room.cameras) {
      const key = `camera:${cam}`;
      keep.add(key);
      if (!this.tiles.has(key)) this._tile(key, this._cameraLabel(cam), "camera");
    }
    for (const [key, t] of this.tiles) {
      if (!keep.has(key)) {
        t.root.remove();
        this.tiles.delete(key);
      }
    }
    for (const tile of this.client.tiles.values()) this._attach(tile);
    this.grid.dataset.count = String([...this.grid.children].filter((c) => !c.hidden).length);
    this.markSpeaker();
  }

  _renderBar(room) {
    const kinds = { meeting: "会议 Meeting", call: "通话 Call", rollcall: "查岗 Roll call",
      hearing: "接访 Hearing", broadcast: "广播 Broadcast" };
    const title = el("span", "room-title", room.title);
    const kind = el("span", "badge", kinds[room.kind] || room.kind);
    const parts = this.showTitle ? [title, kind] : [];
    if (room.locked) parts.push(el("span", "badge locked", "已锁定 Locked"));
    if (this.client.isHost) {
      const c = this.client;
      parts.push(
        room.locked
          ? button("解锁 Unlock", () => this.act("解锁 Unlock ", () => c.control("unlock")), "room-unlock")
          : button("锁定 Lock", () => this.act("锁定 Lock ", () => c.control("lock")), "room-lock"),
      );
      const available = this.cameras.filter((cam) => !room.cameras.includes(cam.id));
      if (available.length) {
        const select = el("select", "room-camera-select");
        for (const cam of available) select.append(new Option(cam.name, cam.id));
        const add = button("添加摄像头 Add camera", () =>
          this.act("添加摄像头 Add camera ", () => c.addCamera(select.value)), "room-add-camera");
        parts.push(select, add);
      }
      parts.push(button("全部结束 End for all", () => this.act("结束 End ", () => c.control("end")), "danger room-end"));
    }
    parts.push(button("离开 Leave", () => this.onLeave(), "room-leave"));
    this.bar.replaceChildren(...parts);
  }

  _seatTools(t, seat, room) {
    if (!this.client.isHost || seat.user === room.host) {
      t.tools.replaceChildren();
      return;
    }
    const c = this.client;
    const mute = seat.muted
      ? button("取消静音 Unmute", () => this.act("取消静音 Unmute ", () => c.control("unmute", seat.user)), "seat-unmute")
      : button("静音 Mute", () => this.act("静音 Mute ", () => c.control("mute", seat.user)), "seat-mute");
    const remove = button("移出 Remove", () => this.act("移出 Remove ", () => c.control("remove", seat.user)), "danger seat-remove");
    t.tools.replaceChildren(mute, remove);
  }

  _attach(tile) {
    const t = this.tiles.get(tile.key);
    if (!t || t.video === tile.video) return;
    tile.video.className = t.video.className;
    t.video.replaceWith(tile.video);
    t.video = tile.video;
    t.player = tile.player;
    t.frames = 0;
    const show = () => {
      const { state, error } = tile.player;
      t.root.dataset.state = state;
      t.wait.hidden = state === "playing";
      const label = state in STATES ? STATES[state] : state;
      t.state.textContent = error && state !== "playing" ? `${label}: ${describeError(error)}` : label;
      if (state === "playing") this._ensureSound(t);
    };
    tile.player.addEventListener("statechange", show);
    show();
  }

  _detach(tile) {
    const t = this.tiles.get(tile.key);
    if (!t || t.video !== tile.video) return;
    const blank = el("video");
    Object.assign(blank, { muted: true });
    t.video.replaceWith(blank);
    t.video = blank;
    t.player = null;
    t.wait.hidden = false;
    t.root.dataset.state = "idle";
  }

  // Sound needs a user gesture unless the browser allows autoplay: fall back to muted video
  // and offer a button.
  _ensureSound(t) {
    if (t.kind !== "seat") return;
    setTimeout(() => {
      if (!t.video.paused || t.video.muted) return;
      t.video.muted = true;
      t.video.play().catch(() => {});
      const on = button("开启声音 Sound on", () => {
        t.video.muted = false;
        t.video.play().catch(() => {});
        on.remove();
      }, "sound-on");
      t.tools.prepend(on);
    }, 800);
  }

  _onPublish({ state, error }) {
    const t = this.local;
    t.root.dataset.state = state;
    t.wait.hidden = !!this.client.localStream;
    const label = state in STATES ? STATES[state] : state;
    t.state.textContent = error && state !== "live" ? `${label}: ${describeError(error)}` : label;
    if (state === "error") this.showError(`发布失败 Cannot send our video: ${describeError(error)}`);
  }

  markSpeaker() {
    const who = this.client.speaker;
    for (const t of this.tiles.values()) {
      const speaking = who && (t.root.dataset.user === who || (t.key === "local" && who === this.client.me.user));
      t.root.classList.toggle("speaking", !!speaking);
    }
  }

  async updateStats() {
    for (const t of this.tiles.values()) {
      if (!t.player) continue;
      const s = await t.player.getStats();
      t.root.dataset.frames = String(s.framesDecoded);
      if (t.player.state === "playing") t.state.textContent = s.fps ? `${Math.round(s.fps)} fps` : "";
    }
  }

  destroy() {
    clearInterval(this.timer);
    this.root.replaceChildren();
  }
}
