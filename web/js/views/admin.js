// Admin: API keys (secret shown once; revoke), Integrations -> Webhooks (deliveries drill-down
// with replay), and plugins (versions, capability grants).

import { h, mount, icon, toast, copyText, field, emptyState, notAvailable, confirmDialog } from "../dom.js";
import { dateTime, clock } from "../format.js";

// 14:03:12.345: attempts of a fast retry schedule are milliseconds apart.
function clockMs(value) {
  if (!value) return "";
  const d = new Date(value);
  return `${clock(d)}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

const SECTIONS = [["keys", "API keys"], ["webhooks", "Webhooks"], ["plugins", "Plugins"]];
const ENTITIES = ["lap", "run_sheet", "setup", "issue", "board_card", "car", "driver", "event", "session", "strategy",
  "attachment", "timing_import"];
const OPS = ["create", "update", "delete"];

function problem(error, what) {
  if (error.missingRoute) return notAvailable(what);
  if (error.status === 403) return h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Not allowed"),
    h("p", {}, error.message));
  return h("div", { class: "empty error", role: "alert" }, h("strong", {}, `Could not load ${what.toLowerCase()}`),
    h("p", {}, error.describe ? error.describe() : String(error)));
}

export function adminView(ctx, section, id) {
  ctx.shell.setNav("admin");
  ctx.realtime.leave();
  const current = SECTIONS.some(([k]) => k === section) ? section : "keys";
  const label = SECTIONS.find(([k]) => k === current)[1];
  ctx.shell.setCrumbs([{ label: "Admin", href: "#/admin/keys" },
    ...(current === "webhooks" ? [{ label: "Integrations", href: "#/admin/webhooks" }] : []),
    { label, href: `#/admin/${current}` }, ...(id ? [{ label: id.slice(0, 8) }] : [])]);
  const side = h("nav", { class: "subnav", "aria-label": "Admin" },
    h("div", { class: "subnav-group" }, "Access"),
    h("a", { href: "#/admin/keys", "aria-current": current === "keys" ? "page" : null }, icon("key"), "API keys"),
    h("div", { class: "subnav-group" }, "Integrations"),
    h("a", { href: "#/admin/webhooks", "aria-current": current === "webhooks" ? "page" : null }, "Webhooks"),
    h("a", { href: "#/admin/plugins", "aria-current": current === "plugins" ? "page" : null }, "Plugins"));
  const content = h("div", { class: "admin-content" });
  const el = h("div", { class: "page page-wide admin" }, side, content);
  let view;
  if (!ctx.isAdmin()) {
    mount(content, h("div", { class: "empty error" }, h("strong", {}, "Admins only"),
      h("p", {}, "Your role cannot manage keys, webhooks or plugins.")));
    return { el };
  }
  if (current === "keys") view = keysSection(ctx);
  else if (current === "webhooks") view = id ? deliveriesSection(ctx, id) : webhooksSection(ctx);
  else view = id ? pluginSection(ctx, id) : pluginsSection(ctx);
  mount(content, view.el);
  return { el, ready: view.ready, refresh: view.refresh, destroy: view.destroy };
}

// API keys -------------------------------------------------------------------------------------

function keysSection(ctx) {
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const secretBox = h("div", { class: "secret-box", hidden: true, role: "region", "aria-label": "New API key" });
  const name = h("input", { type: "text", required: true, maxlength: "100", placeholder: "timing-bridge" });
  const role = h("select", {}, ["viewer", "engineer", "admin"].map((r) => h("option", { value: r, selected: r === "engineer" }, r)));
  const expires = h("input", { type: "date" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "inline-form", onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!name.value.trim()) { error.textContent = "Give the key a name."; error.hidden = false; name.focus(); return; }
    const body = { name: name.value.trim(), role: role.value };
    if (expires.value) body.expiresAt = new Date(`${expires.value}T23:59:59Z`).toISOString();
    try {
      const key = await ctx.api.post("/api-keys", body);
      showSecret(key);
      name.value = "";
      expires.value = "";
      load();
    } catch (exc) {
      error.textContent = exc.describe();
      error.hidden = false;
    }
  } },
  field("Name", name), field("Role", role), field("Expires (optional)", expires),
  h("button", { type: "submit", class: "btn btn-primary" }, icon("plus"), "Create key"), error);

  function showSecret(key) {
    secretBox.hidden = false;
    const code = h("code", { class: "secret mono", id: "new-key-secret" }, key.key);
    mount(secretBox,
      h("strong", {}, `Key "${key.name}" created. Copy it now: it will not be shown again.`),
      h("div", { class: "secret-row" }, code,
        h("button", { type: "button", class: "btn btn-small", onclick: async () => {
          toast(await copyText(key.key) ? "Key copied" : "Select the key and copy it", "ok");
        } }, icon("copy"), "Copy")),
      h("p", { class: "muted small" }, "Send it as the header X-API-Key (or ?token= for the WebSocket). Only its hash is stored."),
      h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => { secretBox.hidden = true; mount(secretBox); } },
        "I have stored it"));
    secretBox.focus();
  }

  const load = async () => {
    try {
      const keys = await ctx.loadAll("/api-keys");
      mount(list, keys.length ? h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "API keys"),
        h("thead", {}, h("tr", {}, ["Name", "Key", "Role", "Created", "Last used", "Expires", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, keys.map((key) => h("tr", {},
          h("td", {}, key.name), h("td", { class: "mono" }, `${key.prefix}…`), h("td", {}, h("span", { class: `role role-${key.role}` }, key.role)),
          h("td", { class: "muted" }, dateTime(key.createdAt)), h("td", { class: "muted" }, key.lastUsedAt ? dateTime(key.lastUsedAt) : "never"),
          h("td", { class: "muted" }, key.expiresAt ? dateTime(key.expiresAt) : "no expiry"),
          h("td", { class: "row-actions" }, h("button", { type: "button", class: "btn btn-danger-ghost btn-small",
            "aria-label": `Revoke key ${key.name}`, onclick: async () => {
              if (!await confirmDialog(`Revoke "${key.name}"?`, "Requests with this key fail at once (401). This cannot be undone.", "Revoke", true)) return;
              try {
                await ctx.api.delete(`/api-keys/${key.id}`);
                toast(`Revoked ${key.name}`, "ok");
                load();
              } catch (exc) { toast(exc.describe(), "error"); }
            } }, "Revoke"))))))
        : emptyState("No API keys", "Create one for a timing bridge, a script or CI."));
    } catch (exc) {
      mount(list, problem(exc, "API keys"));
    }
    list.removeAttribute("aria-busy");
  };
  secretBox.tabIndex = -1;
  const el = h("div", {},
    h("div", { class: "page-head" }, h("h1", {}, "API keys"), h("p", { class: "muted" }, "Keys act for the team with a fixed role; revoking takes effect on the next request.")),
    h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Create a key"), form, secretBox),
    h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Keys"), list));
  return { el, ready: load(), refresh: load };
}

// Webhooks -------------------------------------------------------------------------------------

function webhookEvents(hook) {
  const entities = Array.isArray(hook.entityTypes) && hook.entityTypes.length ? hook.entityTypes.join(", ") : "all entities";
  const ops = Array.isArray(hook.operations) && hook.operations.length && hook.operations.length < OPS.length
    ? ` · ${hook.operations.join(", ")}` : "";
  return entities + ops;
}

function webhooksSection(ctx) {
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const secretBox = h("div", { class: "secret-box", hidden: true, tabindex: "-1" });
  const url = h("input", { type: "url", required: true, placeholder: "https://example.com/race-hook", class: "mono" });
  const description = h("input", { type: "text", maxlength: "500", placeholder: "Race control bridge" });
  const checks = ENTITIES.map((entity) => h("input", { type: "checkbox", value: entity }));
  const opChecks = OPS.map((op) => h("input", { type: "checkbox", value: op }));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "stack-form", onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    const entityTypes = checks.filter((c) => c.checked).map((c) => c.value);
    const operations = opChecks.filter((c) => c.checked).map((c) => c.value);
    const body = { url: url.value.trim(), entityTypes, operations: operations.length ? operations : OPS };
    if (description.value.trim()) body.description = description.value.trim();
    try {
      const hook = await ctx.api.post("/webhooks", body);
      url.value = "";
      description.value = "";
      for (const box of [...checks, ...opChecks]) box.checked = false;
      if (hook.secret) {
        secretBox.hidden = false;
        mount(secretBox, h("strong", {}, "Signing secret (shown once):"),
          h("div", { class: "secret-row" }, h("code", { class: "secret mono" }, hook.secret),
            h("button", { type: "button", class: "btn btn-small", onclick: async () => toast(await copyText(hook.secret) ? "Secret copied" : "Copy failed", "ok") }, icon("copy"), "Copy")),
          h("p", { class: "muted small" }, "Shown once. Verify each POST with it (Standard Webhooks webhook-signature, "
            + "or X-Race-Signature: sha256=HMAC-SHA256 of the raw body)."));
        secretBox.focus();
      }
      load();
    } catch (exc) {
      error.textContent = exc.missingRoute ? "Webhooks are not available on this API yet." : exc.describe();
      error.hidden = false;
    }
  } },
  field("Endpoint URL", url),
  field("Description (optional)", description),
  h("fieldset", { class: "checks" }, h("legend", {}, "Entities (none = all)"),
    checks.map((c) => h("label", { class: "check" }, c, c.value))),
  h("fieldset", { class: "checks" }, h("legend", {}, "Operations (none = all)"),
    opChecks.map((c) => h("label", { class: "check" }, c, c.value))),
  error,
  h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, icon("plus"), "Add webhook")));

  const load = async () => {
    try {
      const hooks = await ctx.loadAll("/webhooks");
      mount(list, hooks.length ? h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Webhooks"),
        h("thead", {}, h("tr", {}, ["Endpoint", "Events", "Enabled", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, hooks.map((hook) => h("tr", {},
          h("td", { class: "wrap" }, h("a", { class: "mono", href: `#/admin/webhooks/${hook.id}` }, hook.url),
            hook.description ? h("div", { class: "muted small" }, hook.description) : null,
            hook.disabledReason ? h("div", { class: "form-error small" }, hook.disabledReason) : null),
          h("td", { class: "muted" }, webhookEvents(hook)),
          h("td", {}, toggle(ctx, hook, load)),
          h("td", { class: "muted" }, dateTime(hook.createdAt)),
          h("td", { class: "row-actions" },
            h("a", { class: "btn btn-ghost btn-small", href: `#/admin/webhooks/${hook.id}` }, "Recent deliveries", icon("chevron")),
            h("button", { type: "button", class: "btn btn-danger-ghost btn-small", "aria-label": `Delete webhook ${hook.url}`,
              onclick: async () => {
                if (!await confirmDialog("Delete this webhook?", hook.url, "Delete", true)) return;
                try { await ctx.api.delete(`/webhooks/${hook.id}`); load(); } catch (exc) { toast(exc.describe(), "error"); }
              } }, icon("trash")))))))
        : emptyState("No webhooks", "Add an endpoint to receive lap, run sheet and setup changes as they happen."));
    } catch (exc) {
      mount(list, problem(exc, "Webhooks"));
    }
    list.removeAttribute("aria-busy");
  };
  const el = h("div", {},
    h("div", { class: "page-head" }, h("h1", {}, "Webhooks"), h("p", { class: "muted" }, "Integrations · signed POSTs for every change, retried, replayable.")),
    h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Subscriptions"), list),
    h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Add a webhook"), form, secretBox));
  return { el, ready: load(), refresh: load };
}

function toggle(ctx, hook, after) {
  const box = h("input", { type: "checkbox", role: "switch", checked: hook.enabled !== false,
    "aria-label": `Webhook ${hook.url} enabled`, onchange: async () => {
      box.disabled = true;
      try {
        await ctx.api.patch(`/webhooks/${hook.id}`, { enabled: box.checked });
        toast(`Webhook ${box.checked ? "enabled" : "disabled"}`, "ok");
      } catch (exc) {
        box.checked = !box.checked;
        toast(exc.describe(), "error");
      }
      box.disabled = false;
      if (after) after();
    } });
  return h("label", { class: "switch" }, box, h("span", { class: "switch-track", "aria-hidden": "true" }),
    h("span", { class: "switch-text" }, hook.enabled !== false ? "on" : "off"));
}

const FINAL_FAILED = new Set(["failed", "dead", "exhausted", "error"]);

export function isFailedDelivery(d) {
  if (FINAL_FAILED.has(String(d.status))) return true;
  return !d.succeededAt && !d.nextAttemptAt && (d.attempts || 0) > 0 && !["pending", "succeeded", "delivered", "retrying"].includes(String(d.status));
}

function statusBadge(d) {
  const failed = isFailedDelivery(d);
  const status = d.succeededAt ? "succeeded" : failed ? "failed" : String(d.status || "pending");
  return h("span", { class: `badge badge-${status}` }, h("span", { class: "badge-dot", "aria-hidden": "true" }), status);
}

function deliveriesSection(ctx, webhookId) {
  const head = h("div", { class: "page-head" }, h("h1", {}, "Recent deliveries"));
  const body = h("tbody");
  const tableWrap = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const counts = h("span", { class: "muted small", "aria-live": "polite" });
  const expanded = new Set();
  let deliveries = [];
  let hook = null;
  let pollTimer = null;

  const renderRows = () => {
    const rows = [];
    for (const d of deliveries) {
      const failed = isFailedDelivery(d);
      const open = expanded.has(d.id);
      rows.push(h("tr", { class: `delivery-row ${failed ? "is-failed" : ""}`, "data-delivery-id": d.id },
        h("td", {}, statusBadge(d)),
        h("td", { class: "mono" }, d.eventType || ""),
        h("td", { class: "num mono" }, String(d.attempts ?? 0)),
        h("td", { class: "num mono" }, d.lastStatusCode ?? "—"),
        h("td", { class: "muted wrap err" }, d.lastError || ""),
        h("td", { class: "muted" }, dateTime(d.createdAt)),
        h("td", { class: "muted" }, d.succeededAt ? `done ${clock(d.succeededAt)}` : d.nextAttemptAt ? `retry ${clock(d.nextAttemptAt)}` : "—"),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-expanded": String(open),
            "aria-label": `Attempts of delivery ${d.id.slice(0, 8)}`, onclick: () => toggleDetails(d) }, open ? "Hide" : "Attempts"),
          failed ? h("button", { type: "button", class: "btn btn-ghost btn-icon replay", title: "Replay this delivery",
            "aria-label": `Replay delivery ${d.id.slice(0, 8)} (${d.eventType || "event"})`, onclick: (e) => replay(d, e.currentTarget) },
          icon("replay")) : null)));
      if (open) rows.push(h("tr", { class: "details-row" }, h("td", { colspan: 8 }, h("div", { class: "attempts", id: `attempts-${d.id}` }, "Loading attempts…"))));
    }
    mount(body, rows);
    for (const id of expanded) loadAttempts(id);
    const failedCount = deliveries.filter(isFailedDelivery).length;
    counts.textContent = `${deliveries.length} deliveries · ${failedCount} failed`;
  };

  const toggleDetails = (d) => {
    if (expanded.has(d.id)) expanded.delete(d.id); else expanded.add(d.id);
    renderRows();
  };

  const loadAttempts = async (deliveryId) => {
    const box = () => body.querySelector(`#attempts-${CSS.escape(deliveryId)}`);
    try {
      const detail = await ctx.api.get(`/webhooks/${webhookId}/deliveries/${deliveryId}`);
      const attempts = detail.attemptLog || (Array.isArray(detail.attempts) ? detail.attempts : []);
      if (!box()) return;
      mount(box(), attempts.length ? h("table", { class: "grid grid-inner" },
        h("caption", {}, `Attempts of delivery ${deliveryId}`),
        h("thead", {}, h("tr", {}, ["Cycle", "#", "Started", "HTTP", "Duration", "Error / response"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, attempts.map((a, i) => h("tr", { class: a.statusCode >= 200 && a.statusCode < 300 ? "" : "is-failed" },
          h("td", { class: "num mono" }, a.cycle ?? 1),
          h("td", { class: "num mono" }, a.attempt ?? i + 1),
          h("td", { class: "muted" }, clockMs(a.startedAt || a.at || a.createdAt)),
          h("td", { class: "num mono" }, a.statusCode ?? "—"),
          h("td", { class: "num mono" }, a.durationMs !== undefined && a.durationMs !== null ? `${a.durationMs} ms` : ""),
          h("td", { class: "wrap" }, a.error ? h("span", { class: "mono err-text" }, a.error) : null,
            a.responseBody ? h("span", { class: "mono muted" }, `${a.error ? " · " : ""}${String(a.responseBody).slice(0, 200)}`) : null)))))
        : h("p", { class: "muted" }, "No attempts recorded yet."));
    } catch (exc) {
      if (box()) mount(box(), h("p", { class: "form-error" }, exc.missingRoute ? "Attempt details are not available on this API." : exc.describe()));
    }
  };

  const replay = async (d, button) => {
    button.disabled = true;
    button.classList.add("spinning");
    try {
      const answer = await ctx.api.post(`/webhooks/${webhookId}/deliveries/${d.id}/replay`);
      toast(`Replaying delivery ${d.id.slice(0, 8)}`, "info");
      if (answer && answer.id === d.id) Object.assign(d, answer);
      watch(d.id);
    } catch (exc) {
      toast(exc.missingRoute ? "Replay is not available on this API" : exc.describe(), "error", 8000);
      button.disabled = false;
      button.classList.remove("spinning");
    }
  };

  // After a replay, refresh until the delivery settles (succeeded or failed again).
  const watch = (deliveryId) => {
    const deadline = Date.now() + 30_000;
    const tick = async () => {
      await load();
      const d = deliveries.find((x) => x.id === deliveryId);
      if (d && d.succeededAt) { toast("Replay delivered", "ok"); return; }
      if (Date.now() < deadline) pollTimer = setTimeout(tick, 1000);
    };
    clearTimeout(pollTimer);
    pollTimer = setTimeout(tick, 500);
  };

  const load = async () => {
    try {
      if (!hook) {
        hook = await ctx.load(`/webhooks/${webhookId}`);
        mount(head, h("div", {}, h("a", { class: "back", href: "#/admin/webhooks" }, icon("back"), "Webhooks"),
          h("h1", {}, "Recent deliveries"),
          h("div", { class: "hook-meta" }, h("code", { class: "wrap" }, hook.url),
            h("span", { class: "muted" }, webhookEvents(hook)),
            hook.description ? h("span", { class: "muted" }, hook.description) : null,
            toggle(ctx, hook))));
      }
      const page = await ctx.api.get(`/webhooks/${webhookId}/deliveries?limit=500`);
      deliveries = page.items || [];
      mount(tableWrap, deliveries.length ? h("div", { class: "grid-scroll" }, h("table", { class: "grid deliveries" },
        h("caption", { class: "visually-hidden" }, "Recent deliveries"),
        h("thead", {}, h("tr", {}, ["Status", "Event", "Attempts", "HTTP", "Last error", "Created", "Next / done", ""].map((t) => h("th", { scope: "col" }, t)))),
        body)) : emptyState("No deliveries yet", "Deliveries appear here when a subscribed change happens."));
      renderRows();
    } catch (exc) {
      mount(tableWrap, problem(exc, "Deliveries"));
    }
    tableWrap.removeAttribute("aria-busy");
  };
  const el = h("div", {}, head,
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { class: "panel-title" }, "Deliveries"), counts,
      h("div", { class: "panel-actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: async () => {
          try {
            await ctx.api.post(`/webhooks/${webhookId}/test`);
            toast("Test event queued", "ok");
            setTimeout(load, 800);
          } catch (exc) { toast(exc.describe(), "error"); }
        } }, "Send test event"),
        h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => load() },
          icon("replay"), "Refresh list"))), tableWrap));
  return { el, ready: load(), refresh: load, destroy: () => clearTimeout(pollTimer) };
}

// Plugins --------------------------------------------------------------------------------------

function list(value) {
  return Array.isArray(value) ? value.join(", ") : value ? String(value) : "";
}

function pluginsSection(ctx) {
  const box = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const load = async () => {
    try {
      const plugins = await ctx.loadAll("/plugins");
      mount(box, plugins.length ? h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Plugins"),
        h("thead", {}, h("tr", {}, ["Plugin", "Latest", "Versions", "Interfaces", "Capabilities", "Granted", "Updated"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, plugins.map((p) => h("tr", {},
          h("td", {}, h("a", { href: `#/admin/plugins/${encodeURIComponent(p.id)}` }, p.name || p.id),
            h("div", { class: "muted small mono" }, p.id)),
          h("td", { class: "mono" }, p.latestVersion || p.version || ""),
          h("td", { class: "num mono" }, p.versionCount ?? ""),
          h("td", {}, list(p.interfaces)), h("td", { class: "mono" }, list(p.capabilities) || "none"),
          h("td", { class: "mono" }, list(p.grants) || "none"),
          h("td", { class: "muted" }, dateTime(p.updatedAt || p.createdAt))))))
        : emptyState("No plugins", "Publish one with POST /plugins (manifest + bundle); see the API guide."));
    } catch (exc) {
      mount(box, problem(exc, "Plugins"));
    }
    box.removeAttribute("aria-busy");
  };
  const el = h("div", {}, h("div", { class: "page-head" }, h("h1", {}, "Plugins"),
    h("p", { class: "muted" }, "Sandboxed JavaScript: math and KPI processors. A capability runs only once granted here.")),
  h("section", { class: "panel" }, box));
  return { el, ready: load(), refresh: load };
}

function pluginSection(ctx, pluginId) {
  const box = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const load = async () => {
    try {
      const p = await ctx.load(`/plugins/${encodeURIComponent(pluginId)}`);
      const versions = p.versions || [];
      const declared = [...new Set(versions.flatMap((v) => v.capabilities || []))];
      const granted = new Set(p.grants || []);
      const boxes = declared.map((cap) => h("input", { type: "checkbox", value: cap, checked: granted.has(cap) }));
      const latest = versions.find((v) => v.version === p.latestVersion) || versions[0] || {};
      mount(box,
        h("div", { class: "page-head" }, h("a", { class: "back", href: "#/admin/plugins" }, icon("back"), "Plugins"),
          h("h1", {}, p.name || p.id), h("p", { class: "muted mono" }, `${p.id} · latest ${p.latestVersion || "?"}`
            + ` · ${list(latest.interfaces)}`)),
        h("div", { class: "cols-2" },
          h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Versions"),
            versions.length ? h("table", { class: "grid" },
              h("caption", { class: "visually-hidden" }, "Published versions"),
              h("thead", {}, h("tr", {}, ["Version", "Interfaces", "Capabilities", "Timeout", "Bundle", "Published"]
                .map((t) => h("th", { scope: "col" }, t)))),
              h("tbody", {}, versions.map((v) => h("tr", {},
                h("td", { class: "mono" }, v.version, v.version === p.latestVersion ? h("span", { class: "tag tag-best" }, "LATEST") : null),
                h("td", {}, list(v.interfaces)), h("td", { class: "mono" }, list(v.capabilities) || "none"),
                h("td", { class: "num mono" }, v.timeoutMs ? `${v.timeoutMs} ms` : ""),
                h("td", { class: "mono", title: v.bundleSha256 || "" }, v.bundleBytes ? `${(v.bundleBytes / 1024).toFixed(1)} KB · ${String(v.bundleSha256 || "").slice(0, 8)}` : ""),
                h("td", { class: "muted" }, dateTime(v.createdAt))))))
              : h("p", { class: "muted" }, "No versions published.")),
          h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Capability grants"),
            declared.length ? h("form", { onsubmit: async (event) => {
              event.preventDefault();
              const capabilities = boxes.filter((b) => b.checked).map((b) => b.value);
              try {
                await ctx.api.put(`/plugins/${encodeURIComponent(pluginId)}/grants`, { capabilities });
                toast("Grants saved", "ok");
              } catch (exc) { toast(exc.missingRoute ? "Grants are not available on this API" : exc.describe(), "error"); }
            } },
            h("fieldset", { class: "checks column" }, h("legend", {}, "Declared by the manifest; granted for your team"),
              boxes.map((b) => h("label", { class: "check mono" }, b, b.value))),
            h("p", { class: "muted small" }, "fetch:<host> lets the plugin call that host; storage gives it a private key/value store."),
            h("button", { type: "submit", class: "btn btn-primary btn-small" }, "Save grants"))
              : h("p", { class: "muted" }, "This plugin declares no capabilities: it runs with none."))));
    } catch (exc) {
      mount(box, problem(exc, "Plugin"));
    }
    box.removeAttribute("aria-busy");
  };
  return { el: box, ready: load(), refresh: load };
}
