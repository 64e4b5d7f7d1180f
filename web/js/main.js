// Boots the client: config, session, shell, router; owns the API client, sync status, outbox
// and session room shared by every view.

import { Api } from "./api.js";
import { resolveConfig } from "./config.js";
import { h, mount, toast } from "./dom.js";
import { Outbox } from "./outbox.js";
import { Realtime } from "./realtime.js";
import { Shell } from "./shell.js";
import { SyncStatus } from "./status.js";
import { loginView } from "./views/login.js";
import { eventsView, eventView } from "./views/events.js";
import { runSheetView } from "./views/runsheet.js";
import { sessionView } from "./views/session.js";
import { adminView } from "./views/admin.js";
import { issuesView } from "./views/issues.js";
import { boardView } from "./views/board.js";
import { strategyView } from "./views/strategy.js";
import { membersView } from "./views/members.js";
import { signupView, confirmView, acceptInviteView } from "./views/account.js";

const config = resolveConfig();
const storageKey = (name) => `race:${name}:${config.apiUrl}`;

function loadSession() {
  try { return JSON.parse(localStorage.getItem(storageKey("session")) || "null"); } catch { return null; }
}

const ctx = {
  config,
  session: loadSession(),
  cache: new Map(), // GET path -> last answer: the offline cache
  shell: null,
  view: null,
  role() { return (this.session && this.session.user && this.session.user.role) || "viewer"; },
  canWrite() { return ["engineer", "admin", "owner"].includes(this.role()); },
  isAdmin() { return ["admin", "owner"].includes(this.role()); },
};

ctx.api = new Api(config, {
  getToken: () => ctx.session && ctx.session.token,
  onNetworkError: () => ctx.status.pollSoon(),
  onUnauthorized: (error) => {
    if (!ctx.session) return;
    ctx.signOut(`Signed out: ${error.message}`);
  },
});
ctx.status = new SyncStatus(ctx.api, config);
ctx.outbox = new Outbox(ctx.api, storageKey("outbox"));
ctx.realtime = new Realtime(config, { getToken: () => ctx.session && ctx.session.token, status: ctx.status });

// Reads go through here: answers are cached, so an Offline client keeps showing what it had.
ctx.load = async (path) => {
  try {
    const data = await ctx.api.get(path);
    ctx.cache.set(path, data);
    try { sessionStorage.setItem(`cache:${path}`, JSON.stringify(data)); } catch { /* full */ }
    return data;
  } catch (error) {
    if (!error.network) throw error;
    const cached = ctx.cache.get(path) ?? JSON.parse(sessionStorage.getItem(`cache:${path}`) || "null");
    if (cached === null) throw error;
    return cached;
  }
};
ctx.loadAll = async (path, params = {}) => {
  const key = `${path}?${new URLSearchParams(params)}&all`;
  try {
    const items = await ctx.api.all(path, params);
    ctx.cache.set(key, items);
    try { sessionStorage.setItem(`cache:${key}`, JSON.stringify(items)); } catch { /* full */ }
    return items;
  } catch (error) {
    if (!error.network) throw error;
    const cached = ctx.cache.get(key) ?? JSON.parse(sessionStorage.getItem(`cache:${key}`) || "null");
    if (cached === null) throw error;
    return cached;
  }
};

ctx.status.on("recovered", () => {
  ctx.outbox.flush();
  ctx.realtime.reconnectNow();
  if (ctx.view && ctx.view.refresh) ctx.view.refresh();
});
ctx.status.on("me", (me) => {
  if (ctx.session && ctx.session.user && me && me.role && me.role !== ctx.session.user.role) {
    ctx.session.user.role = me.role;
    saveSession();
  }
});
ctx.outbox.subscribe((event) => {
  ctx.status.setPending(ctx.outbox.size);
  if (event.type === "rejected") {
    const why = event.error.missingRoute ? "not available on this API" : event.error.message;
    toast(`Not saved: ${event.item.label || event.item.path} (${why})`, "error", 9000);
  }
  if (ctx.view && ctx.view.onOutbox) ctx.view.onOutbox(event);
});
ctx.realtime.on("presence", (members) => ctx.shell && ctx.shell.setPresence(members));
ctx.realtime.on("change", (message) => ctx.view && ctx.view.onChange && ctx.view.onChange(message));
ctx.realtime.on("resync", () => ctx.view && ctx.view.refresh && ctx.view.refresh());
ctx.realtime.on("joined", (info) => ctx.view && ctx.view.onJoined && ctx.view.onJoined(info));
ctx.status.setPending(ctx.outbox.size);

function saveSession() {
  if (ctx.session) localStorage.setItem(storageKey("session"), JSON.stringify(ctx.session));
  else localStorage.removeItem(storageKey("session"));
}

ctx.signIn = (answer) => {
  if (ctx.session) { ctx.status.stop(); ctx.realtime.stop(); } // a signed-in user joining another account
  ctx.session = { token: answer.token, user: answer.user };
  saveSession();
  startSignedIn();
  const next = sessionStorage.getItem("race:next");
  sessionStorage.removeItem("race:next");
  go(next && next !== "#/login" ? next : "#/events");
};

// Navigate: a changed hash routes through hashchange; the same hash routes at once.
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

ctx.signOut = (message) => {
  ctx.session = null;
  saveSession();
  ctx.status.stop();
  ctx.realtime.stop();
  ctx.realtime.leave();
  if (ctx.shell) ctx.shell.destroy();
  ctx.shell = null;
  ctx.signOutMessage = message || null;
  go("#/login");
};

function startSignedIn() {
  ctx.status.start();
  ctx.realtime.start();
  if (ctx.outbox.size) ctx.outbox.flush();
}

const ROUTES = [
  [/^#\/events\/?$/, () => eventsView(ctx)],
  [/^#\/events\/([0-9a-f-]+)$/, (m) => eventView(ctx, m[1])],
  [/^#\/events\/([0-9a-f-]+)\/issues$/, (m) => issuesView(ctx, m[1])],
  [/^#\/events\/([0-9a-f-]+)\/board(?:\/([0-9a-f-]+))?$/, (m) => boardView(ctx, m[1], m[2] || null)],
  [/^#\/events\/([0-9a-f-]+)\/strategy$/, (m) => strategyView(ctx, m[1])],
  [/^#\/sessions\/([0-9a-f-]+)$/, (m) => sessionView(ctx, m[1])],
  [/^#\/run-sheets\/([0-9a-f-]+)(?:\/(\w+))?$/, (m) => runSheetView(ctx, m[1], m[2] || "laps")],
  [/^#\/members$/, () => membersView(ctx)],
  [/^#\/admin(?:\/(\w+))?(?:\/([^/]+))?$/, (m) => adminView(ctx, m[1] || "keys", m[2] || null)],
];

// Pages opened from an email or before there is a login: shown with or without a session, no shell.
const PUBLIC = [
  [/^#\/signup$/, () => signupView(ctx)],
  [/^#\/confirm(?:\?(.*))?$/, (m) => confirmView(ctx, new URLSearchParams(m[1] || ""))],
  [/^#\/accept-invite(?:\?(.*))?$/, (m) => acceptInviteView(ctx, new URLSearchParams(m[1] || ""))],
];

let routeSeq = 0;

async function route() {
  const seq = ++routeSeq;
  const root = document.getElementById("app");
  const hash = location.hash || "#/events";
  const open = PUBLIC.map(([re, make]) => [hash.match(re), make]).find(([m]) => m);
  if (open) {
    if (ctx.view && ctx.view.destroy) ctx.view.destroy();
    if (ctx.shell) { ctx.shell.destroy(); ctx.shell = null; }
    ctx.view = open[1](open[0]);
    mount(root, ctx.view.el);
    return;
  }
  if (!ctx.session) {
    if (hash !== "#/login") sessionStorage.setItem("race:next", hash);
    if (ctx.view && ctx.view.destroy) ctx.view.destroy();
    ctx.view = loginView(ctx);
    mount(root, ctx.view.el);
    return;
  }
  if (hash === "#/login") { location.hash = "#/events"; return; }
  if (!ctx.shell) {
    ctx.shell = new Shell(ctx);
    mount(root, ctx.shell.el, h("main", { id: "main", class: "main", tabindex: "-1" }));
  }
  const main = document.getElementById("main");
  const match = ROUTES.map(([re, make]) => [hash.match(re), make]).find(([m]) => m);
  if (ctx.view && ctx.view.destroy) ctx.view.destroy();
  ctx.view = null;
  if (!match) {
    mount(main, h("div", { class: "page" }, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/events" }, "Events"))));
    return;
  }
  const view = match[1](match[0]);
  ctx.view = view;
  mount(main, view.el);
  if (view.ready) {
    try { await view.ready; } catch (exc) { console.error(exc); } // eslint-disable-line no-console
  }
  if (seq !== routeSeq) return;
}

window.addEventListener("hashchange", route);
if (ctx.session) startSignedIn();
route();
window.race = ctx; // for the console and the browser tests
