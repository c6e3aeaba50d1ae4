// Helpers shared by every page: JSON calls with telewatch's {detail, error, line, column} errors,
// formatting, and the "not available" state for APIs that are not installed.
"use strict";

class ApiError extends Error {
  constructor(status, body) {
    let msg = (body && body.detail) || `HTTP ${status}`;
    if (body && (body.line != null || body.column != null)) {
      const where = [];
      if (body.line != null) where.push(`line ${body.line}`);
      if (body.column != null) where.push(`column ${body.column}`);
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

function fmtTime(value) {
  if (value == null || value === "") return "—";
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  if (isNaN(d)) return String(value);
  return d.toISOString().replace("T", " ").slice(0, 16);
}
function fmtNum(x, digits = 3) {
  if (x == null || Number.isNaN(x)) return "—";
  return Number(x).toPrecision(digits).replace(/\.?0+$/, "");
}
function showError(container, err) {
  container.replaceChildren(h("div", { class: "error-box", role: "alert" }, err.message || String(err)));
}
function showUnavailable(container, what) {
  container.replaceChildren(h("div", { class: "notice unavailable", "data-unavailable": what },
    `${what} is not available on this server (its API is not installed).`));
}
function metricLabel(m) {
  if (!m) return "";
  const labels = Object.entries(m.labels || {}).map(([k, v]) => `${k}=${v}`).join(",");
  return labels ? `${m.name}{${labels}}` : m.name;
}
function stateBadge(state) {
  const s = String(state || "unknown");
  return h("span", { class: `state state-${s.replace(/\s+/g, "-")}` }, s);
}
// Fields other engineers' APIs may name differently.
function pick(obj, ...names) {
  for (const n of names) if (obj && obj[n] != null) return obj[n];
  return null;
}
function toISO(ms) { return new Date(ms).toISOString(); }
