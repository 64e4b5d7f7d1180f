// The offline outbox: race-data writes queue here (persisted in localStorage) and are sent in
// order, each with an Idempotency-Key, so a resend after a lost answer never duplicates.
// Events to subscribers: queued, sent (`result` is null when the write was applied but its answer
// lost: read it again), waiting (kept for a later flush), rejected (dropped for good).

import { newId } from "./api.js";

export class Outbox {
  constructor(api, storageKey, { storage = window.localStorage, retryBaseMs = 1000, retryMaxMs = 10000,
    retryAfterMaxMs = 120000 } = {}) {
    this.api = api;
    this.storageKey = storageKey;
    this.storage = storage;
    this.queue = this.load();
    this.flushing = false;
    this.blocked = false; // the last attempt failed for a reason that can pass: wait for the next flush()
    this.listeners = new Set();
    // The server answered "not now" (busy, failing, or the same key still running): nothing else will
    // call flush() (the sync status stays online), so retry on our own, backing off.
    this.retryBaseMs = retryBaseMs;
    this.retryMaxMs = retryMaxMs;
    this.retryAfterMaxMs = retryAfterMaxMs;
    this.retryTimer = null;
    this.retries = 0; // such answers in a row for the first write
  }

  load() {
    try {
      const items = JSON.parse(this.storage.getItem(this.storageKey) || "[]");
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  save() {
    try { this.storage.setItem(this.storageKey, JSON.stringify(this.queue)); } catch { /* quota: keep in memory */ }
  }

  get size() { return this.queue.length; }

  items() { return [...this.queue]; }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(event) {
    for (const listener of this.listeners) listener(event, this);
  }

  // Queue a write; `kind` and `meta` let views show it before the server has it.
  enqueue({ method, path, body, label, kind, meta = {} }) {
    const item = { id: newId(), method, path, body, label, kind, meta, queuedAt: new Date().toISOString(),
      attempts: 0 };
    this.queue.push(item);
    this.save();
    this.notify({ type: "queued", item });
    this.flush();
    return item;
  }

  // Send queued writes in order; stops at the first one that fails for a reason that can pass.
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    try {
      while (this.queue.length) {
        const item = this.queue[0];
        item.attempts += 1;
        let result;
        try {
          result = await this.api.request(item.method, item.path, { body: item.body,
            headers: { "Idempotency-Key": item.id } });
        } catch (error) {
          // An earlier attempt with this key committed but its answer was lost: done, nothing to apply.
          if (error.alreadyApplied) {
            this.done();
            this.notify({ type: "sent", item, result: null, answerLost: true });
            continue;
          }
          // 401: the sign-in expired; keep the write for after the engineer signs in again.
          // Retriable (network, 5xx, 429, or 409 idempotency_in_progress): keep it, first in line, and
          // send it again later with the same Idempotency-Key.
          if (error.retriable || error.status === 401) {
            this.blocked = true;
            this.save();
            const retryInMs = error.retriable && !error.network ? this.scheduleRetry(error.retryAfterMs) : null;
            this.notify({ type: "waiting", item, error, retryInMs });
            return;
          }
          // Refused for good (bad input, gone, not allowed): drop it and say so.
          this.done();
          this.notify({ type: "rejected", item, error });
          continue;
        }
        this.done();
        this.notify({ type: "sent", item, result });
      }
    } finally {
      this.flushing = false;
    }
  }

  // The first write has left the queue (sent, applied or refused for good).
  done() {
    this.blocked = false;
    this.retries = 0;
    this.queue.shift();
    this.save();
  }

  // Flush again after a backoff (doubling up to retryMaxMs), or later when the server asked for that
  // (Retry-After, capped at retryAfterMaxMs); an earlier flush() call supersedes it.
  scheduleRetry(retryAfterMs = null) {
    this.retries += 1;
    const backoffMs = Math.min(this.retryBaseMs * 2 ** (this.retries - 1), this.retryMaxMs);
    const delayMs = retryAfterMs == null ? backoffMs : Math.max(backoffMs, Math.min(retryAfterMs, this.retryAfterMaxMs));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, delayMs);
    return delayMs;
  }
}
