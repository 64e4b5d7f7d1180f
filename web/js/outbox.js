// The offline outbox: race-data writes queue here (persisted in localStorage) and are sent in
// order, each with an Idempotency-Key, so a resend after a lost answer never duplicates.

import { newId } from "./api.js";

export class Outbox {
  constructor(api, storageKey, { storage = window.localStorage } = {}) {
    this.api = api;
    this.storageKey = storageKey;
    this.storage = storage;
    this.queue = this.load();
    this.flushing = false;
    this.blocked = false; // the last attempt failed on the network: wait for the next flush()
    this.listeners = new Set();
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
    try {
      while (this.queue.length) {
        const item = this.queue[0];
        item.attempts += 1;
        let result;
        try {
          result = await this.api.request(item.method, item.path, { body: item.body,
            headers: { "Idempotency-Key": item.id } });
        } catch (error) {
          // 401: the sign-in expired; keep the write for after the engineer signs in again.
          if (error.retriable || error.status === 401) {
            this.blocked = true;
            this.save();
            this.notify({ type: "waiting", item, error });
            return;
          }
          // Refused for good (bad input, gone, not allowed): drop it and say so.
          this.queue.shift();
          this.save();
          this.notify({ type: "rejected", item, error });
          continue;
        }
        this.blocked = false;
        this.queue.shift();
        this.save();
        this.notify({ type: "sent", item, result });
      }
    } finally {
      this.flushing = false;
    }
  }
}
