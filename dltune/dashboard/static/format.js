// How numbers, times and durations are written in tables and summaries.

/** A number for people: integers whole, others with 4 significant digits. */
export function fmtNumber(x) {
  if (x === null || x === undefined) return "-";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(4)));
}

/** A parameter value: numbers shortened, everything else as text. */
export function fmtParam(v) {
  if (v === undefined) return "";
  if (typeof v === "number") return fmtNumber(v);
  return String(v);
}

/** Epoch seconds as a local date and time. */
export function fmtTime(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds as "850ms", "12.3s", "4m 05s", "2h 03m". */
export function fmtDuration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** 12345 -> "12,345". */
export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}
