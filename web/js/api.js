// The HTTP client: JSON in and out, timeouts, the platform's error shape, "route not available".

export class ApiError extends Error {
  constructor(message, { status = 0, code = "network", field = null, method = "", path = "", network = false,
    missingRoute = false, retryAfterMs = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.method = method;
    this.path = path;
    this.network = network; // no answer at all (refused, timeout, DNS, CORS)
    this.missingRoute = missingRoute; // the API has no such route (yet)
    this.retryAfterMs = retryAfterMs; // the server's Retry-After (429/503), when it sent one
  }

  // Worth sending again later, unchanged (same Idempotency-Key): no answer, the server busy or failing, or
  // the first attempt with this key still running (409 idempotency_in_progress, e.g. its process died).
  get retriable() {
    return this.network || this.status >= 500 || this.status === 429 || this.status === 408 || this.inProgress;
  }

  get inProgress() {
    return this.status === 409 && this.code === "idempotency_in_progress";
  }

  // The first attempt with this Idempotency-Key committed but its answer was lost: the write is done.
  get alreadyApplied() {
    return this.status === 409 && this.code === "idempotency_key_applied";
  }

  // One line an engineer can paste into the incident channel.
  describe() {
    const where = `${this.method} ${this.path}`.trim();
    const status = this.status ? ` ${this.status}` : "";
    return `${where}${status}: ${this.message}`;
  }
}

// Retry-After in milliseconds: delta-seconds or an HTTP date; null when absent or unreadable.
export function parseRetryAfter(value, now = Date.now()) {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function newId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Insecure contexts (plain http on a LAN address) lack randomUUID but have getRandomValues.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class Api {
  constructor(config, { getToken = () => null, onNetworkError = () => {}, onUnauthorized = () => {} } = {}) {
    this.baseUrl = config.apiUrl;
    this.timeoutMs = config.requestTimeoutMs;
    this.getToken = getToken;
    this.onNetworkError = onNetworkError;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { body, headers = {}, timeoutMs = this.timeoutMs, auth = true, raw = false } = {}) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const allHeaders = { Accept: "application/json", ...headers };
    const token = auth ? this.getToken() : null;
    if (token) allHeaders.Authorization = `Bearer ${token}`;
    let payload;
    if (body !== undefined) {
      allHeaders["Content-Type"] = allHeaders["Content-Type"] || "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.baseUrl + path, { method, headers: allHeaders, body: payload,
        signal: controller.signal, cache: "no-store" });
    } catch (exc) {
      const timedOut = exc && exc.name === "AbortError";
      // A route the API lacks answers 404/403 without CORS headers, which the browser reports
      // exactly like an outage. If /health answers right now, it was that, not the network.
      if (!timedOut && path !== "/health" && await this.reachable()) {
        throw new ApiError("no readable answer: this API does not offer this route (or refused it by CORS)",
          { method, path, status: 0, code: "not_available", missingRoute: true });
      }
      const error = new ApiError(timedOut ? `no answer within ${Math.round(timeoutMs / 1000)} s (timeout)`
        : `network error: ${exc && exc.message ? exc.message : exc} (API unreachable at ${this.baseUrl})`,
      { method, path, network: true });
      this.onNetworkError(error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (raw) return response;
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { message: text.slice(0, 300) }; }
    }
    if (!response.ok) {
      const err = (data && data.error) || {};
      const message = err.message || (data && (data.message || data.Message)) || response.statusText || "error";
      // The local gateway answers 404 "no route for ..." (405 for a missing method); API Gateway answers
      // 403 "Missing Authentication Token".
      const missingRoute = (response.status === 404 && /^no route for/i.test(message)) || response.status === 405
        || (response.status === 403 && /Missing Authentication Token/i.test(message));
      const error = new ApiError(message, { status: response.status, code: err.code || "error", field: err.field,
        method, path, missingRoute, retryAfterMs: parseRetryAfter(response.headers.get("Retry-After")) });
      if (response.status === 401 && auth) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  async reachable() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 2000);
    try {
      const response = await fetch(`${this.baseUrl}/health`, { signal: controller.signal, cache: "no-store" });
      return response.ok;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  get(path, opts) { return this.request("GET", path, opts); }
  post(path, body, opts) { return this.request("POST", path, { ...opts, body }); }
  patch(path, body, opts) { return this.request("PATCH", path, { ...opts, body }); }
  put(path, body, opts) { return this.request("PUT", path, { ...opts, body }); }
  delete(path, opts) { return this.request("DELETE", path, opts); }

  // Every page of a list (cursor pagination), up to `max` items.
  async all(path, params = {}, max = 5000) {
    const items = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: "500", ...params });
      if (cursor) query.set("cursor", cursor);
      const page = await this.get(`${path}?${query}`);
      items.push(...(page.items || []));
      cursor = page.nextCursor;
    } while (cursor && items.length < max);
    return items;
  }
}
