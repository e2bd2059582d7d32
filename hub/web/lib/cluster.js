// The hub cluster as the console shows it: a banner while cross-node features are away
// (Redis unreachable: `cluster.state` degraded), while another node is down (`cluster.node`),
// while this page's own node cannot be reached (the HubSocket's `failover` event, naming a
// live node to switch to — signing in again there, since the token is kept per site), and for
// each id two nodes numbered alike while Redis was away (`cluster.conflict`, county scope).
//
// ClusterWatch is plain logic (no DOM; tests/hub/cluster/cluster_banner_test.mjs runs it in node);
// attachClusterBanner wires it to a HubSocket and a banner element.

import { el } from "./dom.js";

// The socket events that change the cluster picture (a page may reload its lists on them).
export const CLUSTER_TOPICS = ["cluster.state", "cluster.node", "cluster.resync", "cluster.conflict"];

export class ClusterWatch {
  constructor() {
    this.state = "off"; // off | connecting | up | degraded (this node's link to Redis)
    this.node = null; // this node's id
    this.down = new Map(); // node id → url, announced down and not back yet
    this.unreachable = false; // this page's node does not answer
    this.fallback = null; // {id, url} of a live node that answered
    this.conflicts = new Map(); // "kind:item" → {kind, item, node, here}, until the page reloads
  }

  // The `cluster` field of the WebSocket hello: a fresh picture of the cluster.
  fromHello(cluster) {
    this.unreachable = false;
    this.fallback = null;
    if (!cluster) {
      this.state = "off";
      this.down.clear();
      return;
    }
    this.state = cluster.state || "off";
    this.node = cluster.node || null;
    const live = new Set((cluster.nodes || []).map((n) => n.id));
    for (const id of [...this.down.keys()]) if (live.has(id)) this.down.delete(id);
  }

  // An event; true when what the banner shows may have changed.
  apply(topic, data = {}) {
    if (topic === "cluster.state") {
      this.state = data.state || this.state;
      return true;
    }
    if (topic === "cluster.node") {
      if (data.state === "down") this.down.set(data.node, data.url || "");
      else this.down.delete(data.node);
      return true;
    }
    if (topic === "cluster.conflict") {
      if (!data.kind || !data.item) return false;
      this.conflicts.set(`${data.kind}:${data.item}`, data);
      return true;
    }
    if (topic === "cluster.resync") {
      this.state = "up";
      this.down.clear(); // the hello/refresh after a resync tells again who is down
      return true;
    }
    return false;
  }

  setUnreachable(fallback) {
    this.unreachable = true;
    this.fallback = fallback || null;
  }

  // What to show: a list of {kind, text, link?}; empty when all is well.
  banners() {
    const out = [];
    if (this.unreachable) {
      const here = this.node ? `节点 ${this.node} ` : "";
      if (this.fallback) {
        out.push({
          kind: "unreachable",
          text:
            `本${here}无法连接，正在重试。可切换到节点 ${this.fallback.id}（需重新登录）` +
            ` This node is unreachable, retrying. You may switch to node ${this.fallback.id} (sign in again there)`,
          link: { href: this.fallback.url, text: `切换到 ${this.fallback.id} Switch` },
        });
      } else {
        out.push({
          kind: "unreachable",
          text: `本${here}无法连接，正在重试 This node is unreachable, retrying…`,
        });
      }
    }
    if (this.state === "degraded") {
      out.push({
        kind: "degraded",
        text: "跨节点功能暂不可用（本节点功能正常） Cross-node features unavailable (this node works)",
      });
    }
    for (const id of [...this.down.keys()].sort()) {
      out.push({
        kind: "node-down",
        text: `节点 ${id} 离线，其摄像头与会议暂不可用 Node ${id} is offline: its cameras and rooms are unavailable`,
      });
    }
    const names = { petition: "案件", alert: "告警" };
    for (const c of this.conflicts.values()) {
      out.push({
        kind: "conflict",
        text:
          `${names[c.kind] || c.kind} ${c.item} 同时保存在节点 ${c.here} 与 ${c.node}（Redis 中断期间重复编号），请管理员核对` +
          ` Duplicate ${c.kind} ${c.item} on nodes ${c.here} and ${c.node} (numbered while Redis was away): see GET /api/cluster`,
      });
    }
    return out;
  }
}

// Show the banners of `socket` in `box` (an element; created at the top of <body> if absent).
// onChange (optional) is called after each cluster event (e.g. reload the camera list).
export function attachClusterBanner(socket, { box = null, onChange = null } = {}) {
  const watch = new ClusterWatch();
  let banner = box || document.getElementById("cluster-banner");
  if (!banner) {
    banner = el("div", { id: "cluster-banner" });
    document.body.prepend(banner);
  }
  banner.classList.add("cluster-banner");
  banner.setAttribute("role", "status");
  const render = () => {
    const items = watch.banners();
    banner.replaceChildren(
      ...items.map((b) => {
        const p = el("p", `cluster-${b.kind}`, b.text);
        if (b.link) p.append(" ", el("a", { href: b.link.href, textContent: b.link.text }));
        return p;
      }),
    );
    banner.hidden = items.length === 0;
    banner.dataset.kinds = items.map((b) => b.kind).join(" ");
  };
  socket.addEventListener("open", (ev) => {
    watch.fromHello(ev.detail && ev.detail.cluster);
    render();
  });
  socket.addEventListener("failover", (ev) => {
    watch.setUnreachable(ev.detail);
    render();
  });
  for (const topic of CLUSTER_TOPICS) {
    socket.on(topic, (data) => {
      if (watch.apply(topic, data)) render();
      if (onChange) onChange(topic, data);
    });
  }
  render();
  return watch;
}
