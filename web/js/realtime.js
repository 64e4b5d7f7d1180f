// The room over WebSocket (a session's, or an event's: "event:<id>"): join, presence, and changes from
// other team members applied strictly in `seq` order (a gap asks the server to resume; if it cannot,
// the view refetches).

// The room a frame belongs to: session rooms are named by `sessionId`, event rooms by `eventId`.
export function roomOf(message) {
  return message.sessionId || (message.eventId ? `event:${message.eventId}` : null);
}

// How a join/resume/leave names the room.
export function roomRef(room) {
  return room.startsWith("event:") ? { eventId: room.slice(6) } : { sessionId: room };
}

export class Realtime {
  constructor(config, { getToken, status, gapTimeoutMs = 1500 }) {
    this.config = config;
    this.getToken = getToken;
    this.status = status;
    this.gapTimeoutMs = gapTimeoutMs;
    this.ws = null;
    this.sessionId = null;
    this.lastSeq = null; // highest seq applied for the joined session
    this.epoch = null; // the room's numbering (from joined/resumed/resync): seqs of another epoch are not ours
    this.buffer = new Map(); // seq -> message waiting for the ones before it
    this.members = [];
    this.handlers = { change: new Set(), presence: new Set(), resync: new Set(), joined: new Set() };
    this.retryMs = 500;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.gapTimer = null;
    this.stopped = true;
  }

  on(kind, fn) {
    this.handlers[kind].add(fn);
    return () => this.handlers[kind].delete(fn);
  }

  emit(kind, payload) {
    for (const fn of this.handlers[kind]) {
      try { fn(payload); } catch (exc) { console.error(exc); } // eslint-disable-line no-console
    }
  }

  start() {
    this.stopped = false;
    this.status.wsWanted = true;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    const token = this.getToken();
    if (!token || this.stopped) return;
    if (this.ws && (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)) return;
    let ws;
    try {
      ws = new WebSocket(`${this.config.wsUrl}/?token=${encodeURIComponent(token)}`);
    } catch (exc) {
      this.status.wsChanged(false, `WebSocket ${this.config.wsUrl}: ${exc.message}`);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.retryMs = 500;
      this.status.wsChanged(true);
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ action: "ping", t: Date.now() }), this.config.wsPingMs);
      if (this.sessionId) this.send({ action: "join", ...roomRef(this.sessionId) });
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      this.status.wsSeen();
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      this.receive(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      const reason = event.code === 1006 ? "connection lost or refused" : `closed (code ${event.code})`;
      this.members = []; // unknown until we are back in the room
      this.emit("presence", this.members);
      this.status.wsChanged(false, `WebSocket ${this.config.wsUrl}: ${reason}`);
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 8000);
  }

  reconnectNow() {
    this.retryMs = 500;
    this.connect();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  join(sessionId) {
    if (this.sessionId === sessionId) return;
    if (this.sessionId) this.send({ action: "leave", ...roomRef(this.sessionId) });
    this.sessionId = sessionId;
    this.lastSeq = null;
    this.epoch = null;
    this.buffer.clear();
    this.members = [];
    this.emit("presence", this.members);
    if (sessionId) this.send({ action: "join", ...roomRef(sessionId) });
  }

  leave() {
    this.join(null);
  }

  receive(message) {
    const type = message.type;
    if (type === "pong") return;
    if (type === "joined") {
      if (roomOf(message) !== this.sessionId) return;
      this.members = message.members || [];
      this.emit("presence", this.members);
      const first = this.lastSeq === null;
      const restarted = !first && Boolean(message.epoch && this.epoch && message.epoch !== this.epoch);
      if (message.epoch) this.epoch = message.epoch;
      if (restarted) {
        this.restart(message.seq || 0); // another epoch: the room's numbering started over
      } else if (first) {
        this.lastSeq = message.seq || 0;
        for (const seq of [...this.buffer.keys()]) if (seq <= this.lastSeq) this.buffer.delete(seq);
        this.drain();
      } else if ((message.seq || 0) > this.lastSeq) {
        this.requestResume(); // we were away: ask for what we missed
      } else if ((message.seq || 0) < this.lastSeq) {
        this.restart(message.seq || 0); // the room's numbering started over
      }
      this.emit("joined", { first, seq: message.seq });
      return;
    }
    if (type === "presence") {
      if (roomOf(message) && roomOf(message) !== this.sessionId) return;
      // Big rooms send only who came or went; small ones the whole list.
      this.members = message.members || applyPresence(this.members, message.change, message.member);
      this.emit("presence", this.members);
      return;
    }
    if (type === "resumed") {
      if (roomOf(message) !== this.sessionId || this.lastSeq === null) return;
      if (message.epoch) this.epoch = message.epoch;
      for (const missed of message.messages || []) {
        if (typeof missed.seq === "number" && missed.seq > this.lastSeq) this.buffer.set(missed.seq, missed);
      }
      if (message.final) {
        if (message.members) {
          this.members = message.members;
          this.emit("presence", this.members);
        }
        this.clearGap(); // a gap still open after the replay asks again (drain)
      }
      this.drain();
      return;
    }
    if (type === "resync") {
      if (roomOf(message) && roomOf(message) !== this.sessionId) return;
      if (message.members) {
        this.members = message.members;
        this.emit("presence", this.members);
      }
      const restarted = message.reason === "room_restarted" || Boolean(message.epoch && this.epoch && message.epoch !== this.epoch);
      if (message.epoch) this.epoch = message.epoch;
      if (restarted) this.restart(message.seq || 0); // what we hold is of the old numbering
      else this.resync(message.seq);
      return;
    }
    if (type === "error") {
      if (this.gapTimer) this.resync(); // the server cannot resume: refetch instead
      return;
    }
    if (typeof message.seq === "number" && roomOf(message) === this.sessionId) {
      if (this.lastSeq !== null && message.seq <= this.lastSeq) return; // already applied
      this.buffer.set(message.seq, message);
      if (this.lastSeq !== null) this.drain();
    }
  }

  drain() {
    while (this.buffer.has(this.lastSeq + 1)) {
      const next = this.buffer.get(this.lastSeq + 1);
      this.buffer.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      this.emit("change", next);
    }
    if (this.buffer.size) this.requestResume();
    else this.clearGap();
  }

  requestResume() {
    if (this.gapTimer) return;
    // The epoch lets the server tell a seq of an earlier numbering (the room restarted) from one of now.
    const epoch = this.epoch ? { epoch: this.epoch } : {};
    this.send({ action: "resume", ...roomRef(this.sessionId), sinceSeq: this.lastSeq, ...epoch });
    this.gapTimer = setTimeout(() => {
      this.gapTimer = null;
      if (this.buffer.size || this.pendingResume) this.resync();
    }, this.gapTimeoutMs);
    this.pendingResume = true;
  }

  clearGap() {
    this.pendingResume = false;
    clearTimeout(this.gapTimer);
    this.gapTimer = null;
  }

  // The room counts from `seq` again (its numbering restarted, e.g. the local emulator restarted): what
  // we hold belongs to the old numbering, so continue after `seq` and let the view refetch.
  restart(seq) {
    this.clearGap();
    this.lastSeq = seq;
    this.buffer.clear();
    this.emit("resync", { sessionId: this.sessionId });
  }

  // Give up on the missing messages: the view refetches (which covers everything seen so far), and
  // we continue after the newest seq seen or after `seq`, where the server says its pushes continue.
  resync(seq) {
    this.clearGap();
    this.lastSeq = Math.max(this.lastSeq || 0, typeof seq === "number" ? seq : 0, ...this.buffer.keys());
    this.buffer.clear();
    this.emit("resync", { sessionId: this.sessionId });
  }
}

// The member list after a presence change that came without the whole list.
export function applyPresence(members, change, member) {
  if (!member || !member.connectionId) return members;
  const others = members.filter((m) => m.connectionId !== member.connectionId);
  return change === "leave" ? others : [...others, member];
}
