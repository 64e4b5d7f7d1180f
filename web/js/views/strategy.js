// Strategy of an event and a car: the planned stints above the stints the laps show, driver and fuel
// per stint, and the plan's editor (saved through the outbox: PUT /events/{id}/strategy replaces the
// event's whole plan, so the other cars' stints are sent back unchanged). Joins the event's room.

import { h, mount, icon, emptyState, notAvailable, field, toast } from "../dom.js";
import { lapTime } from "../format.js";

// The plan as shown: the server's, or the newest queued save of this event's plan.
export function shownPlan(planned, outboxItems, eventId) {
  const queued = outboxItems.filter((i) => i.kind === "strategy.update" && i.meta.eventId === eventId);
  return queued.length ? { stints: queued[queued.length - 1].body.stints, pending: true } : { stints: planned, pending: false };
}

// Segments of a timeline row: [{stint, from, laps}] laid end to end from lap 1.
export function segments(stints, lapsOf) {
  let from = 1;
  return stints.map((s) => {
    const laps = lapsOf(s);
    const segment = { stint: s.stint, from, laps, source: s };
    from += laps;
    return segment;
  });
}

export function strategyView(ctx, eventId) {
  ctx.shell.setNav("events");
  const st = { event: null, cars: [], sessions: [], drivers: [], answer: null, car: null, session: null, rows: null, dirty: false, joined: false };
  const canWrite = ctx.canWrite();
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "page page-wide strategy-page" }, h("div", { class: "page-head" }, h("h1", {}, "Strategy")), body);
  const toolbar = h("div", { class: "toolbar" });
  const timeline = h("section", { class: "panel", "aria-labelledby": "timeline-title" });
  const editor = h("section", { class: "panel", "aria-labelledby": "plan-title" });

  const ours = () => st.cars.filter((c) => c.isCompetitor !== true)
    .sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));

  const load = async () => {
    try {
      const [event, cars, sessions] = await Promise.all([ctx.load(`/events/${eventId}`), ctx.loadAll("/cars", { eventId }),
        ctx.loadAll("/sessions", { eventId })]);
      Object.assign(st, { event, cars, sessions });
      if (!st.car || !cars.some((c) => c.id === st.car)) st.car = (ours()[0] || cars[0] || {}).id || null;
      ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name, href: `#/events/${eventId}` }, { label: "Strategy" }]);
      if (!st.joined) { st.joined = true; ctx.realtime.join(`event:${eventId}`); }
      await loadStrategy();
    } catch (error) {
      mount(body, h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load the strategy"),
        h("p", {}, error.describe ? error.describe() : String(error))));
    }
    body.removeAttribute("aria-busy");
  };

  async function loadStrategy() {
    try {
      st.answer = await ctx.load(`/events/${eventId}/strategy${st.session ? `?sessionId=${st.session}` : ""}`);
    } catch (error) {
      if (error.missingRoute) { mount(body, notAvailable("Strategy")); return; }
      throw error;
    }
    st.session = st.answer.sessionId;
    st.drivers = st.car ? await ctx.loadAll("/drivers", { carId: st.car }).catch(() => []) : [];
    if (!st.dirty) st.rows = null;
    mount(body, toolbar, timeline, editor);
    render();
  }

  const driverName = (value) => {
    if (!value) return "";
    const d = st.drivers.find((x) => x.id === value) || st.drivers.find((x) => x.number && x.number === value);
    return d ? d.name : `#${value}`;
  };
  const carAnswer = () => (st.answer.cars || []).find((c) => c.carId === st.car) || { planned: [], actual: [], comparison: [] };
  const plan = () => shownPlan((st.answer.cars || []).flatMap((c) => c.planned), ctx.outbox.items(), eventId);
  const carPlan = () => plan().stints.filter((s) => s.carId === st.car).sort((a, b) => a.stint - b.stint);

  function render() {
    if (!st.answer) return;
    const carSelect = h("select", { id: "strategy-car", onchange: (e) => { st.car = e.target.value; st.dirty = false; st.rows = null; loadStrategy(); } },
      ours().map((c) => h("option", { value: c.id, selected: c.id === st.car }, `#${c.number}${c.class ? ` · ${c.class}` : ""}`)));
    const sessionSelect = h("select", { id: "strategy-session", onchange: (e) => { st.session = e.target.value || null; loadStrategy(); } },
      h("option", { value: "" }, "The latest race"),
      st.sessions.map((s) => h("option", { value: s.id, selected: s.id === st.session }, `${s.name} · ${s.type}`)));
    mount(toolbar, field("Car", carSelect), field("Actual stints from", sessionSelect));
    renderTimeline();
    // A background refresh never swaps the inputs under the cursor (typing would go nowhere).
    if (!(st.dirty && editor.contains(document.activeElement))) renderEditor();
  }

  function renderTimeline() {
    const car = carAnswer();
    const planned = carPlan();
    const actual = car.actual || [];
    const planSegs = segments(planned, (s) => Number(s.plannedLaps) || 0);
    const actualSegs = segments(actual, (s) => s.laps);
    const total = Math.max(1, ...planSegs.map((s) => s.from + s.laps - 1), ...actualSegs.map((s) => s.from + s.laps - 1));
    const bar = (seg, kind) => {
      const s = seg.source;
      const driver = kind === "plan" ? driverName(s.driverId) : driverName(s.driver);
      const fuel = kind === "plan" ? (s.fuelL != null ? `${s.fuelL} L` : "") : (s.fuelUsedL != null ? `${s.fuelUsedL} L used` : s.fuelStartL != null ? `${s.fuelStartL} L` : "");
      const laps = kind === "plan" ? `${seg.laps} laps` : `laps ${s.firstLap}–${s.lastLap}`;
      const label = `Stint ${seg.stint}: ${laps}${driver ? `, ${driver}` : ""}${fuel ? `, ${fuel}` : ""}${kind === "actual" && s.bestLapMs ? `, best ${lapTime(s.bestLapMs)}` : ""}`;
      return h("li", { class: `stint stint-${kind} stint-${seg.stint % 2 ? "odd" : "even"}`, "aria-label": label, title: label,
        style: { left: `${((seg.from - 1) / total) * 100}%`, width: `${(seg.laps / total) * 100}%` } },
      h("strong", {}, `S${seg.stint}`), h("span", {}, ` ${seg.laps}L`),
      driver ? h("span", { class: "stint-driver" }, ` · ${driver}`) : null, fuel ? h("span", { class: "stint-fuel" }, ` · ${fuel}`) : null);
    };
    const row = (label, segs, kind, empty) => h("div", { class: "timeline-row" },
      h("div", { class: "timeline-label" }, label),
      segs.length ? h("ol", { class: "timeline-track", "aria-label": `${label} stints` }, segs.map((s) => bar(s, kind)))
        : h("div", { class: "timeline-track timeline-empty muted small" }, empty));
    const ticks = Array.from({ length: 5 }, (_, i) => Math.round((total * i) / 4) || 1);
    const session = st.sessions.find((s) => s.id === st.answer.sessionId);
    const comparison = (car.comparison || []);
    mount(timeline,
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "timeline-title" }, "Planned vs actual"),
        h("span", { class: "muted small" }, session ? `actual from ${session.name}` : "no race session yet: the plan alone")),
      h("div", { class: "timeline" },
        row("Plan", planSegs, "plan", "No stints planned for this car."),
        row("Actual", actualSegs, "actual", "No laps yet."),
        h("div", { class: "timeline-row timeline-axis", "aria-hidden": "true" }, h("div", { class: "timeline-label" }, "Lap"),
          h("div", { class: "timeline-track" }, ticks.map((t) => h("span", { style: { left: `${((t - 1) / total) * 100}%` } }, String(t)))))),
      comparison.length || actual.length ? h("div", { class: "grid-scroll" }, h("table", { class: "grid strategy-grid" },
        h("caption", { class: "visually-hidden" }, "Planned and actual stints"),
        h("thead", {}, h("tr", {}, ["Stint", "Planned laps", "Actual laps", "Δ laps", "Planned driver", "Actual driver", "Fuel planned", "Fuel used", "Best", "Average"]
          .map((t) => h("th", { scope: "col", class: /laps|Δ|Fuel|Best|Average|Stint/.test(t) ? "num" : "" }, t)))),
        h("tbody", {}, Array.from({ length: Math.max(planned.length ? planned[planned.length - 1].stint : 0, actual.length) }, (_, i) => {
          const n = i + 1;
          const p = planned.find((s) => s.stint === n);
          const a = actual.find((s) => s.stint === n);
          const delta = p && a ? a.laps - p.plannedLaps : null;
          return h("tr", { "data-stint": n },
            h("td", { class: "num mono" }, String(n)),
            h("td", { class: "num mono" }, p ? String(p.plannedLaps) : "—"),
            h("td", { class: "num mono" }, a ? String(a.laps) : "—"),
            h("td", { class: `num mono ${delta < 0 ? "delta-short" : delta > 0 ? "delta-long" : ""}` }, delta === null ? "" : delta > 0 ? `+${delta}` : String(delta)),
            h("td", {}, p ? driverName(p.driverId) : ""), h("td", {}, a ? driverName(a.driver) : ""),
            h("td", { class: "num mono" }, p && p.fuelL != null ? `${p.fuelL}` : ""),
            h("td", { class: "num mono" }, a && a.fuelUsedL != null ? `${a.fuelUsedL}` : ""),
            h("td", { class: "num mono" }, a ? lapTime(a.bestLapMs) : ""),
            h("td", { class: "num mono" }, a ? lapTime(a.averageLapMs) : ""));
        })))) : null);
  }

  function renderEditor() {
    const { pending } = plan();
    if (!st.rows) st.rows = carPlan().map((s) => ({ driverId: s.driverId || "", plannedLaps: s.plannedLaps, tyreSet: s.tyreSet || "", fuelL: s.fuelL ?? "" }));
    const status = h("span", { class: "muted small", "aria-live": "polite" }, pending ? "queued · sends on reconnect" : st.dirty ? "unsaved changes" : "");
    const touch = () => { st.dirty = true; status.textContent = "unsaved changes"; save.disabled = false; };
    const save = h("button", { type: "button", class: "btn btn-primary btn-small", disabled: !st.dirty, onclick: () => savePlan() }, "Save plan");
    const rows = st.rows.map((r, i) => h("tr", { "data-plan-row": i + 1 },
      h("th", { scope: "row", class: "num mono" }, String(i + 1)),
      h("td", {}, h("select", { "aria-label": `Stint ${i + 1} driver`, disabled: !canWrite, onchange: (e) => { r.driverId = e.target.value; touch(); } },
        h("option", { value: "" }, "—"), st.drivers.map((d) => h("option", { value: d.id, selected: d.id === r.driverId }, d.name)))),
      h("td", {}, h("input", { type: "number", min: "1", max: "1000", step: "1", class: "mono", "aria-label": `Stint ${i + 1} planned laps`,
        value: r.plannedLaps ?? "", disabled: !canWrite, oninput: (e) => { r.plannedLaps = e.target.value; touch(); } })),
      h("td", {}, h("input", { type: "text", maxlength: "40", "aria-label": `Stint ${i + 1} tyre set`, value: r.tyreSet, disabled: !canWrite,
        oninput: (e) => { r.tyreSet = e.target.value; touch(); } })),
      h("td", {}, h("input", { type: "number", min: "0", max: "1000", step: "0.1", class: "mono", "aria-label": `Stint ${i + 1} fuel (L)`,
        value: r.fuelL, disabled: !canWrite, oninput: (e) => { r.fuelL = e.target.value; touch(); } })),
      canWrite ? h("td", { class: "row-actions" }, h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": `Remove stint ${i + 1}`,
        onclick: () => { st.rows.splice(i, 1); st.dirty = true; renderEditor(); } }, icon("trash"))) : null));
    const add = canWrite ? h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => {
      const last = st.rows[st.rows.length - 1];
      st.rows.push({ driverId: "", plannedLaps: last ? last.plannedLaps : 30, tyreSet: "", fuelL: last ? last.fuelL : "" });
      st.dirty = true;
      renderEditor();
      editor.querySelector(`tr[data-plan-row="${st.rows.length}"] select`).focus();
    } }, icon("plus"), "Add stint") : null;
    const error = h("p", { class: "form-error", role: "alert", hidden: true, id: "plan-error" });
    mount(editor,
      h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "plan-title" }, "Stint plan"), status,
        canWrite ? h("div", { class: "panel-actions" }, add, save) : null),
      st.rows.length ? h("div", { class: "grid-scroll" }, h("table", { class: "grid plan-grid" },
        h("caption", { class: "visually-hidden" }, "Planned stints of this car"),
        h("thead", {}, h("tr", {}, ["Stint", "Driver", "Laps", "Tyre set", "Fuel (L)"].map((t) => h("th", { scope: "col" }, t)),
          canWrite ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")) : null)),
        h("tbody", {}, rows)))
        : emptyState("No plan for this car", canWrite ? "Add the stints you plan to run." : "Nobody has planned this car's stints yet."),
      error);

    function savePlan() {
      const mine = [];
      for (const [i, r] of st.rows.entries()) {
        const laps = Number(r.plannedLaps);
        if (!Number.isInteger(laps) || laps < 1 || laps > 1000) {
          error.textContent = `Stint ${i + 1}: planned laps must be a whole number from 1 to 1000.`;
          error.hidden = false;
          return;
        }
        const stint = { carId: st.car, stint: i + 1, plannedLaps: laps };
        if (r.driverId) stint.driverId = r.driverId;
        if (String(r.tyreSet).trim()) stint.tyreSet = String(r.tyreSet).trim();
        if (r.fuelL !== "" && r.fuelL != null) stint.fuelL = Number(r.fuelL);
        mine.push(stint);
      }
      const keep = (s) => ({ carId: s.carId, stint: s.stint, plannedLaps: s.plannedLaps,
        ...(s.driverId ? { driverId: s.driverId } : {}), ...(s.tyreSet ? { tyreSet: s.tyreSet } : {}), ...(s.fuelL != null ? { fuelL: s.fuelL } : {}) });
      const others = plan().stints.filter((s) => s.carId !== st.car).map(keep);
      const car = st.cars.find((c) => c.id === st.car);
      ctx.outbox.enqueue({ method: "PUT", path: `/events/${eventId}/strategy`, body: { stints: [...others, ...mine] },
        label: `Stint plan · #${car ? car.number : ""} ${st.event.name}`, kind: "strategy.update", meta: { eventId } });
      st.dirty = false;
      st.rows = null;
      render();
    }
  }

  return {
    el,
    ready: load(),
    refresh: () => loadStrategy().catch(() => {}),
    onJoined: ({ first }) => { if (first && st.answer) loadStrategy().catch(() => {}); },
    onChange: (message) => {
      if (!String(message.type).startsWith("strategy.") || !st.answer) return;
      if (st.dirty) {
        toast("A teammate changed the plan; your unsaved edits are kept. Save to overwrite.", "warn", 8000);
        return;
      }
      loadStrategy().catch(() => {});
    },
    onOutbox: (event) => {
      const item = event.item;
      if (!st.answer || !item || item.kind !== "strategy.update" || item.meta.eventId !== eventId) return;
      if (event.type === "sent") {
        toast("Plan saved", "ok", 2500);
        loadStrategy().catch(() => {});
      } else {
        render();
      }
    },
    destroy: () => ctx.realtime.leave(),
  };
}
