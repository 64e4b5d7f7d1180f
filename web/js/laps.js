// Reading pace from laps (pure functions): best lap, best sectors, stints, pit laps.

// The same rules as the API's run-sheet statistics (chalicelib/domain/lap_stats.py): a lap counts
// when it has a time, is valid, is neither an in nor an out lap, and is not lap 1 (from the grid
// or the pit lane, never from the line at speed).
export function counts(lap) {
  return Number.isFinite(lap.lapTimeMs) && lap.lapTimeMs > 0 && lap.isValid !== false && !lap.isInLap && !lap.isOutLap
    && lap.lapNumber !== 1;
}

function fastest(laps) {
  let best = null;
  for (const lap of laps) if (!best || lap.lapTimeMs < best.lapTimeMs) best = lap;
  return best;
}

// The lap timing officials marked as best (timing imports set custom.officialBest) unless the team
// invalidated it; otherwise the fastest counting lap.
export function bestLap(laps) {
  const official = fastest(laps.filter((l) => l.custom && l.custom.officialBest && l.isValid !== false
    && Number.isFinite(l.lapTimeMs)));
  return official || fastest(laps.filter(counts));
}

// [{ms, lapNumber}] per sector over counting laps with the usual number of sectors.
export function bestSectors(laps) {
  const withSectors = laps.filter((l) => counts(l) && Array.isArray(l.sectorTimesMs) && l.sectorTimesMs.length);
  const tally = new Map();
  for (const lap of withSectors) tally.set(lap.sectorTimesMs.length, (tally.get(lap.sectorTimesMs.length) || 0) + 1);
  const usual = [...tally.entries()].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0];
  const best = [];
  for (const lap of withSectors) {
    if (!usual || lap.sectorTimesMs.length !== usual[0]) continue;
    lap.sectorTimesMs.forEach((ms, i) => {
      if (Number.isFinite(ms) && ms > 0 && (!best[i] || ms < best[i].ms)) best[i] = { ms, lapNumber: lap.lapNumber };
    });
  }
  return best;
}

export function theoreticalBest(sectors) {
  if (!sectors.length || sectors.some((s) => !s)) return null;
  return sectors.reduce((sum, s) => sum + s.ms, 0);
}

export function sectorCount(laps, minimum = 3) {
  return Math.max(minimum, ...laps.map((l) => (Array.isArray(l.sectorTimesMs) ? l.sectorTimesMs.length : 0)));
}

// Consecutive runs of laps with the same stint number; when no lap has one (timing imports), a
// stint ends with an in lap, as the API infers them.
export function stints(laps) {
  const out = [];
  const sorted = [...laps].sort((a, b) => a.lapNumber - b.lapNumber);
  const numbered = sorted.some((l) => l.stint !== null && l.stint !== undefined);
  let inferred = 1;
  for (const lap of sorted) {
    const key = numbered ? lap.stint ?? 0 : inferred;
    if (!numbered && lap.isInLap) inferred += 1;
    const last = out[out.length - 1];
    if (last && last.key === key) {
      last.laps.push(lap);
      last.to = lap.lapNumber;
    } else {
      out.push({ key, stint: numbered ? lap.stint : key, driverId: lap.driverId, driverNumber: lap.driverNumber, from: lap.lapNumber,
        to: lap.lapNumber, laps: [lap] });
    }
  }
  return out;
}

export function isPitLap(lap) {
  return Boolean(lap.isInLap) || (Number.isFinite(lap.pitTimeMs) && lap.pitTimeMs > 0);
}

export function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Merge a lap from the server into a list keyed by id, never going back to an older version.
export function upsertLap(laps, lap) {
  const i = laps.findIndex((l) => l.id === lap.id);
  if (i === -1) {
    laps.push(lap);
  } else {
    const current = laps[i];
    if (current.updatedAt && lap.updatedAt && lap.updatedAt < current.updatedAt) return false;
    laps[i] = { ...current, ...lap };
  }
  laps.sort((a, b) => a.lapNumber - b.lapNumber || String(a.id).localeCompare(String(b.id)));
  return true;
}
