// The team board of an event: cards in columns by status, filtered by session. Create, edit, move
// (drag, or the arrow buttons / Alt+Arrow keys) and delete go through the outbox, so a card moved
// offline moves when the pill is Online again. Joins the event's room: teammates' moves arrive live.

import { h, mount, icon, emptyState, notAvailable, field, toast, confirmDialog } from "../dom.js";
import { dateTime } from "../format.js";

export const COLUMNS = [["todo", "To do"], ["doing", "In progress"], ["blocked", "Blocked"], ["done", "Done"]];

// Cards as shown: the server's with the outbox's writes applied on top, in column order.
export function boardCards(cards, outboxItems) {
  const shown = cards.map((c) => ({ ...c }));
  // The room's push can land before the POST's answer: the stored card then stands for the queued one.
  const stored = (body, queuedAt) => cards.some((c) => c.title === body.title && (c.eventId || null) === (body.eventId || null)
    && Date.parse(c.createdAt) > Date.parse(queuedAt) - 300000);
  for (const item of outboxItems) {
    if (item.kind === "board_card.create") {
      if (stored(item.body, item.queuedAt)) continue;
      shown.push({ ...item.body, column: item.body.column || "todo", id: item.id, _pending: true, _new: true });
    } else if (item.kind === "board_card.update") {
      const i = shown.findIndex((c) => c.id === item.meta.cardId);
      if (i >= 0) shown[i] = { ...shown[i], ...item.body, _pending: true };
    } else if (item.kind === "board_card.delete") {
      const i = shown.findIndex((c) => c.id === item.meta.cardId);
      if (i >= 0) shown.splice(i, 1);
    }
  }
  return shown.sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || String(a.createdAt || "~").localeCompare(String(b.createdAt || "~")));
}

// The columns to draw: the standard ones, then any other status a card carries.
export function boardColumns(cards) {
  const extra = [...new Set(cards.map((c) => c.column).filter((k) => !COLUMNS.some(([key]) => key === k)))].sort();
  return [...COLUMNS, ...extra.map((k) => [k, k])];
}

export function boardView(ctx, eventId, sessionFilter) {
  ctx.shell.setNav("events");
  const st = { event: null, sessions: [], cards: [], session: sessionFilter || "", loaded: false };
  const canWrite = ctx.canWrite();
  const columnsBox = h("div", { class: "board", role: "list", "aria-label": "Board columns" });
  const toolbar = h("div", { class: "toolbar" });
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "page page-wide board-page" },
    h("div", { class: "page-head" }, h("h1", {}, "Board"),
      canWrite ? h("button", { type: "button", class: "btn btn-primary", id: "add-card", onclick: () => openCard(null, "todo") },
        icon("plus"), "Add card") : null),
    body);

  const load = async () => {
    try {
      const [event, sessions] = await Promise.all([ctx.load(`/events/${eventId}`), ctx.loadAll("/sessions", { eventId })]);
      let cards;
      try {
        // Cards of the event, and cards of its sessions that name no event (made through the API).
        const lists = await Promise.all([ctx.loadAll("/board-cards", { eventId }),
          ...sessions.map((s) => ctx.loadAll("/board-cards", { sessionId: s.id }))]);
        const byId = new Map();
        for (const card of lists.flat()) byId.set(card.id, card);
        cards = [...byId.values()];
      } catch (error) {
        if (error.missingRoute) { mount(body, notAvailable("The board")); return; }
        throw error;
      }
      sessions.sort((a, b) => String(a.startsAt).localeCompare(String(b.startsAt)));
      Object.assign(st, { event, sessions, cards, loaded: true });
      ctx.shell.setCrumbs([{ label: "Events", href: "#/events" }, { label: event.name, href: `#/events/${eventId}` }, { label: "Board" }]);
      if (!st.joined) {
        st.joined = true;
        ctx.realtime.join(`event:${eventId}`);
      }
      mount(body, toolbar, columnsBox);
      render();
    } catch (error) {
      mount(body, h("div", { class: "empty error", role: "alert" }, h("strong", {}, "Could not load the board"),
        h("p", {}, error.describe ? error.describe() : String(error))));
    }
    body.removeAttribute("aria-busy");
  };

  const visible = () => boardCards(st.cards, ctx.outbox.items())
    .filter((c) => !st.session || c.sessionId === st.session);
  const sessionName = (id) => { const s = st.sessions.find((x) => x.id === id); return s ? s.name : null; };

  function renderToolbar() {
    const select = h("select", { id: "board-session", onchange: (e) => {
      st.session = e.target.value;
      history.replaceState(null, "", `#/events/${eventId}/board${st.session ? `/${st.session}` : ""}`);
      render();
    } }, h("option", { value: "" }, "The whole event"),
    st.sessions.map((s) => h("option", { value: s.id, selected: s.id === st.session }, s.name)));
    mount(toolbar, field("Show cards of", select),
      h("p", { class: "muted small board-hint" }, canWrite ? "Drag a card to move it, or focus it and press Alt+← / Alt+→." : "Read only: viewers see the board."));
  }

  function render() {
    if (!st.loaded) return;
    renderToolbar();
    // Keyboard users keep their place: the focused card (or move button) is focused again after the redraw.
    const active = document.activeElement;
    const focusedCard = active && columnsBox.contains(active) ? active.closest("[data-card-id]") : null;
    const keepFocus = focusedCard ? focusedCard.dataset.cardId : null;
    const cards = visible();
    const columns = boardColumns(cards);
    mount(columnsBox, columns.map(([key, label], index) => {
      const inColumn = cards.filter((c) => (c.column || "todo") === key);
      const list = h("ol", { class: "board-cards", "aria-label": `${label}: ${inColumn.length} cards` },
        inColumn.map((card) => cardEl(card, columns, index)));
      const column = h("section", { class: "board-column", role: "listitem", "data-column": key, "aria-labelledby": `col-${key}` },
        h("header", { class: "board-column-head" }, h("h2", { id: `col-${key}` }, label), h("span", { class: "count mono" }, String(inColumn.length)),
          canWrite ? h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": `Add a card to ${label}`,
            onclick: () => openCard(null, key) }, icon("plus")) : null),
        inColumn.length ? list : h("p", { class: "muted small board-empty" }, "No cards"));
      if (canWrite) {
        column.addEventListener("dragover", (e) => { e.preventDefault(); column.classList.add("drop-here"); });
        column.addEventListener("dragleave", () => column.classList.remove("drop-here"));
        column.addEventListener("drop", (e) => {
          e.preventDefault();
          column.classList.remove("drop-here");
          const card = visible().find((c) => c.id === e.dataTransfer.getData("text/plain"));
          if (card) move(card, key);
        });
      }
      return column;
    }));
    if (keepFocus) {
      const again = columnsBox.querySelector(`[data-card-id="${CSS.escape(keepFocus)}"]`);
      if (again) again.focus();
    }
  }

  function cardEl(card, columns, index) {
    const where = card.sessionId ? sessionName(card.sessionId) : null;
    const moveBtn = (dir) => {
      const target = columns[index + dir];
      if (!target || !canWrite) return null;
      return h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": `Move "${card.title}" to ${target[1]}`,
        onclick: (e) => { e.stopPropagation(); move(card, target[0]); } }, dir < 0 ? "←" : "→");
    };
    const item = h("li", { class: `board-card${card._pending ? " is-pending" : ""}`, "data-card-id": card.id, tabindex: "0",
      draggable: canWrite && !card._new ? "true" : null, "aria-label": `${card.title}${where ? `, ${where}` : ""}`,
      onclick: () => !card._new && openCard(card),
      onkeydown: (e) => {
        if (e.target !== item) return;
        if (e.key === "Enter" && !card._new) { e.preventDefault(); openCard(card); }
        if (e.altKey && (e.key === "ArrowLeft" || e.key === "ArrowRight") && canWrite && !card._new) {
          const target = columns[index + (e.key === "ArrowLeft" ? -1 : 1)];
          if (target) { e.preventDefault(); move(card, target[0], true); }
        }
      },
      ondragstart: (e) => { e.dataTransfer.setData("text/plain", card.id); e.dataTransfer.effectAllowed = "move"; } },
    h("div", { class: "board-card-title" }, card.title),
    card.body ? h("p", { class: "muted small board-card-body" }, card.body) : null,
    h("div", { class: "board-card-foot" },
      where ? h("span", { class: "tag" }, where) : h("span", { class: "muted small" }, "event"),
      card._pending ? h("span", { class: "tag tag-pending" }, "PENDING") : h("span", { class: "muted small" }, card.updatedAt ? dateTime(card.updatedAt) : ""),
      canWrite && !card._new ? h("span", { class: "board-card-moves" }, moveBtn(-1), moveBtn(1)) : null));
    return item;
  }

  function nextPosition(column) {
    const positions = boardCards(st.cards, ctx.outbox.items()).filter((c) => (c.column || "todo") === column).map((c) => c.position || 0);
    return positions.length ? Math.max(...positions) + 1 : 0;
  }

  function move(card, column, refocus = false) {
    if ((card.column || "todo") === column) return;
    ctx.outbox.enqueue({ method: "PATCH", path: `/board-cards/${card.id}`, body: { column, position: nextPosition(column) },
      label: `Move "${card.title}" to ${(COLUMNS.find(([k]) => k === column) || [column, column])[1]}`, kind: "board_card.update",
      meta: { cardId: card.id, eventId } });
    render();
    if (refocus) {
      const moved = columnsBox.querySelector(`[data-card-id="${CSS.escape(card.id)}"]`);
      if (moved) moved.focus();
    }
  }

  function openCard(card, column = "todo") {
    const editing = Boolean(card);
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "card-dialog-title" });
    const title = h("input", { type: "text", maxlength: "200", required: true, autocomplete: "off", value: card ? card.title : "" });
    const notes = h("textarea", { rows: 5, maxlength: "20000" });
    notes.value = card ? card.body || "" : "";
    const session = h("select", {}, h("option", { value: "" }, "— the whole event"),
      st.sessions.map((s) => h("option", { value: s.id, selected: card ? card.sessionId === s.id : st.session === s.id }, s.name)));
    const status = h("select", {}, boardColumns(visible()).map(([key, label]) => h("option", { value: key,
      selected: (card ? card.column || "todo" : column) === key }, label)));
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const readOnly = !canWrite;
    for (const control of [title, notes, session, status]) control.disabled = readOnly;
    const form = h("form", { method: "dialog", novalidate: true },
      h("header", { class: "dialog-head" }, h("h2", { id: "card-dialog-title" }, editing ? (readOnly ? card.title : "Edit card") : "New card"),
        h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
      field("Title", title), field("Notes", notes),
      h("div", { class: "form-grid" }, field("Session", session), field("Column", status)),
      error,
      h("footer", { class: "dialog-foot" },
        editing && canWrite ? h("button", { type: "button", class: "btn btn-danger-ghost", onclick: () => remove(card, dialog) }, icon("trash"), "Delete") : null,
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "btn btn-ghost", onclick: () => dialog.close() }, readOnly ? "Close" : "Cancel"),
        readOnly ? null : h("button", { type: "submit", class: "btn btn-primary" }, editing ? "Save card" : "Add card")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!title.value.trim()) {
        error.textContent = "A card needs a title.";
        error.hidden = false;
        title.focus();
        return;
      }
      const fields = { title: title.value.trim(), body: notes.value, sessionId: session.value || null, column: status.value };
      dialog.close();
      if (!editing) {
        const body = { eventId, title: fields.title, column: fields.column, position: nextPosition(fields.column) };
        if (fields.body.trim()) body.body = fields.body;
        if (fields.sessionId) body.sessionId = fields.sessionId;
        ctx.outbox.enqueue({ method: "POST", path: "/board-cards", body, label: `Add card "${body.title}"`, kind: "board_card.create",
          meta: { eventId } });
      } else {
        const changed = {};
        if (fields.title !== card.title) changed.title = fields.title;
        if (fields.body !== (card.body || "")) changed.body = fields.body;
        if (fields.sessionId !== (card.sessionId || null)) changed.sessionId = fields.sessionId;
        if (fields.column !== (card.column || "todo")) { changed.column = fields.column; changed.position = nextPosition(fields.column); }
        if (!card.eventId) changed.eventId = eventId; // it belongs to this board from now on (and its room)
        if (Object.keys(changed).length) {
          ctx.outbox.enqueue({ method: "PATCH", path: `/board-cards/${card.id}`, body: changed, label: `Edit card "${fields.title}"`,
            kind: "board_card.update", meta: { cardId: card.id, eventId } });
        }
      }
      render();
    });
    dialog.append(form);
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    if (!readOnly) title.focus();
  }

  async function remove(card, dialog) {
    dialog.close();
    if (!await confirmDialog(`Delete "${card.title}"?`, "The card is removed for the whole team.", "Delete", true)) return;
    ctx.outbox.enqueue({ method: "DELETE", path: `/board-cards/${card.id}`, label: `Delete card "${card.title}"`, kind: "board_card.delete",
      meta: { cardId: card.id, eventId } });
    render();
  }

  const upsert = (card) => {
    if (card.eventId && card.eventId !== eventId) { st.cards = st.cards.filter((c) => c.id !== card.id); return; }
    const i = st.cards.findIndex((c) => c.id === card.id);
    if (i >= 0) {
      if (!st.cards[i].updatedAt || !card.updatedAt || card.updatedAt >= st.cards[i].updatedAt) st.cards[i] = card;
    } else {
      st.cards.push(card);
    }
  };

  return {
    el,
    ready: load(),
    refresh: load,
    onJoined: ({ first }) => { if (first && st.loaded) load(); }, // close the window between the fetch and the join
    onChange: (message) => {
      const [entity, op] = String(message.type).split(".");
      if (entity !== "board_card" || !st.loaded) return;
      const data = message.data || {};
      if (data.truncated) { load(); return; }
      if (op === "delete") st.cards = st.cards.filter((c) => c.id !== data.id);
      else upsert(data);
      render();
    },
    onOutbox: (event) => {
      const item = event.item;
      if (!st.loaded || !item || !String(item.kind || "").startsWith("board_card.")) return;
      if (event.type === "sent") {
        if (item.kind === "board_card.delete") st.cards = st.cards.filter((c) => c.id !== item.meta.cardId);
        else if (event.result) upsert(event.result);
        else { load(); return; }
      }
      if (event.type === "sent" && item.kind === "board_card.create") toast("Card added", "ok", 2000);
      render();
    },
    destroy: () => ctx.realtime.leave(),
  };
}
