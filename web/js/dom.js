// Tiny DOM helpers: build elements from data, never from HTML strings (no injection).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "hidden") el[key] = Boolean(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function mount(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// An inline SVG icon from a small set (no icon font, nothing remote).
const ICONS = {
  replay: "M13.5 8a5.5 5.5 0 1 1-1.6-3.9M13.5 2.5v3.2h-3.2",
  edit: "M3 13h2.5L13 5.5 10.5 3 3 10.5zM9.5 4l2.5 2.5",
  plus: "M8 3v10M3 8h10",
  copy: "M5.5 5.5h7v7h-7zM3.5 10.5v-7h7",
  close: "M4 4l8 8M12 4l-8 8",
  trash: "M3.5 4.5h9M6.5 4.5V3h3v1.5M5 4.5l.5 8.5h5l.5-8.5",
  upload: "M8 11V3M4.5 6.5 8 3l3.5 3.5M3 13h10",
  download: "M8 3v8M4.5 7.5 8 11l3.5-3.5M3 13h10",
  chevron: "M6 3.5 10.5 8 6 12.5",
  key: "M10 6.5a2.5 2.5 0 1 0 0-.01M8 8l-5 5M5 11l1.5 1.5",
  back: "M10 3.5 5.5 8 10 12.5",
};

export function icon(name, label) {
  const svg = s("svg", { viewBox: "0 0 16 16", class: `icon icon-${name}`, "aria-hidden": label ? null : "true",
    role: label ? "img" : null, "aria-label": label || null, focusable: "false" },
  s("path", { d: ICONS[name] || "", fill: "none", stroke: "currentColor", "stroke-width": "1.6",
    "stroke-linecap": "round", "stroke-linejoin": "round" }));
  return svg;
}

let toastRegion = null;

// A short message in the corner; announced politely to screen readers.
export function toast(message, kind = "info", timeoutMs = 5000) {
  if (!toastRegion) {
    toastRegion = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toastRegion);
  }
  const item = h("div", { class: `toast toast-${kind}` }, message);
  toastRegion.append(item);
  setTimeout(() => item.remove(), timeoutMs);
  return item;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Insecure contexts have no clipboard API: fall back to a selection copy.
    const area = h("textarea", { class: "visually-hidden" }, text);
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

// A labelled form field: <label> + control, with an id tying them together.
let fieldSeq = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

export function emptyState(title, detail) {
  return h("div", { class: "empty" }, h("strong", {}, title), detail ? h("p", {}, detail) : null);
}

export function notAvailable(what) {
  return h("div", { class: "empty not-available", role: "note" },
    h("strong", {}, `${what}: not available`),
    h("p", {}, "This API does not offer it yet (the route answered 404). Everything else keeps working."));
}

// A modal yes/no question; resolves true when confirmed. Escape or Cancel resolve false.
export function confirmDialog(title, detail, confirmLabel = "Confirm", danger = false) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog dialog-small", "aria-labelledby": "confirm-title" });
    const done = (answer) => { resolve(answer); dialog.close(); };
    dialog.append(h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); done(true); } },
      h("header", { class: "dialog-head" }, h("h2", { id: "confirm-title" }, title)),
      detail ? h("p", { class: "muted" }, detail) : null,
      h("footer", { class: "dialog-foot" },
        h("button", { type: "button", class: "btn btn-ghost", onclick: () => done(false) }, "Cancel"),
        h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"}` }, confirmLabel))));
    dialog.addEventListener("cancel", () => resolve(false));
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  });
}
