// Fuel per lap: from the fuel level read at the end of each lap, how much a lap uses, how many laps
// a full tank lasts, and how much to put in for the next stint. A `math` plugin: JSON in, JSON out.
import type { MathFunction } from "../../race-plugin";

export interface FuelInput {
  /** Fuel in the tank (litres) at the start, then at the end of each lap, in lap order. */
  fuelLevelsL: number[];
  /** Tank size in litres, for lapsPerTank. */
  tankCapacityL?: number;
  /** Laps planned for the next stint, for fuelForStintL. */
  stintLaps?: number;
  /** Laps of fuel kept in hand on top of the stint (default 1). */
  reserveLaps?: number;
}

export interface FuelOutput {
  lapsCounted: number;
  fuelPerLapL: number;
  minFuelPerLapL: number;
  maxFuelPerLapL: number;
  lapsPerTank: number | null;
  fuelForStintL: number | null;
}

const round3 = (value: number): number => Math.round(value * 1000) / 1000;

function positive(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number`);
  }
  return value;
}

export const math: MathFunction<FuelInput, FuelOutput> = (input) => {
  const levels = input?.fuelLevelsL;
  if (!Array.isArray(levels) || levels.length < 2) {
    throw new TypeError("fuelLevelsL must list at least two fuel readings (litres)");
  }
  levels.forEach((level, i) => {
    if (typeof level !== "number" || !Number.isFinite(level) || level < 0) {
      throw new TypeError(`fuelLevelsL[${i}] must be a number of litres`);
    }
  });
  // A reading higher than the one before is a refuel: that lap is not counted.
  const used: number[] = [];
  for (let i = 1; i < levels.length; i++) {
    const delta = levels[i - 1] - levels[i];
    if (delta > 0) used.push(delta);
  }
  if (used.length === 0) throw new RangeError("no lap used fuel: check the readings");
  const fuelPerLapL = used.reduce((sum, v) => sum + v, 0) / used.length;
  const reserveLaps = input.reserveLaps ?? 1;
  const tank = input.tankCapacityL === undefined ? null : positive(input.tankCapacityL, "tankCapacityL");
  const stint = input.stintLaps === undefined ? null : positive(input.stintLaps, "stintLaps");
  return {
    lapsCounted: used.length,
    fuelPerLapL: round3(fuelPerLapL),
    minFuelPerLapL: round3(Math.min(...used)),
    maxFuelPerLapL: round3(Math.max(...used)),
    lapsPerTank: tank === null ? null : Math.floor(tank / fuelPerLapL),
    fuelForStintL: stint === null ? null : round3((stint + reserveLaps) * fuelPerLapL),
  };
};
