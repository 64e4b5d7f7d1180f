// Car issues: the event's list (per car, by status) and the run sheet's Issues tab. Open, start and
// resolve go through the outbox, so an issue reported offline is sent when the pill is Online again.

import { h, mount, icon, emptyState, notAvailable, field, toast } from "../dom.js";
import { dateTime, lapTime } from "../format.js";

export const SEVERITIES = ["low", "medium", "high", "critical"];
export const STATUSES = [["open", "Open"], ["in_progress", "In progress"], ["resolved", "Resolved"]];
const SEVERITY_RANK = Object.fromEntries(SEVERITIES.map((s, i) => [s, i]));
const statusLabel = (status) => (STATUSES.find(([k]) => k === status) || [status, status])[1];

// Issues as shown: the server's plus the outbox's (created or changed, not yet sent).
export function withPending(ctx, issues) {
  const shown = issues.map((i) => ({ ...i }));
  // The room's push can land before the POST's answer: the stored copy then stands for the queued one.
  const stored = (body, queuedAt) => issues.some((i) => i.carId === body.carId && i.title === body.title
    && (i.lapId || null) === (body.lapId || null) && Date.parse(i.createdAt) > Date.parse(queuedAt) - 300000);
  for (const item of ctx.outbox.items()) {
    if (item.kind === "issue.create" && stored(item.body, item.queuedAt)) continue;
    if (item.kind === "issue.create") shown.push({ ...item.body, id: item.id, status: item.body.status || "open", _pending: true });
    else if (item.kind === "issue.update") {
      const i = shown.findIndex((x) => x.id === item.meta.issueId);
      if (i >= 0) shown[i] = { ...shown[i], ...item.body, _pending: true };
    }
  }
  return shown;
}

export function sortIssues(issues) {
  const open = (i) => (i.status === "resolved" ? 1 : 0);
  return [...issues].sort((a, b) => open(a) - open(b) || SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]
    || String(b.createdAt || "~").localeCompare(String(a.createdAt || "~")));
}

export function reportIssue(ctx, body, label) {
  ctx.outbox.enqueue({ method: "POST", path: "/issues", body, label: `Report issue: ${body.title}${label ? ` · ${label}` : ""}`,
    kind: "issue.create", meta: { carId: body.carId, runSheetId: body.runSheetId || null } });
}

export function setIssueStatus(ctx, issue, status) {
  ctx.outbox.enqueue({ method: "PATCH", path: `/issues/${issue.id}`, body: { status },
    label: `${statusLabel(status)}: ${issue.title}`, kind: "issue.update", meta: { issueId: issue.id, carId: issue.carId } });
}

// The "Report issue" dialog; `laps` (optional) offers the lap it came from.
export function openIssueDialog({ cars, carId = null, laps = [], lapId = null, onSave }) {
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "issue-dialog-title" });
  const car = h("select", { required: true }, cars.map((c) => h("option", { value: c.id, selected: c.id === carId },
    `#${c.number}${c.class ? ` · ${c.class}` : ""}`)));
  const title = h("input", { type: "text", maxlength: "200", required: true, autocomplete: "off" });
  const severity = h("select", {}, SEVERITIES.map((s) => h("option", { value: s, selected: s === "medium" }, s)));
  const lap = laps.length ? h("select", {}, h("option", { value: "" }, "— the run in general"),
    laps.map((l) => h("option", { value: l.id, selected: l.id === lapId }, `Lap ${l.lapNumber}${Number.isFinite(l.lapTimeMs) ? ` · ${lapTime(l.lapTimeMs)}` : ""}`)))
    : null;
  const description = h("textarea", { rows: 4, maxlength: "20000" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { method: "dialog", novalidate: true },
    h("header", { class: "dialog-head" }, h("h2", { id: "issue-dialog-title" }, "Report a car issue"),
      h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
    h("div", { class: "form-grid" }, cars.length > 1 ? field("Car", car) : null, field("What is wrong", title),
      field("Severity", severity), lap ? field("Seen on", lap) : null),
    field("Details", description, "Symptoms, when it happens, what was tried."),
    error,
    h("footer", { class: "dialog-foot" },
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Report issue")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!title.value.trim()) {
      error.textContent = "Say what is wrong (a short title).";
      error.hidden = false;
      title.focus();
      return;
    }
    const body = { carId: car.value, title: title.value.trim(), severity: severity.value };
    if (description.value.trim()) body.description = description.value.trim();
    if (lap && lap.value) body.lapId = lap.value;
    dialog.close();
    onSave(body);
  });
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  title.focus();
}

// One table of issues; `where` says what the From column links to.
export function issueTable(ctx, issues, { cars = [], members = [], sheets = [], sessions = [], laps = [], caption }) {
  const carOf = (id) => cars.find((c) => c.id === id);
  const who = (id) => {
    if (!id) return "—";
    const m = members.find((x) => x.userId === id);
    return m ? m.name || m.email : "a former member";
  };
  const from = (issue) => {
    const sheet = sheets.find((s) => s.id === issue.runSheetId);
    const session = sheet && sessions.find((s) => s.id === sheet.sessionId);
    const lap = laps.find((l) => l.id === issue.lapId);
    if (!issue.runSheetId) return h("span", { class: "muted" }, "—");
    const label = `${session ? session.name : "run sheet"}${lap ? ` · lap ${lap.lapNumber}` : issue.lapId ? " · a lap" : ""}`;
    return h("a", { href: `#/run-sheets/${issue.runSheetId}` }, label);
  };
  const actions = (issue) => {
    if (!ctx.canWrite() || issue._pending && !issue.createdAt) return issue._pending ? h("span", { class: "tag tag-pending" }, "PENDING") : null;
    const next = issue.status === "open" ? [["in_progress", "Start"], ["resolved", "Resolve"]]
      : issue.status === "in_progress" ? [["resolved", "Resolve"]] : [["open", "Reopen"]];
    return [issue._pending ? h("span", { class: "tag tag-pending" }, "PENDING") : null,
      ...next.map(([status, label]) => h("button", { type: "button", class: `btn btn-small ${status === "resolved" ? "btn-primary" : "btn-ghost"}`,
        "aria-label": `${label}: ${issue.title}`, onclick: () => setIssueStatus(ctx, issue, status) }, label))];
  };
  return h("table", { class: "grid issues-grid" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, ["Issue", cars.length ? "Car" : null, "Severity", "Status", "Reported by", "From", "Reported", ""]
      .filter((t) => t !== null).map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
    h("tbody", {}, issues.map((issue) => h("tr", { "data-issue-id": issue.id, class: `issue-row status-${issue.status}${issue._pending ? " is-pending" : ""}` },
      h("td", {}, h("strong", {}, issue.title), issue.description ? h("div", { class: "muted small wrap" }, issue.description) : null),
      cars.length ? h("td", {}, (() => {
        const c = carOf(issue.carId);
        return c ? h("span", { class: "car-chip", style: { "--livery": c.liveryColor || "#888" } }, `#${c.number}`) : "";
      })()) : null,
      h("td", {}, h("span", { class: `sev sev-${issue.severity}` }, issue.severity)),
      h("td", {}, h("span", { class: `badge badge-issue-${issue.status}` }, statusLabel(issue.status))),
      h("td", {}, who(issue.reportedBy)),
      h("td", {}, from(issue)),
      h("td", { class: "muted small" }, issue.createdAt ? dateTime(issue.createdAt) : "queued"),
      h("td", { class: "row-actions" }, actions(issue))))));
}

// The event's car issues: #/events/{id}/issues.
export function issuesView(ctx, eventId) {
  ctx.shell.setNav("events");
  const st = { event: null, cars: [], issues: [], members: [], sheets: [], sessions: [], carFilter: "", statusFilter: "unresolved" };
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const title = h("h1", {}, "Car issues");
  const reportBtn = ctx.canWrite() ? h("button", { type: "button", class: "btn btn-primary", id: "report-issue",
    onclick: () => openIssueDialog({ cars: ours(), carId: st.carFilter || null, onSave: (b) => reportIssue(ctx, b, carLabel(b.carId)) }) },
  icon("plus"), "Report issue") : null;
  const el = h("div", { class: "page page-wide" }, h("div", { class: "page-head" }, title, reportBtn), body);
  const ours = () => st.cars.filter((c) => c.isCompetitor !== true)
    .sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));
  const carLabel = (id) => { const c = st.cars.find((x) => x.id === id); return c ? `#${c.number}` : ""; };

  const load = async () => {
    try {
      const [event, cars, sheets, sessions] = await Promise.all([ctx.load(`/events/${eventId}`),
        ctx.loadAll("/cars", { eventId }), ctx.loadAll("/run-sheets", { eventId }), ctx.loadAll("/sessions", { eventId })]);
      Object.assign(st, { event, cars, sheets, sessions });
      try { st.members = await ctx.loadAll("/members"); } catch { st.members = []; }
      try {
        st.issues = await ctx.loadAll("/issues", { eventId });
      } catch (error) {
        if (error.missingRoute) { mount(body, notAvailable("Car issues")); return; }
        throw error;
      }
      ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name, href: `#/events/${eventId}` }, { label: "Car issues" }]);
      render();
    } catch (error) {
      mount(body, h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load the issues"),
        h("p", {}, error.describe ? error.describe() : String(error))));
    }
    body.removeAttribute("aria-busy");
  };

  const render = () => {
    const all = withPending(ctx, st.issues).filter((i) => st.cars.some((c) => c.id === i.carId));
    const shown = sortIssues(all.filter((i) => (!st.carFilter || i.carId === st.carFilter)
      && (st.statusFilter === "all" || (st.statusFilter === "unresolved" ? i.status !== "resolved" : i.status === st.statusFilter))));
    const count = (status) => all.filter((i) => (!st.carFilter || i.carId === st.carFilter) && i.status === status).length;
    const carSelect = h("select", { id: "issue-car-filter", onchange: (e) => { st.carFilter = e.target.value; render(); } },
      h("option", { value: "" }, "All our cars"), ours().map((c) => h("option", { value: c.id, selected: c.id === st.carFilter }, `#${c.number}`)));
    const statusNav = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Status" },
      [["unresolved", `Unresolved · ${count("open") + count("in_progress")}`], ...STATUSES.map(([k, l]) => [k, `${l} · ${count(k)}`]), ["all", "All"]]
        .map(([key, label]) => h("button", { type: "button", role: "radio", "aria-checked": String(st.statusFilter === key),
          "aria-current": st.statusFilter === key ? "true" : null, onclick: () => { st.statusFilter = key; render(); } }, label)));
    mount(body,
      h("div", { class: "toolbar" }, field("Car", carSelect), statusNav),
      h("section", { class: "panel" }, shown.length
        ? h("div", { class: "grid-scroll" }, issueTable(ctx, shown, { cars: st.cars, members: st.members, sheets: st.sheets,
          sessions: st.sessions, caption: `Car issues of ${st.event.name}` }))
        : emptyState("No issues here", ctx.canWrite() ? "Report one with the button above, or from a run sheet's Issues tab." : "Nothing reported.")));
  };

  const upsert = (issue) => {
    const i = st.issues.findIndex((x) => x.id === issue.id);
    if (i >= 0) st.issues[i] = issue;
    else st.issues.push(issue);
  };

  return {
    el,
    ready: load(),
    refresh: load,
    onOutbox: (event) => {
      if (!st.event || !event.item || !String(event.item.kind || "").startsWith("issue.")) return;
      if (event.type === "sent" && event.result) upsert(event.result);
      else if (event.type === "sent") { load(); return; }
      if (event.type === "sent" && event.item.kind === "issue.create") toast("Issue reported", "ok", 2500);
      render();
    },
  };
}

// The run sheet's Issues tab: this car's unresolved issues and those raised from this run sheet.
export function runSheetIssues(ctx, { sheet, car, session, laps }) {
  const st = { issues: [], members: [], error: null };
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const reportBtn = ctx.canWrite() ? h("button", { type: "button", class: "btn btn-primary btn-small", id: "report-issue",
    onclick: () => openIssueDialog({ cars: [car], carId: car.id, laps: laps(), onSave: (b) => reportIssue(ctx,
      { ...b, sessionId: session.id, runSheetId: sheet.id }, `#${car.number} ${session.name}`) }) }, icon("plus"), "Report issue") : null;
  const load = async () => {
    try {
      const [issues, members] = await Promise.all([ctx.loadAll("/issues", { carId: car.id }),
        ctx.loadAll("/members").catch(() => [])]);
      Object.assign(st, { issues, members, error: null });
    } catch (error) {
      st.error = error;
    }
    render();
    list.removeAttribute("aria-busy");
  };
  const render = () => {
    if (st.error) {
      mount(list, st.error.missingRoute ? notAvailable("Car issues") : h("p", { class: "form-error" }, st.error.describe()));
      return;
    }
    const shown = sortIssues(withPending(ctx, st.issues).filter((i) => i.carId === car.id
      && (i.status !== "resolved" || i.runSheetId === sheet.id)));
    mount(list, shown.length ? h("div", { class: "grid-scroll" }, issueTable(ctx, shown, { members: st.members,
      sheets: [sheet], sessions: [session], laps: laps(), caption: `Issues of car ${car.number}` }))
      : emptyState("No open issues on this car", ctx.canWrite() ? "Report one if something is wrong." : null));
  };
  const el = h("div", { class: "tab-body" }, h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h3", { class: "panel-title" }, `Issues · car #${car.number}`),
      h("span", { class: "muted small" }, "unresolved, and everything raised from this run"),
      h("div", { class: "panel-actions" }, reportBtn)), list));
  load();
  return {
    el,
    refresh: load,
    rerender: render,
    openIssues: () => withPending(ctx, st.issues).filter((i) => i.carId === car.id && i.status !== "resolved"),
    apply: (issue) => {
      const i = st.issues.findIndex((x) => x.id === issue.id);
      if (i >= 0) st.issues[i] = issue; else st.issues.push(issue);
      render();
    },
  };
}
