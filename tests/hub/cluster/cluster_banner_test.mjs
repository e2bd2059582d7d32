// Unit test of the console's cluster banner logic (hub/web/lib/cluster.js) and of the socket's
// node failover (hub/web/lib/ws.js), in node without a browser. Run by test_cluster_faults.py.
import assert from "node:assert/strict";
import { ClusterWatch } from "../../../hub/web/lib/cluster.js";

const kinds = (w) => w.banners().map((b) => b.kind);

// a single hub, or a healthy cluster: nothing to show
const w = new ClusterWatch();
w.fromHello(null);
assert.deepEqual(kinds(w), []);
w.fromHello({ state: "up", node: "node-b", nodes: [{ id: "node-a" }, { id: "node-b" }] });
assert.deepEqual(kinds(w), []);

// Redis away: cross-node features unavailable; back: cleared by the resync
assert.equal(w.apply("cluster.state", { node: "node-b", state: "degraded" }), true);
assert.deepEqual(kinds(w), ["degraded"]);
assert.match(w.banners()[0].text, /跨节点功能暂不可用/);
w.apply("cluster.state", { node: "node-b", state: "up" });
assert.deepEqual(kinds(w), []);

// a node down: named; up again: cleared
w.apply("cluster.node", { node: "node-a", state: "down", url: "http://a" });
assert.deepEqual(kinds(w), ["node-down"]);
assert.match(w.banners()[0].text, /节点 node-a 离线/);
w.apply("cluster.node", { node: "node-a", state: "up", url: "http://a" });
assert.deepEqual(kinds(w), []);

// down, then a resync (this node re-joined Redis): cleared until told again
w.apply("cluster.node", { node: "node-c", state: "down" });
w.apply("cluster.state", { state: "degraded" });
assert.deepEqual(kinds(w), ["degraded", "node-down"]);
w.apply("cluster.resync", { node: "node-b" });
assert.deepEqual(kinds(w), []);

// a fresh hello lists node-c as live again: no stale banner
w.apply("cluster.node", { node: "node-c", state: "down" });
w.fromHello({ state: "up", node: "node-b", nodes: [{ id: "node-b" }, { id: "node-c" }] });
assert.deepEqual(kinds(w), []);
assert.equal(w.apply("presence", {}), false);

// a twin numbered while Redis was away: shown once per id, kept across hellos and resyncs
const t = new ClusterWatch();
t.fromHello({ state: "up", node: "node-b", nodes: [{ id: "node-a" }, { id: "node-b" }] });
const twin = { kind: "petition", item: "410922100201-20261123-0001", node: "node-a", here: "node-b" };
assert.equal(t.apply("cluster.conflict", twin), true);
assert.equal(t.apply("cluster.conflict", twin), true);
assert.deepEqual(kinds(t), ["conflict"]);
assert.match(t.banners()[0].text, /案件 410922100201-20261123-0001 同时保存在节点 node-b 与 node-a/);
t.apply("cluster.resync", { node: "node-b" });
t.fromHello({ state: "up", node: "node-b", nodes: [{ id: "node-a" }, { id: "node-b" }] });
assert.deepEqual(kinds(t), ["conflict"]);
assert.equal(t.apply("cluster.conflict", {}), false);

// this node unreachable: said plainly, with a switch link that says to sign in again
w.setUnreachable({ id: "node-a", url: "http://127.0.0.1:9/static/wall.html" });
const [b] = w.banners();
assert.equal(b.kind, "unreachable");
assert.match(b.text, /需重新登录/);
assert.match(b.text, /sign in again/);
assert.equal(b.link.href, "http://127.0.0.1:9/static/wall.html");
w.fromHello({ state: "up", node: "node-b", nodes: [] }); // own node back
assert.deepEqual(kinds(w), []);
w.setUnreachable(null);
assert.equal(w.banners()[0].link, undefined);

// the socket: learns the other nodes from hello and cluster.node; after repeated failures it
// probes them and offers the first that answers
globalThis.location = new URL("http://127.0.0.1:8080/static/wall.html?x=1");
const probed = [];
globalThis.fetch = async (url) => {
  probed.push(url);
  if (url.startsWith("http://node-a")) throw new TypeError("unreachable");
  return {};
};
const { HubSocket } = await import("../../../hub/web/lib/ws.js");
const s = new HubSocket("tok");
s._onMessage(
  JSON.stringify({
    type: "hello",
    data: {
      cluster: {
        state: "up",
        node: "node-b",
        nodes: [
          { id: "node-a", url: "http://node-a:8080" },
          { id: "node-b", url: "http://node-b:8080" },
        ],
      },
    },
  }),
);
assert.deepEqual([...s.nodes.keys()], ["node-a"]);
s._onMessage(JSON.stringify({ type: "event", topic: "cluster.node", data: { node: "node-c", state: "up", url: "http://node-c:8080" } }));
assert.deepEqual([...s.nodes.keys()], ["node-a", "node-c"]);
let offered = null;
s.addEventListener("failover", (ev) => (offered = ev.detail));
s.state = "closed";
s.attempts = 1;
await s._maybeFailover();
assert.equal(offered, null); // too early: the own node gets its retries first
assert.deepEqual(probed, []);
s.attempts = 3;
await s._maybeFailover();
assert.deepEqual(probed, ["http://node-a:8080/api/health", "http://node-c:8080/api/health"]);
assert.deepEqual(offered, { id: "node-c", url: "http://node-c:8080/static/wall.html?x=1" });
s._onMessage(JSON.stringify({ type: "event", topic: "cluster.node", data: { node: "node-c", state: "down" } }));
assert.deepEqual([...s.nodes.keys()], ["node-a"]);
console.log("ok");
