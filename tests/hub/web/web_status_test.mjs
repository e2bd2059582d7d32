// Unit test of the console's rule for which HTTP refusals end a WebRTC session for good
// (hub/web/lib/rtc-session.js), shared by the WHEP player and the WHIP publisher, in node
// without a browser. Run by test_web_status.py.
import assert from "node:assert/strict";
import { ApiError } from "../../../hub/web/lib/api.js";
import { FINAL_STATUSES, GONE_STATUSES, isFinal } from "../../../hub/web/lib/rtc-session.js";
import { WhepPlayer } from "../../../hub/web/lib/whep.js";
import { Publisher } from "../../../hub/web/lib/whip.js";

// the session, room or seat is gone: final, whoever asked
for (const status of [404, 405, 409, 410]) {
  assert.ok(GONE_STATUSES.has(status), `${status} means gone`);
  assert.ok(isFinal(new ApiError(status, "gone", "")), `${status} is final`);
}
// refusals a retry cannot fix
for (const status of [400, 401, 403, 413, 415]) assert.ok(isFinal(new ApiError(status, "no", "")));
// worth a retry: the network (0), a busy or restarting hub, a proxy in between
for (const status of [0, 408, 429, 500, 502, 503, 504]) {
  assert.ok(!FINAL_STATUSES.has(status), `${status} is not final`);
  assert.ok(!isFinal(new ApiError(status, "later", "")), `${status} is retried`);
}
// not an HTTP refusal at all (ICE failed, connection lost): retried
assert.ok(!isFinal(new Error("连接失败 Connection failed")));

// The player and the publisher apply that one rule: a refused POST of the offer ends in
// "error" without a retry when final, and in "reconnecting" otherwise.
async function outcome(make, status) {
  const session = make();
  let posts = 0;
  session._connect = async () => {
    posts += 1;
    throw new ApiError(status, "refused", `status ${status}`);
  };
  const states = [];
  session.addEventListener("statechange", (ev) => states.push(ev.detail.state));
  await session.start();
  const state = session.state;
  const retrying = session._retryTimer !== null && state === "reconnecting";
  const seen = [...states];
  await session.stop(); // clears a scheduled retry
  return { state, posts, retrying, states: seen };
}

const makers = {
  WhepPlayer: () => new WhepPlayer("http://127.0.0.1:9/api/cameras/c/whep"),
  Publisher: () => new Publisher("http://127.0.0.1:9/api/rooms/r/publish", { getTracks: () => [] }),
};
for (const [name, make] of Object.entries(makers)) {
  for (const status of [404, 405, 409, 410, 403]) {
    const got = await outcome(make, status);
    assert.equal(got.state, "error", `${name}: ${status} ends in error (${got.states})`);
    assert.equal(got.posts, 1, `${name}: ${status} is not retried`);
    assert.deepEqual(got.states, ["connecting", "error"], name);
  }
  for (const status of [0, 500, 503]) {
    const got = await outcome(make, status);
    assert.equal(got.state, "reconnecting", `${name}: ${status} is retried (${got.states})`);
    assert.ok(got.retrying, `${name}: ${status} schedules a retry`);
  }
}
console.log("ok");
