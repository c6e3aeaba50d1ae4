// The page's language and time zone. Messages come from the server's catalogue
// (src/telewatch/web/i18n/<lang>.json, embedded as #i18n-data): t(englishText, {name: value}).
// Times show in the browser's time zone (or the one chosen in the header, kept in ?tz= and
// localStorage), with UTC on hover.
"use strict";

const I18N = JSON.parse(document.getElementById("i18n-data")?.textContent || "{}");
const LANG = I18N.lang || document.documentElement.lang || "en";
const LOCALE = LANG === "ru" ? "ru-RU" : "en-US";

function t(text, params) {
  const out = (I18N.messages && I18N.messages[text]) || text;
  return params ? out.replace(/\{(\w+)\}/g, (m, k) => (params[k] != null ? String(params[k]) : m)) : out;
}

// -- time zone: ?tz= (IANA name), then the one saved, then the browser's
function validZone(z) {
  if (!z) return false;
  try { new Intl.DateTimeFormat("en-US", { timeZone: z }); return true; } catch (_) { return false; }
}
const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const TZ = (() => {
  const q = new URLSearchParams(location.search).get("tz");
  if (validZone(q)) return q;
  let saved = null;
  try { saved = localStorage.getItem("tw_tz"); } catch (_) { /* storage off */ }
  return validZone(saved) ? saved : BROWSER_TZ;
})();
const _parts = new Intl.DateTimeFormat("en-US", { timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
// the wall clock of an instant in the chosen zone, as {y, mo, d, h, mi, s} strings
function wallParts(ms) {
  const p = {};
  for (const { type, value } of _parts.formatToParts(new Date(ms))) p[type] = value;
  return { y: p.year, mo: p.month, d: p.day, h: p.hour === "24" ? "00" : p.hour, mi: p.minute, s: p.second };
}
// the chosen zone's offset from UTC at an instant, in ms
function tzOffset(ms) {
  const p = wallParts(ms);
  return Date.UTC(+p.y, +p.mo - 1, +p.d, +p.h, +p.mi, +p.s) - Math.floor(ms / 1000) * 1000;
}
// "2024-05-01T13:00:00" on the chosen zone's wall clock (what the charts draw)
function wallISO(ms) {
  const p = wallParts(ms);
  return `${p.y}-${p.mo}-${p.d}T${p.h}:${p.mi}:${p.s}`;
}
// many instants as wall-clock text at once (one offset when the zone does not change it over the span)
function wallDates(values) {
  if (!values.length) return [];
  const list = values.map((v) => (typeof v === "number" ? v : Date.parse(v)));
  const a = tzOffset(list[0]), b = tzOffset(list[list.length - 1]);
  if (a !== b) return list.map(wallISO);
  return list.map((ms) => new Date(ms + a).toISOString().slice(0, 23));
}
// a time Plotly reports (wall-clock text in the chosen zone, or a number) as an instant in ms
function plotMs(value) {
  if (typeof value === "number") return value;
  const wall = Date.parse(String(value).trim().replace(" ", "T") + (/[zZ]|[+-]\d\d:?\d\d$/.test(String(value)) ? "" : "Z"));
  return Number.isNaN(wall) ? NaN : (/[zZ]|[+-]\d\d:?\d\d$/.test(String(value)) ? wall : fromWall(wall));
}
// the instant of a wall-clock time in the chosen zone (the inverse of wallISO)
function fromWall(ms) {
  let guess = ms - tzOffset(ms);
  guess = ms - tzOffset(guess);
  return guess;
}
function tzName(ms = Date.now()) {
  if (TZ === "UTC") return "UTC";
  const part = new Intl.DateTimeFormat(LOCALE, { timeZone: TZ, timeZoneName: "short" }).formatToParts(new Date(ms))
    .find((x) => x.type === "timeZoneName");
  return part ? part.value : TZ;
}
function asDate(value) {
  if (value == null || value === "") return null;
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value);
  const s = String(value);
  // a time without a zone from the API is UTC
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) || !/\d\d:\d\d/.test(s) ? s : s.replace(" ", "T") + "Z");
  return isNaN(d) ? null : d;
}
// a time in the chosen zone: "2024-05-01 13:00" (English) or "01.05.2024, 13:00" (Russian)
function fmtLocalTime(value, { seconds = false } = {}) {
  const d = asDate(value);
  if (!d) return value == null || value === "" ? "—" : String(value);
  const p = wallParts(d.getTime());
  const clock = `${p.h}:${p.mi}${seconds ? ":" + p.s : ""}`;
  return LANG === "ru" ? `${p.d}.${p.mo}.${p.y}, ${clock}` : `${p.y}-${p.mo}-${p.d} ${clock}`;
}
function fmtUTC(value) {
  const d = asDate(value);
  return d ? d.toISOString().replace("T", " ").slice(0, 19) + " UTC" : "";
}
// a <time> element: the local time, UTC on hover
function timeEl(value) {
  const d = asDate(value);
  if (!d) return document.createTextNode(value == null || value === "" ? "—" : String(value));
  const el = document.createElement("time");
  el.dateTime = d.toISOString();
  el.title = fmtUTC(d);
  el.textContent = fmtLocalTime(d);
  return el;
}
// an incident's title "<type or Anomaly>: metric, metric": the head translated, the metric names as they are
function titleEl(title) {
  const text = String(title || t("incident"));
  const cut = text.indexOf(": ");
  if (cut < 0) return h("span", { class: "incident-title" }, t(text));
  return h("span", { class: "incident-title" }, t(text.slice(0, cut)), ": ", h("span", { translate: "no" }, text.slice(cut + 2)));
}
function fmtInt(x) { return x == null || !Number.isFinite(Number(x)) ? "—" : Math.round(Number(x)).toLocaleString(LOCALE); }

// Plotly in the page's language: numeric dates in Russian (Plotly's own month names are English),
// a decimal comma; merged into a date x-axis (dateAxis) and a layout (plotLayout)
function dateAxis(axis = {}) {
  if (LANG !== "ru") return axis;
  const stops = [
    { dtickrange: [null, 60e3], value: "%H:%M:%S" },
    { dtickrange: [60e3, 86400e3], value: "%H:%M\n%d.%m.%Y" },
    { dtickrange: [86400e3, "M1"], value: "%d.%m\n%Y" },
    { dtickrange: ["M1", null], value: "%m.%Y" },
  ];
  const { tickformat, ...rest } = axis;
  return { hoverformat: "%d.%m.%Y %H:%M", ...rest, ...(tickformat ? { tickformat: tickformat.replace("%b %d", "%d.%m") } : { tickformatstops: stops }) };
}
function plotLayout(layout) { return LANG === "ru" ? { separators: ", ", ...layout } : layout; }

// server-rendered <time datetime=…> elements: shown in the chosen zone, UTC on hover
function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const d = asDate(el.getAttribute("datetime"));
    if (!d) continue;
    el.textContent = fmtLocalTime(d);
    el.title = fmtUTC(d);
  }
  for (const el of root.querySelectorAll("[data-tz-label]")) el.textContent = tzName();
}

// the header: the language links keep the page's query; the zone picker
function setupPrefs() {
  for (const a of document.querySelectorAll("#lang-switch a[data-lang]")) {
    const q = new URLSearchParams(location.search);
    q.set("lang", a.dataset.lang);
    a.href = `${location.pathname}?${q}`;
  }
  const sel = document.getElementById("tz-select");
  if (sel) {
    const zones = ["UTC", "Europe/Moscow", "Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Novosibirsk",
      "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Vladivostok", "Europe/London", "Europe/Berlin", "America/New_York"];
    for (const z of [BROWSER_TZ, TZ, ...zones]) {
      if (![...sel.options].some((o) => o.value === z)) sel.append(new Option(z, z));
    }
    sel.options[0].textContent = `${t("browser")} (${BROWSER_TZ})`;
    let saved = null;
    try { saved = localStorage.getItem("tw_tz"); } catch (_) { /* storage off */ }
    sel.value = new URLSearchParams(location.search).get("tz") || saved || "";
    sel.addEventListener("change", () => {
      try { if (sel.value) localStorage.setItem("tw_tz", sel.value); else localStorage.removeItem("tw_tz"); } catch (_) { /* */ }
      const q = new URLSearchParams(location.search);
      if (sel.value) q.set("tz", sel.value); else q.delete("tz");
      location.search = q.toString();
    });
  }
  document.documentElement.dataset.tz = TZ;
}
setupPrefs();
localizeTimes();
