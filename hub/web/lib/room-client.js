// RoomClient: one person in one room. Joins, publishes camera+mic (WHIP), subscribes (WHEP) to
// every other seat's publication and every camera the host shared, and follows the room's WS
// events (`room.updated`, `room.speaker`).
//
// Events: "room" (the room object changed), "tile-added"/"tile-removed" ({tile}), "speaker"
// ({user}), "local" ({stream}) once the camera is open, "publish" ({state, error}),
// "closed" ({reason: left|ended|removed|error, error}).
// A tile: {key, kind: "seat"|"camera", id, publication, video, player}.

import { ApiError } from "./api.js";
import { openLocalMedia, Publisher } from "./whip.js";
import { WhepPlayer } from "./whep.js";

const esc = encodeURIComponent;

export class RoomClient extends EventTarget {
  // api: Api; socket: HubSocket; me: {user}. subscribe(seat, room) → bool picks the seats to
  // receive (default: all others); publish: false joins without sending (a watcher).
  constructor(api, socket, roomId, me, { subscribe = null, publish = true, iceServers = [] } = {}) {
    super();
    this.api = api;
    this.socket = socket;
    this.roomId = roomId;
    this.me = me;
    this.wants = subscribe || (() => true);
    this.publishing = publish;
    this.iceServers = iceServers;
    this.room = null;
    this.seat = null;
    this.tiles = new Map(); // key → tile
    this.localStream = null;
    this.publisher = null;
    this.mediaError = null;
    this.speaker = null;
    this.closed = false;
    this.joined = false;
    this._off = [];
  }

  get isHost() {
    return !!this.room && this.room.host === this.me.user;
  }

  path(suffix = "") {
    return `/api/rooms/${esc(this.roomId)}${suffix}`;
  }

  async start() {
    this._off.push(
      this.socket.on("room.updated", (room) => room.id === this.roomId && this.apply(room, false)),
      this.socket.on("room.speaker", (d) => d.room === this.roomId && this._setSpeaker(d.user)),
    );
    const onOpen = () => this.refresh();
    this.socket.addEventListener("open", onOpen);
    this._off.push(() => this.socket.removeEventListener("open", onOpen));
    try {
      await this._join();
    } catch (err) {
      await this._close("error", err);
      throw err;
    }
    if (this.publishing) await this._startPublishing();
  }

  async _join() {
    const body = await this.api.request(this.path("/join"), { method: "POST" });
    this.joined = true;
    this.seat = body.seat;
    this.apply(body.room);
  }

  async _startPublishing() {
    try {
      this.localStream = await openLocalMedia();
    } catch (err) {
      this.mediaError = err;
      this.dispatchEvent(new CustomEvent("publish", { detail: { state: "error", error: err } }));
      return; // still in the room: others are seen and heard, we are not
    }
    if (this.closed) {
      this._stopLocal();
      return;
    }
    this.dispatchEvent(new CustomEvent("local", { detail: { stream: this.localStream } }));
    this.publisher = new Publisher(this.api.url(this.path("/publish")), this.localStream, {
      headers: () => this.api.authHeaders(),
      iceServers: this.iceServers,
      beforeRetry: () => this._ensureSeat(),
    });
    this.publisher.addEventListener("statechange", (ev) => {
      this.dispatchEvent(new CustomEvent("publish", { detail: ev.detail }));
      // our media was cut: removed by the host, the room ended, or the network
      if (ev.detail.state === "reconnecting" || ev.detail.state === "error") this.refresh();
    });
    await this.publisher.start();
  }

  // Back in the seat when the hub let it go (a dropped connection), within the 20 s grace.
  async _ensureSeat() {
    const mine = this.room && this.room.seats.find((s) => s.user === this.me.user);
    if (mine && mine.present) return;
    await this._join();
  }

  async refresh() {
    if (this.closed) return;
    try {
      this.apply(await this.api.request(this.path()));
    } catch (err) {
      // gone for us: ended rooms still answer, so a seated person was removed (403 "the host
      // removed you"; no room event reaches a removed person: it left the room's audience)
      if (!(err instanceof ApiError)) return;
      if (err.status === 403) this._close("removed", err);
      else if (err.status === 404) this._close(this.joined ? "removed" : "ended", err);
    }
  }

  // fresh: the room from an HTTP answer given after our join. A WS event may be older than
  // that answer (two channels): if it says we have no seat, ask the hub before believing it.
  apply(room, fresh = true) {
    if (this.closed) return;
    if (room.unavailable) {
      // its hub node died (hub/cluster/service.py sweeps it): the media went with it
      this.room = { ...(this.room || {}), ...room, ended: true };
      this.dispatchEvent(new CustomEvent("room", { detail: { room: this.room } }));
      this._close("unavailable");
      return;
    }
    const mine = room.seats.find((s) => s.user === this.me.user);
    if (!fresh && this.joined && !room.ended && (!mine || !mine.present)) {
      this.refresh();
      return;
    }
    this.room = room;
    this._setSpeaker(room.active_speaker);
    this.dispatchEvent(new CustomEvent("room", { detail: { room } }));
    if (room.ended) {
      this._close("ended");
      return;
    }
    if (this.joined && !mine) {
      this._close("removed");
      return;
    }
    if (this.joined && mine && !mine.present && this.publisher && this.publisher.state === "live") {
      // the hub ended our media (connection lost): publish again, taking the seat back first
      this.publisher.restart(new Error("中心结束了发布 The hub ended our publication"));
    }
    this._syncTiles(room);
  }

  _syncTiles(room) {
    const wanted = new Map();
    for (const seat of room.seats) {
      if (seat.user === this.me.user || !seat.present || !seat.publication) continue;
      if (!this.wants(seat, room)) continue;
      wanted.set(`seat:${seat.user}`, { kind: "seat", id: seat.user, publication: seat.publication });
    }
    for (const cam of room.cameras) {
      wanted.set(`camera:${cam}`, { kind: "camera", id: cam, publication: cam });
    }
    for (const [key, tile] of this.tiles) {
      const want = wanted.get(key);
      if (!want || want.publication !== tile.publication) this._removeTile(key);
    }
    for (const [key, want] of wanted) {
      if (!this.tiles.has(key)) this._addTile(key, want);
    }
  }

  _addTile(key, { kind, id, publication }) {
    const video = document.createElement("video");
    Object.assign(video, { autoplay: true, playsInline: true, muted: kind === "camera" });
    const url =
      kind === "seat"
        ? this.api.url(this.path(`/seats/${esc(id)}/whep`))
        : this.api.url(this.path(`/cameras/${esc(id)}/whep`));
    const player = new WhepPlayer(url, {
      headers: () => this.api.authHeaders(),
      iceServers: this.iceServers,
      audio: kind === "seat",
    });
    const tile = { key, kind, id, publication, video, player };
    this.tiles.set(key, tile);
    this.dispatchEvent(new CustomEvent("tile-added", { detail: { tile } }));
    player.start(video);
  }

  _removeTile(key) {
    const tile = this.tiles.get(key);
    if (!tile) return;
    this.tiles.delete(key);
    tile.player.stop();
    this.dispatchEvent(new CustomEvent("tile-removed", { detail: { tile } }));
  }

  _setSpeaker(user) {
    user = user || null;
    if (this.speaker === user) return;
    this.speaker = user;
    this.dispatchEvent(new CustomEvent("speaker", { detail: { user } }));
  }

  // -- host controls ----------------------------------------------------------------------
  async control(action, user = undefined) {
    const room = await this.api.request(this.path("/control"), {
      method: "POST",
      json: user ? { action, user } : { action },
    });
    this.apply(room);
    return room;
  }

  async addCamera(camera) {
    const room = await this.api.request(this.path("/cameras"), { method: "POST", json: { camera } });
    this.apply(room);
    return room;
  }

  // -- stats for the page and the tests ------------------------------------------------------
  async stats() {
    const out = { tiles: {}, local: null };
    for (const [key, tile] of this.tiles) out.tiles[key] = await tile.player.getStats();
    if (this.publisher) out.local = await this.publisher.getStats();
    return out;
  }

  // -- leaving ------------------------------------------------------------------------------
  async leave({ keepalive = false } = {}) {
    if (this.closed) return;
    const wasJoined = this.joined;
    await this._close("left", null, { keepalive });
    if (wasJoined) {
      try {
        await fetch(this.api.url(this.path("/leave")), {
          method: "POST",
          headers: this.api.authHeaders(),
          keepalive,
        });
      } catch {
        // the hub frees the seat when our media goes away anyway
      }
    }
  }

  async _close(reason, error = null, { keepalive = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    this.joined = false;
    for (const off of this._off) off();
    this._off = [];
    const stops = [...this.tiles.keys()].map((key) => {
      const tile = this.tiles.get(key);
      this.tiles.delete(key);
      this.dispatchEvent(new CustomEvent("tile-removed", { detail: { tile } }));
      return tile.player.stop({ keepalive });
    });
    if (this.publisher) stops.push(this.publisher.stop({ keepalive }));
    this._stopLocal();
    await Promise.allSettled(stops);
    this.dispatchEvent(new CustomEvent("closed", { detail: { reason, error } }));
  }

  _stopLocal() {
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this.localStream = null;
  }
}
