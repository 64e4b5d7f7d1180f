// The run sheet's other tabs: setup, tyres, notes (key/value editors over the run sheet's JSON
// fields, saved through the outbox) and files (attachments uploaded through a presigned URL).

import { h, mount, icon, emptyState, notAvailable, toast, field, confirmDialog } from "../dom.js";
import { humanKey, parseValue, dateTime } from "../format.js";

// A key/value table over one JSON object field of the run sheet.
export function kvEditor({ title, value, editable, pending, onSave, hint }) {
  let dirty = false;
  const rows = h("tbody");
  const state = Object.entries(value || {}).map(([k, v]) => ({ key: k, value: v }));
  const saveBtn = h("button", { type: "button", class: "btn btn-primary btn-small", disabled: true,
    onclick: () => save() }, "Save");
  const status = h("span", { class: "muted small", "aria-live": "polite" }, pending ? "queued · sends on reconnect" : "");
  const render = () => {
    mount(rows, state.length ? state.map((row, i) => h("tr", {},
      h("th", { scope: "row" }, editable
        ? h("input", { type: "text", value: row.key, "aria-label": `${title}: name of row ${i + 1}`,
          oninput: (e) => { row.key = e.target.value; touch(); } })
        : humanKey(row.key)),
      h("td", { class: "mono" }, editable
        ? h("input", { type: "text", class: "mono", value: display(row.value), "aria-label": `${title}: ${humanKey(row.key) || `row ${i + 1}`}`,
          oninput: (e) => { row.value = e.target.value; row.edited = true; touch(); } })
        : display(row.value)),
      editable ? h("td", { class: "row-actions" }, h("button", { type: "button", class: "btn btn-ghost btn-icon",
        "aria-label": `Remove ${humanKey(row.key) || "row"}`, onclick: () => { state.splice(i, 1); touch(); render(); } },
      icon("trash"))) : null))
      : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "Nothing recorded yet.")));
  };
  const touch = () => { dirty = true; saveBtn.disabled = false; status.textContent = "unsaved changes"; };
  const save = () => {
    const out = {};
    for (const row of state) {
      const key = String(row.key).trim();
      if (!key) continue;
      out[key] = row.edited ? parseEdited(row.value) : row.value;
    }
    dirty = false;
    saveBtn.disabled = true;
    status.textContent = onSave(out) || "saving…";
  };
  render();
  const el = h("section", { class: "panel kv-panel" },
    h("div", { class: "panel-head" }, h("h3", { class: "panel-title" }, title), status,
      editable ? h("div", { class: "panel-actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => {
          state.push({ key: "", value: "", edited: true });
          touch();
          render();
          rows.querySelector("tr:last-child input").focus();
        } }, icon("plus"), "Row"), saveBtn) : null),
    hint ? h("p", { class: "muted small" }, hint) : null,
    h("table", { class: "kv-table" }, h("caption", { class: "visually-hidden" }, title), rows));
  return { el, isDirty: () => dirty };
}

function display(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function parseEdited(text) {
  const value = String(text).trim();
  if (value.startsWith("{") || value.startsWith("[")) {
    try { return JSON.parse(value); } catch { return value; }
  }
  return parseValue(value);
}

export function notesEditor({ value, editable, pending, onSave }) {
  let dirty = false;
  const area = h("textarea", { rows: 14, class: "notes", readonly: !editable, value: value || "",
    oninput: () => { dirty = true; save.disabled = false; status.textContent = "unsaved changes"; } });
  area.value = value || "";
  const status = h("span", { class: "muted small", "aria-live": "polite" }, pending ? "queued · sends on reconnect" : "");
  const save = h("button", { type: "button", class: "btn btn-primary btn-small", disabled: true, onclick: () => {
    dirty = false;
    save.disabled = true;
    status.textContent = onSave(area.value) || "saving…";
  } }, "Save notes");
  const el = h("section", { class: "panel" },
    h("div", { class: "panel-head" }, h("h3", { class: "panel-title" }, "Engineer notes"), status,
      editable ? h("div", { class: "panel-actions" }, save) : null),
    field("Notes for this run (visible to the whole team)", area));
  return { el, isDirty: () => dirty };
}

function size(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function filesTab(ctx, runSheetId) {
  const list = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const picker = h("input", { type: "file", multiple: true });
  const progress = h("p", { class: "muted small", "aria-live": "polite" });
  const upload = h("button", { type: "button", class: "btn btn-primary btn-small", onclick: () => send() },
    icon("upload"), "Upload");
  const load = async () => {
    try {
      const page = await ctx.load(`/run-sheets/${runSheetId}/attachments`);
      const items = page.items || [];
      mount(list, items.length ? h("table", { class: "grid" },
        h("caption", { class: "visually-hidden" }, "Files of this run sheet"),
        h("thead", {}, h("tr", {}, ["File", "Type", "Size", "Status", "Uploaded", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((a) => h("tr", { "data-attachment-id": a.id },
          h("td", {}, a.fileName), h("td", { class: "muted" }, a.contentType || ""), h("td", { class: "num mono" }, size(a.sizeBytes)),
          h("td", {}, h("span", { class: `badge badge-${a.status === "uploaded" ? "succeeded" : "pending"}` }, a.status || "")),
          h("td", { class: "muted" }, dateTime(a.uploadedAt || a.createdAt)),
          h("td", { class: "row-actions" },
            a.downloadUrl ? h("a", { class: "btn btn-ghost btn-small", href: a.downloadUrl, target: "_blank",
              rel: "noopener", download: a.fileName }, icon("download"), "Download") : null,
            ctx.canWrite() ? h("button", { type: "button", class: "btn btn-danger-ghost btn-icon",
              "aria-label": `Delete ${a.fileName}`, onclick: () => remove(a) }, icon("trash")) : null)))))
        : emptyState("No files yet", "Upload telemetry exports, photos or PDFs for this run."));
    } catch (error) {
      mount(list, error.missingRoute ? notAvailable("Attachments") : h("p", { class: "form-error" }, error.describe()));
    }
    list.removeAttribute("aria-busy");
  };
  const remove = async (attachment) => {
    if (!await confirmDialog(`Delete ${attachment.fileName}?`, "The file is removed for the whole team.", "Delete", true)) return;
    try {
      await ctx.api.delete(`/attachments/${attachment.id}`);
      load();
    } catch (error) {
      toast(error.missingRoute ? "Deleting files is not available on this API" : error.describe(), "error");
    }
  };
  const send = async () => {
    const files = [...picker.files];
    if (!files.length) { toast("Choose a file first", "warn"); picker.focus(); return; }
    if (ctx.status.state === "offline") { toast("Uploads need a connection; try again when Online", "warn"); return; }
    upload.disabled = true;
    try {
      for (const file of files) {
        progress.textContent = `Uploading ${file.name}…`;
        const contentType = file.type || "application/octet-stream";
        const grant = await ctx.api.post(`/run-sheets/${runSheetId}/attachments`,
          { fileName: file.name, contentType, sizeBytes: file.size });
        const headers = { "Content-Type": contentType, ...(grant.uploadHeaders || {}) };
        const put = await fetch(grant.uploadUrl, { method: "PUT", headers, body: file });
        if (!put.ok) throw new Error(`storage refused the upload (${put.status})`);
        // The API checks the stored object against what was declared, then lists it as uploaded.
        if (grant.id) {
          try {
            await ctx.api.post(`/attachments/${grant.id}/complete`);
          } catch (error) {
            if (!error.missingRoute) throw error;
          }
        }
      }
      progress.textContent = `Uploaded ${files.length} file${files.length > 1 ? "s" : ""}.`;
      picker.value = "";
      load();
    } catch (error) {
      progress.textContent = "";
      toast(error.missingRoute ? "Attachments are not available on this API" : `Upload failed: ${error.message}`, "error", 8000);
    } finally {
      upload.disabled = false;
    }
  };
  const el = h("div", { class: "tab-body" },
    h("section", { class: "panel" },
      h("div", { class: "panel-head" }, h("h3", { class: "panel-title" }, "Files"),
        ctx.canWrite() ? h("div", { class: "panel-actions upload" }, field("Add files", picker), upload) : null),
      progress, list));
  load();
  return { el, refresh: load };
}
