// The camera wall (监控墙): 1/4/9/16 tiles, drag a camera in (or click it), double-click to
// focus. Tiles play the camera's substream; the focused tile plays the main stream. Tiles
// scrolled out of view or in a hidden tab give their hub session back. Each tile shows the
// camera status, fps and a latency figure (jitter buffer + half the RTT). The layout is saved
// per user (localStorage). Alerts panel and duty-check banner on the same page.
// Tests reach the objects through window.zzwall.

import { AlertsPanel } from "../widgets/alerts-panel.js";
import { Api, describeError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { CLUSTER_TOPICS } from "../lib/cluster.js";
import { $, el, showError } from "../lib/dom.js";
import { WhepPlayer } from "../lib/whep.js";

const LAYOUTS = [1, 4, 9, 16];
const STATUS = { online: "在线 online", offline: "离线 offline", idle: "空闲 idle" };

class WallTile {
  constructor(wall, index) {
    this.wall = wall;
    this.index = index;
    this.camera = null;
    this.player = null;
    this.main = false; // focused: the main stream
    this.inView = true;
    this.root = el("div", "wall-tile");
    this.root.dataset.index = String(index);
    this.video = el("video");
    Object.assign(this.video, { muted: true, autoplay: true, playsInline: true });
    this.empty = el("div", "empty", "拖入摄像头 Drop a camera here");
    this.bar = el("div", "tile-bar");
    this.name = el("span", "tile-name");
    this.status = el("span", "tile-status");
    this.fps = el("span", "tile-fps", "– fps");
    this.latency = el("span", "tile-latency", "– ms");
    this.bar.append(this.name, this.status, this.fps, this.latency);
    this.root.append(this.video, this.empty, this.bar);
    this.root.addEventListener("dragover", (ev) => {
      ev.preventDefault();
      this.root.classList.add("drop");
    });
    this.root.addEventListener("dragleave", () => this.root.classList.remove("drop"));
    this.root.addEventListener("drop", (ev) => {
      ev.preventDefault();
      this.root.classList.remove("drop");
      const id = ev.dataTransfer.getData("text/plain");
      if (id) this.wall.place(this.index, id);
    });
    this.root.addEventListener("dblclick", () => this.wall.toggleFocus(this.index));
    this.render();
  }

  url() {
    const id = encodeURIComponent(this.camera.id);
    return this.wall.api.url(this.main ? `/api/cameras/${id}/whep` : `/api/cameras/${id}/substream/whep`);
  }

  shouldPlay() {
    return this.camera && this.inView && document.visibilityState !== "hidden";
  }

  set(camera, { main = false } = {}) {
    const same = this.camera && camera && this.camera.id === camera.id && this.main === main;
    if (same) return;
    const old = this.player;
    this.player = null;
    this.video.srcObject = null;
    this.camera = camera;
    this.main = main;
    this.root.dataset.camera = camera ? camera.id : "";
    if (old) old.stop();
    this.sync();
  }

  // Start or stop the player to match camera, view and tab visibility.
  sync() {
    if (this.shouldPlay() && !this.player) {
      this.player = new WhepPlayer(this.url(), {
        headers: () => this.wall.api.authHeaders(),
        iceServers: this.wall.iceServers,
      });
      this.player.addEventListener("statechange", () => this.render());
      this.player.start(this.video);
    } else if (!this.shouldPlay() && this.player) {
      this.stopPlayer();
    }
    this.render();
  }

  async stopPlayer() {
    const player = this.player;
    this.player = null;
    this.video.srcObject = null;
    if (player) await player.stop();
    this.render();
  }

  async poll() {
    if (!this.player || !this.player.pc) return;
    const s = await this.player.getStats();
    let latency = 0;
    let rtt = 0;
    const report = await this.player.pc.getStats();
    report.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video" && r.jitterBufferEmittedCount) {
        latency = (1000 * r.jitterBufferDelay) / r.jitterBufferEmittedCount;
      }
      if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime != null) {
        rtt = 1000 * r.currentRoundTripTime;
      }
    });
    this.stats = { ...s, latency: Math.round(latency + rtt / 2) };
    this.render();
  }

  render() {
    const cam = this.camera;
    const state = this.player ? this.player.state : cam ? "paused" : "empty";
    this.root.dataset.state = state;
    this.root.dataset.stream = this.main ? "main" : "sub";
    this.empty.hidden = !!cam;
    this.video.hidden = !cam;
    this.bar.hidden = !cam;
    if (!cam) return;
    const live = this.wall.cameras.get(cam.id) || cam;
    this.name.textContent = cam.name;
    const unavailable = live.available === false; // another hub node's camera, node down
    this.root.classList.toggle("unavailable", unavailable);
    this.status.textContent = unavailable ? `节点 ${live.node} 离线 Node offline` : STATUS[live.status] || live.status;
    this.status.className = `tile-status status-${live.status}`;
    const s = this.stats || { fps: 0, framesDecoded: 0, latency: 0 };
    const playing = state === "playing";
    this.root.dataset.frames = String(s.framesDecoded || 0);
    this.root.dataset.fps = String(Math.round(s.fps || 0));
    this.fps.textContent = playing ? `${(s.fps || 0).toFixed(0)} fps` : "– fps";
    this.latency.textContent = playing && s.latency ? `${s.latency} ms` : "– ms";
  }
}

class Wall {
  constructor(api) {
    this.api = api;
    this.grid = $("wall-grid");
    this.cameras = new Map();
    this.tiles = [];
    this.layout = 4;
    this.focused = null;
    this.me = null;
    this.iceServers = [];
    this.alerts = new AlertsPanel($("alerts"), $("alert-count"), this.api, {
      onPlay: (alert) => this.playback(alert),
      onError: (text) => showError(text),
    });
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const tile = this.tiles[Number(entry.target.dataset.index)];
        if (!tile) continue;
        tile.inView = entry.isIntersecting;
        tile.sync();
      }
    });
    this.duty = null;
  }

  // Signed in (boot.js): the saved layout, the camera list, alerts and duty checks.
  async start({ me, socket }) {
    this.me = me;
    this.iceServers = me.ice_servers || [];
    for (const b of document.querySelectorAll("[data-layout]")) {
      if (b.tagName === "BUTTON") b.addEventListener("click", () => this.setLayout(Number(b.dataset.layout)));
    }
    $("duty-answer").addEventListener("click", () => this.answerDuty());
    $("playback-close").addEventListener("click", () => this.closePlayback());
    document.addEventListener("visibilitychange", () => this.tiles.forEach((t) => t.sync()));
    window.addEventListener("pagehide", () => this.tiles.forEach((t) => t.stopPlayer()));
    await this.refreshCameras();
    const saved = this.load();
    this.setLayout(saved.layout);
    saved.tiles.forEach((id, i) => id && this.cameras.has(id) && this.place(i, id));
    this.socket = socket;
    socket.on("duty.check", () => this.checkDuty());
    // another node's cameras turn unavailable (and back), a node comes or goes: reload the list
    socket.on("camera.status", (d) => d.status === "unavailable" && this.refreshCameras());
    for (const topic of CLUSTER_TOPICS) socket.on(topic, () => this.refreshCameras());
    this.alerts.start(socket);
    setInterval(() => this.refreshCameras(), 5000);
    setInterval(() => this.tiles.forEach((t) => t.poll().catch(() => {})), 1000);
    setInterval(() => this.checkDuty(), 5000);
    this.checkDuty();
    document.body.dataset.page = "wall";
  }

  storageKey() {
    return `zzhub.wall.${this.me.user}`;
  }

  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey()) || "{}");
      const layout = LAYOUTS.includes(saved.layout) ? saved.layout : 4;
      return { layout, tiles: Array.isArray(saved.tiles) ? saved.tiles : [] };
    } catch {
      return { layout: 4, tiles: [] };
    }
  }

  save() {
    const tiles = this.tiles.map((t) => (t.camera ? t.camera.id : ""));
    localStorage.setItem(this.storageKey(), JSON.stringify({ layout: this.layout, tiles }));
  }

  async refreshCameras() {
    let cameras;
    try {
      cameras = await this.api.cameras();
    } catch (err) {
      showError(`摄像头加载失败 Cameras failed: ${describeError(err)}`);
      return;
    }
    showError("");
    const list = $("wall-cameras");
    const known = [...this.cameras.values()].map((c) => `${c.id}:${c.available !== false}`).join();
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    const shape = (list) => list.map((c) => `${c.id}:${c.available !== false}`).join();
    if (known !== shape(cameras)) {
      list.replaceChildren(
        ...cameras.map((c) => {
          const li = el("li", c.available === false ? "wall-camera unavailable" : "wall-camera");
          li.dataset.camera = c.id;
          if (c.node) li.title = c.available === false ? `节点 ${c.node} 离线 Node ${c.node} offline` : `节点 Node ${c.node}`;
          li.draggable = true;
          li.append(el("span", `dot status-${c.status}`), el("span", "", c.name));
          li.addEventListener("dragstart", (ev) => ev.dataTransfer.setData("text/plain", c.id));
          li.addEventListener("click", () => this.placeFirstFree(c.id));
          return li;
        }),
      );
    }
    for (const t of this.tiles) t.render();
  }

  setLayout(layout) {
    this.layout = layout;
    this.grid.dataset.layout = String(layout);
    for (const b of document.querySelectorAll("button[data-layout]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.layout) === layout));
    }
    if (this.focused != null) this.toggleFocus(this.focused);
    while (this.tiles.length > layout) {
      const tile = this.tiles.pop();
      this.observer.unobserve(tile.root);
      tile.stopPlayer();
      tile.root.remove();
    }
    while (this.tiles.length < layout) {
      const tile = new WallTile(this, this.tiles.length);
      this.tiles.push(tile);
      this.grid.append(tile.root);
      this.observer.observe(tile.root);
    }
    this.save();
  }

  place(index, id) {
    const cam = this.cameras.get(id);
    const tile = this.tiles[index];
    if (!cam || !tile) return;
    tile.set(cam, { main: this.focused === index });
    this.save();
  }

  placeFirstFree(id) {
    const free = this.tiles.findIndex((t) => !t.camera);
    if (free >= 0) this.place(free, id);
  }

  toggleFocus(index) {
    const tile = this.tiles[index];
    if (!tile || !tile.camera) return;
    const focusing = this.focused !== index;
    if (this.focused != null) {
      const old = this.tiles[this.focused];
      old.root.classList.remove("focused");
      old.set(old.camera, { main: false });
    }
    this.focused = focusing ? index : null;
    this.grid.classList.toggle("has-focus", focusing);
    if (focusing) {
      tile.root.classList.add("focused");
      tile.set(tile.camera, { main: true });
    }
  }

  async checkDuty() {
    try {
      const pending = await this.api.request("/api/duty/checks");
      this.duty = pending[0] || null;
    } catch {
      return;
    }
    $("duty-banner").hidden = !this.duty;
    if (this.duty) {
      const until = new Date(this.duty.deadline).toLocaleTimeString("zh-CN", { hour12: false });
      $("duty-text").textContent = `值班查岗：请在 ${until} 前确认在岗 Duty check: confirm by ${until}`;
    }
  }

  async answerDuty() {
    if (!this.duty) return;
    try {
      await this.api.request(`/api/duty/${this.duty.id}/answer`, { method: "POST" });
    } catch (err) {
      showError(`查岗确认失败 Answer failed: ${describeError(err)}`);
    }
    await this.checkDuty();
  }

  playback(alert) {
    this.closePlayback();
    const dialog = $("playback");
    $("playback-title").textContent = `${alert.camera} — ${alert.play_from}`;
    $("playback-msg").textContent = "";
    dialog.dataset.url = alert.play_url;
    this.playbackPlayer = new WhepPlayer(this.api.url(alert.play_url), {
      headers: () => this.api.authHeaders(),
      iceServers: this.iceServers,
    });
    this.playbackPlayer.addEventListener("statechange", (ev) => {
      const err = ev.detail.error;
      $("playback-msg").textContent = err ? `回放失败 Playback failed: ${describeError(err)}` : "";
    });
    this.playbackPlayer.start($("playback-video"));
    dialog.showModal();
  }

  closePlayback() {
    if (this.playbackPlayer) this.playbackPlayer.stop();
    this.playbackPlayer = null;
    const dialog = $("playback");
    if (dialog.open) dialog.close();
  }

}

const wall = new Wall(new Api());
window.zzwall = wall;
boot({ page: "wall", api: wall.api, start: (ctx) => wall.start(ctx) });
