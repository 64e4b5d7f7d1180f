// The add/edit lap dialog: times typed as m:ss.mmm, flags as checkboxes; returns the wire fields.

import { h, field } from "../dom.js";
import { lapTime, parseLapTime } from "../format.js";

// The flag at the line, as timing exports write it (the API's FLAGS).
const FLAGS = [["", "—"], ["GF", "GF · green"], ["YF", "YF · local yellow"], ["FCY", "FCY · full course yellow"],
  ["SC", "SC · safety car"], ["SF", "SF · slow zone"], ["RF", "RF · red"], ["FF", "FF · chequered"]];

export function openLapDialog({ lap = null, next = {}, drivers = [], sectorCount = 3, onSave }) {
  const editing = Boolean(lap);
  const v = lap || next;
  const input = (attrs) => h("input", { ...attrs });
  const number = input({ type: "number", min: "1", step: "1", value: v.lapNumber ?? "", required: true, class: "mono" });
  const stint = input({ type: "number", min: "1", step: "1", value: v.stint ?? "", class: "mono" });
  const driver = h("select", {}, h("option", { value: "" }, "—"),
    drivers.map((d) => h("option", { value: d.id, selected: d.id === v.driverId }, `${d.number ? `${d.number} · ` : ""}${d.name}`)));
  const time = input({ type: "text", inputmode: "decimal", placeholder: "2:00.432", value: lapTime(v.lapTimeMs),
    class: "mono", autocomplete: "off" });
  const sectors = Array.from({ length: sectorCount }, (_, i) => input({ type: "text", inputmode: "decimal",
    placeholder: "33.210", value: lapTime((v.sectorTimesMs || [])[i]), class: "mono", autocomplete: "off" }));
  const out = input({ type: "checkbox", checked: Boolean(v.isOutLap) });
  const inLap = input({ type: "checkbox", checked: Boolean(v.isInLap) });
  const valid = input({ type: "checkbox", checked: v.isValid !== false });
  const pit = input({ type: "text", inputmode: "decimal", placeholder: "0:38.500", value: lapTime(v.pitTimeMs), class: "mono" });
  const fuel = input({ type: "number", step: "0.1", min: "0", value: v.fuelL ?? "", class: "mono" });
  const tyre = input({ type: "text", value: v.tyreSet ?? "", maxlength: "40" });
  const flag = h("select", {}, FLAGS.map(([value, label]) => h("option", { value, selected: (v.flag || "") === value }, label)));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const check = (label, el) => h("label", { class: "check" }, el, label);
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "lap-dialog-title" });
  const form = h("form", { method: "dialog", class: "lap-form", novalidate: true },
    h("header", { class: "dialog-head" }, h("h2", { id: "lap-dialog-title" }, editing ? `Edit lap ${lap.lapNumber}` : "Add lap"),
      h("button", { type: "button", class: "btn btn-ghost btn-icon", "aria-label": "Close", onclick: () => dialog.close() }, "✕")),
    h("div", { class: "form-grid" },
      field("Lap", number), field("Stint", stint), field("Driver", driver),
      field("Lap time", time, "m:ss.mmm · empty = sum of sectors"),
      sectors.map((el, i) => field(`Sector ${i + 1}`, el)),
      field("Pit time", pit), field("Fuel (L)", fuel), field("Tyre set", tyre), field("Flag", flag)),
    h("fieldset", { class: "checks" }, h("legend", {}, "Lap type"), check("Out lap", out), check("In lap", inLap),
      check("Valid", valid)),
    error,
    h("footer", { class: "dialog-foot" },
      h("button", { type: "button", class: "btn btn-ghost", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary" }, editing ? "Save lap" : "Add lap")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let fields;
    try {
      fields = read();
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
      return;
    }
    dialog.close();
    onSave(editing ? changed(lap, fields) : fields);
  });

  function read() {
    const lapNumber = Number(number.value);
    if (!Number.isInteger(lapNumber) || lapNumber < 1) throw new Error("Lap must be a whole number from 1");
    const sectorTimesMs = sectors.map((el, i) => {
      try { return parseLapTime(el.value); } catch (exc) { throw new Error(`Sector ${i + 1}: ${exc.message}`); }
    });
    let lapTimeMs;
    try { lapTimeMs = parseLapTime(time.value); } catch (exc) { throw new Error(`Lap time: ${exc.message}`); }
    const given = sectorTimesMs.filter((ms) => ms !== null);
    if (lapTimeMs === null && given.length === sectorCount) lapTimeMs = given.reduce((a, b) => a + b, 0);
    if (given.length && given.length !== sectorCount) throw new Error("Give every sector or none");
    if (lapTimeMs === null) throw new Error("Lap time is required (or every sector, to add them up)");
    if (lapTimeMs <= 0) throw new Error("Lap time must be above zero");
    if (given.length === sectorCount) {
      const sum = given.reduce((a, b) => a + b, 0);
      if (Math.abs(sum - lapTimeMs) > sectorCount) {
        throw new Error(`The sectors add up to ${lapTime(sum)}, not the lap time ${lapTime(lapTimeMs)}`);
      }
    }
    let pitTimeMs;
    try { pitTimeMs = parseLapTime(pit.value); } catch (exc) { throw new Error(`Pit time: ${exc.message}`); }
    const selected = drivers.find((d) => d.id === driver.value);
    const fields = {
      lapNumber,
      lapTimeMs,
      sectorTimesMs: given.length ? sectorTimesMs : null,
      isOutLap: out.checked,
      isInLap: inLap.checked,
      isValid: valid.checked,
      stint: stint.value ? Number(stint.value) : null,
      driverId: selected ? selected.id : null,
      driverNumber: selected ? selected.number || null : null,
      pitTimeMs,
      fuelL: fuel.value === "" ? null : Number(fuel.value),
      tyreSet: tyre.value.trim() || null,
      flag: flag.value || null,
    };
    if (!editing) for (const key of Object.keys(fields)) if (fields[key] === null) delete fields[key];
    return fields;
  }

  document.body.append(dialog);
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
  (editing ? time : number.value ? time : number).focus();
  return dialog;
}

// Only what the engineer changed, so a PATCH never overwrites a teammate's edit of another field.
function changed(lap, fields) {
  const out = {};
  for (const [key, value] of Object.entries(fields)) {
    const before = lap[key] ?? null;
    if (JSON.stringify(before) !== JSON.stringify(value)) out[key] = value;
  }
  return out;
}
