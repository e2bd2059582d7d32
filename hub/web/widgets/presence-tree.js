// The dispatcher's centre tree: a checkbox per centre to pick call / roll-call targets, and a
// live presence dot per centre (from `presence.list` and `presence` events): green when a
// terminal or person there is online, blue when in a call, amber when busy, grey when nobody.

import { el } from "../lib/dom.js";
import { LEVELS } from "../lib/format.js";

const RANK = { in_call: 3, online: 2, busy: 1, offline: 0 };
const LABEL = { in_call: "通话中 In call", online: "在线 Online", busy: "忙 Busy", offline: "离线 Offline" };

export class PresenceTree {
  // centres: /api/centres; socket: HubSocket; onChange(selected codes).
  constructor(root, centres, socket, { me = null, onChange = () => {} } = {}) {
    this.root = root;
    this.centres = new Map(centres.map((c) => [c.code, c]));
    this.socket = socket;
    this.me = me;
    this.onChange = onChange;
    this.members = new Map(); // user → member (online ones)
    this.rows = new Map(); // code → {row, box, dot, count}
    this.render();
    socket.on("presence", (m) => this.update(m));
    socket.addEventListener("open", () => this.reload());
    if (socket.connected) this.reload();
  }

  async reload() {
    try {
      const list = await this.socket.request("presence.list");
      this.members = new Map(list.map((m) => [m.user, m]));
      this.paint();
    } catch {
      // the next hello tries again
    }
  }

  update(member) {
    if (member.status === "offline") this.members.delete(member.user);
    else this.members.set(member.user, member);
    this.paint();
  }

  render() {
    const top = [...this.centres.values()].filter((c) => !this.centres.has(c.parent));
    const ul = el("ul");
    for (const c of top) ul.append(this._node(c));
    this.root.replaceChildren(ul);
    this.paint();
  }

  _node(c) {
    const li = el("li", "pcentre");
    li.dataset.centre = c.code;
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.value = c.code;
    box.addEventListener("change", () => this.onChange(this.selected()));
    const dot = el("span", "dot presence-offline");
    const level = el("span", `level level-${c.level}`, LEVELS[c.level] || c.level);
    const name = el("span", "centre-name", c.name);
    const count = el("span", "who-online");
    label.append(box, dot, level, name, count);
    li.append(label);
    this.rows.set(c.code, { li, box, dot, count });
    const kids = (c.children || []).map((k) => this.centres.get(k)).filter(Boolean);
    if (kids.length) {
      const ul = el("ul");
      for (const k of kids) ul.append(this._node(k));
      li.append(ul);
    }
    return li;
  }

  // The status of a centre: the "best" of the members connected there (not counting me).
  status(code) {
    let best = "offline";
    for (const m of this.members.values()) {
      if (m.centre !== code || (this.me && m.user === this.me.user)) continue;
      if (RANK[m.status] > RANK[best]) best = m.status;
    }
    return best;
  }

  paint() {
    for (const [code, r] of this.rows) {
      const here = [...this.members.values()].filter(
        (m) => m.centre === code && !(this.me && m.user === this.me.user),
      );
      const status = this.status(code);
      r.dot.className = `dot presence-${status}`;
      r.li.dataset.presence = status;
      const terminals = here.filter((m) => m.role === "terminal").length;
      r.count.textContent = here.length ? `${here.length} 在线${terminals ? ` · 终端 ${terminals}` : ""}` : "";
      r.dot.title = `${LABEL[status]}: ${here.map((m) => `${m.user} (${m.status})`).join(", ") || "—"}`;
    }
  }

  selected() {
    return [...this.rows.entries()].filter(([, r]) => r.box.checked).map(([code]) => code);
  }

  setSelected(codes) {
    const want = new Set(codes);
    for (const [code, r] of this.rows) r.box.checked = want.has(code);
    this.onChange(this.selected());
  }

  townships() {
    return [...this.centres.values()].filter((c) => c.level === "township");
  }
}
