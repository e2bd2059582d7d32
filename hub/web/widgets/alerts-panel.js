// The alerts panel: newest alerts of the user's scope with their snapshot, "play from 10 s
// before" (the recording, served by /api/cameras/{id}/whep?start=ISO) and acknowledge.
// The list from /api/alerts is the truth: it is reloaded when the WebSocket pushes
// `alert.raised` / `alert.acked`, and polled slowly as a fallback.

import { describeError } from "../lib/api.js";
import { el } from "../lib/dom.js";

const KINDS = {
  motion: "区域入侵 Motion in zone",
  camera_offline: "摄像头离线 Camera offline",
  camera_online: "摄像头恢复 Camera back online",
  disk_full: "磁盘已满 Disk full",
  fire_experimental: "疑似火情 Fire-like (实验性 experimental)",
};
const POLL_MS = 3000; // without a WebSocket
const FALLBACK_POLL_MS = 30000; // with one

export class AlertsPanel {
  constructor(list, count, api, { onPlay = () => {}, onError = () => {} } = {}) {
    this.list = list;
    this.count = count;
    this.api = api;
    this.onPlay = onPlay;
    this.onError = onError;
    this.items = new Map(); // alert id → {alert, node}
    this.snapshots = new Map(); // alert id → object URL
    this.timer = null;
  }

  // socket: a HubSocket (ws.js); its alert events trigger an immediate reload.
  start(socket = null) {
    this.refresh();
    if (socket) {
      this.unsubscribe = [
        socket.on("alert.raised", () => this.refresh()),
        socket.on("alert.acked", () => this.refresh()),
      ];
    }
    this.timer = setInterval(() => this.refresh(), socket ? FALLBACK_POLL_MS : POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    for (const off of this.unsubscribe || []) off();
    for (const url of this.snapshots.values()) URL.revokeObjectURL(url);
    this.snapshots.clear();
  }

  async refresh() {
    let alerts;
    try {
      alerts = await this.api.request("/api/alerts?limit=50");
    } catch (err) {
      this.onError(`告警加载失败 Alerts failed: ${describeError(err)}`);
      return;
    }
    const seen = new Set();
    for (const alert of alerts) {
      seen.add(alert.id);
      const known = this.items.get(alert.id);
      if (!known) this.add(alert);
      else if (known.alert.status !== alert.status) this.update(known, alert);
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.node.remove();
        this.items.delete(id);
      }
    }
    const open = alerts.filter((a) => a.status === "open").length;
    this.count.textContent = open ? String(open) : "";
  }

  add(alert) {
    const node = el("li", "alert");
    node.dataset.id = String(alert.id);
    node.dataset.kind = alert.kind;
    const title = el("div", "title");
    title.append(el("strong", "", KINDS[alert.kind] || alert.kind));
    if (alert.experimental) title.append(el("span", "experimental", " 实验性 EXPERIMENTAL"));
    const when = new Date(alert.at).toLocaleString("zh-CN", { hour12: false });
    node.append(title, el("div", "meta", `${alert.camera || alert.centre} · ${when}`));
    if (alert.snapshot) {
      const img = el("img", "snapshot");
      img.alt = "告警截图 Alert snapshot";
      node.append(img);
      this.loadSnapshot(alert, img);
    }
    const actions = el("div", "actions");
    if (alert.play_url) {
      const play = el("button", "play", "回放前10秒 Play from 10 s before");
      play.type = "button";
      play.addEventListener("click", () => this.onPlay(alert));
      actions.append(play);
    }
    const ack = el("button", "ack", "确认 Acknowledge");
    ack.type = "button";
    ack.addEventListener("click", () => this.ack(alert.id));
    const who = el("span", "who");
    actions.append(ack, who);
    node.append(actions);
    const item = { alert, node, ack, who };
    this.items.set(alert.id, item);
    this.update(item, alert);
    // newest first
    const next = [...this.list.children].find((c) => Number(c.dataset.id) < alert.id);
    this.list.insertBefore(node, next || null);
  }

  update(item, alert) {
    item.alert = alert;
    item.node.dataset.status = alert.status;
    item.ack.hidden = alert.status !== "open";
    item.who.textContent = alert.acked_by ? `已确认 Acknowledged by ${alert.acked_by}` : "";
  }

  async loadSnapshot(alert, img) {
    try {
      const resp = await this.api.request(alert.snapshot, { raw: true });
      const url = URL.createObjectURL(await resp.blob());
      this.snapshots.set(alert.id, url);
      img.src = url;
    } catch {
      img.remove();
    }
  }

  async ack(id) {
    try {
      const alert = await this.api.request(`/api/alerts/${id}/ack`, { method: "POST" });
      const item = this.items.get(id);
      if (item) this.update(item, alert);
    } catch (err) {
      this.onError(`确认失败 Acknowledge failed: ${describeError(err)}`);
    }
  }
}
