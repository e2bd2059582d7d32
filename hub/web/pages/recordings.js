// Recordings page: pick a camera and a range, see coverage on a timeline, play from a moment
// (WHEP ?start=), pause / speed, export a clip or an evidence zip, mark an event.
// Tests reach the state through window.zzhubRecordings.

import { describeError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, fileName, saveBlob, showError } from "../lib/dom.js";
import { WhepPlayer } from "../lib/whep.js";

const HOUR = 3600 * 1000;

// <input type=datetime-local> works in local time; the API takes ISO 8601 with an offset.
function toLocalInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
const fromLocalInput = (value) => new Date(value).getTime();
const clock = (ms) => new Date(ms).toLocaleString("zh-CN", { hour12: false });

class RecordingsPage {
  constructor() {
    this.api = null;
    this.me = null;
    this.range = null; // {from_ms, to_ms}
    this.player = null;
    this.session = null;
    this.poller = null;
  }

  // Signed in (boot.js): the cameras to choose from, the last hour on the timeline.
  async start({ api, me }) {
    this.api = api;
    this.me = me;
    const cameras = await api.cameras();
    const select = $("rec-camera");
    cameras.sort((a, b) => (a.record === "off") - (b.record === "off"));
    for (const cam of cameras) {
      select.append(new Option(`${cam.name} (${cam.id})${cam.record === "off" ? "" : " ●"}`, cam.id));
    }
    const now = Date.now();
    $("rec-from").value = toLocalInput(now - HOUR);
    $("rec-to").value = toLocalInput(now + 60 * 1000);
    $("rec-query").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.load().catch((err) => showError(describeError(err)));
    });
    $("rec-timeline").addEventListener("click", (ev) => this.onTimelineClick(ev));
    $("rec-play").addEventListener("click", () => this.play(fromLocalInput($("rec-start").value)));
    $("rec-pause").addEventListener("click", () => this.togglePause());
    $("rec-speed").addEventListener("change", () =>
      this.control({ action: "speed", speed: Number($("rec-speed").value) }));
    $("rec-stop").addEventListener("click", () => this.stop());
    $("rec-clip").addEventListener("click", () => this.download("clip.mp4"));
    $("rec-evidence").addEventListener("click", () => this.download("export.zip"));
    $("rec-mark").addEventListener("click", () => this.mark());
    window.addEventListener("pagehide", () => this.player?.stop({ keepalive: true }));
    await this.load();
    document.body.dataset.page = "recordings";
  }

  status(text) {
    $("rec-status").textContent = text;
  }

  get camera() {
    return $("rec-camera").value;
  }

  async load() {
    showError("");
    const from = fromLocalInput($("rec-from").value);
    const to = fromLocalInput($("rec-to").value);
    const q = `camera=${encodeURIComponent(this.camera)}&from=${from}&to=${to}`;
    const body = await this.api.request(`/api/recordings?${q}`);
    this.range = body;
    this.render(body);
    if (!$("rec-start").value && body.coverage.length) {
      $("rec-start").value = toLocalInput(body.coverage[0].from_ms);
    }
    return body;
  }

  render(body) {
    const line = $("rec-timeline");
    line.querySelectorAll(".rec-span").forEach((n) => n.remove());
    const span = body.to_ms - body.from_ms;
    for (const c of body.coverage) {
      const bar = el("div", { className: "rec-span", title: `${clock(c.from_ms)} – ${clock(c.to_ms)}` });
      bar.style.left = `${((c.from_ms - body.from_ms) / span) * 100}%`;
      bar.style.width = `${Math.max(0.3, ((c.to_ms - c.from_ms) / span) * 100)}%`;
      bar.dataset.from = c.from_ms;
      line.append(bar);
    }
    $("rec-scale-from").textContent = clock(body.from_ms);
    $("rec-scale-to").textContent = clock(body.to_ms);
    const seconds = body.coverage.reduce((s, c) => s + (c.to_ms - c.from_ms), 0) / 1000;
    $("rec-summary").textContent =
      `${body.segments.length} 段 segments · ${Math.round(seconds)} s 已录 recorded · ${body.gaps.length} 处空缺 gaps`;
    $("rec-mode").textContent = body.mode ? `录制 ${body.mode}${body.recording ? " ●" : ""}` : "未录制 not recording";
  }

  onTimelineClick(ev) {
    if (!this.range) return;
    const rect = $("rec-timeline").getBoundingClientRect();
    const at = this.range.from_ms + ((ev.clientX - rect.left) / rect.width) * (this.range.to_ms - this.range.from_ms);
    $("rec-start").value = toLocalInput(at);
    this.play(Math.round(at));
  }

  async play(atMs) {
    if (!Number.isFinite(atMs)) return showError("请选择播放时刻 Choose a time to play from");
    showError("");
    await this.stop();
    const url = `${this.api.whepUrl(this.camera)}?start=${new Date(atMs).toISOString()}`;
    const player = new WhepPlayer(url, { headers: () => this.api.authHeaders(), iceServers: this.me.ice_servers || [] });
    this.player = player;
    this.startedAt = performance.now();
    player.addEventListener("statechange", (ev) => {
      if (ev.detail.state === "error") showError(describeError(ev.detail.error));
      this.session = player.location ? player.location.split("/").pop() : null;
    });
    await player.start($("rec-video"));
    this.session = player.location ? player.location.split("/").pop() : null;
    for (const id of ["rec-pause", "rec-speed", "rec-stop"]) $(id).disabled = false;
    $("rec-pause").textContent = "暂停 Pause";
    $("rec-speed").value = "1";
    this.paused = false;
    clearInterval(this.poller);
    this.poller = setInterval(() => this.poll().catch(() => {}), 1000);
  }

  async poll() {
    if (!this.session) return;
    const state = await this.api.request(`/api/playback/${encodeURIComponent(this.session)}`);
    $("rec-position").textContent = `${clock(state.position_ms)}${state.paused ? " ⏸" : ""} ${state.speed}×${state.at_end ? " (末尾 end)" : ""}`;
    if (this.range) {
      const cursor = $("rec-cursor");
      const pos = (state.position_ms - this.range.from_ms) / (this.range.to_ms - this.range.from_ms);
      cursor.hidden = pos < 0 || pos > 1;
      cursor.style.left = `${pos * 100}%`;
    }
  }

  async control(body) {
    if (!this.session) return null;
    try {
      return await this.api.request(`/api/playback/${encodeURIComponent(this.session)}/control`, { method: "POST", json: body });
    } catch (err) {
      showError(describeError(err));
      return null;
    }
  }

  async togglePause() {
    this.paused = !this.paused;
    await this.control({ action: this.paused ? "pause" : "resume" });
    $("rec-pause").textContent = this.paused ? "继续 Resume" : "暂停 Pause";
  }

  async stop() {
    clearInterval(this.poller);
    const player = this.player;
    this.player = null;
    this.session = null;
    if (player) await player.stop();
    for (const id of ["rec-pause", "rec-speed", "rec-stop"]) $(id).disabled = true;
  }

  async download(kind) {
    showError("");
    const from = fromLocalInput($("rec-from").value);
    const to = Math.min(fromLocalInput($("rec-to").value), Date.now());
    const path = `/api/cameras/${encodeURIComponent(this.camera)}/${kind}?from=${from}&to=${to}`;
    this.status("导出中 Exporting…");
    try {
      const resp = await this.api.request(path, { raw: true });
      const blob = await resp.blob();
      const name = saveBlob(blob, fileName(resp, kind));
      this.status(`已导出 Exported ${name} (${Math.round(blob.size / 1024)} KB)`);
    } catch (err) {
      this.status("");
      showError(describeError(err));
    }
  }

  async mark() {
    try {
      const body = await this.api.request(`/api/cameras/${encodeURIComponent(this.camera)}/mark`, { method: "POST", json: { note: "console" } });
      this.status(`已标记 Marked at ${clock(Date.parse(body.at))}`);
    } catch (err) {
      showError(describeError(err));
    }
  }
}

const page = new RecordingsPage();
window.zzhubRecordings = page;
boot({ page: "recordings", start: (ctx) => page.start(ctx) });
