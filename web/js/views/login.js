// Sign in with email and password (POST /auth/login).

import { h, field } from "../dom.js";

export function loginView(ctx) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true,
    placeholder: "you@team.com" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "form-error", role: "alert", hidden: !ctx.signOutMessage },
    ctx.signOutMessage || "");
  ctx.signOutMessage = null;
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const form = h("form", { class: "login-form", "aria-labelledby": "login-title", novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      error.hidden = true;
      if (!email.value || !password.value) {
        error.textContent = "Enter your email and password.";
        error.hidden = false;
        (email.value ? password : email).focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = "Signing in…";
      try {
        const answer = await ctx.api.post("/auth/login", { email: email.value.trim(), password: password.value },
          { auth: false });
        ctx.signIn(answer);
      } catch (exc) {
        error.textContent = exc.network ? `Cannot reach the API at ${ctx.config.apiUrl}: ${exc.message}`
          : exc.message;
        error.hidden = false;
        submit.disabled = false;
        submit.textContent = "Sign in";
        password.select();
      }
    } },
  h("div", { class: "login-brand" },
    h("span", { class: "brand-mark big", "aria-hidden": "true" }, "R"),
    h("div", {}, h("h1", { id: "login-title" }, "Race Platform"), h("p", { class: "muted" }, "Race engineering · pit wall"))),
  field("Email", email),
  field("Password", password),
  error,
  submit,
  h("p", { class: "muted small" }, "New team? ", h("a", { href: "#/signup" }, "Create an account")),
  h("p", { class: "login-foot muted" }, "API ", h("code", {}, ctx.config.apiUrl)));
  setTimeout(() => email.focus(), 0);
  return { el: h("main", { class: "login", id: "main" }, h("div", { class: "login-stripes", "aria-hidden": "true" }), form) };
}
