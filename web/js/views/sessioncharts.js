// The session view's pictures, plain SVG: the pace chart (lap times of the picked cars, in/out and
// neutralised laps left out or drawn hollow) and the race trace (gap to the leader on the road, or to
// a reference pace, lap by lap; pit stops marked). They read GET /sessions/{id}/lap-chart columns.

import { s, h } from "../dom.js";
import { lapTime, gap } from "../format.js";

export const CAR_COLORS = ["#38bdf8", "#fbbf24", "#f472b6", "#4ade80", "#fb923c", "#2dd4bf", "#c084fc", "#f87171",
  "#a3e635", "#60a5fa"];
export const MARK = { inLap: 1, outLap: 2, neutralised: 4, invalid: 8 };
const HIDDEN = MARK.inLap | MARK.outLap | MARK.neutralised | MARK.invalid;

// Laps of one car as [{n, t, e, m}] from the columns.
export function lapsOf(item) {
  return item.lapNumbers.map((n, i) => ({ n, t: item.lapTimesMs[i], e: item.elapsedMs[i], m: item.marks[i] }));
}

function niceStep(range, target, steps) {
  return steps.find((step) => range / step <= target) || steps[steps.length - 1];
}

function frame(width, height, title) {
  const id = `sc-${Math.random().toString(36).slice(2, 8)}`;
  const svg = s("svg", { class: "lap-chart session-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-labelledby": id });
  svg.append(s("title", { id }, title));
  return svg;
}

function empty(svg, width, height, text) {
  svg.append(s("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" }, text));
  return svg;
}

const MARGIN = { left: 62, right: 14, top: 14, bottom: 30 };

// Scales of a chart of laps (x: lap number) over values lo..hi rounded to a step; `down` puts
// larger values lower (a gap behind the leader).
function scales(all, lo, hi, steps, width, height, down = false) {
  const m = MARGIN;
  const step = niceStep(hi - lo, 6, steps);
  const min = Math.floor(lo / step) * step;
  const max = Math.ceil(hi / step) * step;
  let first = Infinity;
  let last = -Infinity;
  for (const l of all) { first = Math.min(first, l.n); last = Math.max(last, l.n); }
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const x = (n) => m.left + (last === first ? plotW / 2 : ((n - first) / (last - first)) * plotW);
  const share = (v) => (Math.min(Math.max(v, min), max) - min) / (max - min);
  const y = (v) => m.top + (down ? share(v) : 1 - share(v)) * plotH;
  return { m, lo: min, hi: max, step, first, last, x, y };
}

function xAxis(svg, x, first, last, height, m, width) {
  const g = s("g", { class: "chart-grid" });
  const span = last - first;
  const step = span > 200 ? 50 : span > 80 ? 20 : span > 40 ? 10 : span > 20 ? 5 : span > 10 ? 2 : 1;
  for (let n = Math.ceil(first / step) * step; n <= last; n += step) {
    g.append(s("text", { x: x(n), y: height - m.bottom + 16, "text-anchor": "middle", class: "axis-label" }, n));
  }
  g.append(s("text", { x: width - m.right, y: height - 4, "text-anchor": "end", class: "axis-title" }, "lap"));
  svg.append(g);
}

// series: [{ number, color, ours, laps: [{n, t, e, m}] }]
export function paceChart(series, { width = 640, height = 320, showAll = false } = {}) {
  const shown = series.map((car) => ({ ...car, laps: car.laps.filter((l) => showAll || !(l.m & HIDDEN)) }));
  const all = shown.flatMap((car) => car.laps);
  const svg = frame(width, height, all.length
    ? `Pace of cars ${shown.map((c) => c.number).join(", ")}: lap times by lap${showAll ? "" : ", in/out, neutralised and invalid laps left out"}`
    : "No laps to chart");
  if (!all.length) return empty(svg, width, height, series.length ? "No laps at racing pace yet" : "Pick cars to chart");
  const clean = all.filter((l) => !(l.m & HIDDEN)).map((l) => l.t).sort((a, b) => a - b);
  const basis = clean.length ? clean : all.map((l) => l.t).sort((a, b) => a - b);
  const p90 = basis[Math.min(basis.length - 1, Math.floor(basis.length * 0.9))]; // a slow lap sits at the top edge
  const { m, lo, hi, step, first, last, x, y } = scales(all, basis[0] - 300, Math.max(p90 + 700, basis[0] + 1700),
    [100, 200, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000], width, height);
  const grid = s("g", { class: "chart-grid" });
  for (let t = lo; t <= hi + 1; t += step) {
    grid.append(s("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t) }));
    grid.append(s("text", { x: m.left - 8, y: y(t) + 4, "text-anchor": "end", class: "axis-label" }, lapTime(t)));
  }
  svg.append(grid);
  xAxis(svg, x, first, last, height, m, width);
  for (const car of shown) {
    const g = s("g", { class: `car-series${car.ours ? " ours" : ""}`, "data-car": car.number });
    let run = [];
    const flush = () => {
      if (run.length > 1) g.append(s("polyline", { points: run.join(" "), stroke: car.color, class: "car-line" }));
      run = [];
    };
    let prev = null;
    for (const lap of car.laps) {
      const off = lap.m & HIDDEN;
      if (off || (prev !== null && lap.n !== prev + 1)) flush();
      if (!off) run.push(`${x(lap.n).toFixed(1)},${y(lap.t).toFixed(1)}`);
      prev = lap.n;
    }
    flush();
    if (car.laps.length <= 400) {
      for (const lap of car.laps) {
        const hollow = lap.m & HIDDEN;
        const label = `#${car.number} lap ${lap.n}: ${lapTime(lap.t)}${lap.m & MARK.inLap ? ", in lap" : ""}`
          + `${lap.m & MARK.outLap ? ", out lap" : ""}${lap.m & MARK.neutralised ? ", yellow" : ""}${lap.m & MARK.invalid ? ", invalid" : ""}`;
        g.append(s("circle", { cx: x(lap.n), cy: y(lap.t), r: car.ours ? 3 : 2.4, class: hollow ? "pt-hollow" : "pt",
          fill: hollow ? null : car.color, stroke: hollow ? car.color : null }, s("title", {}, label)));
      }
    }
    svg.append(g);
  }
  return svg;
}

// The reference elapsed time at each lap: the leader on the road (the least elapsed time of any car
// that completed that lap), or `refLapMs` per lap (a reference pace).
export function reference(items, refLapMs = null) {
  if (refLapMs) return (n) => n * refLapMs;
  const best = new Map();
  for (const item of items) {
    item.lapNumbers.forEach((n, i) => {
      const e = item.elapsedMs[i];
      if (!best.has(n) || e < best.get(n)) best.set(n, e);
    });
  }
  return (n) => best.get(n);
}

export function raceTrace(series, ref, { width = 640, height = 320, refLabel = "the leader" } = {}) {
  const pts = series.map((car) => ({ ...car, gaps: car.laps.map((l) => ({ ...l, g: l.e - ref(l.n) }))
    .filter((l) => Number.isFinite(l.g)) }));
  const all = pts.flatMap((c) => c.gaps);
  const svg = frame(width, height, all.length ? `Race trace: gap to ${refLabel} by lap for cars ${pts.map((c) => c.number).join(", ")}`
    : "No laps for a race trace");
  if (!all.length) return empty(svg, width, height, series.length ? "No laps yet" : "Pick cars to chart");
  const gaps = all.map((l) => l.g).sort((a, b) => a - b);
  const low = Math.min(0, gaps[0]);
  const { m, lo, hi, step, first, last, x, y } = scales(all, low,
    Math.max(gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * 0.98))], low + 5000),
    [1000, 2000, 5000, 10000, 20000, 30000, 60000, 120000, 300000, 600000, 1800000], width, height, true);
  const grid = s("g", { class: "chart-grid" });
  for (let t = lo; t <= hi + 1; t += step) {
    grid.append(s("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t), class: t === 0 ? "zero" : null }));
    grid.append(s("text", { x: m.left - 8, y: y(t) + 4, "text-anchor": "end", class: "axis-label" }, t === 0 ? "0" : gap(t)));
  }
  svg.append(grid);
  xAxis(svg, x, first, last, height, m, width);
  for (const car of pts) {
    const g = s("g", { class: `car-series${car.ours ? " ours" : ""}`, "data-car": car.number });
    g.append(s("polyline", { points: car.gaps.map((l) => `${x(l.n).toFixed(1)},${y(l.g).toFixed(1)}`).join(" "),
      stroke: car.color, class: "car-line" }));
    for (const lap of car.gaps.filter((l) => l.m & MARK.inLap)) {
      g.append(s("rect", { x: x(lap.n) - 3, y: y(lap.g) - 3, width: 6, height: 6, class: "pit-mark", stroke: car.color },
        s("title", {}, `#${car.number} pit stop: in lap ${lap.n}, ${gap(lap.g)} to ${refLabel}`)));
    }
    svg.append(g);
  }
  return svg;
}

export function seriesLegend(series) {
  return h("ul", { class: "legend", "aria-label": "Cars in the charts" },
    series.map((car) => h("li", { class: car.ours ? "ours" : "" },
      h("span", { class: "swatch", style: { background: car.color }, "aria-hidden": "true" }), `#${car.number}`,
      car.ours ? h("span", { class: "tag tag-ours" }, "OURS") : null)),
    h("li", {}, h("span", { class: "lg lg-pit-mark", "aria-hidden": "true" }), "pit stop (trace)"),
    h("li", {}, h("span", { class: "lg lg-hollow", "aria-hidden": "true" }), "in/out, yellow or invalid lap"));
}
