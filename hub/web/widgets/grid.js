// The player area: up to four live tiles in a 2×2 grid, each a WhepPlayer with its stats.

import { describeError } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { CAMERA_STATUS } from "../lib/format.js";
import { WhepPlayer } from "../lib/whep.js";

export const MAX_PLAYERS = 4;
const STATE = {
  idle: "空闲 Idle",
  connecting: "连接中 Connecting",
  playing: "直播 Live",
  reconnecting: "重连中 Reconnecting",
  paused: "已暂停 Paused",
  error: "失败 Failed",
  stopped: "已关闭 Closed",
};
const NO_PICTURE_MS = 5000;

class Tile {
  constructor(camera, player, onClose) {
    this.camera = camera;
    this.player = player;
    this.stats = { framesDecoded: 0, fps: 0 };
    this.lastProgress = performance.now();
    this.root = el("div", "tile");
    this.root.dataset.camera = camera.id;
    this.video = el("video", "tile-video");
    Object.assign(this.video, { muted: true, autoplay: true, playsInline: true });
    this.dot = el("span", "dot");
    this.name = el("span", "tile-name", camera.name);
    this.state = el("span", "tile-state");
    this.fps = el("span", "tile-fps", "– fps");
    const close = el("button", "tile-close", "×");
    Object.assign(close, { type: "button", title: "关闭 Close", ariaLabel: "关闭 Close" });
    close.addEventListener("click", () => onClose(camera.id));
    const bar = el("div", "tile-bar");
    bar.append(this.dot, this.name, this.state, this.fps, close);
    this.message = el("div", "tile-msg");
    this.message.setAttribute("role", "status");
    this.root.append(this.video, bar, this.message);
    player.addEventListener("statechange", () => this.render());
    this.render();
  }

  async poll() {
    const s = await this.player.getStats();
    if (s.framesDecoded > this.stats.framesDecoded) this.lastProgress = performance.now();
    this.stats = s;
    this.render();
  }

  render() {
    const { player, camera } = this;
    this.root.dataset.state = player.state;
    this.root.classList.toggle("unavailable", camera.available === false);
    this.root.dataset.frames = String(this.stats.framesDecoded);
    this.root.dataset.fps = String(Math.round(this.stats.fps));
    this.dot.className = `dot status-${camera.status}`;
    const waiting = player.state === "playing" && camera.status === "offline";
    this.state.textContent = waiting ? CAMERA_STATUS.offline : STATE[player.state] || player.state;
    this.fps.textContent = player.state === "playing" ? `${this.stats.fps.toFixed(0)} fps` : "– fps";
    const size = this.stats.width ? `${this.stats.width}×${this.stats.height}` : "";
    this.fps.title = size;
    this.showMessage(this.messageText());
  }

  messageText() {
    const { player, camera } = this;
    if (player.state === "error") return `无法播放 Cannot play: ${describeError(player.error)}`;
    if (camera.available === false) {
      return `节点 ${camera.node} 离线 Hub node ${camera.node} is offline — 恢复后自动播放 will resume when it is back`;
    }
    if (camera.status === "offline") {
      const why = camera.last_error ? ` (${camera.last_error})` : "";
      return `摄像头离线 Camera offline${why} — 恢复后自动播放 will resume when it is back`;
    }
    if (player.state === "reconnecting") {
      const why = player.error ? `: ${describeError(player.error)}` : "";
      return `重连中 Reconnecting${why}`;
    }
    if (player.state === "paused") return "页面隐藏时暂停 Paused while the page is hidden";
    if (player.state === "connecting") return "连接中 Connecting…";
    if (player.state === "playing" && performance.now() - this.lastProgress > NO_PICTURE_MS) {
      return "暂无画面 No picture from the camera";
    }
    return "";
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }
}

export class PlayerGrid {
  constructor(container, api, { onChange = () => {} } = {}) {
    this.container = container;
    this.api = api;
    this.onChange = onChange;
    this.iceServers = [];
    this.tiles = new Map(); // camera id → Tile
    this.timer = setInterval(() => this.pollAll(), 1000);
    this.layout();
  }

  get players() {
    return new Map([...this.tiles].map(([id, t]) => [id, t.player]));
  }

  has(id) {
    return this.tiles.has(id);
  }

  // Start playing `camera`; throws an Error with a user-facing message when the grid is full.
  open(camera) {
    const existing = this.tiles.get(camera.id);
    if (existing) {
      existing.root.classList.remove("flash");
      void existing.root.offsetWidth; // restart the highlight animation
      existing.root.classList.add("flash");
      return existing;
    }
    if (this.tiles.size >= MAX_PLAYERS) {
      throw new Error(`最多同时播放 ${MAX_PLAYERS} 路 At most ${MAX_PLAYERS} players — 请先关闭一路 close one first`);
    }
    const player = new WhepPlayer(this.api.whepUrl(camera.id), {
      headers: () => this.api.authHeaders(),
      iceServers: this.iceServers,
    });
    const tile = new Tile(camera, player, (id) => this.close(id));
    this.tiles.set(camera.id, tile);
    this.layout();
    this.onChange();
    player.video = tile.video;
    if (document.visibilityState === "hidden") player.suspend(); // resumed when shown
    else player.start(tile.video);
    return tile;
  }

  async close(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    this.tiles.delete(id);
    tile.root.remove();
    this.layout();
    this.onChange();
    await tile.player.stop();
  }

  async closeAll({ keepalive = false } = {}) {
    const tiles = [...this.tiles.values()];
    this.tiles.clear();
    for (const t of tiles) t.root.remove();
    this.layout();
    await Promise.all(tiles.map((t) => t.player.stop({ keepalive })));
  }

  updateCamera(camera) {
    const tile = this.tiles.get(camera.id);
    if (!tile) return;
    tile.camera = camera;
    tile.render();
  }

  suspendAll() {
    for (const t of this.tiles.values()) {
      t.video.pause();
      t.player.suspend();
    }
  }

  pauseVideos() {
    for (const t of this.tiles.values()) t.video.pause();
  }

  resumeAll() {
    for (const t of this.tiles.values()) {
      if (t.player.state === "paused") t.player.resume();
      t.video.play().catch(() => {});
    }
  }

  async pollAll() {
    await Promise.all([...this.tiles.values()].map((t) => t.poll().catch(() => {})));
  }

  // Tiles first, then empty slots, so the 2×2 grid always shows its four places. Playing
  // tiles are never detached: a <video> taken out of the document pauses.
  layout() {
    for (const slot of this.container.querySelectorAll(":scope > .slot")) slot.remove();
    for (const tile of this.tiles.values()) {
      if (tile.root.parentNode !== this.container) this.container.append(tile.root);
    }
    for (let i = this.tiles.size; i < MAX_PLAYERS; i++) {
      this.container.append(el("div", "slot", "点击左侧摄像头播放 Click a camera to play"));
    }
  }
}
