// Events (race weekends) and one event's sessions x cars, each cell a run sheet.

import { h, mount, emptyState } from "../dom.js";
import { dayRange, lapTime, dateTime } from "../format.js";
import { bestLap } from "../laps.js";

function errorBox(error) {
  return h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load"),
    h("p", {}, error.describe ? error.describe() : String(error)));
}

export function eventsView(ctx) {
  ctx.shell.setCrumbs([]);
  ctx.shell.setNav("events");
  ctx.realtime.leave();
  const list = h("div", { class: "cards", "aria-busy": "true" });
  const el = h("div", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Events"), h("p", { class: "muted" }, "Race weekends of your team")),
    list);
  const load = async () => {
    try {
      const [events, sessions, cars] = await Promise.all([ctx.loadAll("/events"),
        ctx.loadAll("/sessions").catch(() => []), ctx.loadAll("/cars").catch(() => [])]);
      events.sort((a, b) => String(b.startsAt).localeCompare(String(a.startsAt)));
      const count = (rows, eventId) => rows.filter((r) => r.eventId === eventId).length;
      mount(list, events.length ? events.map((event) => {
        const phase = eventPhase(event);
        return h("a", { class: "card event-card", href: `#/events/${event.id}` },
          h("div", { class: "card-kicker" }, h("span", {}, dayRange(event.startsAt, event.endsAt)),
            h("span", { class: `phase phase-${phase}` }, phase)),
          h("h2", {}, event.name),
          h("p", { class: "muted" }, event.track || ""),
          h("p", { class: "card-meta mono" }, `${count(sessions, event.id)} sessions · ${count(cars, event.id)} cars`));
      }) : emptyState("No events yet", "Create one through the API (POST /events)."));
    } catch (error) {
      mount(list, errorBox(error));
    }
    list.removeAttribute("aria-busy");
  };
  return { el, ready: load(), refresh: load };
}

function eventPhase(event) {
  const now = Date.now();
  const starts = Date.parse(event.startsAt);
  const ends = Date.parse(event.endsAt || event.startsAt);
  if (Number.isFinite(starts) && now < starts) return "upcoming";
  if (Number.isFinite(ends) && now > ends) return "finished";
  return "live";
}

// The event's team screens (car issues, board, strategy).
const TEAM_SCREENS = [["board", "Board"], ["issues", "Car issues"], ["strategy", "Strategy"]];

function teamLinks(eventId) {
  return h("nav", { class: "page-links", "aria-label": "Team work for this event" },
    TEAM_SCREENS.map(([path, label]) => h("a", { class: "btn btn-ghost btn-small", href: `#/events/${eventId}/${path}` }, label)));
}

export function eventView(ctx, eventId) {
  ctx.shell.setNav("events");
  ctx.realtime.leave();
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const title = h("h1", {}, "Event");
  const sub = h("p", { class: "muted" });
  const el = h("div", { class: "page" }, h("div", { class: "page-head" }, title, sub), body);
  const load = async () => {
    try {
      const [event, sessions, cars, sheets] = await Promise.all([
        ctx.load(`/events/${eventId}`),
        ctx.loadAll("/sessions", { eventId }),
        ctx.loadAll("/cars", { eventId }),
        ctx.loadAll("/run-sheets", { eventId }),
      ]);
      let laps = [];
      try { laps = await ctx.loadAll("/laps", { eventId }); } catch { laps = []; }
      ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name }]);
      title.textContent = event.name;
      sub.textContent = `${event.track || ""} · ${dayRange(event.startsAt, event.endsAt)}`;
      sessions.sort((a, b) => String(a.startsAt).localeCompare(String(b.startsAt)));
      const ours = cars.filter((c) => c.isCompetitor !== true)
        .sort((a, b) => String(a.number).localeCompare(String(b.number), undefined, { numeric: true }));
      const sheetFor = (sessionId, carId) => sheets.find((s) => s.sessionId === sessionId && s.carId === carId);
      const lapsBySheet = new Map();
      for (const lap of laps) {
        if (!lapsBySheet.has(lap.runSheetId)) lapsBySheet.set(lap.runSheetId, []);
        lapsBySheet.get(lap.runSheetId).push(lap);
      }
      if (!sessions.length) {
        mount(body, teamLinks(eventId), emptyState("No sessions yet", "Sessions appear here once created."));
        return;
      }
      const table = h("table", { class: "grid matrix" },
        h("caption", { class: "visually-hidden" }, "Run sheets by session and car"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Session"),
          ours.map((car) => h("th", { scope: "col" },
            h("span", { class: "car-chip", style: { "--livery": car.liveryColor || "#888" } }, `#${car.number}`),
            h("span", { class: "muted" }, ` ${car.class || ""}`))))),
        h("tbody", {}, sessions.map((session) => h("tr", {},
          h("th", { scope: "row" }, h("div", { class: "session-name" },
            h("a", { href: `#/sessions/${session.id}`, "aria-label": `Session view ${session.name}: every car` }, session.name)),
            h("div", { class: "muted small" }, `${session.type} · ${dateTime(session.startsAt)}`)),
          ours.map((car) => {
            const sheet = sheetFor(session.id, car.id);
            if (!sheet) return h("td", { class: "muted" }, "—");
            const sheetLaps = lapsBySheet.get(sheet.id) || [];
            const best = bestLap(sheetLaps);
            return h("td", {}, h("a", { class: "sheet-link", href: `#/run-sheets/${sheet.id}`,
              "aria-label": `Run sheet ${session.name}, car ${car.number}` },
            h("span", { class: "mono big-time" }, best ? lapTime(best.lapTimeMs) : "no time"),
            h("span", { class: "muted small" }, `${sheetLaps.length} laps · open run sheet`)));
          })))));
      mount(body, teamLinks(eventId),
        h("section", { class: "panel" }, h("h2", { class: "panel-title" }, "Sessions · run sheets"), table));
    } catch (error) {
      mount(body, errorBox(error));
    }
    body.removeAttribute("aria-busy");
  };
  return { el, ready: load(), refresh: load };
}
