// Unit test of how every console page starts (hub/web/lib/boot.js, with lib/sign-in.js), in
// node without a browser: a few fake elements, sessionStorage, location, fetch and WebSocket
// stand in for the page. Run by test_web_status.py.
import assert from "node:assert/strict";

class FakeElement {
  constructor(id = "") {
    this.id = id;
    this.hidden = false;
    this.textContent = "";
    this.value = "";
    this.disabled = false;
    this.dataset = {};
    this.listeners = new Map();
    this.classList = { add() {} };
  }
  addEventListener(type, fn) {
    this.listeners.set(type, fn);
  }
  fire(type) {
    return this.listeners.get(type)({ preventDefault() {} });
  }
  setAttribute() {}
  replaceChildren() {}
  append() {}
  prepend() {}
}

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.closed = false;
    FakeSocket.made.push(this);
  }
  send() {}
  close() {
    this.closed = true;
  }
  hello() {
    this.onmessage({ data: JSON.stringify({ type: "hello", data: {} }) });
  }
}
FakeSocket.made = [];

const ME = { user: "county-d", display_name: "县调度", role: "dispatcher", centre: "410000", centre_name: "某县" };

// A fresh page: `ids` are the elements it has, `routes` answer fetch by "METHOD path".
function page({ ids = [], path = "/static/dispatch.html", search = "", token = "", routes = {} }) {
  const elements = new Map(ids.map((id) => [id, new FakeElement(id)]));
  const signedIn = new FakeElement("console");
  signedIn.hidden = true;
  const store = new Map(token ? [["zzhub.token", token]] : []);
  const calls = [];
  const moved = [];
  FakeSocket.made = [];
  Object.assign(globalThis, {
    document: {
      body: Object.assign(new FakeElement("body"), { dataset: { page: "loading" } }),
      getElementById: (id) => elements.get(id) || null,
      querySelectorAll: (sel) => (sel === "[data-signed-in]" && elements.has("login-form") ? [signedIn] : []),
      createElement: () => new FakeElement(),
    },
    window: { addEventListener() {} },
    sessionStorage: {
      getItem: (k) => (store.has(k) ? store.get(k) : null),
      setItem: (k, v) => store.set(k, String(v)),
      removeItem: (k) => store.delete(k),
    },
    location: {
      pathname: path,
      search,
      hash: "",
      get href() {
        return `http://hub.test${path}${search}`;
      },
      set href(to) {
        moved.push(to);
      },
      replace: (to) => moved.push(`replace:${to}`),
    },
    WebSocket: FakeSocket,
    fetch: async (url, init) => {
      const key = `${init.method} ${new URL(url).pathname}`;
      calls.push({ key, auth: init.headers.Authorization || "" });
      const answer = routes[key];
      if (!answer) return new Response("{}", { status: 404 });
      const [status, body] = typeof answer === "function" ? answer(init) : answer;
      return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    },
  });
  return { el: (id) => elements.get(id), signedIn, store, calls, moved };
}

const { boot, returnTo } = await import("../../../hub/web/lib/boot.js");
const { ROLES, personName } = await import("../../../hub/web/lib/format.js");
const HEADER = ["me", "ws-state", "page-error"];
const refused = (message) => [401, { error: { code: "unauthorized", message } }];

// no token: sent to the console's sign-in, and back here afterwards
{
  const p = page({ ids: HEADER, search: "?x=1" });
  let started = false;
  await boot({ page: "dispatch", start: () => (started = true) });
  assert.deepEqual(p.moved, ["/?next=%2Fstatic%2Fdispatch.html%3Fx%3D1"]);
  assert.equal(started, false);
  assert.equal(p.calls.length, 0, "nothing asked of the hub without a token");
}

// a kept token: /api/me, the header, the socket (with the token), then start(ctx)
{
  const p = page({ ids: HEADER, token: "tok-1", routes: { "GET /api/me": [200, ME] } });
  let ctx = null;
  await boot({ page: "dispatch", roles: ["dispatcher", "admin"], start: (c) => (ctx = c) });
  assert.ok(ctx, "start was called");
  assert.equal(ctx.me.user, "county-d");
  assert.equal(ctx.api.token, "tok-1");
  assert.equal(p.calls[0].auth, "Bearer tok-1");
  assert.equal(p.el("me").textContent, `县调度 (county-d) · ${ROLES.dispatcher} · 某县`);
  assert.equal(document.body.dataset.user, "county-d");
  assert.equal(FakeSocket.made.length, 1);
  assert.equal(new URL(FakeSocket.made[0].url).searchParams.get("token"), "tok-1");
  assert.equal(p.el("ws-state").dataset.state, "connecting");
  FakeSocket.made[0].hello();
  assert.equal(p.el("ws-state").dataset.state, "open");
  assert.equal(ctx.socket.state, "open");
  assert.equal(p.el("page-error").textContent, "");
  assert.deepEqual(p.moved, []);
}

// a role the page is not for: told so, no socket, no start
{
  const p = page({ ids: HEADER, token: "tok-2", routes: { "GET /api/me": [200, { ...ME, role: "terminal" }] } });
  let started = false;
  await boot({ page: "dispatch", roles: ["dispatcher", "admin"], start: () => (started = true) });
  assert.equal(started, false);
  assert.match(p.el("page-error").textContent, /This page is for: dispatcher, admin \(你是 you are terminal\)/);
  assert.equal(p.el("page-error").hidden, false);
  assert.equal(document.body.dataset.page, "dispatch-refused");
  assert.equal(FakeSocket.made.length, 0);
}

// a refused token: dropped and sent to sign in, without an error on the way out
{
  const p = page({ ids: HEADER, token: "old", routes: { "GET /api/me": refused("token expired") } });
  await boot({ page: "terminal", start: () => assert.fail("not started") });
  assert.equal(p.store.get("zzhub.token"), undefined);
  assert.deepEqual(p.moved, ["/?next=%2Fstatic%2Fdispatch.html"]);
  assert.equal(p.el("page-error").textContent, "");
}

// the hub away: the reason, and the page stops there
{
  const p = page({ ids: HEADER, token: "tok", routes: { "GET /api/me": [503, { error: { code: "busy", message: "starting" } }] } });
  await boot({ page: "room", start: () => assert.fail("not started") });
  assert.match(p.el("page-error").textContent, /^无法加载 Cannot load: 暂不可用 Unavailable: starting$/);
  assert.equal(document.body.dataset.page, "room-refused");
  assert.deepEqual(p.moved, []);
}

// start failing: its reason in the banner
{
  const p = page({ ids: HEADER, token: "tok", routes: { "GET /api/me": [200, ME] } });
  await boot({ page: "case", start: async () => { throw new Error("no such case"); } });
  assert.equal(p.el("page-error").textContent, "no such case");
}

// a credential of the page's own (the kiosk's petitioner link): no socket, a refusal is shown
{
  const p = page({ ids: HEADER, routes: { "GET /api/me": refused("link expired") } });
  await boot({ page: "kiosk", token: "link-tok", socket: false, start: () => assert.fail("not started") });
  assert.deepEqual(p.moved, [], "a petitioner is not sent to the operators' sign-in");
  assert.match(p.el("page-error").textContent, /link expired/);
  const q = page({ ids: HEADER, routes: { "GET /api/me": [200, { ...ME, role: "petitioner" }] } });
  let ctx = null;
  await boot({ page: "kiosk", token: "link-tok", socket: false, start: (c) => (ctx = c) });
  assert.equal(ctx.socket, null);
  assert.equal(FakeSocket.made.length, 0);
  assert.equal(q.store.get("zzhub.token"), "link-tok");
}

// ?next= only ever names one of the console's own pages
assert.equal(returnTo("?next=%2Fstatic%2Fdispatch.html%3Fauto%3D0"), "/static/dispatch.html?auto=0");
assert.equal(returnTo("?next=%2Fstatic%2Fwall.html"), "/static/wall.html");
for (const bad of ["", "?next=https%3A%2F%2Fevil.example%2F", "?next=%2F%2Fevil.example", "?next=%2Fstatic%2Fx.html"]) {
  assert.equal(returnTo(bad), null, bad);
}

// the console: its own form signs in, start runs after each sign-in, stop on each sign-out
const FORM = [...HEADER, "login", "login-form", "token-form", "login-error", "login-user", "login-password",
  "login-submit", "login-token", "me-name", "me-role", "me-centre", "logout"];
{
  let issued = 0;
  const p = page({
    ids: FORM,
    path: "/",
    routes: {
      "POST /api/login": (init) =>
        JSON.parse(init.body).password === "right" ? [200, { token: `tok-${++issued}` }] : refused("wrong user name or password"),
      "GET /api/me": (init) => (init.headers.Authorization === "Bearer tok-1" ? [200, ME] : refused("token expired")),
    },
  });
  const log = [];
  await boot({
    page: "console",
    start: (ctx) => log.push(`start ${ctx.api.token}`),
    stop: (ctx) => log.push(`stop ${ctx.api.token}`), // still the old token
  });
  assert.equal(document.body.dataset.page, "login");
  assert.equal(p.el("login").hidden, false);
  assert.equal(p.signedIn.hidden, true);

  p.el("login-user").value = " county-d ";
  p.el("login-password").value = "wrong";
  await p.el("login-form").fire("submit");
  assert.equal(p.el("login-error").textContent, "用户名或密码错误 Wrong user name or password");
  assert.equal(p.el("login-error").hidden, false);
  assert.deepEqual(log, []);

  p.el("login-password").value = "right";
  await p.el("login-form").fire("submit");
  assert.deepEqual(log, ["start tok-1"]);
  assert.equal(p.el("login-password").value, "", "the password is not kept in the form");
  assert.equal(p.el("login").hidden, true);
  assert.equal(p.signedIn.hidden, false);
  assert.equal(p.el("me-name").textContent, personName(ME));
  assert.equal(p.el("me-centre").textContent, "某县 410000");
  assert.equal(p.store.get("zzhub.token"), "tok-1");
  const first = FakeSocket.made[0];

  await p.el("logout").fire("click");
  assert.deepEqual(log, ["start tok-1", "stop tok-1"]);
  assert.ok(first.closed, "the socket closes on sign-out");
  assert.equal(p.store.get("zzhub.token"), undefined);
  assert.equal(document.body.dataset.page, "login");
  assert.equal(p.el("login-error").hidden, true);

  // a token pasted in that the hub refuses: dropped, the reason shown, no start
  p.el("login-token").value = "not.a.token";
  await p.el("token-form").fire("submit");
  assert.match(p.el("login-error").textContent, /^令牌无效 Token refused: token expired$/);
  assert.equal(p.store.get("zzhub.token"), undefined);
  assert.deepEqual(log, ["start tok-1", "stop tok-1"]);
  assert.deepEqual(p.moved, [], "the console never leaves for a sign-in page");
}

// the console opened with ?next=<page> and a kept token: straight back to that page
{
  const p = page({ ids: FORM, path: "/", search: "?next=%2Fstatic%2Fterminal.html", token: "tok", routes: { "GET /api/me": [200, ME] } });
  await boot({ page: "console", start: () => assert.fail("the console is not loaded on the way back") });
  assert.deepEqual(p.moved, ["replace:/static/terminal.html"]);
}

console.log("ok");
