// The time picker (last 1 h … 30 d, or a custom window) and auto-refresh (off, 30 s, 1 min, 5 min) of the
// overview, explorer and incidents pages, kept in the URL: ?range=6h | ?from=…&to=… (ISO 8601), ?refresh=1m.
// A page sets window.onTimeRange(range) to redraw in place; otherwise a change reloads the page.
// A relative range ends now (the page says so when the data ends earlier).
"use strict";

const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
const REFRESH = { off: 0, "30s": 30e3, "1m": 60e3, "5m": 300e3 };
const timeControls = document.getElementById("time-controls");

// what the URL asks for: {key: "6h"|"custom"|"all", from, to (ms; null for "all")}
function currentRange() {
  const q = new URLSearchParams(location.search);
  const key = q.get("range") || (q.has("from") || q.has("to") ? "custom" : (timeControls?.dataset.rangeDefault || "all"));
  if (RANGES[key]) { const to = Date.now(); return { key, from: to - RANGES[key], to }; }
  if (key === "custom") {
    const from = asDate(q.get("from")), to = asDate(q.get("to"));
    return { key, from: from ? from.getTime() : null, to: to ? to.getTime() : null };
  }
  return { key: "all", from: null, to: null };
}
function currentRefresh() {
  const r = new URLSearchParams(location.search).get("refresh");
  return REFRESH[r] ? r : "off";
}
// the wall-clock text of an instant for <input type="datetime-local"> in the chosen zone, and back
const toLocalInput = (ms) => (ms == null ? "" : wallISO(ms).slice(0, 16));
const fromLocalInput = (text) => (text ? fromWall(Date.parse(text + ":00Z")) : null);
const urlInstant = (ms) => new Date(ms).toISOString().slice(0, 16) + "Z";

function setURL(changes) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) { if (v == null || v === "") q.delete(k); else q.set(k, v); }
  const qs = q.toString().replace(/%3A/gi, ":");
  history.replaceState(null, "", `${location.pathname}${qs ? "?" + qs : ""}`);
}
function applyRange() {
  if (typeof window.onTimeRange === "function") window.onTimeRange(currentRange());
  else location.reload();
}

let refreshTimer = null;
function scheduleRefresh() {
  clearInterval(refreshTimer);
  const every = REFRESH[currentRefresh()];
  if (!every) return;
  refreshTimer = setInterval(() => {
    if (document.hidden) return;   // a background tab waits
    if (typeof window.onRefresh === "function") window.onRefresh(currentRange());
    else if (typeof window.onTimeRange === "function") window.onTimeRange(currentRange());
    else location.reload();
  }, every);
}

function buildTimeControls() {
  if (!timeControls) return;
  const cur = currentRange();
  const withAll = timeControls.dataset.rangeAll === "1";
  const range = h("select", { id: "range-select", "aria-label": t("Time range") },
    withAll ? h("option", { value: "all" }, t("all time")) : null,
    Object.keys(RANGES).map((k) => h("option", { value: k }, t(`last ${k}`))),
    h("option", { value: "custom" }, t("custom…")));
  range.value = cur.key;
  const from = h("input", { type: "datetime-local", id: "range-from", value: toLocalInput(cur.from) });
  const to = h("input", { type: "datetime-local", id: "range-to", value: toLocalInput(cur.to) });
  const apply = h("button", { type: "button", id: "range-apply" }, t("Apply"));
  const custom = h("span", { id: "range-custom", class: cur.key === "custom" ? "" : "hidden" },
    h("label", {}, t("from"), " ", from), " ", h("label", {}, t("to"), " ", to), " ", apply,
    " ", h("span", { class: "muted", "data-tz-label": "" }, tzName()));
  const refresh = h("select", { id: "refresh-select", "aria-label": t("Auto-refresh") },
    Object.keys(REFRESH).map((k) => h("option", { value: k }, t(`refresh ${k}`))));
  refresh.value = currentRefresh();
  range.addEventListener("change", () => {
    if (range.value === "custom") {
      custom.classList.remove("hidden");
      const now = Date.now();
      if (!from.value) from.value = toLocalInput(now - 86400e3);
      if (!to.value) to.value = toLocalInput(now);
      return;
    }
    custom.classList.add("hidden");
    setURL({ range: range.value === (timeControls.dataset.rangeDefault || "all") ? null : range.value, from: null, to: null });
    applyRange();
  });
  apply.addEventListener("click", () => {
    const a = fromLocalInput(from.value), b = fromLocalInput(to.value);
    if (a == null || b == null || !(b > a)) { from.classList.add("invalid"); to.classList.add("invalid"); return; }
    from.classList.remove("invalid"); to.classList.remove("invalid");
    setURL({ range: null, from: urlInstant(a), to: urlInstant(b) });
    applyRange();
  });
  refresh.addEventListener("change", () => {
    setURL({ refresh: refresh.value === "off" ? null : refresh.value });
    scheduleRefresh();
  });
  timeControls.replaceChildren(h("label", {}, t("Time range"), " ", range), " ", custom, " ",
    h("label", {}, t("Auto-refresh"), " ", refresh), " ",
    h("span", { class: "muted", id: "refreshed-at", "aria-live": "polite" }));
  scheduleRefresh();
}
function markRefreshed() {
  const el = document.getElementById("refreshed-at");
  if (el) el.textContent = t("updated {time}", { time: fmtLocalTime(Date.now(), { seconds: true }) });
}
buildTimeControls();
