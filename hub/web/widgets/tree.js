// The centre tree (county → township → village) with each centre's cameras under it.
// Thumbnails are snapshots fetched lazily (only rows in view, two at a time), since each
// snapshot may make the hub pull an idle camera briefly.

import { describeError } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { CAMERA_STATUS, LEVELS } from "../lib/format.js";

const THUMB_REFRESH_MS = 60000;
const THUMB_PARALLEL = 2;

class Thumbnails {
  constructor(api) {
    this.api = api;
    this.queue = [];
    this.running = 0;
    this.loaded = new Map(); // camera id → time of last load
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) this.want(e.target);
    });
  }

  watch(img) {
    this.observer.observe(img);
  }

  want(img) {
    const id = img.dataset.camera;
    const last = this.loaded.get(id);
    if (this.queue.includes(img) || (last && Date.now() - last < THUMB_REFRESH_MS)) return;
    this.queue.push(img);
    this.pump();
  }

  async pump() {
    while (this.running < THUMB_PARALLEL && this.queue.length) {
      const img = this.queue.shift();
      this.running += 1;
      this.load(img).finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }

  async load(img) {
    const id = img.dataset.camera;
    this.loaded.set(id, Date.now());
    try {
      const url = await this.api.snapshotUrl(id);
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = url;
      img.classList.remove("thumb-missing");
      img.title = "";
    } catch (err) {
      img.classList.add("thumb-missing");
      img.title = `无快照 No snapshot: ${describeError(err)}`;
    }
  }

  clear() {
    this.observer.disconnect();
    this.queue = [];
  }
}

export class CentreTree {
  constructor(container, api, { onPick }) {
    this.container = container;
    this.thumbs = new Thumbnails(api);
    this.onPick = onPick;
    this.rows = new Map(); // camera id → row element
  }

  render(centres, cameras) {
    this.thumbs.clear();
    this.rows.clear();
    const byCode = new Map(centres.map((c) => [c.code, c]));
    const camsOf = new Map();
    for (const cam of cameras) {
      if (!camsOf.has(cam.centre)) camsOf.set(cam.centre, []);
      camsOf.get(cam.centre).push(cam);
    }
    const roots = centres.filter((c) => !c.parent || !byCode.has(c.parent));
    const list = el("ul", { className: "tree-root" });
    for (const root of roots) list.append(this.centreNode(root, byCode, camsOf));
    this.container.replaceChildren(list);
    if (!cameras.length) {
      this.container.append(el("p", { className: "empty" }, "没有可见的摄像头 No cameras in your scope"));
    }
  }

  centreNode(centre, byCode, camsOf) {
    const cams = camsOf.get(centre.code) || [];
    const head = el(
      "summary",
      { className: "centre-head" },
      el("span", { className: `level level-${centre.level}` }, LEVELS[centre.level] || centre.level),
      el("span", { className: "centre-name" }, centre.name),
      el("span", { className: "count" }, cams.length ? String(cams.length) : ""),
    );
    const body = el("ul", { className: "centre-body" });
    for (const cam of cams) body.append(this.cameraRow(cam));
    for (const code of centre.children || []) {
      const child = byCode.get(code);
      if (child) body.append(this.centreNode(child, byCode, camsOf));
    }
    const details = el("details", { open: true }, head, body);
    const li = el("li", { className: "centre" }, details);
    li.dataset.centre = centre.code;
    return li;
  }

  cameraRow(cam) {
    const img = el("img", { className: "thumb", alt: "", width: 64, height: 48 });
    img.dataset.camera = cam.id;
    const row = el(
      "button",
      { type: "button", className: "camera", title: `${cam.name} (${cam.id})` },
      img,
      el(
        "span",
        { className: "camera-text" },
        el("span", { className: "camera-name" }, cam.name),
        el(
          "span",
          { className: "camera-meta" },
          el("span", { className: "dot" }),
          el("span", { className: "camera-status" }),
          el("span", { className: "camera-viewers" }),
        ),
      ),
    );
    row.dataset.camera = cam.id;
    row.addEventListener("click", () => this.onPick(cam.id));
    const li = el("li", {}, row);
    this.rows.set(cam.id, row);
    this.update(cam);
    this.thumbs.watch(img);
    return li;
  }

  // Refresh status, viewers and the playing mark without rebuilding the tree.
  update(cam, playing = false) {
    const row = this.rows.get(cam.id);
    if (!row) return;
    const unavailable = cam.available === false; // another hub node's camera, node down
    row.dataset.status = cam.status;
    row.dataset.available = String(!unavailable);
    row.classList.toggle("playing", playing);
    row.classList.toggle("unavailable", unavailable);
    row.querySelector(".dot").className = `dot status-${cam.status}`;
    row.querySelector(".camera-status").textContent = unavailable
      ? `节点 ${cam.node} 离线 Node offline`
      : CAMERA_STATUS[cam.status] || cam.status;
    const viewers = row.querySelector(".camera-viewers");
    viewers.textContent = cam.viewers ? `观看 ${cam.viewers}` : "";
    viewers.title = cam.viewers ? `${cam.viewers} 人观看 ${cam.viewers} viewing` : "";
  }
}
