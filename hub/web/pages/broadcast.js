// 远程培训: the presenter's page (dispatcher/admin: start, camera or screen, hands, stage,
// attendance, end) and the viewer's page (everyone invited: watch, raise a hand, speak on
// stage). Terminals join a broadcast of their centre at once (`broadcast.started`).
//
// Screen sharing replaces the video track of the live publication (RTCRtpSender.replaceTrack):
// no renegotiation, the hub keeps forwarding the same publication and viewers see the screen
// from the next keyframe. Publishing again (a new WHIP POST) also works: the old publication
// ends and viewers follow the new id in `broadcast.updated`.

import { openLocalMedia, Publisher } from "../lib/whip.js";
import { $, button, el, saveBlob, showError } from "../lib/dom.js";
import { boot, centreNames } from "../lib/boot.js";
import { describeError } from "../lib/api.js";
import { WhepPlayer } from "../lib/whep.js";

boot({ page: "broadcast", start: main });

function main({ api, me, socket }) {
  const presenterRole = ["dispatcher", "admin"].includes(me.role);
  const headers = () => api.authHeaders();
  let current = null; // the broadcast joined
  let mainPlayer = null;
  let mainPub = null;
  let publisher = null;
  let camera = null;
  const stagePlayers = new Map(); // user → {player, pub, box}

  async function refreshList() {
    const list = await api.request("/api/broadcasts");
    const ul = $("bc-list");
    ul.replaceChildren(
      ...list.map((b) => {
        const li = el("li", "", `${b.title} · ${b.presenter} · ${b.viewers} 人 viewers `);
        li.append(button("加入 Join", () => join(b.id)));
        return li;
      }),
    );
    if (!list.length) ul.append(el("li", "", "暂无 None"));
  }

  async function join(id) {
    if (current && current.id === id) return;
    const res = await api.request(`/api/broadcasts/${id}/join`, { method: "POST" });
    current = res.broadcast;
    $("live").hidden = false;
    document.body.dataset.page = "broadcast-live";
    document.body.dataset.broadcast = current.id;
    $("bc-heading").textContent = current.title;
    const isPresenter = current.presenter === me.user;
    $("share-screen").hidden = !isPresenter;
    $("bc-end").hidden = !isPresenter;
    $("hands").hidden = !isPresenter;
    $("attendance-csv").hidden = !isPresenter;
    $("raise-hand").hidden = isPresenter;
    $("bc-leave").hidden = isPresenter;
    $("attendance-csv").href = "#";
    if (isPresenter) await publish($("main-video"));
    update(current);
  }

  async function publish(videoEl) {
    camera = await openLocalMedia();
    if (videoEl) {
      videoEl.srcObject = camera;
      videoEl.muted = true;
    }
    publisher = new Publisher(api.url(`/api/broadcasts/${current.id}/publish`), camera, { headers });
    await publisher.start();
  }

  async function unpublish() {
    if (publisher) await publisher.stop();
    if (camera) camera.getTracks().forEach((t) => t.stop());
    publisher = camera = null;
  }

  async function replaceVideo(track) {
    const sender = publisher && publisher.pc && publisher.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    if (sender) await sender.replaceTrack(track);
  }

  function update(b) {
    if (!current || b.id !== current.id) return;
    current = b;
    $("bc-status").textContent = `${b.viewers} 人观看 viewers · ${b.ended ? "已结束 ended" : "直播中 live"}`;
    if (b.ended) return leaveUi();
    const pubs = b.publications || {};
    if (b.presenter !== me.user && pubs[b.presenter] && pubs[b.presenter] !== mainPub) {
      mainPub = pubs[b.presenter];
      if (mainPlayer) mainPlayer.stop();
      mainPlayer = new WhepPlayer(api.url(`/api/broadcasts/${b.id}/whep`), { headers, audio: true });
      mainPlayer.start($("main-video"));
    }
    $("hand-list").replaceChildren(
      ...b.hands.map((u) => {
        const li = el("li", "", `${u} `);
        li.append(button("上台 On stage", () => stage(u, true)));
        return li;
      }),
    );
    for (const [user, s] of stagePlayers) {
      if (!b.stage.includes(user) || pubs[user] !== s.pub) {
        s.player.stop();
        s.box.remove();
        stagePlayers.delete(user);
      }
    }
    for (const user of b.stage) {
      if (user === me.user || !pubs[user] || stagePlayers.has(user)) continue;
      const box = el("div", "stage-seat");
      const video = el("video");
      video.autoplay = video.playsInline = true;
      box.append(el("div", "", user), video);
      if (b.presenter === me.user) box.append(button("下台 Off stage", () => stage(user, false)));
      $("stage").append(box);
      const player = new WhepPlayer(api.url(`/api/broadcasts/${b.id}/seats/${user}/whep`), { headers, audio: true });
      player.start(video);
      stagePlayers.set(user, { player, pub: pubs[user], box });
    }
    const onStage = b.stage.includes(me.user);
    if (onStage && !publisher) publish(null).catch((err) => showError(describeError(err)));
    if (!onStage && publisher && b.presenter !== me.user) unpublish();
    $("raise-hand").textContent = b.hands.includes(me.user) ? "放下 Lower hand" : "举手 Raise hand";
  }

  async function stage(user, on) {
    update(await api.request(`/api/broadcasts/${current.id}/stage`, { method: "POST", json: { user, on } }));
  }

  function leaveUi() {
    if (mainPlayer) mainPlayer.stop();
    for (const s of stagePlayers.values()) s.player.stop();
    stagePlayers.clear();
    unpublish();
    mainPlayer = mainPub = current = null;
    $("live").hidden = true;
    document.body.dataset.page = "broadcast";
    refreshList().catch(() => {});
  }

  $("raise-hand").addEventListener("click", async () => {
    const up = !current.hands.includes(me.user);
    update(await api.request(`/api/broadcasts/${current.id}/hand`, { method: "POST", json: { up } }));
  });
  $("share-screen").addEventListener("click", async () => {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    await replaceVideo(screen.getVideoTracks()[0]);
    $("share-camera").hidden = false;
  });
  $("share-camera").addEventListener("click", async () => {
    await replaceVideo(camera.getVideoTracks()[0]);
    $("share-camera").hidden = true;
  });
  $("attendance-csv").addEventListener("click", async (ev) => {
    ev.preventDefault();
    const resp = await api.request(`/api/broadcasts/${current.id}/attendance.csv`, { raw: true });
    saveBlob(await resp.blob(), `attendance-${current.id}.csv`);
  });
  $("bc-end").addEventListener("click", async () => {
    await api.request(`/api/broadcasts/${current.id}/end`, { method: "POST" });
    leaveUi();
  });
  $("bc-leave").addEventListener("click", async () => {
    await api.request(`/api/broadcasts/${current.id}/leave`, { method: "POST" });
    leaveUi();
  });

  socket.on("broadcast.updated", (b) => update(b));
  socket.on("broadcast.ended", (b) => update({ ...b, ended: true }));
  socket.on("broadcast.started", (b) => {
    refreshList().catch(() => {});
    if (me.role === "terminal" && !current) join(b.id).catch((err) => showError(describeError(err)));
  });

  if (presenterRole) {
    $("start-form").hidden = false;
    centreNames(api).then(({ centres }) => {
      $("bc-subtree").replaceChildren(...centres.map((c) => new Option(`${c.name} ${c.code}`, c.code)));
    });
    $("start-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const body = { title: $("bc-title").value, subtree: $("bc-subtree").value };
        if ($("bc-level").value) body.level = $("bc-level").value;
        const b = await api.request("/api/broadcasts", { method: "POST", json: body });
        await join(b.id);
      } catch (err) {
        showError(describeError(err));
      }
    });
  }
  refreshList()
    .then(async () => {
      const auto = new URLSearchParams(location.search).get("join");
      if (auto) await join(auto);
    })
    .catch((err) => showError(describeError(err)));
}
