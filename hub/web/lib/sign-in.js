// The console's sign-in form (index.html: #login with #login-form and #token-form): user and
// password, or a token pasted in. boot.js uses it when the page has the form; `enter` loads
// the page once signed in and rejects if it cannot. While the form shows, the signed-in part
// of the page ([data-signed-in]) is hidden and body[data-page=login].

import { ApiError, describeError } from "./api.js";
import { $ } from "./dom.js";

export class SignInForm {
  // The page's form, wired to `api` and `enter`; null if the page has none.
  static find(api, enter) {
    return $("login-form") ? new SignInForm(api, enter) : null;
  }

  constructor(api, enter) {
    this.api = api;
    this.enter = enter;
    $("login-form").addEventListener("submit", (ev) => this.onLogin(ev));
    $("token-form").addEventListener("submit", (ev) => this.onToken(ev));
  }

  show(message = "") {
    for (const part of document.querySelectorAll("[data-signed-in]")) part.hidden = true;
    $("login").hidden = false;
    const box = $("login-error");
    box.textContent = message;
    box.hidden = !message;
    document.body.dataset.page = "login";
  }

  hide() {
    $("login").hidden = true;
    for (const part of document.querySelectorAll("[data-signed-in]")) part.hidden = false;
  }

  async onLogin(ev) {
    ev.preventDefault();
    const button = $("login-submit");
    button.disabled = true;
    try {
      await this.api.login($("login-user").value.trim(), $("login-password").value);
      $("login-password").value = "";
      await this.enter();
    } catch (err) {
      let text = `登录失败 Sign-in failed: ${describeError(err)}`;
      if (err instanceof ApiError && err.status === 401) {
        text = "用户名或密码错误 Wrong user name or password";
        if (!/wrong user name or password/i.test(err.message)) text += ` (${err.message})`;
      }
      this.show(text);
    } finally {
      button.disabled = false;
    }
  }

  async onToken(ev) {
    ev.preventDefault();
    this.api.setToken($("login-token").value.trim());
    try {
      await this.enter();
      $("login-token").value = "";
    } catch (err) {
      this.api.setToken("");
      const text =
        err instanceof ApiError && err.status === 401
          ? `令牌无效 Token refused: ${err.message}`
          : `登录失败 Sign-in failed: ${describeError(err)}`;
      this.show(text);
    }
  }
}
