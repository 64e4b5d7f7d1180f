// The sync status behind the pill, exactly as the runbook defines it:
//   Online       API and WebSocket reachable, last successful poll under 30 s old
//   Reconnecting the last poll failed, still inside the 5-attempt retry window
//   Offline      five consecutive failed polls: offline-cache mode, writes queue as "N pending"

export const ONLINE = "online";
export const RECONNECTING = "reconnecting";
export const OFFLINE = "offline";

export const LABELS = { online: "Online", reconnecting: "Reconnecting", offline: "Offline", connecting: "Connecting" };

export class SyncStatus {
  constructor(api, config, { now = () => Date.now() } = {}) {
    this.api = api;
    this.config = config;
    this.now = now;
    this.failures = 0; // consecutive failed /health polls
    this.lastSeen = { health: null, me: null, ws: null }; // epoch ms of the last success of each
    this.lastError = null; // { message, at }
    this.offlineSince = null;
    this.wsOpen = false;
    this.wsWanted = false;
    this.everOnline = false;
    this.pending = 0;
    this.listeners = new Set();
    this.timer = null;
    this.meTimer = null;
    this.staleTimer = null;
    this.running = false;
    this.polling = false;
    this._state = this.compute();
  }

  get state() { return this._state; }

  compute() {
    if (this.failures >= this.config.maxFailures) return OFFLINE;
    if (this.failures > 0) return RECONNECTING;
    if (!this.everOnline) return "connecting";
    const fresh = this.lastSeen.health !== null && this.now() - this.lastSeen.health < this.config.staleAfterMs;
    if (!fresh) return RECONNECTING;
    if (this.wsWanted && !this.wsOpen) return RECONNECTING;
    return ONLINE;
  }

  // Why the state is what it is, in words (the pill's popover and the screen-reader text).
  reason() {
    const state = this._state;
    if (state === OFFLINE) return `${this.failures} polls in a row failed; working from the offline cache`;
    if (state === RECONNECTING) {
      if (this.failures > 0) return `poll ${this.failures} of ${this.config.maxFailures} failed; retrying`;
      if (this.wsWanted && !this.wsOpen) return "WebSocket disconnected; reconnecting";
      return "no successful poll in the last 30 s";
    }
    if (state === "connecting") return "first contact with the API";
    return "API and WebSocket reachable";
  }

  subscribe(listener) {
    this.listeners.add(listener);
    listener(this);
    return () => this.listeners.delete(listener);
  }

  update() {
    const before = this._state;
    this._state = this.compute();
    if (this._state === OFFLINE && before !== OFFLINE) this.offlineSince = this.now();
    if (this._state !== OFFLINE) this.offlineSince = null;
    for (const listener of this.listeners) listener(this, before);
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.poll();
    this.pollMe();
    // Re-evaluate staleness even when nothing else happens (a poll stuck in a timeout).
    this.staleTimer = setInterval(() => this.update(), 1000);
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    clearTimeout(this.meTimer);
    clearInterval(this.staleTimer);
  }

  schedule(delayMs) {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => this.poll(), delayMs);
  }

  // An app request just failed on the network: check now rather than at the next tick.
  pollSoon() {
    if (!this.polling && this.failures === 0) this.schedule(0);
  }

  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.api.get("/health", { auth: false, timeoutMs: this.config.pollTimeoutMs });
      this.lastSeen.health = this.now();
      this.everOnline = true;
      const recovered = this.failures > 0;
      this.failures = 0;
      this.update();
      if (recovered) this.emit("recovered");
    } catch (error) {
      this.failures += 1;
      this.lastError = { message: error.describe ? error.describe() : String(error), at: this.now() };
      this.update();
    } finally {
      this.polling = false;
      this.schedule(this.failures === 0 ? this.config.pollIntervalMs : this.config.retryIntervalMs);
    }
  }

  async pollMe() {
    clearTimeout(this.meTimer);
    try {
      const me = await this.api.get("/auth/me", { timeoutMs: this.config.pollTimeoutMs });
      this.lastSeen.me = this.now();
      this.emit("me", me);
    } catch (error) {
      if (!error.network) this.lastError = { message: error.describe(), at: this.now() };
    }
    this.update();
    if (this.running) this.meTimer = setTimeout(() => this.pollMe(), this.config.meIntervalMs);
  }

  wsChanged(open, error) {
    this.wsOpen = open;
    if (open) this.lastSeen.ws = this.now();
    if (error) this.lastError = { message: error, at: this.now() };
    this.update();
  }

  wsSeen() {
    this.lastSeen.ws = this.now();
  }

  setPending(count) {
    if (count === this.pending) return;
    this.pending = count;
    this.update();
  }

  emit(kind, payload) {
    const handlers = this.handlers && this.handlers[kind];
    if (handlers) for (const fn of handlers) fn(payload);
  }

  on(kind, fn) {
    this.handlers = this.handlers || {};
    (this.handlers[kind] = this.handlers[kind] || []).push(fn);
  }
}
