// HTTP API client: the bearer token (kept in sessionStorage) and JSON errors as ApiError.

const TOKEN_KEY = "zzhub.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// Chinese first, English beside, for what a status means to an operator.
const STATUS_HINTS = {
  0: "无法连接中心服务器 Cannot reach the hub",
  401: "登录已失效 Not signed in",
  403: "无权访问 Not allowed",
  404: "未找到 Not found",
  413: "请求过大 Request too large",
  503: "暂不可用 Unavailable",
};

export function describeError(err) {
  if (err instanceof ApiError) {
    const hint = STATUS_HINTS[err.status] || `错误 Error ${err.status}`;
    return err.message ? `${hint}: ${err.message}` : hint;
  }
  return String(err && err.message ? err.message : err);
}

// Turn a failed fetch Response into an ApiError carrying the hub's own message.
export async function errorFromResponse(resp) {
  let code = "error";
  let message = resp.statusText || "";
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON (a proxy's page, say): keep the status text
  }
  return new ApiError(resp.status, code, message);
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.token = sessionStorage.getItem(TOKEN_KEY) || "";
    this.onUnauthorized = null; // called once a token is refused
  }

  setToken(token) {
    this.token = token || "";
    if (this.token) sessionStorage.setItem(TOKEN_KEY, this.token);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  authHeaders(extra = {}) {
    return this.token ? { ...extra, Authorization: `Bearer ${this.token}` } : { ...extra };
  }

  url(path) {
    return new URL(this.base + path, location.href).href;
  }

  async request(path, { method = "GET", json, headers = {}, raw = false } = {}) {
    const init = { method, headers: this.authHeaders(headers), cache: "no-store" };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let resp;
    try {
      resp = await fetch(this.url(path), init);
    } catch (err) {
      throw new ApiError(0, "network", String(err.message || err));
    }
    if (!resp.ok) {
      const err = await errorFromResponse(resp);
      if (resp.status === 401 && path !== "/api/login" && this.onUnauthorized) {
        this.onUnauthorized(err);
      }
      throw err;
    }
    return raw ? resp : resp.json();
  }

  async login(user, password) {
    const body = await this.request("/api/login", { method: "POST", json: { user, password } });
    this.setToken(body.token);
    return body;
  }

  me() {
    return this.request("/api/me");
  }

  centres() {
    return this.request("/api/centres");
  }

  cameras() {
    return this.request("/api/cameras");
  }

  whepUrl(cameraId) {
    return this.url(`/api/cameras/${encodeURIComponent(cameraId)}/whep`);
  }

  // <img> cannot send headers: fetch the JPEG and hand back an object URL (caller revokes).
  async snapshotUrl(cameraId) {
    const resp = await this.request(`/api/cameras/${encodeURIComponent(cameraId)}/snapshot.jpg`, {
      raw: true,
    });
    return URL.createObjectURL(await resp.blob());
  }
}
