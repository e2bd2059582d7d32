// The roll-call ledger table (one row per centre checked, CSV download) and the history
// tables (calls, roll calls) of the dispatch page.

import { describeError } from "../lib/api.js";
import { button, el, fileName, saveBlob } from "../lib/dom.js";
import { fmtSeconds, fmtTime } from "../lib/format.js";

const ENTRY = {
  checking: "等待应答 Waiting",
  answered: "在岗 Answered",
  no_answer: "未应答 No answer",
  offline: "离线 Offline",
};
const CLOSE_REASON = {
  timeout: "超时 timeout",
  all_answered: "全部应答 all answered",
  closed: "调度员结束 closed by the dispatcher",
  room_ended: "房间结束 room ended",
  shutdown: "服务停止 hub shut down",
  interrupted: "中断 interrupted",
};
const RC_STATE = { running: "进行中 Running", closed: "已结束 Closed" };
const CALL_STATE = { ringing: "呼叫中 Ringing", active: "通话中 Active", ended: "已结束 Ended" };
const TARGET_STATE = {
  ringing: "振铃 ringing",
  accepted: "已接听 accepted",
  declined: "已拒绝 declined",
  missed: "未接 missed",
  cancelled: "已取消 cancelled",
};

export { TARGET_STATE };

function row(cells, attrs = {}) {
  const tr = el("tr");
  Object.assign(tr.dataset, attrs);
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.append(c);
    else td.textContent = c == null ? "" : String(c);
    tr.append(td);
  }
  return tr;
}

function table(headers) {
  const t = el("table", "table");
  const head = el("tr");
  for (const h of headers) head.append(el("th", "", h));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(head);
  return t;
}

export class LedgerTable {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.rc = null;
  }

  show(rc) {
    this.rc = rc;
    const summary = el("p", "ledger-summary");
    const state = rc.state === "running" ? "进行中 running" : `已结束 closed: ${CLOSE_REASON[rc.close_reason] || rc.close_reason || ""}`;
    summary.textContent = `${rc.label} — ${state} · 应答 answered ${rc.answered}/${rc.centres} · 未应答 not answered ${rc.not_answered}`;
    const csv = button("下载 CSV Download", () => this.downloadCsv(), "ledger-csv");
    const t = table(["中心 Centre", "状态 Status", "响应 Response", "应答人 By", "方式 How", "快照 Snapshot"]);
    for (const e of rc.entries || []) {
      const how = e.auto == null ? "" : e.auto ? "自动 auto" : "手动 pressed";
      const snap = e.has_snapshot ? button("查看 View", () => this.openSnapshot(e.centre), "ledger-snap") : "";
      const tr = row([`${e.centre_name} ${e.centre}`, ENTRY[e.status] || e.status, fmtSeconds(e.response_time), e.answered_by, how, snap], {
        centre: e.centre,
        status: e.status,
      });
      tr.children[1].className = "status";
      t.tBodies[0].append(tr);
    }
    this.root.replaceChildren(el("h2", "", "查岗台账 Roll-call ledger"), summary, csv, t);
    this.root.hidden = false;
  }

  async downloadCsv() {
    try {
      const resp = await this.api.request(`/api/rollcalls/${encodeURIComponent(this.rc.id)}.csv`, { raw: true });
      saveBlob(await resp.blob(), fileName(resp, `rollcall-${this.rc.id}.csv`));
    } catch (err) {
      alert(`下载失败 Download failed: ${describeError(err)}`);
    }
  }

  async openSnapshot(code) {
    try {
      const path = `/api/rollcalls/${encodeURIComponent(this.rc.id)}/centres/${code}/snapshot.jpg`;
      const resp = await this.api.request(path, { raw: true });
      window.open(URL.createObjectURL(await resp.blob()), "_blank");
    } catch (err) {
      alert(`无快照 No snapshot: ${describeError(err)}`);
    }
  }
}

// Paged history of calls or roll calls (GET /api/calls | /api/rollcalls ?page=).
export class HistoryTable {
  constructor(root, api, { onRollcall = () => {} } = {}) {
    this.root = root;
    this.api = api;
    this.onRollcall = onRollcall;
    this.kind = "calls";
    this.page = 1;
  }

  async load(kind = this.kind, page = this.page) {
    this.kind = kind;
    this.page = page;
    let body;
    try {
      body = await this.api.request(`/api/${kind}?page=${page}&per_page=10`);
    } catch (err) {
      this.root.replaceChildren(el("p", "error", `无法加载记录 Cannot load history: ${describeError(err)}`));
      return;
    }
    const t = kind === "calls" ? this._calls(body.items) : this._rollcalls(body.items);
    const pages = Math.max(1, Math.ceil(body.total / body.per_page));
    const pager = el("div", "pager");
    const prev = button("上一页 Prev", () => this.load(kind, page - 1));
    const next = button("下一页 Next", () => this.load(kind, page + 1));
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    pager.append(prev, el("span", "status-text", `${page}/${pages} · 共 ${body.total} total`), next);
    this.root.replaceChildren(t, pager);
    this.root.dataset.kind = kind;
  }

  _calls(items) {
    const t = table(["时间 Time", "发起 Caller", "对象 Targets", "状态 State", "接听 Answered", "时长 Duration"]);
    for (const c of items) {
      const targets = c.targets.map((x) => `${x.centre_name || x.user || x.centre}: ${TARGET_STATE[x.state] || x.state}`).join("; ");
      t.tBodies[0].append(
        row([fmtTime(c.created), c.caller, targets, CALL_STATE[c.state] || c.state, c.answered ? "是 yes" : "否 no", fmtSeconds(c.duration)], { call: c.id }),
      );
    }
    return t;
  }

  _rollcalls(items) {
    const t = table(["时间 Time", "发起 By", "范围 Label", "应答 Answered", "状态 State", ""]);
    for (const rc of items) {
      const open = button("台账 Ledger", () => this.onRollcall(rc.id), "history-ledger");
      t.tBodies[0].append(
        row([fmtTime(rc.started), rc.started_by, rc.label, `${rc.answered}/${rc.centres}`, RC_STATE[rc.state] || rc.state, open], { rollcall: rc.id }),
      );
    }
    return t;
  }
}
