"use strict";
var plugin = (() => {
  var __defProp = Object.defineProperty;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __export = (target, all) => {
    for (var name in all)
      __defProp(target, name, { get: all[name], enumerable: true });
  };
  var __copyProps = (to, from, except, desc) => {
    if (from && typeof from === "object" || typeof from === "function") {
      for (let key of __getOwnPropNames(from))
        if (!__hasOwnProp.call(to, key) && key !== except)
          __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
    }
    return to;
  };
  var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

  // stint-pace/src/index.ts
  var index_exports = {};
  __export(index_exports, {
    kpiProcessor: () => kpiProcessor
  });
  var median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  var slope = (laps) => {
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
  function splitStints(laps) {
    const stints = /* @__PURE__ */ new Map();
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
  var kpiProcessor = async (input) => {
    const params = input.params ?? {};
    const minLaps = params.minLaps ?? 3;
    const outlierFactor = params.outlierFactor ?? 1.07;
    const stints = [];
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
        degradationMsPerLap: enough ? Math.round(slope(used) * 10) / 10 : null
      });
    }
    const ranked = stints.filter((s) => s.avgLapMs !== null).sort((a, b) => a.avgLapMs - b.avgLapMs);
    let previous = null;
    let remembered = false;
    if (params.remember && input.runSheetId && host.capabilities().includes("storage")) {
      const key = `stint-pace:${input.runSheetId}`;
      previous = await host.storage.get(key);
      await host.storage.put(key, stints);
      remembered = true;
    }
    return { stints, bestStint: ranked.length ? ranked[0].stint : null, previous, remembered };
  };
  return __toCommonJS(index_exports);
})();
