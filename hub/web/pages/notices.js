// 信息发布: send a notice (text + optional attachment) to a subtree and follow its per-centre
// delivery (delivered/read counts); the inbox of one's own centre with read receipts. New
// notices arrive live over the WebSocket (`notice`), queued ones right after connecting.

import { $, button, el, saveBlob, showError } from "../lib/dom.js";
import { fmtTime } from "../lib/format.js";
import { boot, centreNames } from "../lib/boot.js";
import { describeError } from "../lib/api.js";

boot({ page: "notices", start: main });

function main({ api, me, socket }) {
  const sender = ["dispatcher", "admin"].includes(me.role);

  function noticeItem(n, read) {
    const li = el("li", read ? "" : "unread");
    li.dataset.notice = n.id;
    li.append(el("strong", "", n.title), el("span", "", ` ${fmtTime(n.created)} · ${n.sender}`));
    li.append(el("p", "", n.text));
    if (n.attachment) {
      li.append(button(`附件 ${n.attachment.name}`, () => download(n.attachment)));
    }
    if (!read) {
      li.append(
        button("已读 Mark read", async () => {
          await api.request(`/api/notices/${n.id}/read`, { method: "POST" });
          li.className = "";
          li.querySelector("button:last-of-type").remove();
        }),
      );
    }
    return li;
  }

  async function download(a) {
    const resp = await api.request(a.url.replace(/^\/?/, "/"), { raw: true });
    saveBlob(await resp.blob(), a.name);
  }

  async function loadInbox() {
    const list = await api.request("/api/notices/inbox");
    $("inbox").replaceChildren(...list.map((n) => noticeItem(n, n.read)));
  }

  async function showStatus(id) {
    const s = await api.request(`/api/notices/${id}`);
    const table = el("table");
    const head = el("tr");
    for (const h of ["中心 Centre", "在线 Online", "已送达 Delivered", "已读 Read"]) head.append(el("th", "", h));
    table.append(head);
    for (const c of s.centres) {
      const tr = el("tr");
      tr.dataset.centre = c.centre;
      for (const v of [`${c.name} ${c.centre}`, c.online, c.delivered, c.read]) tr.append(el("td", "", String(v)));
      table.append(tr);
    }
    const t = s.totals;
    $("status").replaceChildren(
      el("h3", "", `${s.title}: ${t.centres_delivered}/${t.centres} 中心送达 centres delivered, ${t.read} 已读 read`),
      table,
    );
  }

  async function loadSent() {
    const list = await api.request("/api/notices");
    $("sent-list").replaceChildren(
      ...list.map((n) => {
        const li = el("li", "", `${n.title} · ${fmtTime(n.created)} `);
        li.append(button("送达情况 Status", () => showStatus(n.id)));
        return li;
      }),
    );
  }

  socket.on("notice", (n) => {
    $("inbox").prepend(noticeItem(n, false));
  });

  if (sender) {
    $("send-form").hidden = $("sent").hidden = false;
    centreNames(api).then(({ centres }) => {
      $("nt-subtree").replaceChildren(...centres.map((c) => new Option(`${c.name} ${c.code}`, c.code)));
    });
    $("send-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const body = { title: $("nt-title").value, text: $("nt-text").value, subtree: $("nt-subtree").value };
        if ($("nt-level").value) body.level = $("nt-level").value;
        const file = $("nt-file").files[0];
        if (file) {
          const resp = await fetch(api.url(`/api/notices/attachments?name=${encodeURIComponent(file.name)}`), {
            method: "POST",
            headers: api.authHeaders({ "Content-Type": file.type || "application/octet-stream" }),
            body: file,
          });
          const a = await resp.json();
          if (!resp.ok) throw new Error(a.error ? a.error.message : resp.statusText);
          body.attachment = a.id;
        }
        const sent = await api.request("/api/notices", { method: "POST", json: body });
        await loadSent();
        await showStatus(sent.id);
      } catch (err) {
        showError(describeError(err));
      }
    });
    loadSent().catch((err) => showError(describeError(err)));
  }
  loadInbox().catch((err) => showError(describeError(err)));
}
