"""The client's own logic, run as ES modules in Chromium: lap-time formats, the pill's state
machine, the outbox's order and idempotency keys, and in-order application of room messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(browser: Any, web_url: str) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{web_url}/index.html#/login")
    page.wait_for_selector("form.login-form")
    try:
        yield page
    finally:
        context.close()


def run(page: Any, body: str) -> Any:
    """Evaluate an async function body with the client's modules imported as `m`."""
    return page.evaluate(f"""async () => {{
        const m = {{
          ...(await import('/js/format.js')), ...(await import('/js/status.js')),
          ...(await import('/js/outbox.js')), ...(await import('/js/realtime.js')),
          ...(await import('/js/laps.js')), ...(await import('/js/api.js')), ...(await import('/js/config.js')),
        }};
        {body}
    }}""")


def in_room(gap_timeout_ms: int) -> str:
    """JS that joins room s1 on a Realtime client: `rt`, the `applied` seqs, the `resyncs` count, `msg(seq)`."""
    return f"""
        const status = {{ wsChanged() {{}}, wsSeen() {{}}, wsWanted: false }};
        const rt = new m.Realtime({{ wsUrl: 'ws://127.0.0.1:9' }},
                                  {{ getToken: () => null, status, gapTimeoutMs: {gap_timeout_ms} }});
        const applied = [];
        let resyncs = 0;
        rt.on('change', (msg) => applied.push(msg.seq));
        rt.on('resync', () => resyncs++);
        rt.join('s1');
        const msg = (seq) => ({{ type: 'lap.create', sessionId: 's1', seq, data: {{ id: String(seq) }} }});"""


def test_lap_times_format_and_parse(page: Any) -> None:
    assert run(
        page,
        """return [m.lapTime(120432), m.lapTime(59100), m.lapTime(null), m.gap(412), m.gap(-30),
        m.parseLapTime('2:00.432'), m.parseLapTime('59.1'), m.parseLapTime('1:44,05'), m.parseLapTime('104050'),
        m.parseLapTime('')];""",
    ) == ["2:00.432", "59.100", "", "+0.412", "-0.030", 120432, 59100, 104050, 104050, None]
    assert "not a time" in run(page, "try { m.parseLapTime('fast'); } catch (e) { return e.message; }")


def test_best_lap_ignores_invalid_in_and_out_laps(page: Any) -> None:
    result = run(
        page,
        """
        const laps = [
          {id: 'a', lapNumber: 1, lapTimeMs: 99000, isOutLap: true, sectorTimesMs: [1, 1, 1]},
          {id: 'b', lapNumber: 2, lapTimeMs: 100500, sectorTimesMs: [30000, 40000, 30500]},
          {id: 'c', lapNumber: 3, lapTimeMs: 100100, isValid: false, sectorTimesMs: [29000, 40000, 31100]},
          {id: 'd', lapNumber: 4, lapTimeMs: 100700, sectorTimesMs: [30100, 39800, 30800]},
        ];
        const sectors = m.bestSectors(laps);
        return [m.bestLap(laps).id, sectors.map((s) => s.lapNumber), m.theoreticalBest(sectors)];""",
    )
    assert result == ["b", [2, 4, 2], 100300]


def test_best_lap_follows_the_officials_and_never_lap_1_and_stints_are_inferred(page: Any) -> None:
    result = run(
        page,
        """
        const laps = [
          {id: 'a', lapNumber: 1, lapTimeMs: 99000},                                  // from the grid
          {id: 'b', lapNumber: 2, lapTimeMs: 100500, isInLap: true},
          {id: 'c', lapNumber: 3, lapTimeMs: 100400, isOutLap: true},
          {id: 'd', lapNumber: 4, lapTimeMs: 100100},
          {id: 'e', lapNumber: 5, lapTimeMs: 100300, custom: { officialBest: true }},
        ];
        const before = m.bestLap(laps).id;
        laps[4].isValid = false;                                                      // the team overrules
        return [before, m.bestLap(laps).id, m.stints(laps).map((s) => [s.stint, s.from, s.to])];""",
    )
    assert result == ["e", "d", [[1, 1, 2], [2, 3, 5]]]


def test_the_pill_follows_the_runbook(page: Any) -> None:
    states = run(
        page,
        """
        let up = true;
        let now = 1_000_000;
        const api = { get: async (path) => {
          if (!up) throw new m.ApiError('network error: Failed to fetch', { method: 'GET', path, network: true });
          return { status: 'ok' };
        } };
        const config = { maxFailures: 5, staleAfterMs: 30000, pollIntervalMs: 1e9, retryIntervalMs: 1e9,
                         meIntervalMs: 1e9, pollTimeoutMs: 1000 };
        const status = new m.SyncStatus(api, config, { now: () => now });
        let recovered = 0;
        status.on('recovered', () => recovered++);
        const seen = [status.state];
        await status.poll(); seen.push(status.state);
        status.wsWanted = true; status.update(); seen.push(status.state);         // WS not open yet
        status.wsChanged(true); seen.push(status.state);
        up = false;
        for (let i = 0; i < 5; i++) { await status.poll(); seen.push(status.state); }
        const error = status.lastError.message;
        up = true; await status.poll(); seen.push(status.state);
        now += 31000; status.update(); seen.push(status.state);                  // last poll too old
        return { seen, error, recovered };""",
    )
    assert states["seen"] == [
        "connecting",
        "online",
        "reconnecting",
        "online",
        "reconnecting",
        "reconnecting",
        "reconnecting",
        "reconnecting",
        "offline",
        "online",
        "reconnecting",
    ]
    assert states["error"] == "GET /health: network error: Failed to fetch"
    assert states["recovered"] == 1


def test_outbox_sends_in_order_with_idempotency_keys_and_survives_failures(page: Any) -> None:
    result = run(
        page,
        """
        const store = new Map();
        const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
        let up = false;
        const sent = [];
        const api = { request: async (method, path, { body, headers }) => {
          if (!up) throw new m.ApiError('refused', { network: true });
          if (body.bad) throw new m.ApiError('lapTimeMs must be positive', { status: 400 });
          sent.push([method, path, body.n, headers['Idempotency-Key']]);
          return { ok: true };
        } };
        const outbox = new m.Outbox(api, 'test', { storage });
        const events = [];
        outbox.subscribe((e) => events.push(e.type));
        for (const n of [1, 2, 3]) outbox.enqueue({ method: 'PATCH', path: '/x', body: { n } });
        outbox.enqueue({ method: 'POST', path: '/y', body: { bad: true } });
        await outbox.flush();
        const persisted = JSON.parse(store.get('test')).map((i) => i.body.n ?? 'bad');
        const reloaded = new m.Outbox(api, 'test', { storage }).size;
        up = true;
        await outbox.flush();
        const rejected = events.filter((t) => t === 'rejected').length;
        return { persisted, reloaded, sent, left: outbox.size, rejected };""",
    )
    assert result["persisted"] == [1, 2, 3, "bad"]
    assert result["reloaded"] == 4  # localStorage keeps the queue across reloads
    assert [row[2] for row in result["sent"]] == [1, 2, 3]
    keys = [row[3] for row in result["sent"]]
    assert len(set(keys)) == 3 and all(len(k) == 36 for k in keys)
    assert result["left"] == 0 and result["rejected"] == 1


def test_room_messages_apply_in_seq_order_and_a_gap_ends_in_a_resync(page: Any) -> None:
    result = run(
        page,
        in_room(gap_timeout_ms=50)
        + """
        rt.receive(msg(6));                                                  // before joined: buffered
        rt.receive({ type: 'joined', sessionId: 's1', seq: 5, members: [{ name: 'A', role: 'owner' }] });
        rt.receive(msg(8)); rt.receive(msg(7)); rt.receive(msg(7)); rt.receive(msg(9));
        rt.receive({ type: 'lap.create', sessionId: 'other', seq: 10, data: {} });  // another room
        const inOrder = [...applied];
        rt.receive(msg(12));                                                 // 10 and 11 never come
        await new Promise((r) => setTimeout(r, 120));
        rt.receive(msg(13));
        return { inOrder, applied, resyncs, members: rt.members.length };""",
    )
    assert result["inOrder"] == [6, 7, 8, 9]
    assert result["resyncs"] == 1
    assert result["applied"] == [6, 7, 8, 9, 13]
    assert result["members"] == 1


def test_a_gap_is_filled_by_the_resumed_replay_and_a_resync_continues_after_its_seq(page: Any) -> None:
    result = run(
        page,
        in_room(gap_timeout_ms=5000)
        + """
        rt.receive({ type: 'joined', sessionId: 's1', seq: 5, members: [] });
        rt.receive(msg(6)); rt.receive(msg(9));                               // 7 and 8 missing: resume asked
        rt.receive({ type: 'resumed', sessionId: 's1', fromSeq: 7, toSeq: 7, final: false, messages: [msg(7)] });
        rt.receive({ type: 'resumed', sessionId: 's1', fromSeq: 8, toSeq: 8, final: true, messages: [msg(8)],
                     members: [{ connectionId: 'c1', name: 'A', role: 'owner' }] });
        const replayed = [...applied];
        const gapClosed = rt.gapTimer === null;
        rt.receive(msg(12));                                                  // 10, 11 missing again
        rt.receive({ type: 'resync', sessionId: 's1', seq: 14, reason: 'beyond_window', members: [] });
        rt.receive(msg(14)); rt.receive(msg(15));                             // 14 is covered by the refetch
        return { replayed, gapClosed, applied, resyncs, lastSeq: rt.lastSeq };""",
    )
    assert result["replayed"] == [6, 7, 8, 9]
    assert result["gapClosed"] is True
    assert result["resyncs"] == 1
    assert result["applied"] == [6, 7, 8, 9, 15]
    assert result["lastSeq"] == 15


def test_presence_without_the_list_applies_who_came_and_went(page: Any) -> None:
    result = run(
        page,
        """
        const status = { wsChanged() {}, wsSeen() {}, wsWanted: false };
        const rt = new m.Realtime({ wsUrl: 'ws://127.0.0.1:9' }, { getToken: () => null, status });
        rt.join('s1');
        const a = { connectionId: 'a', name: 'Alex', role: 'engineer' };
        const b = { connectionId: 'b', name: 'Bo', role: 'viewer' };
        rt.receive({ type: 'joined', sessionId: 's1', seq: 0, members: [a] });
        rt.receive({ type: 'presence', sessionId: 's1', change: 'join', member: b, count: 2 });
        rt.receive({ type: 'presence', sessionId: 's1', change: 'join', member: b, count: 2 });  // twice: once
        const both = rt.members.map((x) => x.name);
        rt.receive({ type: 'presence', sessionId: 's1', change: 'leave', member: a, count: 1 });
        return { both, after: rt.members.map((x) => x.name) };""",
    )
    assert result == {"both": ["Alex", "Bo"], "after": ["Bo"]}


def test_config_honours_overrides_only_when_allowed(page: Any) -> None:
    result = run(
        page,
        """
        const loc = (href) => new URL(href);
        const local = { apiUrl: 'http://127.0.0.1:8000', wsUrl: 'ws://127.0.0.1:8001', allowUrlOverride: true };
        const deployed = { apiUrl: 'https://api.race.example', wsUrl: 'wss://ws.race.example' };
        return [
          m.resolveConfig(local, loc('http://127.0.0.1:6166/?api=http://127.0.0.1:9999&pollMs=500')),
          m.resolveConfig(deployed, loc('https://app.race.example/?api=https://evil.example')),
          m.resolveConfig(local, loc('http://10.0.0.5:6166/')),
          m.resolveConfig(null, loc('https://pitwall.example/')),
          m.resolveConfig(local, loc('https://pitwall.example/?api=http://127.0.0.1:9999')),
        ].map((c) => [c.apiUrl, c.wsUrl, c.pollIntervalMs]);""",
    )
    assert result == [
        ["http://127.0.0.1:9999", "ws://127.0.0.1:8001", 500],
        ["https://api.race.example", "wss://ws.race.example", 10000],
        ["http://10.0.0.5:8000", "ws://10.0.0.5:8001", 10000],
        ["https://pitwall.example:8000", "wss://pitwall.example:8001", 10000],
        ["http://127.0.0.1:9999", "wss://pitwall.example:8001", 10000],
    ]


def test_outbox_keeps_a_write_whose_key_is_still_in_progress_and_retries_it_with_the_same_key(page: Any) -> None:
    result = run(
        page,
        """
        const store = new Map();
        const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
        const attempts = [];
        let busy = 2;                                    // the killed request's lock holds for two attempts
        const api = { request: async (method, path, { body, headers }) => {
          attempts.push([body.n, headers['Idempotency-Key']]);
          if (body.n === 1 && busy > 0) {
            busy -= 1;
            throw new m.ApiError('a request with this Idempotency-Key is still running',
                                 { status: 409, code: 'idempotency_in_progress', method, path });
          }
          return { n: body.n };
        } };
        const outbox = new m.Outbox(api, 'in-progress', { storage, retryBaseMs: 20, retryMaxMs: 40 });
        const events = [];
        outbox.subscribe((e) => events.push([e.type, e.item.body.n, e.retryInMs ?? null]));
        outbox.enqueue({ method: 'POST', path: '/laps', body: { n: 1 } });
        await outbox.flush();
        const kept = JSON.parse(store.get('in-progress')).map((i) => i.body.n);
        outbox.enqueue({ method: 'POST', path: '/laps', body: { n: 2 } });  // queued behind it
        for (let i = 0; i < 500 && outbox.size; i++) await new Promise((r) => setTimeout(r, 10));
        return { kept, attempts, events, left: outbox.size };""",
    )
    assert result["kept"] == [1]  # still queued (and persisted) after the 409
    assert [n for n, _ in result["attempts"]] == [1, 1, 1, 2]  # retried first, in order
    assert len({key for n, key in result["attempts"] if n == 1}) == 1  # always the same Idempotency-Key
    assert result["events"] == [
        ["queued", 1, None],
        ["waiting", 1, 20],
        ["queued", 2, None],
        ["waiting", 1, 40],
        ["sent", 1, None],
        ["sent", 2, None],
    ]
    assert result["left"] == 0


def test_outbox_waits_as_long_as_a_429_retry_after_asks_capped(page: Any) -> None:
    result = run(
        page,
        """
        const storage = { getItem: () => null, setItem: () => {} };
        let calls = 0;
        const api = { request: async (method, path) => {
          calls += 1;
          const retryAfterMs = calls === 1 ? m.parseRetryAfter('1') : m.parseRetryAfter('3600');
          throw new m.ApiError('slow down', { status: 429, code: 'rate_limited', method, path, retryAfterMs });
        } };
        const outbox = new m.Outbox(api, 'rl', { storage, retryBaseMs: 20, retryMaxMs: 40, retryAfterMaxMs: 5000 });
        const waits = [];
        outbox.subscribe((e) => { if (e.type === 'waiting') waits.push(e.retryInMs); });
        outbox.enqueue({ method: 'POST', path: '/laps', body: {} });
        await outbox.flush();            // Retry-After: 1 -> 1000 ms, not the 20 ms backoff
        await outbox.flush();            // Retry-After: 3600 -> capped at 5000 ms
        clearTimeout(outbox.retryTimer);
        const now = Date.parse('2026-11-28T12:00:00Z');
        return { waits, date: m.parseRetryAfter('Sat, 28 Nov 2026 12:00:30 GMT', now),
                 past: m.parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', now),
                 junk: m.parseRetryAfter('soon'), none: m.parseRetryAfter(null) };""",
    )
    assert result == {"waits": [1000, 5000], "date": 30000, "past": 0, "junk": None, "none": None}


def test_outbox_counts_an_already_applied_key_as_sent_without_a_result(page: Any) -> None:
    result = run(
        page,
        """
        const store = new Map();
        const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
        let up = false;
        const attempts = [];
        const api = { request: async (method, path, { body }) => {
          if (!up) throw new m.ApiError('refused', { network: true });
          attempts.push(body.n);
          if (body.n === 1) throw new m.ApiError('already applied; read the result with GET',
                                                 { status: 409, code: 'idempotency_key_applied', method, path });
          return { n: body.n };
        } };
        const outbox = new m.Outbox(api, 'applied', { storage });
        const events = [];
        outbox.subscribe((e) => { if (e.type !== 'queued') events.push([e.type, e.item.body.n, e.result ?? null]); });
        outbox.enqueue({ method: 'POST', path: '/laps', body: { n: 1 } });
        outbox.enqueue({ method: 'POST', path: '/laps', body: { n: 2 } });
        await outbox.flush();
        up = true;
        await outbox.flush();
        return { attempts, events, left: outbox.size, persisted: JSON.parse(store.get('applied')).length };""",
    )
    assert result["attempts"] == [1, 2]
    assert result["events"][-2:] == [["sent", 1, None], ["sent", 2, {"n": 2}]]
    assert all(kind != "rejected" for kind, _, _ in result["events"])
    assert result["left"] == 0 and result["persisted"] == 0


def test_run_sheet_reads_back_a_write_applied_without_an_answer(page: Any) -> None:
    result = run(
        page,
        """
        const { runSheetView } = await import('/js/views/runsheet.js');
        const records = {
          '/run-sheets/rs1': { id: 'rs1', sessionId: 's1', carId: 'c1', engineerNotes: 'Baseline.' },
          '/sessions/s1': { id: 's1', eventId: 'e1', name: 'Test 1', type: 'test', startsAt: '2026-01-10T15:00:00Z' },
          '/cars/c1': { id: 'c1', number: '42' },
          '/events/e1': { id: 'e1', name: 'Daytona' },
        };
        const laps = [{ id: 'l1', runSheetId: 'rs1', lapNumber: 1, lapTimeMs: 100000 }];
        const reads = [];
        const ctx = {
          load: async (path) => { reads.push(path); return { ...records[path] }; },
          loadAll: async (path) => { reads.push(path); return path === '/laps' ? laps.map((l) => ({ ...l })) : []; },
          realtime: { join() {} }, shell: { setCrumbs() {}, setNav() {} }, outbox: { items: () => [] },
          canWrite: () => false, status: { state: 'online' },
        };
        const view = runSheetView(ctx, 'rs1', 'laps');
        await view.ready;
        const rows = () => view.el.querySelectorAll('tr[data-lap-id]').length;
        const shown = rows();
        const settle = async (done) => {
          for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
        };
        // The lap was committed by the attempt whose answer was lost; the outbox reports it sent, no result.
        laps.push({ id: 'l2', runSheetId: 'rs1', lapNumber: 2, lapTimeMs: 99000 });
        const lapReadsBefore = reads.filter((p) => p === '/laps').length;
        view.onOutbox({ type: 'sent', result: null, answerLost: true,
                        item: { kind: 'lap.create', meta: { runSheetId: 'rs1', lap: { lapNumber: 2 } } } });
        await settle(() => rows() === 2);
        const lapsReread = reads.filter((p) => p === '/laps').length - lapReadsBefore;
        const sheetReadsBefore = reads.filter((p) => p === '/run-sheets/rs1').length;
        records['/run-sheets/rs1'].engineerNotes = 'Softer rear.';
        view.onOutbox({ type: 'sent', result: null, answerLost: true,
                        item: { kind: 'run_sheet.update', meta: { runSheetId: 'rs1' } } });
        await settle(() => reads.filter((p) => p === '/run-sheets/rs1').length > sheetReadsBefore);
        const sheetReread = reads.filter((p) => p === '/run-sheets/rs1').length - sheetReadsBefore;
        return { shown, after: rows(), lapsReread, sheetReread };""",
    )
    assert result == {"shown": 1, "after": 2, "lapsReread": 1, "sheetReread": 1}


def test_a_joined_seq_below_the_last_one_restarts_the_numbering_and_resyncs(page: Any) -> None:
    result = run(
        page,
        in_room(gap_timeout_ms=5000)
        + """
        rt.receive({ type: 'joined', sessionId: 's1', seq: 5, members: [] });
        rt.receive(msg(6)); rt.receive(msg(7)); rt.receive(msg(9));           // 8 missing: resume asked
        const before = { lastSeq: rt.lastSeq, buffered: rt.buffer.size };
        // The emulator restarted: back in the room, whose numbering starts over.
        rt.receive({ type: 'joined', sessionId: 's1', seq: 2, members: [] });
        const after = { lastSeq: rt.lastSeq, buffered: rt.buffer.size, gapOpen: rt.gapTimer !== null, resyncs };
        rt.receive(msg(3)); rt.receive(msg(4));
        rt.receive({ type: 'joined', sessionId: 'other', seq: 0, members: [] });  // another room: ignored
        return { before, after, applied, resyncs, lastSeq: rt.lastSeq };""",
    )
    assert result["before"] == {"lastSeq": 7, "buffered": 1}
    assert result["after"] == {"lastSeq": 2, "buffered": 0, "gapOpen": False, "resyncs": 1}
    assert result["applied"] == [6, 7, 3, 4]
    assert result["resyncs"] == 1
    assert result["lastSeq"] == 4


def test_the_rooms_epoch_is_sent_with_resume_and_another_epoch_restarts_the_numbering(page: Any) -> None:
    result = run(
        page,
        in_room(gap_timeout_ms=5000)
        + """
        const sent = [];
        rt.send = (message) => { sent.push(message); return true; };
        rt.receive({ type: 'joined', sessionId: 's1', seq: 5, epoch: 'e1', members: [] });
        rt.receive(msg(6)); rt.receive(msg(7));
        // Back after the room's state was lost: a new numbering that has already passed our seq.
        rt.receive({ type: 'joined', sessionId: 's1', seq: 40, epoch: 'e2', members: [] });
        const rejoined = { lastSeq: rt.lastSeq, resyncs, resumes: sent.filter((m) => m.action === 'resume').length };
        rt.receive(msg(41)); rt.receive(msg(43));                             // 42 missing: resume asked
        const resume = sent.find((m) => m.action === 'resume');
        rt.receive({ type: 'resync', sessionId: 's1', seq: 3, epoch: 'e3', reason: 'room_restarted', members: [] });
        rt.receive(msg(4));
        const { lastSeq, epoch } = rt;
        return { rejoined, resume, applied, resyncs, lastSeq, epoch, buffered: rt.buffer.size };""",
    )
    assert result["rejoined"] == {"lastSeq": 40, "resyncs": 1, "resumes": 0}
    assert result["resume"] == {"action": "resume", "sessionId": "s1", "sinceSeq": 41, "epoch": "e2"}
    assert result["applied"] == [6, 7, 41, 4]
    assert (result["resyncs"], result["lastSeq"], result["epoch"], result["buffered"]) == (2, 4, "e3", 0)
