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

  // fuel-per-lap/src/index.ts
  var index_exports = {};
  __export(index_exports, {
    math: () => math
  });
  var round3 = (value) => Math.round(value * 1e3) / 1e3;
  function positive(value, name) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`${name} must be a positive number`);
    }
    return value;
  }
  var math = (input) => {
    const levels = input?.fuelLevelsL;
    if (!Array.isArray(levels) || levels.length < 2) {
      throw new TypeError("fuelLevelsL must list at least two fuel readings (litres)");
    }
    levels.forEach((level, i) => {
      if (typeof level !== "number" || !Number.isFinite(level) || level < 0) {
        throw new TypeError(`fuelLevelsL[${i}] must be a number of litres`);
      }
    });
    const used = [];
    for (let i = 1; i < levels.length; i++) {
      const delta = levels[i - 1] - levels[i];
      if (delta > 0) used.push(delta);
    }
    if (used.length === 0) throw new RangeError("no lap used fuel: check the readings");
    const fuelPerLapL = used.reduce((sum, v) => sum + v, 0) / used.length;
    const reserveLaps = input.reserveLaps ?? 1;
    const tank = input.tankCapacityL === void 0 ? null : positive(input.tankCapacityL, "tankCapacityL");
    const stint = input.stintLaps === void 0 ? null : positive(input.stintLaps, "stintLaps");
    return {
      lapsCounted: used.length,
      fuelPerLapL: round3(fuelPerLapL),
      minFuelPerLapL: round3(Math.min(...used)),
      maxFuelPerLapL: round3(Math.max(...used)),
      lapsPerTank: tank === null ? null : Math.floor(tank / fuelPerLapL),
      fuelForStintL: stint === null ? null : round3((stint + reserveLaps) * fuelPerLapL)
    };
  };
  return __toCommonJS(index_exports);
})();
