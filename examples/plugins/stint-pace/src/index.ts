// Stint pace and degradation: a `kpiProcessor` plugin. For each stint of a run sheet it finds the
// representative laps (no in/out laps, no invalid laps, nothing slower than outlierFactor x the
// stint's median, e.g. yellow flags or traffic), their average and best, and how much the lap time
// grows per lap (the least-squares slope: tyre degradation plus fuel burn). With the `storage`
// capability granted and params.remember set, it keeps the result per run sheet for later calls.
import type { ExplicitLap, JsonValue, KpiProcessorFunction, Lap } from "../../race-plugin";

export interface StintPaceParams {
  /** Stints with fewer representative laps are reported without pace (default 3). */
  minLaps?: number;
  /** Laps slower than this factor times the stint median are outliers (default 1.07). */
  outlierFactor?: number;
  /** Store the summary under `stint-pace:<runSheetId>` (needs the storage capability). */
  remember?: boolean;
}

export interface StintReport {
  stint: number;
  firstLap: number;
  lastLap: number;
  laps: number;
  lapsUsed: number;
  avgLapMs: number | null;
  bestLapMs: number | null;
  degradationMsPerLap: number | null;
}

export interface StintPaceOutput {
  stints: StintReport[];
  bestStint: number | null;
  previous: StintReport[] | null;
  remembered: boolean;
}

type AnyLap = Lap | ExplicitLap;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Least-squares slope of lap time against lap number. */
const slope = (laps: AnyLap[]): number => {
  const n = laps.length;
  const meanX = laps.reduce((s, l) => s + l.lapNumber, 0) / n;
  const meanY = laps.reduce((s, l) => s + l.lapTimeMs, 0) / n;
  let num = 0;
  let den = 0;
  for (const lap of laps) {
    num += (lap.lapNumber - meanX) * (lap.lapTimeMs - meanY);
    den += (lap.lapNumber - meanX) ** 2;
  }
  return den === 0 ? 0 : num / den;
};

/** Stints by the laps' `stint` field, or else split after each in-lap (a pit stop). */
function splitStints(laps: AnyLap[]): Map<number, AnyLap[]> {
  const stints = new Map<number, AnyLap[]>();
  let current = 1;
  let afterInLap = false;
  for (const lap of [...laps].sort((a, b) => a.lapNumber - b.lapNumber)) {
    if (typeof lap.stint === "number") {
      current = lap.stint;
    } else if (afterInLap) {
      current += 1;
    }
    afterInLap = lap.isInLap === true;
    const list = stints.get(current) ?? [];
    list.push(lap);
    stints.set(current, list);
  }
  return stints;
}

export const kpiProcessor: KpiProcessorFunction<StintPaceParams, StintPaceOutput> = async (input) => {
  const params = input.params ?? {};
  const minLaps = params.minLaps ?? 3;
  const outlierFactor = params.outlierFactor ?? 1.07;
  const stints: StintReport[] = [];
  for (const [stint, laps] of splitStints(input.laps)) {
    const clean = laps.filter((l) => !l.isInLap && !l.isOutLap && l.isValid !== false && !l.pitTimeMs);
    const cutoff = clean.length ? median(clean.map((l) => l.lapTimeMs)) * outlierFactor : 0;
    const used = clean.filter((l) => l.lapTimeMs <= cutoff);
    const enough = used.length >= minLaps;
    stints.push({
      stint,
      firstLap: laps[0].lapNumber,
      lastLap: laps[laps.length - 1].lapNumber,
      laps: laps.length,
      lapsUsed: used.length,
      avgLapMs: enough ? Math.round(used.reduce((s, l) => s + l.lapTimeMs, 0) / used.length) : null,
      bestLapMs: used.length ? Math.min(...used.map((l) => l.lapTimeMs)) : null,
      degradationMsPerLap: enough ? Math.round(slope(used) * 10) / 10 : null,
    });
  }
  const ranked = stints.filter((s) => s.avgLapMs !== null).sort((a, b) => a.avgLapMs! - b.avgLapMs!);

  let previous: StintReport[] | null = null;
  let remembered = false;
  if (params.remember && input.runSheetId && host.capabilities().includes("storage")) {
    const key = `stint-pace:${input.runSheetId}`;
    previous = await host.storage.get<StintReport[]>(key);
    await host.storage.put(key, stints as unknown as JsonValue);
    remembered = true;
  }
  return { stints, bestStint: ranked.length ? ranked[0].stint : null, previous, remembered };
};
