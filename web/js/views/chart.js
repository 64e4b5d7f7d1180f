// The lap-time chart: plain SVG. Lap times through the session coloured by driver, stints as
// bands, pit laps marked, the best lap ringed, the theoretical best (best sectors) as a line,
// and one small sector chart per sector with its best marked.

import { s, h } from "../dom.js";
import { lapTime } from "../format.js";
import { bestLap, bestSectors, counts, isPitLap, stints, theoreticalBest, sectorCount } from "../laps.js";

export const DRIVER_COLORS = ["#38bdf8", "#fbbf24", "#f472b6", "#4ade80", "#fb923c", "#2dd4bf"];
const SHAPES = ["circle", "square", "diamond", "triangle"];
const BEST = "#c084fc";

export function driverStyles(laps, drivers) {
  const order = [];
  for (const lap of [...laps].sort((a, b) => a.lapNumber - b.lapNumber)) {
    const key = lap.driverId || lap.driverNumber || "?";
    if (!order.includes(key)) order.push(key);
  }
  for (const d of drivers) if (!order.includes(d.id)) order.push(d.id);
  const styles = new Map();
  order.forEach((key, i) => {
    const driver = drivers.find((d) => d.id === key || d.number === key);
    styles.set(key, { color: DRIVER_COLORS[i % DRIVER_COLORS.length], shape: SHAPES[i % SHAPES.length],
      name: driver ? driver.name : `Driver ${key}` });
  });
  return styles;
}

function marker(shape, x, y, r, attrs) {
  if (shape === "square") return s("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r, ...attrs });
  if (shape === "diamond") {
    return s("path", { d: `M${x} ${y - r * 1.3}L${x + r * 1.3} ${y}L${x} ${y + r * 1.3}L${x - r * 1.3} ${y}Z`, ...attrs });
  }
  if (shape === "triangle") {
    return s("path", { d: `M${x} ${y + r * 1.3}L${x + r * 1.3} ${y - r}L${x - r * 1.3} ${y - r}Z`, ...attrs });
  }
  return s("circle", { cx: x, cy: y, r, ...attrs });
}

function niceStep(range, target) {
  const steps = [50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000];
  return steps.find((step) => range / step <= target) || 60000;
}

function shortName(name) {
  const parts = String(name).split(/\s+/);
  return parts.length > 1 ? `${parts[0][0]}. ${parts[parts.length - 1]}` : name;
}

export function lapChart(laps, drivers, { width = 640, height = 340 } = {}) {
  const sorted = [...laps].filter((l) => Number.isFinite(l.lapNumber)).sort((a, b) => a.lapNumber - b.lapNumber);
  const timed = sorted.filter((l) => Number.isFinite(l.lapTimeMs) && l.lapTimeMs > 0);
  const styles = driverStyles(sorted, drivers);
  const styleOf = (lap) => styles.get(lap.driverId || lap.driverNumber || "?") || { color: "#9ca3af", shape: "circle", name: "?" };
  const best = bestLap(sorted);
  const sectors = bestSectors(sorted);
  const theoretical = theoreticalBest(sectors);
  const titleId = `chart-title-${Math.random().toString(36).slice(2, 8)}`;
  const svg = s("svg", { class: "lap-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-labelledby": titleId });
  const summary = timed.length
    ? `Lap times for ${timed.length} laps in ${stints(sorted).length} stints; best ${best ? `${lapTime(best.lapTimeMs)} on lap ${best.lapNumber}` : "none"}`
    : "No timed laps yet";
  svg.append(s("title", { id: titleId }, summary));
  if (!timed.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" }, "No timed laps yet"));
    return { svg, styles, best, sectors, theoretical };
  }
  const m = { left: 62, right: 14, top: 30, bottom: 30 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  // Y range from laps at racing pace; out/in laps sit off scale at the top edge.
  const racing = timed.filter((l) => !l.isInLap && !l.isOutLap).map((l) => l.lapTimeMs).sort((a, b) => a - b);
  const basis = racing.length ? racing : timed.map((l) => l.lapTimeMs).sort((a, b) => a - b);
  let lo = Math.min(basis[0], theoretical || Infinity) - 400;
  const p90 = basis[Math.min(basis.length - 1, Math.floor(basis.length * 0.9))];
  let hi = Math.max(p90 + 900, lo + 2500);
  const step = niceStep(hi - lo, 6);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const first = sorted[0].lapNumber;
  const last = sorted[sorted.length - 1].lapNumber;
  const x = (n) => m.left + (last === first ? plotW / 2 : ((n - first + 0.5) / (last - first + 1)) * plotW);
  const y = (ms) => m.top + (1 - (ms - lo) / (hi - lo)) * plotH;
  const band = plotW / (last - first + 1);

  const bg = s("g", { class: "chart-bands" });
  stints(sorted).forEach((stint, i) => {
    const x0 = x(stint.from) - band / 2;
    const x1 = x(stint.to) + band / 2;
    const style = styleOf(stint.laps[0]);
    bg.append(s("rect", { x: x0, y: m.top, width: x1 - x0, height: plotH, class: i % 2 ? "band band-odd" : "band" }));
    if (x1 - x0 > 46) {
      bg.append(s("text", { x: x0 + 5, y: m.top - 9, class: "band-label", fill: style.color },
        `${stint.stint ? `S${stint.stint}` : ""} ${shortName(style.name)}`.trim()));
    }
    bg.append(s("rect", { x: x0 + 1, y: m.top - 4, width: Math.max(0, x1 - x0 - 2), height: 3, fill: style.color,
      opacity: 0.9 }));
  });
  svg.append(bg);

  const grid = s("g", { class: "chart-grid" });
  for (let t = lo; t <= hi + 1; t += step) {
    grid.append(s("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t) }));
    grid.append(s("text", { x: m.left - 8, y: y(t) + 4, "text-anchor": "end", class: "axis-label" }, lapTime(t)));
  }
  const lapStep = last - first > 40 ? 10 : last - first > 20 ? 5 : last - first > 10 ? 2 : 1;
  for (const lap of sorted) {
    if ((lap.lapNumber - first) % lapStep === 0 || lap.lapNumber === last) {
      grid.append(s("text", { x: x(lap.lapNumber), y: height - m.bottom + 16, "text-anchor": "middle",
        class: "axis-label" }, lap.lapNumber));
    }
  }
  grid.append(s("text", { x: width - m.right, y: height - 4, "text-anchor": "end", class: "axis-title" }, "lap"));
  svg.append(grid);

  // Pit laps: a dashed line through the plot at the in lap, "PIT" at the foot.
  const pits = s("g", { class: "chart-pits" });
  for (const lap of sorted.filter(isPitLap)) {
    const px = x(lap.lapNumber) + band / 2;
    pits.append(s("line", { x1: px, x2: px, y1: m.top, y2: height - m.bottom, class: "pit-line" }));
    pits.append(s("text", { x: px, y: height - m.bottom - 5, "text-anchor": "middle", class: "pit-label" },
      s("title", {}, `Pit after lap ${lap.lapNumber}${lap.pitTimeMs ? ` (${lapTime(lap.pitTimeMs)} in pit)` : ""}`), "PIT"));
  }
  svg.append(pits);

  if (theoretical) {
    svg.append(s("line", { x1: m.left, x2: width - m.right, y1: y(theoretical), y2: y(theoretical), class: "theoretical" }));
    svg.append(s("text", { x: m.left + 6, y: y(theoretical) + 13, "text-anchor": "start", class: "theoretical-label" },
      `best sectors ${lapTime(theoretical)}`));
  }

  // A line per stint through the laps at racing pace.
  const lines = s("g", { class: "chart-lines" });
  for (const stint of stints(sorted)) {
    const pts = stint.laps.filter(counts).map((l) => `${x(l.lapNumber).toFixed(1)},${y(l.lapTimeMs).toFixed(1)}`);
    if (pts.length > 1) lines.append(s("polyline", { points: pts.join(" "), stroke: styleOf(stint.laps[0]).color, class: "stint-line" }));
  }
  svg.append(lines);

  const points = s("g", { class: "chart-points" });
  for (const lap of timed) {
    const style = styleOf(lap);
    const px = x(lap.lapNumber);
    const off = lap.lapTimeMs > hi;
    const py = off ? m.top + 7 : y(lap.lapTimeMs);
    const label = `Lap ${lap.lapNumber}: ${lapTime(lap.lapTimeMs)}, ${style.name}${lap.stint ? `, stint ${lap.stint}` : ""}`
      + `${lap.isOutLap ? ", out lap" : ""}${lap.isInLap ? ", in lap" : ""}${lap.isValid === false ? ", invalid" : ""}`
      + `${lap._pending ? ", pending" : ""}`;
    let mark;
    if (off) {
      mark = s("path", { d: `M${px} ${py - 5}L${px + 5} ${py + 4}L${px - 5} ${py + 4}Z`, class: "pt-off", stroke: style.color });
    } else if (lap.isValid === false) {
      mark = s("path", { d: `M${px - 4} ${py - 4}L${px + 4} ${py + 4}M${px + 4} ${py - 4}L${px - 4} ${py + 4}`, class: "pt-invalid" });
    } else if (lap.isInLap || lap.isOutLap) {
      mark = marker(style.shape, px, py, 3.6, { class: "pt-hollow", stroke: style.color });
    } else {
      mark = marker(style.shape, px, py, 3.6, { fill: style.color, class: lap._pending ? "pt pt-pending" : "pt" });
    }
    const g = s("g", { class: "pt-group", "data-lap": lap.lapNumber }, s("title", {}, label), mark);
    points.append(g);
  }
  if (best) {
    const bx = x(best.lapNumber);
    const by = y(best.lapTimeMs);
    points.append(s("circle", { cx: bx, cy: by, r: 8.5, class: "best-ring" }));
    // Above the ring (the theoretical line runs just below it), flipped inward near the edges.
    const right = bx < width - 170;
    points.append(s("text", { x: right ? bx + 10 : bx - 10, y: by - 12, "text-anchor": right ? "start" : "end",
      class: "best-label" }, `BEST ${lapTime(best.lapTimeMs)} · L${best.lapNumber}`));
  }
  svg.append(points);
  return { svg, styles, best, sectors, theoretical };
}

// One small chart per sector: its times through the session, the best one marked.
export function sectorCharts(laps, sectors) {
  const n = sectorCount(laps, sectors.length || 3);
  const sorted = [...laps].filter(counts).sort((a, b) => a.lapNumber - b.lapNumber);
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const pts = sorted.filter((l) => Array.isArray(l.sectorTimesMs) && Number.isFinite(l.sectorTimesMs[i]))
      .map((l) => [l.lapNumber, l.sectorTimesMs[i]]);
    const best = sectors[i];
    const w = 150;
    const hgt = 34;
    const spark = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, class: "sparkline", "aria-hidden": "true" });
    if (pts.length > 1) {
      const vals = pts.map((p) => p[1]).sort((a, b) => a - b);
      const lo = vals[0];
      const hi = Math.max(vals[Math.floor(vals.length * 0.9)], lo + 200);
      const sx = (k) => 3 + (k / (pts.length - 1)) * (w - 6);
      const sy = (v) => 3 + (1 - (Math.min(v, hi) - lo) / (hi - lo)) * (hgt - 6);
      spark.append(s("polyline", { points: pts.map((p, k) => `${sx(k).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "),
        class: "spark-line" }));
      const k = pts.findIndex((p) => best && p[0] === best.lapNumber && p[1] === best.ms);
      if (k >= 0) spark.append(s("circle", { cx: sx(k), cy: sy(pts[k][1]), r: 3.2, class: "spark-best" }));
    }
    out.push(h("div", { class: "sector-tile" },
      h("div", { class: "sector-name" }, `S${i + 1}`),
      h("div", { class: "sector-best mono" }, best ? lapTime(best.ms) : "—"),
      h("div", { class: "sector-lap muted" }, best ? `best · lap ${best.lapNumber}` : "no valid sector"),
      spark));
  }
  return out;
}

export function chartLegend(styles) {
  return h("ul", { class: "legend", "aria-label": "Chart legend" },
    [...styles.values()].map((st) => h("li", {},
      s("svg", { viewBox: "0 0 12 12", width: 12, height: 12, "aria-hidden": "true" }, marker(st.shape, 6, 6, 3.6, { fill: st.color })),
      st.name)),
    h("li", {}, h("span", { class: "lg lg-best", "aria-hidden": "true" }), "best lap"),
    h("li", {}, h("span", { class: "lg lg-theo", "aria-hidden": "true" }), "best sectors"),
    h("li", {}, h("span", { class: "lg lg-pit", "aria-hidden": "true" }), "pit"),
    h("li", {}, h("span", { class: "lg lg-x", "aria-hidden": "true" }, "✕"), "invalid"),
    h("li", {}, h("span", { class: "lg lg-off", "aria-hidden": "true" }, "△"), "out/in lap, off scale"));
}

export { BEST };
