// The console: sign in (user/password or token), then the centre tree and the live players.
// Tests reach the objects through window.zzhub (players, grid, api).

import { Api, ApiError, describeError } from "../lib/api.js";
import { attachClusterBanner } from "../lib/cluster.js";
import { $ } from "../lib/dom.js";
import { personName, ROLES } from "../lib/format.js";
import { PlayerGrid } from "../widgets/grid.js";
import { CentreTree } from "../widgets/tree.js";
import { HubSocket } from "../lib/ws.js";

const REFRESH_MS = 5000;

class Console {
  constructor() {
    this.api = new Api();
    this.api.onUnauthorized = (err) => this.signOut(`登录已过期 Session ended: ${err.message}`);
    this.grid = new PlayerGrid($("grid"), this.api, { onChange: () => this.markPlaying() });
    this.tree = new CentreTree($("tree"), this.api, { onPick: (id) => this.play(id) });
    this.cameras = new Map();
    this.me = null;
    this.refreshTimer = null;
    this.socket = null; // events: cluster banners, cameras turning unavailable
    this.hiddenTimer = null;
    this.hiddenGraceMs = 10000; // hidden this long: release the hub sessions, not just pause
  }

  get players() {
    return this.grid.players;
  }

  init() {
    $("login-form").addEventListener("submit", (ev) => this.onLogin(ev));
    $("token-form").addEventListener("submit", (ev) => this.onToken(ev));
    $("logout").addEventListener("click", () => this.signOut());
    document.addEventListener("visibilitychange", () => this.onVisibility());
    window.addEventListener("pagehide", () => this.grid.closeAll({ keepalive: true }));
    if (this.api.token) this.enter().catch((err) => this.showLogin(describeError(err)));
    else this.showLogin();
  }

  showLogin(message = "") {
    $("console").hidden = true;
    $("login").hidden = false;
    const box = $("login-error");
    box.textContent = message;
    box.hidden = !message;
    document.body.dataset.page = "login";
  }

  async onLogin(ev) {
    ev.preventDefault();
    const button = $("login-submit");
    button.disabled = true;
    try {
      await this.api.login($("login-user").value.trim(), $("login-password").value);
      $("login-password").value = "";
      await this.enter();
    } catch (err) {
      let text = `登录失败 Sign-in failed: ${describeError(err)}`;
      if (err instanceof ApiError && err.status === 401) {
        text = "用户名或密码错误 Wrong user name or password";
        if (!/wrong user name or password/i.test(err.message)) text += ` (${err.message})`;
      }
      this.showLogin(text);
    } finally {
      button.disabled = false;
    }
  }

  async onToken(ev) {
    ev.preventDefault();
    this.api.setToken($("login-token").value.trim());
    try {
      await this.enter();
      $("login-token").value = "";
    } catch (err) {
      this.api.setToken("");
      const text =
        err instanceof ApiError && err.status === 401
          ? `令牌无效 Token refused: ${err.message}`
          : `登录失败 Sign-in failed: ${describeError(err)}`;
      this.showLogin(text);
    }
  }

  async enter() {
    const me = await this.api.me();
    this.me = me;
    this.grid.iceServers = me.ice_servers || [];
    $("me-name").textContent = personName(me);
    $("me-role").textContent = ROLES[me.role] || me.role;
    $("me-centre").textContent = `${me.centre_name || ""} ${me.centre}`.trim();
    const [centres, cameras] = await Promise.all([this.api.centres(), this.api.cameras()]);
    this.cameras = new Map(cameras.map((c) => [c.id, c]));
    this.tree.render(centres, cameras);
    this.markPlaying();
    $("camera-count").textContent = String(cameras.length);
    this.showNav(me.role);
    $("login").hidden = true;
    $("console").hidden = false;
    this.showError("");
    document.body.dataset.page = "console";
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.refresh(), REFRESH_MS);
    this.openSocket();
  }

  // Cluster banners (cluster.js) and an at-once reload when another node's cameras turn
  // unavailable or a node comes and goes; the 5 s poll stays the fallback.
  openSocket() {
    if (this.socket) return;
    this.socket = new HubSocket(() => this.api.token);
    attachClusterBanner(this.socket, { onChange: () => this.refresh() });
    this.socket.on("camera.status", (d) => d.status === "unavailable" && this.refresh());
    this.socket.connect();
  }

  // Links to the issue-3 pages by role; a page that sent us here to sign in gets us back.
  showNav(role) {
    $("nav-dispatch").hidden = !["dispatcher", "admin"].includes(role);
    $("nav-rooms").hidden = ["terminal", "petitioner"].includes(role);
    $("nav-terminal").hidden = !["terminal", "admin"].includes(role);
    $("nav-desk").hidden = !["receptionist", "mediator", "dispatcher", "admin"].includes(role);
    $("nav-kiosk").hidden = !["terminal", "admin"].includes(role);
    const next = new URLSearchParams(location.search).get("next") || "";
    if (/^\/static\/(dispatch|terminal|room|desk|kiosk|case)\.html(\?|$)/.test(next)) location.replace(next);
  }

  async signOut(message = "") {
    clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    if (this.socket) this.socket.close();
    this.socket = null;
    const closing = this.grid.closeAll(); // DELETEs still carry the old token
    this.api.setToken("");
    this.me = null;
    this.showLogin(message);
    await closing;
  }

  async refresh() {
    if (!this.me) return; // signed out meanwhile
    let cameras;
    try {
      cameras = await this.api.cameras();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) {
        this.showError(`刷新失败 Refresh failed: ${describeError(err)}`);
      }
      return;
    }
    if (!this.me) return;
    this.showError("");
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
      this.showError("");
      setTimeout(() => this.refresh(), 1500); // the camera's status changes once it is pulled
    } catch (err) {
      this.showError(describeError(err));
    }
  }

  showError(text) {
    const box = $("console-error");
    box.textContent = text;
    box.hidden = !text;
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

const zzhub = new Console();
window.zzhub = zzhub;
zzhub.init();
