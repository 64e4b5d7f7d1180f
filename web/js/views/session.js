// The session view: every car of a session. Standings from the server (official results where
// imported), a class filter, our cars standing out; a pace chart and, for races, a race trace of
// the cars picked; live from the session room; timing import through the presigned upload.

import { h, mount, icon, toast, emptyState, field } from "../dom.js";
import { lapTime, gap, dateTime } from "../format.js";
import { CAR_COLORS, lapsOf, paceChart, raceTrace, reference, seriesLegend } from "./sessioncharts.js";

const STANDINGS_DEBOUNCE_MS = 250;
const IMPORT_POLL_MS = 1000;
const JOIN_WAIT_MS = 1500; // fetch after joining the room (no lap falls between), but never wait longer

function gapText(ms, laps) {
  if (laps) return `+${laps} lap${laps === 1 ? "" : "s"}`;
  return ms === null || ms === undefined ? "" : gap(ms);
}

export function sessionView(ctx, sessionId) {
  const started = performance.now();
  const st = { session: null, event: null, standings: null, chart: null, classFilter: "", picked: null,
    showAll: false, traceRef: "leader", previous: new Map(), importing: null, reloadTimer: null };
  const head = h("div", { class: "page-head" }, h("p", { class: "muted" }, "Loading session…"));
  const tableBox = h("div", { class: "grid-scroll standings-scroll" });
  const caption = h("span", { class: "muted small" });
  const classSelect = h("select", { id: "class-filter", onchange: () => { st.classFilter = classSelect.value; renderTable(); } });
  const paceBox = h("div", { class: "chart-box", id: "pace-chart" });
  const traceBox = h("div", { class: "chart-box", id: "race-trace" });
  const legendBox = h("div");
  const showAll = h("input", { type: "checkbox", id: "show-all-laps", onchange: () => { st.showAll = showAll.checked; renderCharts(); } });
  const traceRef = h("select", { id: "trace-ref", onchange: () => { st.traceRef = traceRef.value; renderCharts(); } },
    h("option", { value: "leader" }, "Gap to the leader"), h("option", { value: "pace" }, "Gap to the winner's average pace"));
  const tracePanel = h("section", { class: "panel", "aria-labelledby": "trace-title" },
    h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "trace-title" }, "Race trace"),
      h("div", { class: "panel-actions" }, field("Reference", traceRef))),
    traceBox);
  const importBox = h("div");
  const el = h("div", { class: "page page-wide session-view", "aria-busy": "true" }, head,
    h("section", { class: "panel", "aria-labelledby": "standings-title" },
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "standings-title" }, "Standings"), caption,
        h("div", { class: "panel-actions" }, field("Class", classSelect))),
      tableBox,
      h("p", { class: "grid-legend muted small" }, h("span", { class: "tag tag-ours" }, "OURS"), " our cars  ",
        h("span", { class: "tag tag-road" }, "ROAD P1"), " position on the road where the official order differs  ",
        "Chart: tick a car to add it to the charts")),
    h("div", { class: "session-charts" },
      h("section", { class: "panel", "aria-labelledby": "pace-title" },
        h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "pace-title" }, "Pace"),
          h("div", { class: "panel-actions" }, h("label", { class: "check" }, showAll, "Show in/out, yellow and invalid laps"))),
        paceBox, legendBox),
      tracePanel),
    importBox);

  async function loadData() {
    const [standings, chart] = await Promise.all([ctx.load(`/sessions/${sessionId}/standings`),
      ctx.load(`/sessions/${sessionId}/lap-chart`)]);
    st.standings = standings;
    st.chart = chart;
  }

  // Join first, fetch once joined: a lap committed in between reaches us as a message.
  const joined = new Promise((resolve) => { st.joined = resolve; });
  ctx.realtime.join(sessionId);

  async function load(quiet = false) {
    try {
      const session = await ctx.load(`/sessions/${sessionId}`);
      if (!quiet) await Promise.race([joined, new Promise((resolve) => setTimeout(resolve, JOIN_WAIT_MS))]);
      st.fetched = true;
      const [event] = await Promise.all([ctx.load(`/events/${session.eventId}`), loadData()]);
      Object.assign(st, { session, event });
      renderAll();
      if (st.missed) reloadSoon(true);
      if (!quiet) {
        const ms = Math.round(performance.now() - started);
        el.dataset.loadMs = String(ms);
        window.race.lastSessionLoad = { ms, laps: st.chart.items.reduce((n, c) => n + c.lapNumbers.length, 0) };
      }
    } catch (error) {
      if (!quiet) {
        mount(head, h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load this session"),
          h("p", {}, error.describe ? error.describe() : String(error))));
      }
    }
    el.removeAttribute("aria-busy");
  }

  // Standings again, soon: several laps arriving together cost one request.
  function reloadSoon(withChart = false) {
    st.reloadChart = st.reloadChart || withChart;
    if (st.reloadTimer) return;
    st.reloadTimer = setTimeout(async () => {
      const chart = st.reloadChart;
      st.reloadTimer = null;
      st.reloadChart = false;
      try {
        if (chart) await loadData();
        else st.standings = await ctx.load(`/sessions/${sessionId}/standings`);
        renderTable();
        renderCharts();
      } catch { /* unreachable now: the next message or refresh brings it */ }
    }, STANDINGS_DEBOUNCE_MS);
  }

  function renderAll() {
    const { session, event } = st;
    ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name, href: `#/events/${event.id}` },
      { label: session.name }]);
    ctx.shell.setNav("events");
    st.carCount = h("span", { class: "muted" });
    mount(head, h("h1", {}, session.name, st.carCount),
      h("p", { class: "muted" }, `${event.name} · ${session.type} · ${dateTime(session.startsAt)}`));
    tracePanel.hidden = session.type !== "race";
    renderImport();
    renderTable();
    renderCharts();
  }

  function classes() {
    return [...new Set(st.standings.items.map((c) => c.class).filter(Boolean))].sort();
  }

  function defaultPicks() {
    const items = st.standings.items;
    const ours = items.filter((c) => c.isOurs);
    const ourClasses = new Set(ours.map((c) => c.class));
    const rivals = items.filter((c) => !c.isOurs && (!ours.length || ourClasses.has(c.class)) && c.bestLapMs !== null)
      .sort((a, b) => a.bestLapMs - b.bestLapMs).slice(0, 3);
    return new Set([...ours, ...rivals].map((c) => c.number));
  }

  // The default follows the standings until the user picks a car; from then on, theirs.
  function picked() {
    return st.picked ?? defaultPicks();
  }

  function togglePick(number, on) {
    if (st.picked === null) st.picked = defaultPicks();
    const set = st.picked;
    if (on) set.add(number); else set.delete(number);
    renderCharts();
  }

  function renderTable() {
    const all = st.standings.items;
    const known = classes();
    if (st.classFilter && !known.includes(st.classFilter)) st.classFilter = "";
    mount(classSelect, h("option", { value: "" }, "All classes"), known.map((c) => h("option", { value: c }, c)));
    classSelect.value = st.classFilter;
    const rows = st.classFilter ? all.filter((c) => c.class === st.classFilter) : all;
    st.carCount.textContent = ` · ${all.length} car${all.length === 1 ? "" : "s"}`;
    const byClass = Boolean(st.classFilter);
    const race = st.standings.sessionType === "race";
    const official = st.standings.resultsImported;
    caption.textContent = `${rows.length} cars · ${official ? "official results" : race ? "order on the road" : "by best lap"}`;
    const headers = [["Pos", "num"], ["Car", ""], ["Class", ""], ["Team", "team"], ["Driver", ""], ["Laps", "num"],
      [byClass ? "Gap (class)" : "Gap", "num"], ["Int", "num"], ["Last", "num"], ["Best", "num"], ["Pit", "num"],
      ["Stint", "num"], ...(official ? [["Status", ""], ["Penalty", "num"]] : []), ["Chart", ""]];
    const picks = picked();
    const body = rows.map((car) => {
      const key = car.number;
      const moved = st.previous.has(key) && st.previous.get(key) !== car.position;
      const position = byClass ? car.classPosition : car.position;
      const roadDiffers = official && car.roadPosition !== null && car.roadPosition !== car.position;
      const gapMs = byClass ? car.gapToClassLeaderMs : car.gapToLeaderMs;
      const gapLaps = byClass ? car.gapToClassLeaderLaps : car.gapToLeaderLaps;
      const check = h("input", { type: "checkbox", checked: picks.has(key), "aria-label": `Chart car ${key}`,
        onchange: (e) => togglePick(key, e.target.checked) });
      return h("tr", { class: ["standing", car.isOurs && "is-ours", moved && "flash"].filter(Boolean).join(" "),
        "data-car": key, "data-position": car.position },
      h("td", { class: "num mono pos" }, String(position),
        roadDiffers ? h("span", { class: "tag tag-road", title: "position on the road" }, `ROAD P${car.roadPosition}`) : null),
      h("th", { scope: "row", class: "car" }, h("span", { class: "car-chip" }, `#${key}`),
        car.isOurs ? h("span", { class: "tag tag-ours" }, "OURS") : null),
      h("td", {}, car.class || ""),
      h("td", { class: "team" }, car.team || ""),
      h("td", { class: "driver" }, car.driverName || (car.driverNumber ? `#${car.driverNumber}` : "")),
      h("td", { class: "num mono" }, String(car.laps)),
      h("td", { class: "num mono gap" }, position === 1 ? (race || !byClass ? "Leader" : "") : gapText(gapMs, gapLaps)),
      h("td", { class: "num mono" }, gapText(car.gapToAheadMs, car.gapToAheadLaps)),
      h("td", { class: "num mono" }, lapTime(car.lastLapMs)),
      h("td", { class: "num mono best" }, lapTime(car.bestLapMs),
        car.bestLapNumber ? h("span", { class: "muted small" }, ` L${car.bestLapNumber}`) : null),
      h("td", { class: "num mono" }, String(car.pitStops)),
      h("td", { class: "num mono" }, car.stint ?? ""),
      official ? h("td", {}, car.status || "") : null,
      official ? h("td", { class: "num mono penalty" }, car.penaltyMs ? `+${lapTime(car.penaltyMs)}` : "") : null,
      h("td", { class: "pick" }, check));
    });
    st.previous = new Map(all.map((c) => [c.number, c.position]));
    const table = h("table", { class: "grid standings-grid" },
      h("caption", { class: "visually-hidden" }, `Standings of ${st.session.name}`),
      h("thead", {}, h("tr", {}, headers.map(([t, cls]) => h("th", { scope: "col", class: cls }, t)))),
      h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: headers.length },
        emptyState("No cars yet", ctx.canWrite() ? "Import the official timing below." : "Cars appear as laps are recorded.")))));
    mount(tableBox, table);
  }

  function series() {
    const picks = picked();
    const cars = new Map(st.standings.items.map((c) => [c.number, c]));
    return st.chart.items.filter((item) => picks.has(item.number)).map((item, i) => ({
      number: item.number, color: CAR_COLORS[i % CAR_COLORS.length], ours: Boolean(cars.get(item.number)?.isOurs),
      laps: lapsOf(item),
    }));
  }

  function renderCharts() {
    if (!st.chart || !paceBox.isConnected) return;
    const width = Math.max(320, Math.floor(paceBox.clientWidth || 600));
    const height = Math.max(240, Math.min(380, Math.round(width * 0.55)));
    const cars = series();
    mount(paceBox, paceChart(cars, { width, height, showAll: st.showAll }));
    mount(legendBox, seriesLegend(cars));
    if (st.standings.sessionType !== "race") return;
    const winner = st.standings.items[0];
    const pace = st.traceRef === "pace" && winner && winner.laps ? (winner.totalTimeMs ?? winner.elapsedMs) / winner.laps : null;
    const ref = reference(st.chart.items, pace);
    mount(traceBox, raceTrace(cars, ref, { width, height, refLabel: pace ? `#${winner.number}'s average pace` : "the leader" }));
  }

  // A lap from the room: into its car's columns at once, standings from the server shortly after.
  function applyLap(lap, op) {
    const item = st.chart && st.chart.items.find((c) => c.carId === lap.carId);
    if (!item) return reloadSoon(true);
    const at = item.lapNumbers.indexOf(lap.lapNumber);
    if (op === "delete") {
      if (at >= 0) for (const col of ["lapNumbers", "lapTimesMs", "elapsedMs", "marks"]) item[col].splice(at, 1);
      return reloadSoon();
    }
    const green = (flag) => !flag || ["GF", "G", "GREEN", "FF", "CHK", "CHEQUERED"].includes(String(flag).toUpperCase());
    // Neutralised when it ended under a flag; a lap that began under one (the restart lap) the server marks.
    const mark = (lap.isInLap ? 1 : 0) | (lap.isOutLap ? 2 : 0) | (green(lap.flag) ? 0 : 4) | (lap.isValid === false ? 8 : 0);
    let i = at;
    if (i < 0) {
      i = item.lapNumbers.findIndex((n) => n > lap.lapNumber);
      if (i < 0) i = item.lapNumbers.length;
      item.lapNumbers.splice(i, 0, lap.lapNumber);
      item.lapTimesMs.splice(i, 0, lap.lapTimeMs);
      item.elapsedMs.splice(i, 0, 0);
      item.marks.splice(i, 0, mark);
    } else {
      item.lapTimesMs[i] = lap.lapTimeMs;
      item.marks[i] = mark;
    }
    const fileElapsed = lap.custom && Number.isFinite(lap.custom.elapsedMs) ? lap.custom.elapsedMs : null;
    item.elapsedMs[i] = fileElapsed ?? (i > 0 ? item.elapsedMs[i - 1] : 0) + lap.lapTimeMs;
    if (!st.chartFrame) st.chartFrame = requestAnimationFrame(() => { st.chartFrame = null; renderCharts(); });
    reloadSoon();
  }

  // ---- import from the page ----

  function renderImport() {
    if (!ctx.canWrite()) { mount(importBox); return; }
    const picker = h("input", { type: "file", id: "timing-file", accept: ".csv,.CSV,text/csv" });
    const button = h("button", { type: "button", class: "btn btn-primary btn-small", id: "import-timing",
      onclick: () => startImport(picker, button) }, icon("upload"), "Import");
    st.importStatus = h("div", { class: "import-status", role: "status", "aria-live": "polite" });
    mount(importBox, h("section", { class: "panel", "aria-labelledby": "import-title" },
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "import-title" }, "Official timing"),
        h("div", { class: "panel-actions upload" }, field("Timing file (Al Kamel CSV)", picker), button)),
      h("p", { class: "muted small" }, "A lap analysis export (23_Analysis…CSV) adds the laps of every car; an official results export ",
        "(03_…Results…CSV) sets the classification, penalties included. The same file again adds nothing."),
      st.importStatus));
    if (st.importing) showImport(st.importing);
  }

  async function startImport(picker, button) {
    const file = picker.files[0];
    if (!file) { toast("Choose a timing file first", "warn"); picker.focus(); return; }
    button.disabled = true;
    mount(st.importStatus, h("p", {}, `Uploading ${file.name}…`));
    try {
      const grant = await ctx.api.post(`/sessions/${sessionId}/timing-imports/upload-url`);
      if (file.size > grant.maxBytes) throw new Error(`the file is over ${Math.round(grant.maxBytes / 1048576)} MB`);
      const put = await fetch(grant.url, { method: grant.method, headers: { "Content-Type": "application/octet-stream" }, body: file });
      if (!put.ok) throw new Error(`storage refused the upload (${put.status})`);
      const begun = await ctx.api.post(`/sessions/${sessionId}/timing-imports`, { s3Key: grant.s3Key });
      st.importing = { ...begun, fileName: file.name };
      showImport(st.importing);
      await follow(begun.id, file.name);
      if (picker.files[0] === file) picker.value = ""; // a file chosen meanwhile for the next import stays
    } catch (error) {
      mount(st.importStatus, h("p", { class: "form-error" }, `Import failed: ${error.describe ? error.describe() : error.message}`));
    } finally {
      button.disabled = false;
    }
  }

  async function follow(importId, fileName) {
    while (st.importing && st.importing.id === importId && st.importing.status === "running") {
      await new Promise((resolve) => setTimeout(resolve, IMPORT_POLL_MS));
      const state = await ctx.api.get(`/sessions/${sessionId}/timing-imports/${importId}`);
      if (!st.importing || st.importing.id !== importId) return;
      st.importing = { ...state, fileName };
      showImport(st.importing);
    }
    if (st.importing && st.importing.status === "done") reloadSoon(true);
  }

  function showImport(state) {
    if (!st.importStatus) return;
    const results = state.kind === "results";
    const created = results ? state.resultsCreated : state.lapsCreated;
    const updated = results ? state.resultsUpdated : state.lapsUpdated;
    const what = results ? "results" : "laps";
    const nothingNew = state.status === "done" && !created && !updated;
    const rejected = state.rowsRejected || [];
    mount(st.importStatus,
      h("p", { class: `import-line import-${state.status}`, "data-status": state.status, "data-import-id": state.id || "" },
        h("strong", {}, state.status === "running" ? "Importing" : state.status === "done" ? "Imported" : "Failed"),
        ` ${state.fileName || ""} · ${results ? "official results" : "lap analysis"}`),
      h("dl", { class: "kv import-counts" },
        h("dt", {}, "Rows read"), h("dd", { class: "mono", "data-count": "rowsRead" }, String(state.rowsRead ?? 0)),
        h("dt", {}, `${results ? "Results" : "Laps"} created`), h("dd", { class: "mono", "data-count": "created" }, String(created ?? 0)),
        h("dt", {}, `${results ? "Results" : "Laps"} updated`), h("dd", { class: "mono", "data-count": "updated" }, String(updated ?? 0)),
        h("dt", {}, "Rows rejected"), h("dd", { class: "mono", "data-count": "rejected" }, String(state.rowsRejectedCount ?? 0))),
      nothingNew ? h("p", { class: "import-nothing-new" }, `Nothing new: every ${what === "laps" ? "lap" : "result"} of this file was already here.`) : null,
      state.error ? h("p", { class: "form-error" }, state.error) : null,
      rejected.length ? h("table", { class: "grid rejected" }, h("caption", { class: "muted small" }, "Rejected rows"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Line"), h("th", { scope: "col" }, "Reason"))),
        h("tbody", {}, rejected.slice(0, 50).map((r) => h("tr", {}, h("td", { class: "num mono" }, String(r.line)), h("td", {}, r.reason)))))
        : null);
  }

  let resizeObserver = new ResizeObserver(() => renderCharts());
  resizeObserver.observe(paceBox);

  return {
    el,
    ready: load(),
    refresh: () => (st.session ? load(true) : load()),
    onJoined: ({ first }) => {
      st.joined();
      if (first && st.fetched) reloadSoon(true); // joined after the fetch began: close that window
    },
    onChange: (message) => {
      const [entity, op] = String(message.type).split(".");
      const data = message.data || {};
      if (!st.chart) st.missed = true; // arrived during the first fetch: fetch again once it is in
      else if (entity === "lap") applyLap(data, op);
      else if (entity === "run_sheet" || entity === "car") reloadSoon(true);
      else if (entity === "timing_import") {
        if (st.importing && st.importing.id === data.id) {
          st.importing = { ...st.importing, ...data };
          showImport(st.importing);
        }
        if (data.status === "done") reloadSoon(true);
      }
    },
    destroy: () => {
      if (resizeObserver) resizeObserver.disconnect();
      resizeObserver = null;
      if (st.reloadTimer) clearTimeout(st.reloadTimer);
      st.importing = null;
    },
  };
}
