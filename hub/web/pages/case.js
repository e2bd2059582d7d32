// The case page (一案一码): summary with the 红黄蓝 deadline badge, timeline, recordings (per
// track), follow-up (call back, satisfaction), archive and the evidence export (zip with a
// SHA-256 manifest that `zzhub verify` checks). /static/case.html?code=CODE.

import { describeError } from "../lib/api.js";
import { $, el, saveBlob, showError } from "../lib/dom.js";
import { fmtTime } from "../lib/format.js";
import { boot } from "../lib/boot.js";

const esc = encodeURIComponent;
const COLOURS = { blue: "蓝 正常 on track", yellow: "黄 临期 past 75 %", red: "红 超期 overdue" };
const state = { api: null, code: null, case: null, lastZip: null };
window.zzcase = state;

async function start(ctx) {
  state.api = ctx.api;
  state.code = new URLSearchParams(location.search).get("code");
  $("code").textContent = state.code || "";
  ctx.socket.on("petition.updated", (c) => c.code === state.code && load());
  $("call").onclick = () => act("followup", { call: true });
  $("followup").onclick = () => act("followup", { satisfaction: Number($("score").value) });
  $("archive").onclick = () => act("archive", {});
  $("export").onclick = exportZip;
  await load();
}

async function load() {
  try {
    const c = await state.api.request(`/api/petitions/${esc(state.code)}`);
    state.case = c;
    const rows = [
      ["状态 Status", `${c.status_label} ${c.status}${c.outcome ? ` · ${c.outcome}` : ""}`],
      ["时限 Deadline", `${fmtTime(c.due_at)}`],
      ["类别 Category", `${c.category}${c.urgent ? " 紧急 urgent" : ""}`],
      ["来源 Origin", `${c.origin} · ${c.origin_user}`],
      ["队列 Queue", c.queue],
      ["说明 Text", c.text],
      ["满意度 Satisfaction", c.satisfaction != null ? String(c.satisfaction) : ""],
    ];
    const summary = $("summary");
    summary.replaceChildren();
    const badgeRow = el("tr");
    const cell = el("td");
    cell.append(el("span", `badge badge-${c.colour}`, COLOURS[c.colour] || c.colour));
    badgeRow.append(el("th", "", "红黄蓝"), cell);
    summary.append(badgeRow);
    for (const [k, v] of rows) summary.append(row([k, v], "th"));
    $("timeline").replaceChildren(...c.timeline.map((e) =>
      row([fmtTime(e.at), e.actor, e.action, e.to ? `${e.from || ""} → ${e.to}` : "", e.note])));
    $("recordings").replaceChildren(...c.recordings.map((r) =>
      row([r.source, fmtTime(r.start_ms / 1000), r.end_ms ? `${((r.end_ms - r.start_ms) / 1000).toFixed(1)} s` : "录制中 recording", (r.sha256 || "").slice(0, 16)])));
    document.body.dataset.page = "case";
    document.body.dataset.status = c.status;
  } catch (err) {
    showError(describeError(err));
  }
}

function row(cells, first = "td") {
  const tr = el("tr");
  cells.forEach((text, i) => tr.append(el(i === 0 ? first : "td", "", text)));
  return tr;
}

async function act(action, json) {
  try {
    await state.api.request(`/api/petitions/${esc(state.code)}/${action}`, { method: "POST", json });
    showError("");
  } catch (err) {
    showError(describeError(err));
  }
  await load();
}

async function exportZip() {
  $("export-state").textContent = "导出中 Exporting…";
  try {
    const resp = await state.api.request(`/api/petitions/${esc(state.code)}/export.zip`, { raw: true });
    const blob = await resp.blob();
    state.lastZip = blob;
    saveBlob(blob, `case_${state.code}.zip`);
    $("export-state").textContent = `${(blob.size / 1e6).toFixed(2)} MB`;
  } catch (err) {
    $("export-state").textContent = describeError(err);
  }
}

boot({ page: "case", roles: ["receptionist", "mediator", "dispatcher", "admin"], start });
