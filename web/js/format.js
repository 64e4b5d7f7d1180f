// Formatting and parsing of lap times, sectors and clock times (pure functions).

// 120432 -> "2:00.432"; sectors under a minute -> "33.210".
export function lapTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  const negative = ms < 0;
  const abs = Math.abs(Math.round(ms));
  const minutes = Math.floor(abs / 60000);
  const seconds = Math.floor((abs % 60000) / 1000);
  const millis = abs % 1000;
  const frac = String(millis).padStart(3, "0");
  const text = minutes > 0 ? `${minutes}:${String(seconds).padStart(2, "0")}.${frac}` : `${seconds}.${frac}`;
  return negative ? `-${text}` : text;
}

// Gap to a reference: "+0.412", "-0.030", "+1:02.000".
export function gap(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  if (ms === 0) return "0.000";
  return (ms > 0 ? "+" : "-") + lapTime(Math.abs(ms));
}

// "2:00.432", "120.432", "2:00", "120432" (bare integer of 5+ digits = ms) -> ms; null when empty.
export function parseLapTime(text) {
  const value = String(text ?? "").trim();
  if (!value) return null;
  let match = /^(\d+):(\d{1,2})(?:[.,](\d{1,3}))?$/.exec(value);
  if (match) {
    const [, m, sec, frac = "0"] = match;
    if (Number(sec) >= 60) throw new Error(`seconds must be under 60 in "${value}"`);
    return Number(m) * 60000 + Number(sec) * 1000 + Number(frac.padEnd(3, "0"));
  }
  match = /^(\d+)(?:[.,](\d{1,3}))?$/.exec(value);
  if (match) {
    const [, whole, frac] = match;
    if (frac === undefined && whole.length >= 5) return Number(whole);
    return Number(whole) * 1000 + Number((frac || "0").padEnd(3, "0"));
  }
  throw new Error(`"${value}" is not a time: use m:ss.mmm or ss.mmm`);
}

export function clock(date) {
  if (!date) return "never";
  const d = date instanceof Date ? date : new Date(date);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function dateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString([], { year: "numeric", month: "short", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false });
}

export function dayRange(startsAt, endsAt) {
  if (!startsAt) return "";
  const opts = { month: "short", day: "numeric" };
  const a = new Date(startsAt).toLocaleDateString([], opts);
  if (!endsAt) return a;
  const b = new Date(endsAt).toLocaleDateString([], opts);
  return a === b ? a : `${a} – ${b}`;
}

export function ago(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.round(m / 60)} h ago`;
}

export function initials(name) {
  return String(name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map((p) => p[0].toUpperCase()).join("");
}

// A value typed in a key/value editor: numbers and booleans become JSON numbers/booleans.
export function parseValue(text) {
  const value = String(text).trim();
  if (value === "") return "";
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === "true" || value === "false") return value === "true";
  return value;
}

export function humanKey(key) {
  return String(key).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/_/g, " ")
    .replace(/^./, (c) => c.toUpperCase());
}
