// Helpers shared by every page: JSON calls with telewatch's {detail, error, line, column} errors,
// formatting, and the "not available" state for APIs that are not installed.
"use strict";

class ApiError extends Error {
  constructor(status, body) {
    let msg = (body && body.detail) || `HTTP ${status}`;
    if (body && (body.line != null || body.column != null)) {
      const where = [];
      if (body.line != null) where.push(t("line {n}", { n: body.line }));
      if (body.column != null) where.push(t("column {n}", { n: body.column }));
      if (!msg.includes(where[0])) msg += ` (${where.join(", ")})`;
    }
    super(msg);
    this.status = status;
    this.body = body || {};
  }
  // An endpoint that this server does not have at all (an unknown route), not a missing resource.
  get routeMissing() { return this.status === 404 && this.body.detail === "Not Found"; }
}

async function api(url, options = {}) {
  const opts = { ...options };
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers = { "Content-Type": "application/json", ...(opts.headers || {}) };
    delete opts.json;
  }
  const response = await fetch(url, opts);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { detail: text || response.statusText }; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}
const getJSON = (url) => api(url);
const postJSON = (url, json) => api(url, { method: "POST", json });

// Optional APIs (incidents, alerts, forecast, explain): null when the route does not exist here.
async function optionalJSON(url, options) {
  try { return await api(url, options); } catch (err) { if (err.routeMissing) return null; throw err; }
}

function items(body) {
  if (body == null) return [];
  if (Array.isArray(body)) return body;
  for (const k of ["items", "results", "data", "incidents", "silences", "channels", "rules", "monitors", "notifications", "history"]) {
    if (Array.isArray(body[k])) return body[k];
  }
  return [];
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// a time in the chosen time zone and the page's language (i18n.js); timeEl(value) adds UTC on hover
function fmtTime(value) { return fmtLocalTime(value); }
// the explorer opened on a window (ms or ISO times), with a margin either side: 30 minutes or twice the
// window's length, whichever is larger (the explorer reads ?from=&to=, ISO 8601)
function exploreHref(metricId, start, end) {
  const lo = typeof start === "number" ? start : Date.parse(start);
  const hi = typeof end === "number" ? end : Date.parse(end ?? start);
  if (Number.isNaN(lo) || Number.isNaN(hi)) return `/explore/${metricId}`;
  const pad = Math.max(30 * 60_000, 2 * (hi - lo));
  const iso = (ms) => new Date(ms).toISOString().slice(0, 16) + "Z";
  return `/explore/${metricId}?from=${iso(lo - pad)}&to=${iso(hi + pad)}`;
}

function fmtNum(x, digits = 3) {
  if (x == null || Number.isNaN(x)) return "—";
  const n = Number(x);
  if (!Number.isFinite(n)) return String(n);
  // large numbers whole (1,234,567), not "1.23e+6"; smaller ones to `digits` significant digits,
  // trailing zeros after the decimal point dropped (100 stays 100, 0.500 becomes 0.5)
  if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString(LOCALE);
  const text = n.toPrecision(digits);
  const short = text.includes(".") && !text.includes("e") ? text.replace(/\.?0+$/, "") : text;
  return LANG === "ru" ? short.replace(".", ",") : short;
}
function showError(container, err) {
  container.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message || String(err)));
}
function showUnavailable(container, what) {
  container.replaceChildren(h("div", { class: "notice unavailable", "data-unavailable": what },
    t("{what} is not available on this server (its API is not installed).", { what: t(what) })));
}
// Plotly renders text as an HTML subset (<a href>, <b>, style=…): text from data goes through this first,
// so a metric name or unit is shown as it is, never as a link or a style (docs/security.md)
function plotText(text) {
  return String(text ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
function metricLabel(m) {
  if (!m) return "";
  const labels = Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`).join(",");
  return labels ? `${m.name}{${labels}}` : m.name;
}
function stateBadge(state) {
  const s = String(state || "unknown");
  return h("span", { class: `state state-${s.replace(/\s+/g, "-")}`, "data-state": s }, t(s));
}
// Fields other engineers' APIs may name differently.
function pick(obj, ...names) {
  for (const n of names) if (obj && obj[n] != null) return obj[n];
  return null;
}
function toISO(ms) { return new Date(ms).toISOString(); }

// The spacing of a series from GET /api/series, in ms: the server's step when it resampled, else the
// median distance between points (a minute by default).
function seriesStep(s) {
  if (s && s.step_seconds) return s.step_seconds * 1000;
  const t = (s && s.t) || [];
  const d = [];
  for (let i = 1; i < t.length; i++) if (t[i] > t[i - 1]) d.push(t[i] - t[i - 1]);
  if (!d.length) return 60e3;
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)];
}
// Times and value arrays with a null where points are more than two steps apart, so that a chart
// breaks its line over a data gap instead of drawing a straight line across it.
function withGaps(t, step, ...arrays) {
  const tt = [], out = arrays.map(() => []);
  for (let i = 0; i < t.length; i++) {
    if (i && t[i] - t[i - 1] > 2 * step) { tt.push(t[i - 1] + step); out.forEach((a) => a.push(null)); }
    tt.push(t[i]);
    arrays.forEach((a, k) => out[k].push(a ? a[i] : null));
  }
  return [tt, ...out];
}
// A shaded window [start, end] on a small chart: widened by half a step either side (the points it
// covers) and to at least 1.5 % of the visible range, so that a one-minute window stays visible.
function windowShape(start, end, step, lo, hi, color, opacity) {
  let x0 = start - step / 2, x1 = end + step / 2;
  const least = (hi - lo) * 0.015;
  if (x1 - x0 < least) { const mid = (x0 + x1) / 2; x0 = mid - least / 2; x1 = mid + least / 2; }
  return { type: "rect", xref: "x", yref: "paper", x0: new Date(x0), x1: new Date(x1), y0: 0, y1: 1,
    fillcolor: color, opacity, line: { width: 0 } };
}
// Small charts: room under the axis for the two-line date ticks ("%H:%M" over "%b %d").
const SMALL_CHART = { height: 150, margin: { l: 45, r: 8, t: 4, b: 40 } };

// Writes need an admin token. A read sign-in (body data-scope="read", set by base.html) sees every write
// control — marked data-write in its template or script — disabled, with the reason as its tooltip.
const WRITE_CONTROLS = "[data-write]";
const ADMIN_NEEDED = t("Needs an admin token: you are signed in with a read-only token.");
function canWrite() { return document.body.dataset.scope !== "read"; }
function lockWrites(root) {
  const found = root.matches && root.matches(WRITE_CONTROLS) ? [root] : [];
  if (root.querySelectorAll) found.push(...root.querySelectorAll(WRITE_CONTROLS));
  for (const el of found) {
    if (!el.disabled) el.disabled = true;
    if (el.title !== ADMIN_NEEDED) { el.title = ADMIN_NEEDED; el.classList.add("needs-admin"); }
  }
}
if (!canWrite()) {
  lockWrites(document);
  new MutationObserver((changes) => {
    for (const c of changes) {
      if (c.type === "attributes") lockWrites(c.target);
      else c.addedNodes.forEach((n) => { if (n.nodeType === 1) lockWrites(n); });
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["disabled"] });
}

// a notice a page left for the next one (the explorer's «Delete metric» for the overview): shown once
(() => {
  let text = null;
  try { text = sessionStorage.getItem("tw_notice"); sessionStorage.removeItem("tw_notice"); } catch (_) { /* storage off */ }
  const main = document.querySelector("main");
  if (text && main) main.prepend(h("div", { class: "notice", id: "page-notice", role: "status" }, text));
})();
