// The console: the centre tree and the live players, once boot.js has signed in on this
// page's form. Tests reach the objects through window.zzhub (players, grid, api).

import { Api, ApiError, describeError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { CLUSTER_TOPICS } from "../lib/cluster.js";
import { $, showError } from "../lib/dom.js";
import { PlayerGrid } from "../widgets/grid.js";
import { CentreTree } from "../widgets/tree.js";

const REFRESH_MS = 5000;

class Console {
  constructor(api) {
    this.api = api;
    this.grid = new PlayerGrid($("grid"), this.api, { onChange: () => this.markPlaying() });
    this.tree = new CentreTree($("tree"), this.api, { onPick: (id) => this.play(id) });
    this.cameras = new Map();
    this.me = null;
    this.refreshTimer = null;
    this.hiddenTimer = null;
    this.hiddenGraceMs = 10000; // hidden this long: release the hub sessions, not just pause
    document.addEventListener("visibilitychange", () => this.onVisibility());
    window.addEventListener("pagehide", () => this.grid.closeAll({ keepalive: true }));
  }

  get players() {
    return this.grid.players;
  }

  // Signed in (boot.js): load the tree, poll the cameras, follow the socket.
  async start({ me, socket }) {
    this.grid.iceServers = me.ice_servers || [];
    const [centres, cameras] = await Promise.all([this.api.centres(), this.api.cameras()]);
    this.me = me;
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    this.tree.render(centres, cameras);
    this.markPlaying();
    $("camera-count").textContent = String(cameras.length);
    this.showNav(me.role);
    // an at-once reload when another node's cameras turn unavailable or a node comes and
    // goes (cluster events); the 5 s poll stays the fallback
    for (const topic of CLUSTER_TOPICS) socket.on(topic, () => this.refresh());
    socket.on("camera.status", (d) => d.status === "unavailable" && this.refresh());
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.refresh(), REFRESH_MS);
    document.body.dataset.page = "console";
  }

  // Signing out (boot.js): the players' DELETEs still carry the old token.
  stop() {
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    this.me = null;
    return this.grid.closeAll();
  }

  // Links to the other pages by role.
  showNav(role) {
    $("nav-dispatch").hidden = !["dispatcher", "admin"].includes(role);
    $("nav-rooms").hidden = ["terminal", "petitioner"].includes(role);
    $("nav-terminal").hidden = !["terminal", "admin"].includes(role);
    $("nav-desk").hidden = !["receptionist", "mediator", "dispatcher", "admin"].includes(role);
    $("nav-kiosk").hidden = !["terminal", "admin"].includes(role);
  }

  async refresh() {
    if (!this.me) return; // signed out meanwhile
    let cameras;
    try {
      cameras = await this.api.cameras();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        showError(`刷新失败 Refresh failed: ${describeError(err)}`);
      }
      return;
    }
    if (!this.me) return;
    showError("");
    const known = [...this.cameras.keys()].sort().join();
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    if ([...this.cameras.keys()].sort().join() !== known) {
      this.tree.render(await this.api.centres(), cameras); // cameras added or removed
    }
    for (const cam of cameras) this.grid.updateCamera(cam);
    this.markPlaying();
  }

  markPlaying() {
    for (const cam of this.cameras.values()) this.tree.update(cam, this.grid.has(cam.id));
  }

  play(id) {
    const cam = this.cameras.get(id);
    if (!cam) return;
    try {
      this.grid.open(cam);
      showError("");
      setTimeout(() => this.refresh(), 1500); // the camera's status changes once it is pulled
    } catch (err) {
      showError(describeError(err));
    }
  }

  // Hidden tab: pause the videos at once, give the hub sessions back after a grace period.
  onVisibility() {
    clearTimeout(this.hiddenTimer);
    if (document.visibilityState === "hidden") {
      this.grid.pauseVideos();
      this.hiddenTimer = setTimeout(() => this.grid.suspendAll(), this.hiddenGraceMs);
    } else {
      this.grid.resumeAll();
    }
  }
}

const zzhub = new Console(new Api());
window.zzhub = zzhub;
boot({ page: "console", api: zzhub.api, start: (ctx) => zzhub.start(ctx), stop: () => zzhub.stop() });
