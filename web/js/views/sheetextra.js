// The run sheet's tabs from the original platform that read across runs: Setup change (this run's setup
// against the car's previous run), Overview (best, stints, open issues, setup changes at a glance), and
// the custom lap columns dialog (columns from the keys laps carry in `custom`).

import { h, emptyState, field } from "../dom.js";
import { lapTime, gap, humanKey, dateTime } from "../format.js";
import { bestLap, bestSectors, theoreticalBest, stints, counts, median } from "../laps.js";

// The setup a run sheet ran with: its newest saved setup, else the Setup tab's values.
export function setupOf(sheet, setups) {
  const saved = setups.filter((s) => s.runSheetId === sheet.id)
    .sort((a, b) => String(b.updatedAt || b.createdAt).localeCompare(String(a.updatedAt || a.createdAt)));
  if (saved.length) return { values: saved[0].values || {}, source: `saved setup "${saved[0].name}"` };
  return { values: sheet.setup || {}, source: "the Setup tab" };
}

// The car's run before this one: the run sheet of the latest session that started earlier.
export function previousSheet(sheet, carSheets, sessions) {
  const startOf = (s) => {
    const session = sessions.find((x) => x.id === s.sessionId);
    return session ? String(session.startsAt || session.createdAt || "") : "";
  };
  const mine = startOf(sheet);
  return carSheets.filter((s) => s.id !== sheet.id && startOf(s) && startOf(s) < mine)
    .sort((a, b) => startOf(b).localeCompare(startOf(a)))[0] || null;
}

// Parameter by parameter: what changed from `before` to `after` (unchanged ones are left out).
export function setupDiff(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])].sort();
  const rows = [];
  for (const key of keys) {
    const was = before ? before[key] : undefined;
    const now = after ? after[key] : undefined;
    if (JSON.stringify(was) === JSON.stringify(now)) continue;
    let change = "changed";
    if (was === undefined) change = "added";
    else if (now === undefined) change = "removed";
    else if (typeof was === "number" && typeof now === "number") change = `${now > was ? "+" : ""}${Math.round((now - was) * 1000) / 1000}`;
    rows.push({ key, was, now, change });
  }
  return rows;
}

const show = (value) => (value === undefined ? "—" : value === null ? "null" : typeof value === "object" ? JSON.stringify(value) : String(value));

function diffTable(rows, caption) {
  return h("table", { class: "grid diff-grid" }, h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, ["Parameter", "Previous run", "This run", "Change"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-key": r.key, class: `diff-${/^[+-]?\d/.test(r.change) ? "delta" : r.change}` },
      h("th", { scope: "row" }, humanKey(r.key)), h("td", { class: "mono" }, show(r.was)), h("td", { class: "mono" }, show(r.now)),
      h("td", { class: "mono change" }, r.change)))));
}

export function setupChangePanel({ sheet, carSheets, sessions, setups }) {
  const previous = previousSheet(sheet, carSheets, sessions);
  const session = previous && sessions.find((s) => s.id === previous.sessionId);
  const now = setupOf(sheet, setups);
  if (!previous) {
    return h("section", { class: "panel" }, h("h3", { class: "panel-title" }, "Setup change"),
      emptyState("No previous run", "This is the car's first run sheet of the event: nothing to compare with."));
  }
  const was = setupOf(previous, setups);
  const rows = setupDiff(was.values, now.values);
  return h("section", { class: "panel", "aria-labelledby": "setup-change-title" },
    h("div", { class: "panel-head" }, h("h3", { class: "panel-title", id: "setup-change-title" }, "Setup change"),
      h("span", { class: "muted small" }, `against ${session ? session.name : "the previous run"} · `,
        h("a", { href: `#/run-sheets/${previous.id}/setup` }, "open it"))),
    h("p", { class: "muted small" }, `Previous: ${was.source}; this run: ${now.source}.`),
    rows.length ? h("div", { class: "grid-scroll" }, diffTable(rows, "Setup changes against the previous run"))
      : emptyState("No changes", "The car ran the previous run's setup."));
}

export function overviewPanel({ laps, sheet, carSheets, sessions, setups, issues, driverName }) {
  const best = bestLap(laps);
  const theo = theoreticalBest(bestSectors(laps));
  const runs = stints(laps);
  const previous = previousSheet(sheet, carSheets, sessions);
  const changes = previous ? setupDiff(setupOf(previous, setups).values, setupOf(sheet, setups).values) : [];
  const open = issues.filter((i) => i.status !== "resolved");
  const tile = (label, value, sub) => h("div", { class: "kpi" }, h("div", { class: "kpi-label" }, label),
    h("div", { class: "kpi-value mono" }, value), h("div", { class: "kpi-sub muted" }, sub || ""));
  return h("div", { class: "tab-body overview" },
    h("div", { class: "kpis overview-kpis", role: "group", "aria-label": "At a glance" },
      tile("Best lap", best ? lapTime(best.lapTimeMs) : "—", best ? `lap ${best.lapNumber} · ${driverName(best)}` : "no valid lap"),
      tile("Theoretical best", theo ? lapTime(theo) : "—", theo && best ? `${gap(theo - best.lapTimeMs)} vs best` : ""),
      tile("Stints", String(runs.length), `${laps.length} laps`),
      tile("Open issues", String(open.length), open.length ? open.map((i) => i.severity).filter((s) => s === "critical" || s === "high").length + " high or critical" : "none"),
      tile("Setup changes", previous ? String(changes.length) : "—", previous ? "against the previous run" : "first run")),
    h("div", { class: "cols-2" },
      h("section", { class: "panel", "aria-labelledby": "ov-stints" }, h("h3", { class: "panel-title", id: "ov-stints" }, "Stints"),
        runs.length ? h("table", { class: "grid" }, h("caption", { class: "visually-hidden" }, "Stints of this run"),
          h("thead", {}, h("tr", {}, ["Stint", "Laps", "Driver", "Best", "Median"].map((t) => h("th", { scope: "col", class: t === "Driver" ? "" : "num" }, t)))),
          h("tbody", {}, runs.map((s) => {
            const timed = s.laps.filter(counts).map((l) => l.lapTimeMs);
            return h("tr", {}, h("td", { class: "num mono" }, String(s.stint ?? "")), h("td", { class: "num mono" }, `${s.from}–${s.to}`),
              h("td", {}, driverName(s.laps[0])), h("td", { class: "num mono" }, timed.length ? lapTime(Math.min(...timed)) : ""),
              h("td", { class: "num mono" }, timed.length ? lapTime(median(timed)) : ""));
          }))) : emptyState("No laps yet")),
      h("section", { class: "panel", "aria-labelledby": "ov-issues" }, h("h3", { class: "panel-title", id: "ov-issues" }, "Open issues"),
        open.length ? h("ul", { class: "plain-list" }, open.map((i) => h("li", {}, h("span", { class: `sev sev-${i.severity}` }, i.severity), " ",
          h("strong", {}, i.title), h("span", { class: "muted small" }, ` · ${dateTime(i.createdAt)}`))))
          : h("p", { class: "muted" }, "No open issues on this car.")),
      h("section", { class: "panel", "aria-labelledby": "ov-changes" }, h("h3", { class: "panel-title", id: "ov-changes" }, "Setup changes"),
        !previous ? h("p", { class: "muted" }, "First run of this car: nothing to compare.")
          : changes.length ? h("ul", { class: "plain-list" }, changes.map((c) => h("li", {}, h("strong", {}, humanKey(c.key)), " ",
            h("span", { class: "mono" }, `${show(c.was)} → ${show(c.now)}`), h("span", { class: "muted small" }, ` (${c.change})`))))
            : h("p", { class: "muted" }, "Same setup as the previous run.")),
      h("section", { class: "panel", "aria-labelledby": "ov-ambient" }, h("h3", { class: "panel-title", id: "ov-ambient" }, "Conditions"),
        Object.keys(sheet.ambient || {}).length ? h("dl", { class: "kv" }, Object.entries(sheet.ambient).map(([k, v]) => [h("dt", {}, humanKey(k)), h("dd", { class: "mono" }, show(v))]))
          : h("p", { class: "muted" }, "No ambient readings recorded."))));
}

// Keys the laps carry in `custom`, with a guess of their type.
export function customKeys(laps) {
  const found = new Map();
  for (const lap of laps) {
    for (const [key, value] of Object.entries(lap.custom || {})) {
      const type = typeof value === "number" ? "number" : typeof value === "boolean" ? "boolean" : "text";
      if (!found.has(key)) found.set(key, type);
      else if (found.get(key) !== type) found.set(key, "text");
    }
  }
  return [...found.entries()].map(([key, type]) => ({ key, type }));
}

// The "Lap columns" dialog: tick the custom keys to show as grid columns; returns the new lapColumns.
export function openColumnsDialog({ laps, columns, onSave }) {
  const known = customKeys(laps);
  for (const c of columns) if (!known.some((k) => k.key === c.key)) known.push({ key: c.key, type: c.type });
  const rows = known.map((k) => {
    const current = columns.find((c) => c.key === k.key);
    const on = h("input", { type: "checkbox", checked: Boolean(current), "aria-label": `Show ${k.key}` });
    const label = h("input", { type: "text", maxlength: "80", value: current ? current.label : humanKey(k.key), "aria-label": `${k.key}: column title` });
    const unit = h("input", { type: "text", maxlength: "20", value: current && current.unit ? current.unit : "", "aria-label": `${k.key}: unit` });
    return { key: k.key, type: current ? current.type : k.type, on, label, unit };
  });
  const newKey = h("input", { type: "text", maxlength: "40", placeholder: "e.g. rearTyreTempC", autocomplete: "off" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "columns-title" });
  const form = h("form", { method: "dialog", novalidate: true },
    h("header", { class: "dialog-head" }, h("h2", { id: "columns-title" }, "Lap columns"),
      h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
    h("p", { class: "muted small" }, "Values that laps carry beyond the standard fields (lap.custom), shown as extra grid columns."),
    rows.length ? h("table", { class: "grid columns-grid" }, h("caption", { class: "visually-hidden" }, "Custom lap values"),
      h("thead", {}, h("tr", {}, ["Show", "Key", "Title", "Unit", "Type"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.on), h("td", { class: "mono" }, r.key), h("td", {}, r.label), h("td", {}, r.unit),
        h("td", { class: "muted" }, r.type)))))
      : h("p", { class: "muted" }, "No lap carries custom values yet."),
    field("Add a key that laps will carry", newKey, "It shows as an empty column until laps carry it."),
    error,
    h("footer", { class: "dialog-foot" },
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Save columns")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = rows.filter((r) => r.on.checked).map((r) => ({ key: r.key, label: r.label.value.trim() || r.key, type: r.type,
      ...(r.unit.value.trim() ? { unit: r.unit.value.trim() } : {}) }));
    const extra = newKey.value.trim();
    if (extra) {
      if (!/^[A-Za-z0-9_.-]{1,40}$/.test(extra)) {
        error.textContent = "A key is 1 to 40 letters, digits, dots, dashes or underscores.";
        error.hidden = false;
        return;
      }
      if (!chosen.some((c) => c.key === extra)) chosen.push({ key: extra, label: humanKey(extra), type: "number" });
    }
    dialog.close();
    onSave(chosen);
  });
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
