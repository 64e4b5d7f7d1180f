// Resolves where the API and WebSocket gateway are, and the pill's timings.
//
// Order: ?api=&ws= (only when config.js allows it: the local default does, deployments must not,
// or a link could send a user's password elsewhere) > window.RACE_CONFIG from config.js >
// derived from the page's own location (same host, ports 8000 / 8001).

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

const DEFAULTS = {
  pollIntervalMs: 10_000, // GET /health while healthy
  retryIntervalMs: 4_000, // GET /health after a failure (5 attempts, then Offline)
  meIntervalMs: 60_000, // GET /auth/me
  staleAfterMs: 30_000, // Online needs a successful poll younger than this
  maxFailures: 5,
  requestTimeoutMs: 8_000,
  pollTimeoutMs: 4_000,
  wsPingMs: 20_000,
};

function swapHost(url, host, secure) {
  try {
    const parsed = new URL(url);
    parsed.hostname = host;
    // An https page may not call plain http/ws (mixed content): follow the page's scheme.
    if (secure && parsed.protocol === "http:") parsed.protocol = "https:";
    if (secure && parsed.protocol === "ws:") parsed.protocol = "wss:";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return url;
  }
}

function derived(location) {
  const secure = location.protocol === "https:";
  return {
    apiUrl: `${secure ? "https" : "http"}://${location.hostname}:8000`,
    wsUrl: `${secure ? "wss" : "ws"}://${location.hostname}:8001`,
  };
}

export function resolveConfig(raw = window.RACE_CONFIG, location = window.location) {
  const base = raw && raw.apiUrl ? { ...raw } : derived(location);
  if (!base.wsUrl) base.wsUrl = derived(location).wsUrl;
  // The local default names 127.0.0.1; opened from another machine (a pit-wall laptop on the
  // paddock LAN), the API is on the host that served the page.
  const pageHost = location.hostname;
  if (pageHost && !LOOPBACK.has(pageHost)) {
    for (const key of ["apiUrl", "wsUrl"]) {
      try {
        if (LOOPBACK.has(new URL(base[key]).hostname)) {
          base[key] = swapHost(base[key], pageHost, location.protocol === "https:");
        }
      } catch { /* leave as given */ }
    }
  }
  const params = new URLSearchParams(location.search);
  if (raw && raw.allowUrlOverride) {
    if (params.get("api")) base.apiUrl = params.get("api");
    if (params.get("ws")) base.wsUrl = params.get("ws");
    for (const [param, key] of [["pollMs", "pollIntervalMs"], ["retryMs", "retryIntervalMs"],
      ["meMs", "meIntervalMs"], ["staleMs", "staleAfterMs"], ["pingMs", "wsPingMs"]]) {
      const value = Number(params.get(param));
      if (value > 0) base[key] = value;
    }
  }
  const config = { ...DEFAULTS, ...base };
  config.apiUrl = String(config.apiUrl).replace(/\/+$/, "");
  config.wsUrl = String(config.wsUrl).replace(/\/+$/, "");
  return config;
}
