// The run sheet: a car's session. KPI strip, then tabs: Laps (grid + lap-time chart), Setup,
// Tyres, Notes, Files. Joins the session room, so teammates' changes arrive live and in order.

import { h, mount, icon, toast, emptyState } from "../dom.js";
import { lapTime, gap, dateTime } from "../format.js";
import { bestLap, bestSectors, theoreticalBest, sectorCount, stints, isPitLap, upsertLap, counts } from "../laps.js";
import { lapChart, sectorCharts, chartLegend } from "./chart.js";
import { openLapDialog } from "./lapform.js";
import { kvEditor, notesEditor, filesTab } from "./sheettabs.js";
import { runSheetIssues } from "./issues.js";
import { setupChangePanel, overviewPanel, openColumnsDialog } from "./sheetextra.js";

// The original's run sheet tabs (Main = Laps, Engineer Notes = Notes), plus the car's issues.
const TABS = [["laps", "Laps"], ["setup", "Setup"], ["changes", "Setup change"], ["tyres", "Tyres"], ["wear", "Wear"],
  ["ambient", "Ambient"], ["notes", "Notes"], ["issues", "Issues"], ["files", "Files"], ["overview", "Overview"]];

export function runSheetView(ctx, runSheetId, initialTab) {
  const st = { sheet: null, session: null, event: null, car: null, drivers: [], cars: [], siblings: [], carSheets: [],
    sessions: [], laps: [], lapsError: null, tab: TABS.some(([k]) => k === initialTab) ? initialTab : "laps",
    flash: new Set(), tabView: null };
  const head = h("div", { class: "sheet-head" });
  const kpis = h("div", { class: "kpis", role: "group", "aria-label": "Run sheet summary" });
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Run sheet" });
  const panel = h("div", { class: "tab-panel", role: "tabpanel", tabindex: "-1" });
  const el = h("div", { class: "page page-wide sheet", "aria-busy": "true" }, head, kpis, tablist, panel);
  mount(head, h("p", { class: "muted" }, "Loading run sheet…"));

  // Laps as shown: the server's plus writes still in the outbox.
  function shownLaps() {
    const laps = st.laps.map((l) => ({ ...l }));
    for (const item of ctx.outbox.items()) {
      if (item.kind === "lap.create" && item.meta.runSheetId === runSheetId) {
        laps.push({ ...item.meta.lap, id: item.id, runSheetId, _pending: true });
      } else if (item.kind === "lap.update" && item.meta.runSheetId === runSheetId) {
        const i = laps.findIndex((l) => l.id === item.meta.lapId);
        if (i >= 0) laps[i] = { ...laps[i], ...item.body, _pending: true };
      }
    }
    return laps.sort((a, b) => a.lapNumber - b.lapNumber);
  }

  function shownSheet() {
    const sheet = { ...st.sheet };
    const pendingFields = new Set();
    for (const item of ctx.outbox.items()) {
      if (item.kind === "run_sheet.update" && item.meta.runSheetId === runSheetId) {
        Object.assign(sheet, item.body);
        for (const k of Object.keys(item.body)) pendingFields.add(k);
      }
    }
    return { sheet, pendingFields };
  }

  function driverName(lap) {
    const d = st.drivers.find((x) => x.id === lap.driverId) || st.drivers.find((x) => lap.driverNumber && x.number === lap.driverNumber);
    return d ? d.name : lap.driverNumber ? `#${lap.driverNumber}` : "";
  }

  async function load(quiet = false) {
    try {
      const sheet = await ctx.load(`/run-sheets/${runSheetId}`);
      const [session, car] = await Promise.all([ctx.load(`/sessions/${sheet.sessionId}`), ctx.load(`/cars/${sheet.carId}`)]);
      const [event, drivers, siblings, cars, carSheets, sessions] = await Promise.all([
        ctx.load(`/events/${session.eventId}`),
        ctx.loadAll("/drivers", { carId: car.id }),
        ctx.loadAll("/run-sheets", { sessionId: session.id }),
        ctx.loadAll("/cars", { eventId: session.eventId }),
        ctx.loadAll("/run-sheets", { carId: car.id }),
        ctx.loadAll("/sessions", { eventId: session.eventId }),
      ]);
      Object.assign(st, { sheet, session, car, event, drivers, siblings, cars, carSheets, sessions });
      await loadLaps();
      if (!quiet) ctx.realtime.join(session.id);
      renderAll();
    } catch (error) {
      if (!quiet) {
        mount(head, h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load this run sheet"),
          h("p", {}, error.describe ? error.describe() : String(error))));
      }
    }
    el.removeAttribute("aria-busy");
  }

  async function loadLaps() {
    try {
      st.laps = await ctx.loadAll("/laps", { runSheetId });
      st.laps.sort((a, b) => a.lapNumber - b.lapNumber);
      st.lapsError = null;
    } catch (error) {
      st.lapsError = error;
    }
  }

  function renderAll() {
    renderHead();
    renderKpis();
    renderTabs();
    renderTab();
  }

  function renderHead() {
    const { session, car, event } = st;
    ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name, href: `#/events/${event.id}` },
      { label: session.name, href: `#/sessions/${session.id}` }, { label: `#${car.number}` }]);
    ctx.shell.setNav("events");
    const carLinks = st.siblings.map((sheet) => {
      const c = st.cars.find((x) => x.id === sheet.carId);
      return c ? { sheet, car: c } : null;
    }).filter(Boolean).sort((a, b) => String(a.car.number).localeCompare(String(b.car.number), undefined, { numeric: true }));
    const sessionLinks = st.carSheets.map((sheet) => ({ sheet, session: st.sessions.find((x) => x.id === sheet.sessionId) }))
      .filter((x) => x.session).sort((a, b) => String(a.session.startsAt).localeCompare(String(b.session.startsAt)));
    const tab = st.tab === "laps" ? "" : `/${st.tab}`;
    mount(head,
      h("div", { class: "sheet-title" },
        h("span", { class: "car-chip big", style: { "--livery": car.liveryColor || "#888" } }, `#${car.number}`),
        h("div", {},
          h("h1", {}, `${session.name}`, h("span", { class: "muted" }, ` · Car ${car.number}`)),
          h("p", { class: "muted" }, `${event.name} · ${session.type} · ${dateTime(session.startsAt)}${car.class ? ` · ${car.class}` : ""}`))),
      h("div", { class: "switchers" },
        h("nav", { class: "segmented", "aria-label": "Cars in this session" },
          carLinks.map(({ sheet, car: c }) => h("a", { href: `#/run-sheets/${sheet.id}${tab}`, "aria-current": sheet.id === runSheetId ? "page" : null },
            h("span", { class: "swatch", style: { background: c.liveryColor || "#888" }, "aria-hidden": "true" }), `#${c.number}`))),
        h("nav", { class: "segmented", "aria-label": "Sessions of this car" },
          sessionLinks.map(({ sheet, session: x }) => h("a", { href: `#/run-sheets/${sheet.id}${tab}`,
            "aria-current": sheet.id === runSheetId ? "page" : null }, x.name)))));
  }

  function renderKpis() {
    const laps = shownLaps();
    const best = bestLap(laps);
    const sectors = bestSectors(laps);
    const theo = theoreticalBest(sectors);
    const timed = laps.filter((l) => Number.isFinite(l.lapTimeMs));
    const lastLap = timed[timed.length - 1];
    const valid = laps.filter(counts).length;
    const pits = laps.filter(isPitLap).length;
    const amb = st.sheet.ambient || {};
    const tile = (label, value, sub, cls = "") => h("div", { class: `kpi ${cls}` },
      h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value mono" }, value), h("div", { class: "kpi-sub muted" }, sub || ""));
    mount(kpis,
      tile("Best lap", best ? lapTime(best.lapTimeMs) : "—", best ? `lap ${best.lapNumber} · ${driverName(best)}` : "no valid lap", "kpi-best"),
      tile("Best sectors", theo ? lapTime(theo) : "—", theo && best ? `${gap(theo - best.lapTimeMs)} vs best lap` : "theoretical best", "kpi-theo"),
      tile("Last lap", lastLap ? lapTime(lastLap.lapTimeMs) : "—", lastLap ? `lap ${lastLap.lapNumber}${best ? ` · ${gap(lastLap.lapTimeMs - best.lapTimeMs)}` : ""}` : ""),
      tile("Laps", String(laps.length), `${valid} at pace · ${laps.length - valid} other`),
      tile("Stints", String(stints(laps).length), `${pits} pit stop${pits === 1 ? "" : "s"}`),
      tile("Track", amb.trackTempC !== undefined ? `${amb.trackTempC}°C` : "—",
        [amb.airTempC !== undefined ? `air ${amb.airTempC}°C` : null, amb.humidityPct !== undefined ? `${amb.humidityPct}% RH` : null].filter(Boolean).join(" · ")));
  }

  function renderTabs() {
    mount(tablist, TABS.map(([key, label]) => h("button", { type: "button", role: "tab", id: `tab-${key}`,
      "aria-selected": String(st.tab === key), "aria-controls": "sheet-panel", tabindex: st.tab === key ? "0" : "-1",
      onclick: () => selectTab(key),
      onkeydown: (e) => {
        const i = TABS.findIndex(([k]) => k === key);
        const next = e.key === "ArrowRight" ? TABS[(i + 1) % TABS.length] : e.key === "ArrowLeft" ? TABS[(i + TABS.length - 1) % TABS.length]
          : e.key === "Home" ? TABS[0] : e.key === "End" ? TABS[TABS.length - 1] : null;
        if (next) { e.preventDefault(); selectTab(next[0]); tablist.querySelector(`#tab-${next[0]}`).focus(); }
      } }, label)));
    panel.id = "sheet-panel";
    panel.setAttribute("aria-labelledby", `tab-${st.tab}`);
  }

  function selectTab(key) {
    if (st.tab === key) return;
    st.tab = key;
    history.replaceState(null, "", `#/run-sheets/${runSheetId}${key === "laps" ? "" : `/${key}`}`);
    renderTabs();
    renderTab();
    renderHead();
  }

  function renderTab() {
    st.tabView = null;
    if (st.tab === "laps") return mount(panel, lapsTab());
    if (st.tab === "files") {
      st.tabView = filesTab(ctx, runSheetId);
      return mount(panel, st.tabView.el);
    }
    if (st.tab === "issues") {
      st.tabView = runSheetIssues(ctx, { sheet: st.sheet, car: st.car, session: st.session, laps: shownLaps });
      return mount(panel, st.tabView.el);
    }
    const { sheet, pendingFields } = shownSheet();
    const editable = ctx.canWrite();
    const editors = [];
    const kv = (title, key, hint) => {
      const editor = kvEditor({ title, value: sheet[key], editable, pending: pendingFields.has(key), hint,
        onSave: (value) => saveSheet({ [key]: value }, title) });
      editors.push(editor);
      return editor.el;
    };
    let body;
    if (st.tab === "setup") {
      body = h("div", { class: "tab-body cols-2" }, kv("Setup", "setup", "The car as it ran this session."), setupsPanel());
    } else if (st.tab === "changes") {
      const diff = h("div", {}, h("p", { class: "muted" }, "Loading…"));
      carData().then(({ setups }) => mount(diff, setupChangePanel({ sheet: shownSheet().sheet, carSheets: st.carSheets,
        sessions: st.sessions, setups }))).catch((error) => mount(diff, h("p", { class: "form-error" }, describe(error))));
      body = h("div", { class: "tab-body cols-2" }, diff,
        kv("Change notes", "setupChange", "Why it changed and what to look for (the table is worked out from the setups)."));
    } else if (st.tab === "tyres") {
      body = h("div", { class: "tab-body cols-2" }, kv("Tyres", "tyres", "Sets, pressures (cold/hot), compounds."));
    } else if (st.tab === "wear") {
      body = h("div", { class: "tab-body cols-2" }, kv("Wear", "wear", "Tread depth or wear per corner after the run; brake pad wear."));
    } else if (st.tab === "ambient") {
      body = h("div", { class: "tab-body cols-2" }, kv("Ambient", "ambient", "Air and track temperature, humidity, wind."));
    } else if (st.tab === "overview") {
      body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
      carData().then(({ setups, issues }) => mount(body, overviewPanel({ laps: shownLaps(), sheet: shownSheet().sheet,
        carSheets: st.carSheets, sessions: st.sessions, setups, issues, driverName })))
        .catch((error) => mount(body, h("p", { class: "form-error" }, describe(error))));
    } else {
      const notes = notesEditor({ value: sheet.engineerNotes, editable, pending: pendingFields.has("engineerNotes"),
        onSave: (text) => saveSheet({ engineerNotes: text }, "Engineer notes") });
      editors.push(notes);
      body = h("div", { class: "tab-body cols-2" }, notes.el);
    }
    st.tabView = { isDirty: () => editors.some((e) => e.isDirty()) };
    mount(panel, body);
  }

  // The car's saved setups and issues (for Setup change and Overview), read when those tabs open.
  async function carData() {
    const [setups, issues] = await Promise.all([ctx.loadAll("/setups", { carId: st.car.id }),
      ctx.loadAll("/issues", { carId: st.car.id }).catch(() => [])]);
    return { setups, issues };
  }

  function describe(error) {
    return error.describe ? error.describe() : String(error);
  }

  function setupsPanel() {
    const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    ctx.loadAll("/setups", { runSheetId }).then((setups) => {
      mount(list, setups.length ? h("ul", { class: "plain-list" }, setups.map((x) => h("li", {},
        h("strong", {}, x.name), h("span", { class: "muted small" }, ` · ${dateTime(x.updatedAt || x.createdAt)}`),
        x.notes ? h("p", { class: "muted small" }, x.notes) : null)))
        : h("p", { class: "muted" }, "No saved setups linked to this run sheet."));
    }).catch((error) => mount(list, h("p", { class: "form-error" }, error.describe ? error.describe() : String(error))));
    return h("section", { class: "panel" }, h("h3", { class: "panel-title" }, "Saved setups"), list);
  }

  function saveSheet(fields, label) {
    ctx.outbox.enqueue({ method: "PATCH", path: `/run-sheets/${runSheetId}`, body: fields,
      label: `${label} · #${st.car.number} ${st.session.name}`, kind: "run_sheet.update", meta: { runSheetId } });
    return ctx.status.state === "online" ? "saving…" : "queued · sends on reconnect";
  }

  // The Laps tab: grid beside the chart.
  let gridBody = null;
  let chartBox = null;
  let sectorBox = null;
  let legendBox = null;
  let gridCaption = null;
  let resizeObserver = null;

  function lapsTab() {
    gridBody = h("tbody");
    gridCaption = h("span", { class: "muted small" });
    chartBox = h("div", { class: "chart-box" });
    sectorBox = h("div", { class: "sector-tiles", role: "group", "aria-label": "Best sectors" });
    legendBox = h("div");
    const laps = shownLaps();
    const nSectors = sectorCount(laps);
    const custom = lapColumns();
    const headers = ["Lap", "Stint", "Driver", "Lap time", ...Array.from({ length: nSectors }, (_, i) => `S${i + 1}`),
      "Δ best", "Pit", "Fuel", "Tyre", "Flag", ...custom.map((c) => c.label + (c.unit ? ` (${c.unit})` : ""))];
    const numeric = new Set(["Lap", "Stint", "Lap time", "Δ best", "Pit", "Fuel", ...Array.from({ length: nSectors }, (_, i) => `S${i + 1}`)]);
    const table = h("table", { class: "grid laps-grid", "aria-describedby": "laps-legend" },
      h("caption", { class: "visually-hidden" }, `Laps of car ${st.car.number} in ${st.session.name}`),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col", class: numeric.has(t) ? "num" : "" }, t)),
        ctx.canWrite() ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null)),
      gridBody);
    const addBtn = ctx.canWrite() ? h("button", { type: "button", class: "btn btn-primary btn-small", id: "add-lap",
      onclick: () => addLap() }, icon("plus"), "Add lap") : null;
    const columnsBtn = ctx.canWrite() ? h("button", { type: "button", class: "btn btn-ghost btn-small", id: "lap-columns",
      onclick: () => openColumnsDialog({ laps: shownLaps(), columns: lapColumns(),
        onSave: (columns) => saveSheet({ lapColumns: columns }, "Lap columns") }) }, "Columns") : null;
    const gridPanel = h("section", { class: "panel grid-panel", "aria-labelledby": "laps-title" },
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "laps-title" }, "Laps"), gridCaption,
        h("div", { class: "panel-actions" }, columnsBtn, addBtn)),
      st.lapsError ? h("p", { class: "form-error" }, st.lapsError.describe()) : null,
      h("div", { class: "grid-scroll" }, table),
      h("p", { class: "grid-legend muted small", id: "laps-legend" },
        h("span", { class: "tag tag-best" }, "BEST"), " best lap  ",
        h("span", { class: "sector-best-key" }, "00.000"), " best sector  ",
        h("span", { class: "tag tag-out" }, "OUT"), h("span", { class: "tag tag-in" }, "IN"), " out / in lap  ",
        h("s", {}, "1:23.456"), " invalid (struck through)  ",
        h("span", { class: "tag tag-pending" }, "PENDING"), " not yet saved"));
    const chartPanel = h("section", { class: "panel chart-panel", "aria-labelledby": "chart-title" },
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "chart-title" }, "Lap times"),
        h("span", { class: "muted small" }, "by stint and driver")),
      chartBox, legendBox,
      h("h3", { class: "subhead" }, "Best sectors"), sectorBox);
    renderLaps();
    if (resizeObserver) resizeObserver.disconnect();
    resizeObserver = new ResizeObserver(() => renderChart());
    resizeObserver.observe(chartBox);
    return h("div", { class: "laps-layout" }, gridPanel, chartPanel);
  }

  function renderLaps() {
    if (!gridBody) return;
    const laps = shownLaps();
    const best = bestLap(laps);
    const sectors = bestSectors(laps);
    const nSectors = sectorCount(laps);
    const custom = lapColumns();
    const pendingCount = laps.filter((l) => l._pending).length;
    gridCaption.textContent = `${laps.length} laps${pendingCount ? ` · ${pendingCount} pending` : ""}`;
    let prevStint = null;
    const rows = laps.map((lap) => {
      const isBest = best && lap.id === best.id;
      const invalid = lap.isValid === false;
      const stintStart = prevStint !== null && (lap.stint ?? null) !== prevStint;
      prevStint = lap.stint ?? null;
      const cls = ["lap-row", isBest && "is-best", invalid && "is-invalid", lap.isOutLap && "is-out", lap.isInLap && "is-in",
        lap._pending && "is-pending", stintStart && "stint-start", st.flash.has(lap.id) && "flash"].filter(Boolean).join(" ");
      const timeCell = (ms, extraCls, srNote) => h("td", { class: `num mono ${extraCls || ""}` },
        invalid && Number.isFinite(ms) ? h("s", {}, lapTime(ms)) : lapTime(ms),
        srNote ? h("span", { class: "visually-hidden" }, ` (${srNote})`) : null);
      return h("tr", { class: cls, "data-lap-id": lap.id, "data-lap": lap.lapNumber,
        ondblclick: () => ctx.canWrite() && !lap._pending && editLap(lap) },
      h("td", { class: "num mono lap-no" }, String(lap.lapNumber),
        lap.isOutLap ? h("span", { class: "tag tag-out" }, "OUT") : null,
        lap.isInLap ? h("span", { class: "tag tag-in" }, "IN") : null,
        invalid ? h("span", { class: "tag tag-inv", title: "invalid lap" }, "INV") : null,
        isBest ? h("span", { class: "tag tag-best" }, "BEST") : null,
        lap._pending ? h("span", { class: "tag tag-pending" }, "PENDING") : null),
      h("td", { class: "num mono" }, lap.stint ?? ""),
      h("td", { class: "driver" }, driverName(lap)),
      timeCell(lap.lapTimeMs, `lap-time${isBest ? " best-cell" : ""}`, [isBest && "best lap", invalid && "invalid lap"].filter(Boolean).join(", ")),
      Array.from({ length: nSectors }, (_, i) => {
        const ms = Array.isArray(lap.sectorTimesMs) ? lap.sectorTimesMs[i] : null;
        const bestSector = !invalid && sectors[i] && Number.isFinite(ms) && ms === sectors[i].ms && counts(lap);
        return timeCell(ms, bestSector ? "best-sector" : "", bestSector ? "best sector" : null);
      }),
      h("td", { class: "num mono delta" }, best && Number.isFinite(lap.lapTimeMs) && !isBest ? gap(lap.lapTimeMs - best.lapTimeMs) : ""),
      h("td", { class: "num mono" }, lapTime(lap.pitTimeMs)),
      h("td", { class: "num mono" }, lap.fuelL ?? ""),
      h("td", {}, lap.tyreSet ?? ""),
      h("td", {}, lap.flag ? h("span", { class: `flag flag-${String(lap.flag).toUpperCase()}` }, String(lap.flag).toUpperCase()) : ""),
      custom.map((c) => h("td", { class: c.type === "number" ? "num mono" : "" }, formatCustom((lap.custom || {})[c.key]))),
      ctx.canWrite() ? h("td", { class: "row-actions" }, lap._pending ? null : h("button", { type: "button",
        class: "btn btn-ghost btn-icon", "aria-label": `Edit lap ${lap.lapNumber}`, onclick: () => editLap(lap) }, icon("edit"))) : null);
    });
    const cols = 4 + nSectors + 5 + custom.length + (ctx.canWrite() ? 1 : 0);
    mount(gridBody, rows.length ? rows : h("tr", {}, h("td", { colspan: cols }, emptyState("No laps yet",
      ctx.canWrite() ? "Add the first lap, or import timing." : "Laps appear here as they are recorded."))));
    renderChart();
    mount(sectorBox, sectorCharts(laps, sectors));
  }

  // Custom lap columns as shown (a queued change included).
  function lapColumns() {
    const columns = shownSheet().sheet.lapColumns;
    return Array.isArray(columns) ? columns : [];
  }

  function renderChart() {
    if (!chartBox || !chartBox.isConnected) return;
    const width = Math.max(320, Math.floor(chartBox.clientWidth || 640));
    const height = Math.max(260, Math.min(420, Math.round(width * 0.56)));
    const { svg, styles } = lapChart(shownLaps(), st.drivers, { width, height });
    mount(chartBox, svg);
    mount(legendBox, chartLegend(styles));
  }

  function nextLapDefaults() {
    const laps = shownLaps();
    const last = laps[laps.length - 1];
    if (!last) return { lapNumber: 1, stint: 1, isValid: true, isOutLap: true, driverId: st.drivers[0] && st.drivers[0].id };
    return { lapNumber: last.lapNumber + 1, stint: last.isInLap ? (last.stint || 0) + 1 : last.stint, driverId: last.driverId,
      isValid: true, isOutLap: Boolean(last.isInLap), tyreSet: last.tyreSet };
  }

  function addLap() {
    openLapDialog({ next: nextLapDefaults(), drivers: st.drivers, sectorCount: sectorCount(shownLaps()),
      onSave: (fields) => {
        ctx.outbox.enqueue({ method: "POST", path: "/laps", body: { runSheetId, ...fields },
          label: `Add lap ${fields.lapNumber} · #${st.car.number} ${st.session.name}`, kind: "lap.create",
          meta: { runSheetId, lap: fields } });
      } });
  }

  function editLap(lap) {
    openLapDialog({ lap, drivers: st.drivers, sectorCount: sectorCount(shownLaps()), onSave: (fields) => {
      if (!Object.keys(fields).length) return;
      ctx.outbox.enqueue({ method: "PATCH", path: `/laps/${lap.id}`, body: fields,
        label: `Edit lap ${lap.lapNumber} · #${st.car.number} ${st.session.name}`, kind: "lap.update",
        meta: { runSheetId, lapId: lap.id } });
    } });
  }

  function flash(id) {
    st.flash.add(id);
    setTimeout(() => {
      st.flash.delete(id);
      const row = gridBody && gridBody.querySelector(`tr[data-lap-id="${CSS.escape(id)}"]`);
      if (row) row.classList.remove("flash");
    }, 2500);
  }

  function lapsChanged() {
    if (st.tab === "laps") renderLaps();
    renderKpis();
  }

  function sheetChanged(columnsBefore) {
    renderKpis();
    if (st.tab === "laps") {
      if (JSON.stringify(lapColumns()) !== columnsBefore) renderTab();
      return;
    }
    if (st.tabView && st.tabView.isDirty && st.tabView.isDirty()) {
      toast("A teammate changed this run sheet; your unsaved edits are kept. Save to overwrite, or switch tabs to see theirs.", "warn", 8000);
      return;
    }
    if (st.tab !== "files" && st.tab !== "issues") renderTab();
  }

  function applyLap(lap, live) {
    if (!lap || lap.runSheetId !== runSheetId) return;
    if (upsertLap(st.laps, lap) && live) flash(lap.id);
  }

  const view = {
    el,
    ready: load(),
    refresh: async () => {
      if (!st.sheet) return load();
      await load(true);
      if (st.tabView && st.tabView.refresh) st.tabView.refresh();
    },
    onJoined: ({ first }) => {
      // Close the window between the first fetch and the join.
      if (first && st.sheet) loadLaps().then(lapsChanged);
    },
    onChange: (message) => {
      const [entity, op] = String(message.type).split(".");
      const data = message.data || {};
      if (entity === "lap") {
        if (op === "delete") {
          st.laps = st.laps.filter((l) => l.id !== data.id);
        } else {
          applyLap(data, true);
        }
        lapsChanged();
      } else if (entity === "run_sheet" && data.id === runSheetId) {
        if (op === "update" && (!st.sheet.updatedAt || !data.updatedAt || data.updatedAt >= st.sheet.updatedAt)) {
          const { lapsAdded, lapEventsPushed, ...fields } = data;
          const columnsBefore = JSON.stringify(lapColumns());
          st.sheet = { ...st.sheet, ...fields };
          sheetChanged(columnsBefore);
          // A big batch (a timing import) is announced once instead of lap by lap: reload the laps.
          if (lapEventsPushed === false) loadLaps().then(lapsChanged);
        }
      } else if (entity === "setup" && st.tab === "setup" && !(st.tabView && st.tabView.isDirty())) {
        renderTab();
      } else if (entity === "issue" && st.tab === "issues" && data.carId === st.car.id && st.tabView) {
        if (op === "delete") st.tabView.refresh();
        else st.tabView.apply(data);
      } else if (entity === "attachment" && st.tab === "files" && data.runSheetId === runSheetId && st.tabView) {
        st.tabView.refresh();
      }
    },
    onOutbox: (event) => {
      if (!st.sheet) return;
      const item = event.item;
      if (item && String(item.kind || "").startsWith("issue.")) {
        if (st.tab !== "issues" || !st.tabView) return;
        if (event.type === "sent" && event.result) st.tabView.apply(event.result);
        else if (event.type === "sent") st.tabView.refresh();
        else st.tabView.rerender();
        if (event.type === "sent" && item.kind === "issue.create") toast("Issue reported", "ok", 2500);
        return;
      }
      if (item && item.meta && item.meta.runSheetId !== runSheetId) return;
      if (event.type === "sent" && event.result) {
        if (item.kind === "lap.create" || item.kind === "lap.update") {
          const laps = Array.isArray(event.result.items) ? event.result.items : [event.result];
          for (const lap of laps) applyLap(lap, false);
        } else if (item.kind === "run_sheet.update" && event.result.id === runSheetId) {
          st.sheet = { ...st.sheet, ...event.result };
          if (!(st.tabView && st.tabView.isDirty && st.tabView.isDirty())) renderTab();
        }
      } else if (event.type === "sent" && item) {
        // Applied, but without an answer to apply (an earlier attempt's was lost): read it back.
        if (item.kind === "lap.create" || item.kind === "lap.update") {
          loadLaps().then(lapsChanged);
        } else if (item.kind === "run_sheet.update") {
          ctx.load(`/run-sheets/${runSheetId}`).then((sheet) => {
            st.sheet = { ...st.sheet, ...sheet };
            renderKpis();
            if (st.tab !== "laps" && !(st.tabView && st.tabView.isDirty && st.tabView.isDirty())) renderTab();
          }).catch(() => {}); // unreachable now: the next refresh or room message brings it
        }
      }
      if (event.type === "sent" && item.kind === "run_sheet.update") toast("Saved", "ok", 2500);
      // New lap columns change the grid's head: draw the tab again (pending ones show at once).
      if (event.type === "queued" && item.kind === "run_sheet.update" && st.tab === "laps" && "lapColumns" in item.body) {
        renderTab();
        return;
      }
      lapsChanged();
    },
    destroy: () => {
      if (resizeObserver) resizeObserver.disconnect();
    },
  };
  return view;
}

function formatCustom(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

