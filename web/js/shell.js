// The signed-in frame: the ribbon (brand, breadcrumbs, nav) and its status strip (presence,
// pending writes, the sync pill with its popover, and the Offline banner under the pill).

import { h, icon, mount, copyText, toast } from "./dom.js";
import { clock, ago, initials } from "./format.js";
import { LABELS, OFFLINE } from "./status.js";

export class Shell {
  constructor(ctx) {
    this.ctx = ctx;
    this.crumbs = h("nav", { class: "crumbs", "aria-label": "Breadcrumb" });
    this.presence = h("ul", { class: "presence", "aria-label": "People in this session" });
    this.pendingBadge = h("span", { class: "pending-count", hidden: true });
    this.dot = h("span", { class: "pill-dot", "aria-hidden": "true" });
    this.pillLabel = h("span", { class: "pill-label" }, "Connecting");
    this.attempt = h("span", { class: "pill-attempt", hidden: true });
    this.pill = h("button", { class: "pill", type: "button", id: "sync-pill", "aria-haspopup": "dialog",
      "aria-expanded": "false", "aria-controls": "sync-details", "data-state": "connecting",
      onclick: () => this.togglePopover() }, this.dot, this.pillLabel, this.attempt, this.pendingBadge);
    this.live = h("span", { class: "visually-hidden", role: "status", "aria-live": "polite", id: "sync-live" });
    this.popover = h("div", { class: "popover", id: "sync-details", role: "dialog", "aria-label": "Connection details",
      hidden: true });
    this.bannerText = h("code", { class: "banner-text", id: "offline-error" });
    // Under the pill, in the page flow (it pushes the page down rather than covering data).
    this.banner = h("div", { class: "offline-banner", role: "alert", hidden: true },
      h("div", { class: "banner-inner" },
        h("div", { class: "banner-head" }, h("strong", {}, "Offline"), h("span", { class: "banner-since" }),
          h("span", { class: "banner-hint" }, "Showing the offline cache; edits are queued and sent in order on reconnect.")),
        h("div", { class: "banner-row" }, this.bannerText,
          h("button", { type: "button", class: "btn btn-small", onclick: () => this.copyError() },
            icon("copy"), "Copy error"))));
    const isAdmin = ["admin", "owner"].includes(ctx.role());
    this.nav = h("nav", { class: "mainnav", "aria-label": "Main" },
      h("a", { href: "#/events", "data-nav": "events" }, "Events"),
      h("a", { href: "#/members", "data-nav": "members" }, "Team"),
      isAdmin ? h("a", { href: "#/admin/keys", "data-nav": "admin" }, "Admin") : null);
    const user = ctx.session.user || {};
    this.userMenu = h("div", { class: "user" },
      h("span", { class: "avatar", "aria-hidden": "true" }, initials(user.name || user.email)),
      h("span", { class: "user-name" }, h("span", {}, user.name || user.email || ""),
        h("small", {}, `${user.accountName || ""} · ${ctx.role()}`)),
      h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => ctx.signOut() }, "Sign out"));
    this.el = h("header", { class: "ribbon" },
      h("div", { class: "ribbon-row" },
        h("a", { class: "brand", href: "#/events", "aria-label": "Race Platform home" },
          h("span", { class: "brand-mark", "aria-hidden": "true" }, "R"), h("span", {}, "Race", h("b", {}, "Platform"))),
        this.nav,
        this.crumbs,
        h("div", { class: "status-strip", "aria-label": "Status" },
          this.presence,
          this.userMenu,
          h("div", { class: "pill-anchor" }, this.pill, this.popover)),
      ),
      this.banner,
      this.live);
    this.unsub = ctx.status.subscribe((status) => this.renderStatus(status));
    this.popTimer = setInterval(() => { if (!this.popover.hidden) this.renderPopover(); }, 1000);
    document.addEventListener("keydown", this.onKey = (e) => {
      if (e.key === "Escape" && !this.popover.hidden) { this.togglePopover(false); this.pill.focus(); }
    });
    document.addEventListener("click", this.onDocClick = (e) => {
      if (!this.popover.hidden && !this.popover.contains(e.target) && !this.pill.contains(e.target)) {
        this.togglePopover(false);
      }
    });
  }

  destroy() {
    this.unsub();
    clearInterval(this.popTimer);
    document.removeEventListener("keydown", this.onKey);
    document.removeEventListener("click", this.onDocClick);
  }

  setCrumbs(items) {
    const parts = [];
    items.forEach((item, i) => {
      if (i) parts.push(h("span", { class: "crumb-sep", "aria-hidden": "true" }, "›"));
      parts.push(item.href && i < items.length - 1 ? h("a", { href: item.href }, item.label)
        : h("span", { "aria-current": i === items.length - 1 ? "page" : null }, item.label));
    });
    mount(this.crumbs, parts);
  }

  setNav(key) {
    for (const link of this.nav.querySelectorAll("a")) {
      link.classList.toggle("active", link.dataset.nav === key);
      if (link.dataset.nav === key) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  setPresence(members) {
    const seen = new Map();
    for (const m of members || []) {
      const key = m.userId || m.connectionId || m.name;
      if (!seen.has(key)) seen.set(key, { ...m, count: 1 });
      else seen.get(key).count += 1;
    }
    const people = [...seen.values()];
    mount(this.presence, people.map((m) => h("li", { class: "presence-item", title: `${m.name} (${m.role})` },
      h("span", { class: `avatar avatar-${m.role}`, "aria-hidden": "true" }, initials(m.name)),
      h("span", { class: "visually-hidden" }, `${m.name}, ${m.role}`))),
    people.length ? h("li", { class: "presence-count", "aria-hidden": "true" }, `${people.length} in session`) : null);
  }

  renderStatus(status) {
    const state = status.state;
    this.pill.dataset.state = state;
    this.pillLabel.textContent = LABELS[state];
    const retrying = state === "reconnecting" && status.failures > 0;
    this.attempt.hidden = !retrying;
    this.attempt.textContent = retrying ? `${status.failures}/${this.ctx.config.maxFailures}` : "";
    this.attempt.title = retrying ? `poll ${status.failures} of ${this.ctx.config.maxFailures} failed` : "";
    const pending = status.pending;
    this.pendingBadge.hidden = pending === 0;
    this.pendingBadge.textContent = pending ? `${pending} pending` : "";
    this.pill.setAttribute("aria-label",
      `Sync status: ${LABELS[state]}${pending ? `, ${pending} writes pending` : ""}. Show connection details`);
    const announce = `Connection ${LABELS[state]}${pending ? `, ${pending} pending` : ""}`;
    if (this.live.textContent !== announce) this.live.textContent = announce;
    const offline = state === OFFLINE;
    this.banner.hidden = !offline;
    if (offline) {
      this.bannerText.textContent = status.lastError ? status.lastError.message : "no answer from the API";
      this.banner.querySelector(".banner-since").textContent =
        `since ${clock(status.offlineSince)} · last error at ${clock(status.lastError && status.lastError.at)}`;
    }
    document.body.dataset.sync = state;
    if (!this.popover.hidden) this.renderPopover();
  }

  togglePopover(force) {
    const open = force === undefined ? this.popover.hidden : force;
    this.popover.hidden = !open;
    this.pill.setAttribute("aria-expanded", String(open));
    if (open) this.renderPopover();
  }

  renderPopover() {
    const status = this.ctx.status;
    const now = Date.now();
    const row = (label, at, extra) => h("tr", {},
      h("th", { scope: "row" }, label),
      h("td", { class: "mono" }, at ? clock(at) : "never"),
      h("td", { class: "muted" }, at ? ago(now - at) : extra || ""));
    const pending = this.ctx.outbox.items();
    mount(this.popover,
      h("div", { class: "popover-head" },
        h("span", { class: "pill-dot", "data-state": status.state, "aria-hidden": "true" }),
        h("strong", {}, LABELS[status.state]), h("span", { class: "muted" }, status.reason())),
      h("table", { class: "seen" },
        h("caption", {}, "Last seen"),
        h("tbody", {},
          row("/health", status.lastSeen.health),
          row("/auth/me", status.lastSeen.me),
          row("WebSocket", status.lastSeen.ws, status.wsOpen ? "" : "disconnected"))),
      h("dl", { class: "kv" },
        h("dt", {}, "API"), h("dd", { class: "mono" }, this.ctx.config.apiUrl),
        h("dt", {}, "WebSocket"), h("dd", { class: "mono" }, `${this.ctx.config.wsUrl} · ${status.wsOpen ? "open" : "closed"}`),
        h("dt", {}, "Failed polls"), h("dd", { class: "mono" }, `${status.failures} of ${this.ctx.config.maxFailures}`),
        status.lastError ? [h("dt", {}, "Last error"), h("dd", { class: "mono wrap" },
          `${clock(status.lastError.at)} ${status.lastError.message}`)] : null),
      pending.length ? h("div", { class: "pending-list" },
        h("strong", {}, `${pending.length} pending write${pending.length === 1 ? "" : "s"} (sent in this order)`),
        h("ol", {}, pending.slice(0, 8).map((item) => h("li", {}, item.label || `${item.method} ${item.path}`)))) : null);
  }

  async copyError() {
    const status = this.ctx.status;
    const text = status.lastError
      ? `[Race Platform client] Offline since ${new Date(status.offlineSince || Date.now()).toISOString()}: `
        + `${status.lastError.message} (API ${this.ctx.config.apiUrl}, WS ${this.ctx.config.wsUrl})`
      : "no error recorded";
    const ok = await copyText(text);
    toast(ok ? "Error copied" : "Select the text and copy it", ok ? "ok" : "warn");
  }
}
