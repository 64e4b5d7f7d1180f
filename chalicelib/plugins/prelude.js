// The sandbox prelude, evaluated in every plugin context before the bundle (see runtime.py).
//
// It removes what is not plain ECMAScript or could run code outside an invocation (timers,
// WebAssembly, shared memory, finalizers), budgets array-buffer memory (V8's heap limit does not
// count it), defines the `host` object and the driver that runtime.py calls, and, once the bundle
// has loaded, freezes the built-ins so that no invocation can change what the next one sees.
// Everything the driver relies on is captured here, before any plugin code runs.
(function (g, MEMORY_LIMIT_BYTES, MAX_OUTPUT_CHARS) {
  "use strict";
  const {
    apply, construct, defineProperty: reflectDefine, getOwnPropertyDescriptor: gopd, getPrototypeOf: getProto,
    ownKeys, setPrototypeOf,
  } = Reflect;
  const { freeze, isFrozen, defineProperty } = Object;
  const isArray = Array.isArray;
  const jsonStringify = JSON.stringify, jsonParse = JSON.parse;
  const NumberCtor = Number, StringCtor = String, ErrorCtor = Error, RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError, PromiseCtor = Promise, MapCtor = Map, WeakSetCtor = WeakSet;
  const mathTrunc = Math.trunc, mathMax = Math.max, mathMin = Math.min;
  const iteratorSymbol = Symbol.iterator;
  const wsHas = WeakSet.prototype.has, wsAdd = WeakSet.prototype.add;
  const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete;
  const mapSize = gopd(Map.prototype, "size").get;
  const arrayPush = Array.prototype.push;
  const promiseThen = Promise.prototype.then, promiseResolve = Promise.resolve;
  const errorStack = (e) => { try { return StringCtor(e.stack || ""); } catch (_) { return ""; } };

  // ---- 1. Nothing that runs code later, outside an invocation, or shares memory.
  for (const name of ["WebAssembly", "SharedArrayBuffer", "Atomics", "FinalizationRegistry"]) delete g[name];
  for (const name of ["setTimeout", "clearTimeout", "__timer_manager"]) {
    if (name in g) g[name] = undefined;  // declared with var by mini-racer: not deletable
  }

  // ---- 2. Array-buffer memory budget, per invocation (runtime.py retires a context whose
  // buffers add up to more than the limit over its life).
  const budget = { call: 0, lifetime: 0, exceeded: false };
  const charged = new WeakSetCtor();
  const limitMb = MEMORY_LIMIT_BYTES / 1048576;
  function charge(bytes) {
    if (!(bytes > 0)) return;
    if (budget.call + bytes > MEMORY_LIMIT_BYTES) {
      budget.exceeded = true;
      throw new RangeErrorCtor(`memory limit of ${limitMb} MB reached (array buffers)`);
    }
    budget.call += bytes;
    budget.lifetime += bytes;
  }
  function toIndex(value) {
    if (value === undefined) return 0;
    const n = mathTrunc(NumberCtor(value));
    return n > 0 ? n : 0;
  }
  const OrigArrayBuffer = ArrayBuffer;
  const abByteLength = gopd(OrigArrayBuffer.prototype, "byteLength").get;
  const abMaxByteLength = gopd(OrigArrayBuffer.prototype, "maxByteLength").get;
  const TypedArray = getProto(Int8Array);
  const taLength = gopd(TypedArray.prototype, "length").get;
  const taBuffer = gopd(TypedArray.prototype, "buffer").get;
  function isArrayBuffer(value) {
    try { apply(abByteLength, value, []); return true; } catch (_) { return false; }
  }
  function typedLength(value) {
    try { return apply(taLength, value, []); } catch (_) { return -1; }
  }
  // Charge what a new buffer holds beyond what was charged before it was made.
  function settleBuffer(buffer, precharged) {
    if (apply(wsHas, charged, [buffer])) return;
    let bytes;
    try { bytes = apply(abMaxByteLength, buffer, []); } catch (_) { return; }
    apply(wsAdd, charged, [buffer]);
    if (bytes > precharged) charge(bytes - precharged);
  }
  function settleTyped(array, precharged) {
    let buffer;
    try { buffer = apply(taBuffer, array, []); } catch (_) { return; }
    settleBuffer(buffer, precharged);
  }
  function nameFunction(fn, name, length) {
    defineProperty(fn, "name", { value: name, configurable: true });
    defineProperty(fn, "length", { value: length, configurable: true });
    return fn;
  }
  function replaceConstructor(Orig, Wrapper) {
    for (const key of ownKeys(Orig)) {
      if (key === "prototype" || key === "name" || key === "length") continue;
      reflectDefine(Wrapper, key, gopd(Orig, key));
    }
    defineProperty(Wrapper, "prototype", { value: Orig.prototype, writable: false });
    setPrototypeOf(Wrapper, getProto(Orig));
    defineProperty(Orig.prototype, "constructor", { value: Wrapper, writable: true, configurable: true });
    defineProperty(g, Orig.name, { value: Wrapper, writable: true, configurable: true, enumerable: false });
  }

  const ArrayBufferBudgeted = nameFunction(function ArrayBuffer(length, options) {
    if (new.target === undefined) throw new TypeErrorCtor("Constructor ArrayBuffer requires 'new'");
    let bytes = toIndex(length);
    if (options !== null && typeof options === "object") {
      const max = options.maxByteLength;
      if (max !== undefined) bytes = mathMax(bytes, toIndex(max));
    }
    charge(bytes);
    const buffer = construct(OrigArrayBuffer, [length, options],
      new.target === ArrayBufferBudgeted ? OrigArrayBuffer : new.target);
    settleBuffer(buffer, bytes);
    return buffer;
  }, "ArrayBuffer", 1);
  replaceConstructor(OrigArrayBuffer, ArrayBufferBudgeted);
  for (const method of ["slice", "transfer", "transferToFixedLength"]) {
    const original = OrigArrayBuffer.prototype[method];
    if (typeof original !== "function") continue;
    const budgeted = {
      [method](...args) {
        let bytes = 0;
        if (method !== "slice") bytes = args[0] === undefined ? apply(abByteLength, this, []) : toIndex(args[0]);
        charge(bytes);
        const result = apply(original, this, args);
        settleBuffer(result, bytes);
        return result;
      },
    }[method];
    defineProperty(OrigArrayBuffer.prototype, method, { value: budgeted, writable: true, configurable: true });
  }

  const typedArrayNames = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
    "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array",
    "BigUint64Array"];
  for (const name of typedArrayNames) {
    const Orig = g[name];
    if (typeof Orig !== "function") continue;
    const bytesPerElement = Orig.BYTES_PER_ELEMENT;
    const Wrapper = nameFunction(function (...args) {
      if (new.target === undefined) throw new TypeErrorCtor(`Constructor ${name} requires 'new'`);
      const source = args[0];
      const target = new.target === Wrapper ? Orig : new.target;
      let bytes = 0;
      if (source === null || typeof source !== "object") {
        bytes = toIndex(source) * bytesPerElement;
      } else if (isArrayBuffer(source)) {
        bytes = 0;  // a view on an existing buffer
      } else if (typedLength(source) >= 0) {
        bytes = typedLength(source) * bytesPerElement;
      } else if (isArray(source)) {
        bytes = toIndex(source.length) * bytesPerElement;
      } else if (!(iteratorSymbol in source)) {
        // An array-like: read its length once, so it cannot answer differently to V8.
        const length = toIndex(source.length);
        charge(length * bytesPerElement);
        const result = construct(Orig, [length], target);
        settleTyped(result, length * bytesPerElement);
        for (let i = 0; i < length; i++) result[i] = source[i];
        return result;
      }
      charge(bytes);
      const result = construct(Orig, args, target);
      settleTyped(result, bytes);
      return result;
    }, name, 3);
    replaceConstructor(Orig, Wrapper);
    for (const method of ["fromBase64", "fromHex"]) {
      const original = Orig[method];
      if (typeof original !== "function") continue;
      defineProperty(Wrapper, method, {
        value: { [method](...args) { const r = apply(original, Orig, args); settleTyped(r, 0); return r; } }[method],
        writable: true, configurable: true,
      });
    }
  }
  // Methods that may allocate through the built-in constructors rather than the global ones.
  for (const method of ["slice", "map", "filter", "toReversed", "toSorted", "with"]) {
    const original = TypedArray.prototype[method];
    if (typeof original !== "function") continue;
    const budgeted = {
      [method](...args) { const r = apply(original, this, args); settleTyped(r, 0); return r; },
    }[method];
    defineProperty(TypedArray.prototype, method, { value: budgeted, writable: true, configurable: true });
  }

  // ---- 3. The host object: each call queues a request that runtime.py serves between evals.
  const calls = { active: false, nextId: 1, queue: [], waiting: new MapCtor(), capabilities: [] };
  function hostError(name, message) {
    const error = new ErrorCtor(message);
    defineProperty(error, "name", { value: name, writable: true, configurable: true });
    return error;
  }
  function request(op, args) {
    if (!calls.active) {
      return apply(promiseResolve, PromiseCtor, []).then(() => {
        throw hostError("HostError", `host.${op} is only available while the plugin is being invoked`);
      });
    }
    let encoded;
    try {
      encoded = jsonStringify(args);
    } catch (_) {
      encoded = undefined;
    }
    if (encoded === undefined) {
      return apply(promiseResolve, PromiseCtor, []).then(() => {
        throw hostError("TypeError", `host.${op}: the arguments must be JSON-serialisable`);
      });
    }
    const id = calls.nextId++;
    return new PromiseCtor((resolve, reject) => {
      apply(mapSet, calls.waiting, [id, { resolve, reject }]);
      apply(arrayPush, calls.queue, [[id, op, encoded]]);
    });
  }
  function fetchResponse(raw) {
    const body = raw.body;
    return freeze({
      status: raw.status,
      ok: raw.status >= 200 && raw.status < 300,
      headers: freeze(raw.headers),
      url: raw.url,
      text: () => apply(promiseResolve, PromiseCtor, [body]),
      json: () => apply(promiseResolve, PromiseCtor, []).then(() => jsonParse(body)),
    });
  }
  const host = freeze({
    fetch: (url, init) => apply(promiseThen, request("fetch", [url, init === undefined ? null : init]),
      [fetchResponse]),
    storage: freeze({
      get: (key) => request("storage.get", [key]),
      put: (key, value) => request("storage.put", [key, value === undefined ? null : value]),
      delete: (key) => request("storage.delete", [key]),
    }),
    capabilities: () => calls.capabilities.slice(),
  });
  defineProperty(g, "host", { value: host, writable: false, configurable: false, enumerable: true });

  // ---- 4. The driver (runtime.py): start an entry point, poll for requests or the result, settle requests.
  let outcome = null;
  function describe(error) {
    try {
      if (error !== null && (typeof error === "object" || typeof error === "function")) {
        const name = StringCtor(error.name === undefined ? "Error" : error.name);
        const message = StringCtor(error.message === undefined ? error : error.message);
        return { name, message: message.slice(0, 2000), stack: errorStack(error).slice(0, 4000) };
      }
      return { name: "Error", message: `a non-Error value was thrown: ${StringCtor(error).slice(0, 500)}`, stack: "" };
    } catch (_) {
      return { name: "Error", message: "a value that cannot be described was thrown", stack: "" };
    }
  }
  function finish(value) {
    let json;
    try {
      json = jsonStringify(value);
    } catch (error) {
      outcome = { state: "failed", kind: "output", error: describe(error) };
      return;
    }
    if (json === undefined) json = "null";
    if (json.length > MAX_OUTPUT_CHARS) {
      outcome = { state: "failed", kind: "output_size", size: json.length };
      return;
    }
    outcome = { state: "done", output: json };
  }
  function fail(error) {
    outcome = { state: "failed", kind: budget.exceeded ? "memory" : "threw", error: describe(error) };
  }
  function report() {
    const memory = { call: budget.call, lifetime: budget.lifetime, exceeded: budget.exceeded };
    if (budget.exceeded) {
      calls.active = false;
      return jsonStringify({ state: "failed", kind: "memory", memory });
    }
    if (outcome !== null) {
      calls.active = false;
      return jsonStringify({ ...outcome, memory });
    }
    const requests = calls.queue;
    calls.queue = [];
    const state = requests.length ? "waiting" : (apply(mapSize, calls.waiting, []) ? "waiting" : "stalled");
    return jsonStringify({ state, requests, memory });
  }
  const driver = freeze({
    start(entryPoint, inputJson, capabilitiesJson) {
      budget.call = 0;
      budget.exceeded = false;
      outcome = null;
      calls.active = true;
      calls.queue = [];
      calls.waiting = new MapCtor();
      calls.capabilities = jsonParse(capabilitiesJson);
      let result;
      try {
        result = g.plugin[entryPoint](jsonParse(inputJson));
      } catch (error) {
        fail(error);
        return report();
      }
      if (result !== null && typeof result === "object" && typeof result.then === "function") {
        try {
          apply(promiseThen, apply(promiseResolve, PromiseCtor, [result]), [finish, fail]);
        } catch (error) {
          fail(error);
        }
      } else {
        finish(result);
      }
      return report();
    },
    poll: report,
    settle(answersJson) {
      for (const [id, ok, value] of jsonParse(answersJson)) {
        const waiter = apply(mapGet, calls.waiting, [id]);
        if (waiter === undefined) continue;
        apply(mapDelete, calls.waiting, [id]);
        if (ok) waiter.resolve(value);
        else waiter.reject(hostError(value.name, value.message));
      }
    },
    lockdown(entryPointsJson) {
      const problems = [];
      const plugin = g.plugin;
      if (plugin === null || (typeof plugin !== "object" && typeof plugin !== "function")) {
        problems.push("the bundle must define a global object named plugin (e.g. esbuild --format=iife " +
          "--global-name=plugin)");
      } else {
        for (const entryPoint of jsonParse(entryPointsJson)) {
          if (typeof plugin[entryPoint] !== "function") problems.push(`plugin.${entryPoint} is not a function`);
        }
      }
      if (problems.length) return jsonStringify(problems);
      harden();
      freeze(plugin);
      freeze(g);
      return "[]";
    },
  });
  defineProperty(g, "__race", { value: driver, writable: false, configurable: false, enumerable: false });

  // ---- 5. Freezing the built-ins (called by lockdown, after the bundle's top level has run).
  const builtinNames = ownKeys(g);
  function tamePrototypeProperty(object, key) {
    // Frozen prototypes make `obj.toString = f` fail (the "override mistake"); an accessor that
    // defines the property on the receiver keeps such ordinary code working.
    const desc = gopd(object, key);
    if (!desc || !("value" in desc) || !desc.configurable) return;
    const value = desc.value;
    defineProperty(object, key, {
      get() { return value; },
      set(newValue) {
        if (this === object) throw new TypeErrorCtor(`Cannot assign to read only property '${StringCtor(key)}' of a built-in prototype`);
        reflectDefine(this, key, { value: newValue, writable: true, enumerable: true, configurable: true });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  function harden() {
    const tame = [
      [Object.prototype, ["constructor", "toString", "toLocaleString", "valueOf", "hasOwnProperty",
        "isPrototypeOf", "propertyIsEnumerable"]],
      [Function.prototype, ["constructor", "toString", "apply", "call", "bind"]],
      [Array.prototype, ["constructor", "toString", "push", "concat"]],
      [Promise.prototype, ["constructor", "then"]],
      [TypedArray.prototype, ["constructor", "toString"]],
    ];
    for (const E of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError]) {
      tame.push([E.prototype, ["constructor", "name", "message", "toString"]]);
    }
    for (const [object, keys] of tame) for (const key of keys) tamePrototypeProperty(object, key);

    const roots = [];
    for (const key of builtinNames) {
      if (key === "globalThis" || key === "plugin") continue;
      const desc = gopd(g, key);
      if (desc) roots.push(desc.value, desc.get, desc.set);
    }
    // Intrinsics that no global names.
    const hidden = [
      () => getProto(function* () {}), () => getProto(async function () {}),
      () => getProto(async function* () {}), () => getProto((function* () {})()),
      () => getProto(getProto((async function* () {})())), () => getProto([][iteratorSymbol]()),
      () => getProto(new Map()[iteratorSymbol]()), () => getProto(new Set()[iteratorSymbol]()),
      () => getProto(""[iteratorSymbol]()), () => getProto(/a/[Symbol.matchAll]("")),
      () => getProto([].values().map((x) => x)), () => getProto(Iterator.from({ next() {} })),
      () => gopd(Function.prototype, "caller").get, () => TypedArray,
      () => getProto(new Intl.Segmenter().segment("")),
      () => getProto(new Intl.Segmenter().segment("")[iteratorSymbol]()),
    ];
    for (const get of hidden) {
      try { roots.push(get()); } catch (_) { /* not in this V8 */ }
    }
    const seen = new WeakSetCtor();
    const stack = roots;
    while (stack.length) {
      const value = stack.pop();
      if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
      if (apply(wsHas, seen, [value])) continue;
      apply(wsAdd, seen, [value]);
      if (!isFrozen(value)) {
        try { freeze(value); } catch (_) { /* e.g. a typed array with elements */ }
      }
      for (const key of ownKeys(value)) {
        const desc = gopd(value, key);
        if (desc) apply(arrayPush, stack, [desc.value, desc.get, desc.set]);
      }
      apply(arrayPush, stack, [getProto(value)]);
    }
  }
})(globalThis, %MEMORY_LIMIT_BYTES%, %MAX_OUTPUT_CHARS%);
