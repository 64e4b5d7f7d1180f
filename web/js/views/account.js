// The pages reached without a session: sign-up (POST /auth/signup), the emailed confirmation link
// (#/confirm?token=: POST /auth/confirm with the sign-up's password) and the emailed invitation
// (#/accept-invite?token=: signed in, accept as yourself; new here, choose a name and password).

import { h, field, mount } from "../dom.js";

// The card every page here shares: the sign-in page's frame, with its own title.
function card(ctx, title, ...children) {
  const form = h("div", { class: "login-form account-form", role: "region", "aria-labelledby": "account-title" },
    h("div", { class: "login-brand" },
      h("span", { class: "brand-mark big", "aria-hidden": "true" }, "R"),
      h("div", {}, h("h1", { id: "account-title" }, title), h("p", { class: "muted" }, "Race Platform"))),
    ...children,
    h("p", { class: "login-foot muted" }, "API ", h("code", {}, ctx.config.apiUrl)));
  return h("main", { class: "login", id: "main" }, h("div", { class: "login-stripes", "aria-hidden": "true" }), form);
}

function errorLine() {
  return h("p", { class: "form-error", role: "alert", hidden: true });
}

function say(error, exc, ctx) {
  error.textContent = exc.network ? `Cannot reach the API at ${ctx.config.apiUrl}: ${exc.message}` : exc.message;
  error.hidden = false;
}

function passwordInput(name, autocomplete) {
  return h("input", { type: "password", name, autocomplete, required: true, minlength: "10" });
}

// The token leaves the address bar once read: it is a one-time secret, not something to bookmark.
function takeToken(params) {
  const token = params.get("token") || "";
  try { history.replaceState(null, "", location.pathname + location.search + location.hash.split("?")[0]); } catch { /* old browser */ }
  return token;
}

// A form that disables its button while the request runs and shows the answer's message on failure.
function submitting(ctx, { label, busy, error, run }) {
  const button = h("button", { type: "submit", class: "btn btn-primary btn-block" }, label);
  const onsubmit = async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    button.textContent = busy;
    try {
      await run();
    } catch (exc) {
      say(error, exc, ctx);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  };
  return { button, onsubmit };
}

function missing(error, message, control) {
  error.textContent = message;
  error.hidden = false;
  control.focus();
  return true;
}

// Signed in from a link: forget where the sign-in page meant to go, land on the events.
function enter(ctx, answer) {
  sessionStorage.removeItem("race:next");
  ctx.signIn(answer);
}

export function signupView(ctx) {
  const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true, maxlength: "200" });
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const team = h("input", { type: "text", name: "accountName", autocomplete: "organization", required: true,
    maxlength: "200" });
  const password = passwordInput("password", "new-password");
  const error = errorLine();
  const body = h("div", {});
  const { button, onsubmit } = submitting(ctx, { label: "Create account", busy: "Sending…", error, run: async () => {
    const empty = [[name, "Enter your name."], [email, "Enter your email."], [team, "Name your team."],
      [password, "Choose a password."]].find(([control]) => !control.value.trim());
    if (empty) { missing(error, empty[1], empty[0]); return; }
    const answer = await ctx.api.post("/auth/signup", { name: name.value.trim(), email: email.value.trim(),
      accountName: team.value.trim(), password: password.value }, { auth: false });
    mount(body, h("div", { class: "account-done", role: "status" },
      h("h2", {}, "Check your email"),
      h("p", {}, "We sent a confirmation link to ", h("strong", {}, answer.email),
        ". Open it and enter the password you just chose: your team exists once it is confirmed."),
      h("p", { class: "muted small" }, "The link is valid for a limited time. Nothing arrived? Sign up again to get a new one.")),
    h("p", {}, h("a", { href: "#/login" }, "Back to sign in")));
  } });
  mount(body, h("form", { class: "account-fields", novalidate: true, "aria-label": "Sign up", onsubmit },
    field("Your name", name), field("Email", email), field("Team name", team),
    field("Password", password, "At least 10 characters."), error, button,
    h("p", { class: "muted small" }, "Already have a login? ", h("a", { href: "#/login" }, "Sign in"))));
  setTimeout(() => name.focus(), 0);
  return { el: card(ctx, "Create your team", body) };
}

export function confirmView(ctx, params) {
  const token = takeToken(params);
  const password = passwordInput("password", "current-password");
  const error = errorLine();
  if (!token) {
    return { el: card(ctx, "Confirm your email", h("p", { class: "form-error", role: "alert" },
      "This link has no token. Open the link from the email again, or ", h("a", { href: "#/signup" }, "sign up again"), ".")) };
  }
  const { button, onsubmit } = submitting(ctx, { label: "Confirm and sign in", busy: "Confirming…", error, run: async () => {
    if (!password.value) { missing(error, "Enter the password you chose at sign-up.", password); return; }
    enter(ctx, await ctx.api.post("/auth/confirm", { token, password: password.value }, { auth: false }));
  } });
  setTimeout(() => password.focus(), 0);
  return { el: card(ctx, "Confirm your email",
    h("form", { class: "account-fields", novalidate: true, "aria-label": "Confirm your email", onsubmit },
      h("p", { class: "muted" }, "Enter the password you chose when you signed up to create your team and sign in."),
      field("Password", password), error, button)) };
}

export function acceptInviteView(ctx, params) {
  const token = takeToken(params);
  const hash = `#/accept-invite?token=${encodeURIComponent(token)}`;
  if (!token) {
    return { el: card(ctx, "Join a team", h("p", { class: "form-error", role: "alert" },
      "This link has no token. Open the link from the invitation email again.")) };
  }
  // Sign in (or as someone else) and come back here: the sign-in page returns to race:next.
  const signInFirst = () => {
    if (ctx.session) ctx.signOut("Sign in as the invited email to accept the invitation.");
    sessionStorage.setItem("race:next", hash);
    location.hash = "#/login";
  };
  const error = errorLine();
  if (ctx.session) {
    const user = ctx.session.user || {};
    const { button, onsubmit } = submitting(ctx, { label: "Accept invitation", busy: "Joining…", error, run: async () => {
      enter(ctx, await ctx.api.post("/auth/accept-invite", { token }));
    } });
    return { el: card(ctx, "Join a team",
      h("form", { class: "account-fields", "aria-label": "Accept the invitation", onsubmit },
        h("p", {}, "You are signed in as ", h("strong", {}, user.email || user.name || "yourself"),
          ". Accept to join the team that invited you; you can switch back to your other teams by signing in again."),
        error, button,
        h("button", { type: "button", class: "btn btn-ghost btn-block", onclick: signInFirst },
          "Not this email? Sign in as someone else"))) };
  }
  const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true, maxlength: "200" });
  const password = passwordInput("password", "new-password");
  const { button, onsubmit } = submitting(ctx, { label: "Join the team", busy: "Joining…", error, run: async () => {
    if (!name.value.trim()) { missing(error, "Enter your name.", name); return; }
    if (!password.value) { missing(error, "Choose a password.", password); return; }
    enter(ctx, await ctx.api.post("/auth/accept-invite", { token, name: name.value.trim(), password: password.value },
      { auth: false }));
  } });
  setTimeout(() => name.focus(), 0);
  return { el: card(ctx, "Join a team",
    h("form", { class: "account-fields", novalidate: true, "aria-label": "New to Race Platform", onsubmit },
      h("h2", { class: "panel-title" }, "New to Race Platform"),
      h("p", { class: "muted" }, "Choose your name and a password; the email is the one the invitation was sent to."),
      field("Your name", name), field("Password", password, "At least 10 characters."), error, button),
    h("div", { class: "account-alt" },
      h("h2", { class: "panel-title" }, "Already have a login"),
      h("button", { type: "button", class: "btn btn-block", onclick: signInFirst }, "Sign in to accept"))) };
}
