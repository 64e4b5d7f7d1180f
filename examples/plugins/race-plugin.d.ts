/**
 * Race Platform plugin interfaces and host functions (see docs/plugins.md).
 *
 * A plugin is one classic script that defines a global object `plugin` with one function per
 * interface declared in plugin.json: `plugin.math(input)` and `plugin.kpiProcessor(input)`.
 * Write it in TypeScript, export those functions from your entry file and bundle it, e.g.
 *
 *   esbuild src/index.ts --bundle --format=iife --global-name=plugin --target=es2022 --outfile=dist/plugin.js
 *
 * The sandbox is plain ECMAScript (V8): no DOM, no Node.js, no timers, no WebAssembly. The only way
 * out is the `host` object below, and only for the capabilities your manifest declares and the
 * account has granted.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A lap as the platform stores it (GET /laps); what kpiProcessor receives for a runSheetId. */
export interface Lap {
  id: string;
  runSheetId: string;
  sessionId: string;
  carId: string;
  lapNumber: number;
  lapTimeMs: number;
  sectorTimesMs: number[];
  isInLap: boolean;
  isOutLap: boolean;
  isValid: boolean;
  pitTimeMs: number | null;
  flag: string | null;
  driverId: string | null;
  driverNumber: string | null;
  stint: number | null;
  fuelL: number | null;
  tyreSet: string | null;
  recordedAt: string;
  custom: { [key: string]: JsonValue };
  source: "manual" | "timing" | "api";
  createdAt: string;
  updatedAt: string;
}

/** Laps sent explicitly to /invoke/kpi: lapNumber and lapTimeMs are required, the rest as sent. */
export type ExplicitLap = Partial<Lap> & { lapNumber: number; lapTimeMs: number };

/** The argument of plugin.kpiProcessor. */
export interface KpiInput<Params = JsonValue> {
  /** The run sheet whose laps were loaded, or null when the caller sent laps explicitly. */
  runSheetId: string | null;
  /** In lap-number order when loaded from a run sheet. */
  laps: Lap[] | ExplicitLap[];
  /** `params` of the request body, or null. */
  params: Params | null;
}

/** `plugin.math`: any JSON in (the request's `input`), any JSON out. */
export type MathFunction<Input = JsonValue, Output = JsonValue> = (input: Input) => Output | Promise<Output>;

/** `plugin.kpiProcessor`. */
export type KpiProcessorFunction<Params = JsonValue, Output = JsonValue> =
  (input: KpiInput<Params>) => Output | Promise<Output>;

/** The shape the bundle's global `plugin` object must have for the interfaces it declares. */
export interface RacePlugin {
  math?: MathFunction<any, any>;
  kpiProcessor?: KpiProcessorFunction<any, any>;
}

export interface HostFetchInit {
  method?: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  headers?: { [name: string]: string };
  /** A string (JSON.stringify objects yourself); at most 256 KB. */
  body?: string;
}

export interface HostFetchResponse {
  status: number;
  ok: boolean;
  /** Lower-case header names. */
  headers: { [name: string]: string };
  url: string;
  text(): Promise<string>;
  json<T = JsonValue>(): Promise<T>;
}

/**
 * Host functions. Each returns a Promise and must be awaited before your function returns: requests
 * still pending when the plugin's result settles are dropped. A capability that is not both declared
 * and granted rejects with an Error named "CapabilityError"; a failure of an allowed call (network,
 * storage) rejects with one named "HostError".
 */
export interface Host {
  /** Needs `fetch:<host>` for the URL's host (https only in deployed stages; redirects are not followed). */
  fetch(url: string, init?: HostFetchInit): Promise<HostFetchResponse>;
  /** Needs `storage`: a small key-value store of this plugin in this account (values are JSON, <= 64 KB). */
  storage: {
    get<T = JsonValue>(key: string): Promise<T | null>;
    put(key: string, value: JsonValue): Promise<null>;
    /** Resolves to false when the key did not exist. */
    delete(key: string): Promise<boolean>;
  };
  /** The capabilities usable in this invocation (declared by this version and granted by the account). */
  capabilities(): string[];
}

declare global {
  const host: Host;
}
