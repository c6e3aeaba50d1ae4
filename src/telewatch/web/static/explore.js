// Metric explorer: the series (resampled server-side to the visible range), its expected band,
// anomalies per detector, the stored anomalies and labelled windows, the forecast ahead, scores, a
// decomposition, and window selection. The view (?from=&to= in the URL) follows zoom and pan.
"use strict";

const TARGET_POINTS = 2500;           // points per visible range; the server resamples to this
const DETECT_POINTS = 3000;           // points per curve of an ad-hoc detection (band, scores)
const ZOOM_DETECT_SHARE = 0.5;        // views shorter than this share of the series re-run detection
const DAY = 86_400_000;
// ad-hoc detectors; red is kept for stored anomalies and orange for labelled windows
const COLORS = ["#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"];
const STORED_COLOR = "#d62728";
const LABEL_COLOR = "#ff7f0e";
const ex = {
  metrics: JSON.parse(document.getElementById("metrics-data")?.textContent || "[]"),
  metric: null, detectors: [], catalogue: {}, selection: null, fetchSeq: 0, loadSeq: 0, detectSeq: 0,
  zoomSeq: 0, relayoutTimer: null, firstPaintMs: null, lastResult: null,
  view: null,          // {from, to} in ms when zoomed; null = the whole series
  userY: null,         // a y-range the user chose (box zoom, scroll); null = fit the visible data
  series: null, forecast: null, stored: [], labels: [], zoomed: null,
  show: { stored: true, labels: true },
};
window.__tw = ex;  // for tests and the curious


const chartEl = document.getElementById("main-chart");
const scoreEl = document.getElementById("score-chart");
const statusEl = document.getElementById("status");
function status(text) { if (statusEl) statusEl.textContent = text; }

// x values as wall-clock text in the chosen time zone (i18n.js: the browser's, or the one picked in the
// header): Plotly draws text as it reads, and a restyle keeps the axis a date axis; plotMs reads it back
const dates = (t) => wallDates(t);
const wall = (v) => wallISO(toMs(v));

// ms since epoch from what Plotly or a URL holds: a number, or text (no timezone = UTC)
function toMs(value) {
  if (value == null || value === "") return NaN;
  if (typeof value === "number") return value;
  if (value instanceof Date) return value.getTime();
  const s = String(value).trim();
  if (/^\d{10,}$/.test(s)) return Number(s);
  const m = s.match(/^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?)?\s*(Z|z|[+-]\d\d:?\d\d)?$/);
  if (!m) return NaN;
  const [, y, mo, d, hh = "0", mi = "0", ss = "0", frac = "", tz] = m;
  let ms = Date.UTC(+y, +mo - 1, +d, +hh, +mi, +ss, frac ? Math.round(Number(frac) * 1000) : 0);
  if (tz && !/^[zZ]$/.test(tz)) {
    const sign = tz[0] === "-" ? -1 : 1, digits = tz.slice(1).replace(":", "");
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
  }
  return ms;
}
// an ISO 8601 instant for a URL: to the minute where that is exact, else to the second
function urlTime(ms) {
  const iso = new Date(Math.round(ms / 1000) * 1000).toISOString();
  return iso.endsWith(":00.000Z") ? iso.slice(0, 16) + "Z" : iso.slice(0, 19) + "Z";
}

function stepFor(fromMs, toMs) {
  const seconds = Math.max(1, Math.ceil((toMs - fromMs) / 1000 / TARGET_POINTS));
  return seconds <= 60 ? null : `${Math.ceil(seconds / 60)}min`;   // null: raw 1-minute points
}

async function fetchSeries(fromMs, toMs) {
  const m = ex.metric;
  const params = new URLSearchParams();
  if (fromMs != null) params.set("from", toISO(fromMs));
  if (toMs != null) params.set("to", toISO(toMs + 1));
  const step = stepFor(fromMs ?? m.first, toMs ?? m.last);
  if (!step) return getJSON(`/api/series/${m.id}?${params}`);
  params.set("step", step);
  // averaged per bucket, with the bucket's min and max as an envelope so that spikes stay visible
  const [avg, lo, hi] = await Promise.all(["avg", "min", "max"].map((agg) => {
    const p = new URLSearchParams(params); p.set("agg", agg);
    return getJSON(`/api/series/${m.id}?${p}`);
  }));
  avg.min = lo.v; avg.max = hi.v;
  return avg;
}

// -- the view: what the x-axis shows, and the URL that opens it again
function wholeEnd() {
  const f = ex.forecast;
  const fEnd = f && f.t.length ? f.t[f.t.length - 1] : -Infinity;
  return Math.max(ex.metric.last, fEnd);
}
function xRange() {
  return ex.view ? [ex.view.from, ex.view.to] : [ex.metric.first, wholeEnd()];
}
function updateURL() {
  const q = new URLSearchParams(location.search);
  q.delete("metric"); q.delete("labels");   // the path names the metric now
  if (!ex.relative) q.delete("range");
  if (ex.relative) { q.delete("from"); q.delete("to"); }
  else if (ex.view) { q.set("from", urlTime(ex.view.from)); q.set("to", urlTime(ex.view.to)); }
  else { q.delete("from"); q.delete("to"); }
  const qs = q.toString().replace(/%3A/gi, ":");
  history.replaceState(null, "", `/explore/${ex.metric.id}${qs ? "?" + qs : ""}`);
}
// ?from=&to= of the page's URL (ISO 8601; no timezone = UTC); null when absent or unreadable
function viewFromURL() {
  const q = new URLSearchParams(location.search);
  if (RANGES[q.get("range")]) return rangeView(currentRange());
  if (!q.has("from") && !q.has("to")) return null;
  const m = ex.metric;
  const from = q.has("from") ? toMs(q.get("from")) : m.first;
  const to = q.has("to") ? toMs(q.get("to")) : m.last;
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
    ex.urlProblem = t("could not read the window from={from} to={to} (ISO 8601, e.g. 2026-11-18T18:00Z, with to after from); showing the whole range",
      { from: q.get("from") ?? "", to: q.get("to") ?? "" });
    return null;
  }
  return { from, to };
}

// the time picker's range as a view: a relative one ends now, or at the metric's last point when its
// data stopped earlier (said in the status line); null = the whole series
function rangeView(range) {
  ex.rangeNote = null;
  ex.relative = Boolean(RANGES[range.key]);
  if (range.from == null || range.to == null) return null;
  const m = ex.metric;
  if (ex.relative && m && m.last != null && m.last < range.from) {
    const span = range.to - range.from;
    ex.rangeNote = t("no data in this range up to now: the data ends {time}; showing the same span before that", { time: fmtTime(m.last) });
    return { from: m.last - span, to: m.last };
  }
  return { from: range.from, to: range.to };
}
window.onTimeRange = (range) => setView(rangeView(range));
window.onRefresh = () => location.reload();

// -- drawing: every redraw builds the whole figure from ex (Plotly.react sends no plotly_relayout)
function lineTrace(meta, tms, y, extra) {
  return { x: dates(tms), y, type: "scatter", mode: "lines", meta, _t: tms, ...extra };
}
function bandTraces(tms, lower, upper, meta, name, fillcolor, extra = {}) {
  return [
    lineTrace(`${meta}-lo`, tms, lower, { line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: meta, ...extra }),
    lineTrace(`${meta}-hi`, tms, upper, { line: { width: 0 }, fill: "tonexty", fillcolor, name, hoverinfo: "skip",
      legendgroup: meta, ...extra }),
  ];
}
function shownResult() {
  const z = ex.zoomed;
  if (z && ex.view && z.metricId === ex.metric.id && z.from === ex.view.from && z.to === ex.view.to) return z.result;
  if (z && ex.view && z.metricId === ex.metric.id && z.result && ex.view.to - ex.view.from < (ex.metric.last - ex.metric.first) * ZOOM_DETECT_SHARE) {
    return z.result;   // the previous zoom's result until this one's comes
  }
  return ex.lastResult;
}

function chartTraces() {
  const traces = [];
  const result = shownResult();
  if (result && result.band) {
    traces.push(...bandTraces(result.band.t, result.band.lower, result.band.upper, "band", t("expected band"), "rgba(31,119,180,0.13)"));
  }
  const s = ex.series;
  if (s) {
    const on = Array.isArray(s.min);
    const [gt, gv, gmin, gmax] = withGaps(s.t, seriesStep(s), s.v, s.min, s.max);   // a gap breaks the line
    traces.push(...bandTraces(on ? gt : [], on ? gmin : [], on ? gmax : [], "env", t("min–max per bucket"),
      "rgba(31,119,180,0.3)", { showlegend: on }));
    traces[traces.length - 2].showlegend = false;
    // hover: the value and its time in UTC (the axis reads the chosen zone)
    const utc = TZ === "UTC" ? {} : { customdata: gt.map((ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ")),
      hovertemplate: "%{y}<br>%{customdata} UTC" };
    traces.push({ ...lineTrace("series", gt, gv, { type: "scattergl", name: plotText(ex.metric.display),
      line: { width: 1.2, color: "#1f77b4" }, connectgaps: false, ...utc }) });
  }
  if (ex.stored.length) {
    const st = ex.stored;
    traces.push({ x: st.map((a) => wall(a.peak)), y: st.map((a) => a.value), _t: st.map((a) => toMs(a.peak)),
      type: "scatter", mode: "markers", meta: "stored", name: t("stored anomalies ({n})", { n: st.length }),
      visible: ex.show.stored, marker: { color: STORED_COLOR, size: 9, symbol: "diamond", line: { width: 1, color: "#fff" } },
      text: st.map((a) => `${t("stored anomaly")} · ${plotText(a.detector)}<br>` +
        t("peak score {score} at {time}", { score: fmtNum(a.peak_score), time: `${fmtTime(a.peak)} ${tzName(toMs(a.peak))}` }) +
        `<br>${t("window")} ${fmtTime(a.start)} – ${fmtTime(a.end)}`),
      hovertemplate: `%{text}<br>${t("value")} %{y}<extra></extra>` });
  }
  if (result) {
    result.results.forEach((r, i) => {
      const color = COLORS[i % COLORS.length];
      traces.push({ x: r.anomalies.map((a) => wall(a.peak)), y: r.anomalies.map((a) => a.value), _t: r.anomalies.map((a) => toMs(a.peak)),
        type: "scatter", mode: "markers", meta: `adhoc-${i}`,
        marker: { color, size: 8, symbol: "circle-open", line: { width: 2 } }, name: t("{detector} anomalies ({n})", { detector: r.detector, n: r.anomalies.length }),
        text: r.anomalies.map((a) => `${r.detector}: ${t("score {score}", { score: fmtNum(a.peak_score) })}`) });
    });
  }
  const f = ex.forecast;
  if (f) {
    if (f.lo && f.hi && f.lo.some((v) => v != null)) {
      traces.push(...bandTraces(f.t, f.lo, f.hi, "forecast-iv", t("forecast {level}% interval", { level: f.level }), "rgba(44,160,44,0.15)"));
    }
    traces.push(lineTrace("forecast", f.t, f.mean, { line: { dash: "dot", color: "#2ca02c" }, name: t("forecast ({model})", { model: f.model }) }));
  }
  // keep what the user hid through the legend
  const hidden = new Set((chartEl.data || []).filter((t) => t.visible === "legendonly").map((t) => t.meta));
  for (const t of traces) if (hidden.has(t.meta) && t.visible !== false) t.visible = "legendonly";
  return traces;
}

function chartShapes() {
  const shapes = [];
  const win = (start, end, color, opacity, extra = {}) => ({ type: "rect", xref: "x", yref: "paper", x0: wall(start), x1: wall(end),
    y0: 0, y1: 1, fillcolor: color, opacity, line: { width: 0 }, layer: "below", ...extra });
  if (ex.show.labels) {
    for (const l of ex.labels) {
      shapes.push(win(l.start, l.end, LABEL_COLOR, 0.22, { name: "label",
        label: { text: plotText(t(l.kind)), textposition: "top left", font: { size: 10, color: "#a04d00" } } }));
    }
  }
  if (ex.show.stored) for (const a of ex.stored) shapes.push(win(a.start, a.end, STORED_COLOR, 0.14, { name: "stored" }));
  const result = shownResult();
  if (result) {
    result.results.forEach((r, i) => {
      for (const a of r.anomalies) shapes.push(win(a.start, a.end, COLORS[i % COLORS.length], 0.15, { name: "adhoc" }));
    });
  }
  return shapes;
}

// the y-range of what lies inside [lo, hi] on the x-axis, over the traces shown (padded 5 %)
function fitY(traces, lo, hi, extra = []) {
  let min = Infinity, max = -Infinity;
  for (const v of extra) { if (Number.isFinite(v)) { min = Math.min(min, v); max = Math.max(max, v); } }
  for (const tr of traces) {
    if (tr.visible === false || tr.visible === "legendonly" || !tr._t) continue;
    const t = tr._t, y = tr.y;
    for (let i = 0; i < t.length; i++) {
      const v = y[i];
      if (v == null || !Number.isFinite(v) || t[i] < lo || t[i] > hi) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!Number.isFinite(min)) return null;
  const pad = max > min ? (max - min) * 0.05 : Math.max(1, Math.abs(max) * 0.05);
  return [min - pad, max + pad];
}

async function redraw() {
  const m = ex.metric;
  if (!m || !ex.series) return;
  await loadPlotly();
  if (!ex.series || m !== ex.metric) return;
  chartEl.querySelectorAll(".preview, .chart-wait").forEach((el) => el.remove());
  const [lo, hi] = xRange();
  const traces = chartTraces();
  const y = ex.userY || fitY(traces, lo, hi);
  const layout = plotLayout({
    margin: { l: 60, r: 20, t: 10, b: 30 }, height: 420, dragmode: chartEl.layout?.dragmode || "zoom", hovermode: "x",
    showlegend: true, legend: { orientation: "h", y: 1.08, x: 0 },
    xaxis: dateAxis({ type: "date", range: [wallISO(lo), wallISO(hi)] }),
    yaxis: { title: { text: plotText(m.unit) }, fixedrange: false, ...(y ? { range: y, autorange: false } : { autorange: true }) },
    shapes: chartShapes(),
  });
  for (const t of traces) delete t._t;
  const drawn = Plotly.react(chartEl, traces, layout, { displaylogo: false, responsive: true, scrollZoom: true });
  chartEl.dataset.view = ex.view ? `${toISO(ex.view.from)}/${toISO(ex.view.to)}` : "whole";
  drawScores(lo, hi);
  return drawn;
}

function drawScores(lo, hi) {
  const result = shownResult();
  const traces = [];
  if (result) {
    result.results.forEach((r, i) => traces.push({ x: dates(r.scores.t), y: r.scores.v, _t: r.scores.t, type: "scattergl", mode: "lines",
      line: { width: 1, color: COLORS[i % COLORS.length] }, name: r.detector, meta: `score-${i}` }));
    traces.push({ x: dates([lo, hi]), y: [result.threshold, result.threshold],
      type: "scatter", mode: "lines", line: { dash: "dash", color: "#555", width: 1 }, name: t("threshold"), meta: "threshold" });
  }
  const hidden = new Set((scoreEl.data || []).filter((t) => t.visible === "legendonly").map((t) => t.meta));
  for (const t of traces) if (hidden.has(t.meta)) t.visible = "legendonly";
  const y = result ? fitY(traces, lo, hi, [result.threshold]) : null;
  for (const t of traces) delete t._t;
  Plotly.react(scoreEl, traces, plotLayout({
    margin: { l: 60, r: 20, t: 4, b: 30 }, height: 220, xaxis: dateAxis({ type: "date", range: [wallISO(lo), wallISO(hi)] }),
    yaxis: { title: { text: t("score") }, ...(y ? { range: y } : { autorange: true }) }, showlegend: true, legend: { orientation: "h" },
  }), { displaylogo: false, responsive: true });
}

function showSeriesStatus(series) {
  chartEl.dataset.points = String(series.t.length);
  chartEl.dataset.step = String(series.step_seconds ?? "raw");
  status(t("{n} points shown", { n: fmtInt(series.t.length) }) +
    (series.step_seconds ? t(" (averaged per {min} min; zoom in for raw points)", { min: series.step_seconds / 60 }) : t(" (raw 1-minute points)")) +
    t("; times in {tz}, UTC on hover", { tz: tzName() }) +
    (ex.rangeNote ? ` — ${ex.rangeNote}` : "") + (ex.urlProblem ? ` — ${ex.urlProblem}` : ""));
}

// the series around the view: a margin on each side so that a short pan stays drawn
function fetchRange() {
  if (!ex.view) return [null, null];
  const pad = (ex.view.to - ex.view.from) * 0.25;
  return [Math.max(ex.metric.first, ex.view.from - pad), Math.min(ex.metric.last, ex.view.to + pad)];
}

async function drawMetric(id, view) {
  ex.metric = ex.metrics.find((m) => m.id === Number(id)) || ex.metrics[0];
  if (!ex.metric) return;
  const seq = ++ex.loadSeq;
  ex.fetchSeq++; ex.zoomSeq++;
  ex.urlProblem = null;
  ex.view = view === undefined ? viewFromURL() : view;
  ex.userY = null;
  ex.series = null; ex.forecast = null; ex.stored = []; ex.labels = []; ex.zoomed = null; ex.lastResult = null;
  updateURL();
  ex.selection = null;
  document.getElementById("window-panel").classList.add("hidden");
  chartEl.classList.remove("drawn");
  for (const k of ["stored", "labels", "anomalies", "forecast"]) delete chartEl.dataset[k];
  delete document.getElementById("stored-list").dataset.loaded;
  const began = performance.now();
  status(t("loading…"));
  const overlays = loadOverlays(seq);   // stored anomalies and labels, alongside the series
  let series;
  try {
    const [lo, hi] = fetchRange();
    series = (lo != null && hi <= lo) ? { t: [], v: [], step_seconds: null } : await fetchSeries(lo, hi);
  } catch (err) { showError(chartEl, err); return; }
  if (seq !== ex.loadSeq) return;   // another metric was chosen meanwhile
  ex.series = series;
  if (!window.Plotly) drawPreview(series);
  await redraw();
  if (seq !== ex.loadSeq) return;
  ex.firstPaintMs = performance.now() - began;
  if (ex.firstPaintAt == null) ex.firstPaintAt = performance.now();  // since navigation start
  chartEl.classList.add("drawn");
  showSeriesStatus(series);
  if (!ex.listening) {
    ex.listening = true;
    chartEl.on("plotly_relayout", onRelayout);
    chartEl.on("plotly_selected", onSelected);
    chartEl.on("plotly_legendclick", onLegendClick);
  }
  ex.catalogueReady.then(() => { if (seq === ex.loadSeq) runDetect(); });
  drawForecast(seq);
  await overlays;
}

// the series as a light SVG line while Plotly loads (preview.js)
function drawPreview(series) {
  if (drawSeriesPreview(chartEl, series) && ex.previewAt == null) ex.previewAt = performance.now();   // since navigation start
}

// -- zoom and pan: re-read the visible range from the server at a step that fits it
function onRelayout(ev) {
  if (!ev || !ex.metric) return;
  const keys = Object.keys(ev);
  const xChanged = keys.some((k) => k.startsWith("xaxis.range") || k === "xaxis.autorange");
  const yRange = ev["yaxis.range"] || (ev["yaxis.range[0]"] != null ? [ev["yaxis.range[0]"], ev["yaxis.range[1]"]] : null);
  if (!xChanged && !yRange && !ev["yaxis.autorange"]) return;
  if (xChanged) {
    const r = ev["xaxis.autorange"] ? null : (ev["xaxis.range"] || [ev["xaxis.range[0]"], ev["xaxis.range[1]"]]).map(plotMs);
    const whole = [ex.metric.first, wholeEnd()];
    if (!r || !r.every(Number.isFinite)) ex.view = null;
    else {
      const [a, b] = r[0] <= r[1] ? r : [r[1], r[0]];
      ex.view = (a <= whole[0] && b >= whole[1]) ? null : { from: a, to: b };
    }
  }
  // a y-range the user chose with the x-range (a box, a scroll) stays; an x-only zoom fits y again
  ex.userY = yRange ? yRange.map(Number) : (xChanged || ev["yaxis.autorange"] ? null : ex.userY);
  if (!xChanged) { redraw(); return; }
  ex.relative = false; ex.rangeNote = null;
  syncRangeSelect();
  updateURL();
  const [lo, hi] = xRange();
  Plotly.relayout(scoreEl, { "xaxis.range": [wallISO(lo), wallISO(hi)] });
  clearTimeout(ex.relayoutTimer);
  ex.relayoutTimer = setTimeout(refetchVisible, 120);
}

async function refetchVisible() {
  const seq = ++ex.fetchSeq;
  const [lo, hi] = fetchRange();
  try {
    const series = (lo != null && hi <= lo) ? { t: [], v: [], step_seconds: null } : await fetchSeries(lo, hi);
    if (seq !== ex.fetchSeq) return;   // a newer zoom won
    ex.series = series;
    await redraw();
    showSeriesStatus(series);
  } catch (err) { status(t("could not load: {error}", { error: err.message })); }
  scheduleZoomDetect();
}

function syncRangeSelect() {
  const sel = document.getElementById("range-select");
  if (sel && !ex.relative) sel.value = ex.view ? "custom" : "all";
}
function setView(view) {
  ex.view = view; ex.userY = null;
  updateURL();
  clearTimeout(ex.relayoutTimer);
  redraw();   // at once, with the series at hand; the fetch brings the view's resolution
  refetchVisible();
}

// -- stored anomalies (GET /api/anomalies) and labelled windows (GET /api/labels) of the metric
async function loadOverlays(seq) {
  const id = ex.metric.id;
  const box = document.getElementById("stored-list");
  const anomalies = (async () => {
    const all = [], page = 10_000;
    for (let offset = 0; ; offset += page) {
      const chunk = await getJSON(`/api/anomalies?metric=${id}&limit=${page}&offset=${offset}`);
      all.push(...chunk);
      if (chunk.length < page) return all;
    }
  })();
  const labels = getJSON(`/api/labels?metric=${id}`);
  const [a, l] = await Promise.allSettled([anomalies, labels]);
  if (seq !== ex.loadSeq) return;
  ex.stored = a.status === "fulfilled" ? a.value.slice().sort((x, y) => toMs(x.start) - toMs(y.start)) : [];
  ex.labels = l.status === "fulfilled" ? l.value : [];
  chartEl.dataset.stored = String(ex.stored.length);
  chartEl.dataset.labels = String(ex.labels.length);
  document.getElementById("stored-count").textContent = a.status === "fulfilled" ? `(${fmtInt(ex.stored.length)})` : "(?)";
  document.getElementById("labels-count").textContent = l.status === "fulfilled" ? `(${fmtInt(ex.labels.length)})` : "(?)";
  renderOverlayLists(a.status === "rejected" ? a.reason : null, l.status === "rejected" ? l.reason : null);
  if (ex.series) redraw();
  box.dataset.loaded = "1";
}

const LIST_ROWS = 500;
// (common.js's fmtNum strips the zeros of whole numbers: 1000 would read "1")
const fmtValue = (x) => (x == null || !Number.isFinite(x) ? "—" : Number(x).toLocaleString(LOCALE, { maximumSignificantDigits: 5 }));
function renderOverlayLists(anomalyError, labelError) {
  const zoomTo = (start, end) => {
    const s = toMs(start), e = toMs(end);
    const margin = Math.max(30 * 60_000, (e - s) * 2);
    setView({ from: s - margin, to: e + margin });
  };
  const box = document.getElementById("stored-list");
  if (anomalyError) showError(box, anomalyError);
  else if (!ex.stored.length) box.replaceChildren(h("p", { class: "muted" }, t("No stored anomalies for this metric (stored detection: Store anomalies below, telewatch detect, or a monitor).")));
  else {
    const rows = ex.stored.slice(-LIST_ROWS).reverse();   // newest first, as /api/anomalies
    box.replaceChildren(
      h("table", { class: "grid", id: "stored-table" },
        h("thead", {}, h("tr", {}, ["Detector", "Start", "End", "Peak", "Peak score", "Value", ""].map((x) => h("th", {}, t(x))))),
        h("tbody", {}, rows.map((a) => h("tr", { "data-anomaly": a.id },
          h("td", { translate: "no" }, h("span", { class: "swatch stored" }), a.detector),
          h("td", {}, timeEl(a.start)), h("td", {}, timeEl(a.end)), h("td", {}, timeEl(a.peak)),
          h("td", { class: "num" }, fmtNum(a.peak_score)), h("td", { class: "num" }, fmtValue(a.value)),
          h("td", {}, h("button", { type: "button", class: "zoom-to", onclick: () => zoomTo(a.start, a.end) }, t("show"))))))),
      ex.stored.length > LIST_ROWS ? h("p", { class: "muted" }, t("The newest {n} of {total} are listed; all are drawn.", { n: LIST_ROWS, total: fmtInt(ex.stored.length) })) : "");
  }
  const lbox = document.getElementById("labels-list");
  if (labelError) showError(lbox, labelError);
  else if (!ex.labels.length) lbox.replaceChildren(h("p", { class: "muted" }, t("No labelled windows for this metric.")));
  else {
    lbox.replaceChildren(h("table", { class: "grid", id: "labels-table" },
      h("thead", {}, h("tr", {}, ["Kind", "Start", "End", "Source", "Note", ""].map((x) => h("th", {}, t(x))))),
      h("tbody", {}, ex.labels.map((l) => h("tr", { "data-label": l.id },
        h("td", {}, h("span", { class: "swatch label" }), t(l.kind)), h("td", {}, timeEl(l.start)), h("td", {}, timeEl(l.end)),
        h("td", {}, t(l.source)), h("td", { translate: "no" }, l.note || ""),
        h("td", {}, h("button", { type: "button", class: "zoom-to", onclick: () => zoomTo(l.start, l.end) }, t("show"))))))));
  }
}

function onLegendClick(ev) {
  // the stored anomalies' marker trace toggles their shaded windows too (as the checkbox does)
  if (ev && ev.data && ev.data[ev.curveNumber] && ev.data[ev.curveNumber].meta === "stored") {
    const cb = document.getElementById("show-stored");
    cb.checked = !cb.checked;
    ex.show.stored = cb.checked;
    redraw();
    return false;
  }
  return true;
}

// -- window selection → window scan
function setMode(mode) {
  if (!window.Plotly || !chartEl.layout) return;
  Plotly.relayout(chartEl, { dragmode: mode });
  document.getElementById("mode-zoom").classList.toggle("primary", mode === "zoom");
  document.getElementById("mode-select").classList.toggle("primary", mode === "select");
}
function onSelected(ev) {
  if (!ev || !ev.range || !ev.range.x) return;
  const [a, b] = ev.range.x.map(plotMs);
  ex.selection = { from: Math.min(a, b), to: Math.max(a, b) };
  document.getElementById("window-text").textContent = `${fmtTime(ex.selection.from)} – ${fmtTime(ex.selection.to)} ${tzName(ex.selection.from)}`;
  const groupSel = document.getElementById("window-group");
  if (ex.metric.group && !groupSel.dataset.touched) groupSel.value = ex.metric.group;
  document.getElementById("window-panel").classList.remove("hidden");
}
function scanSelection() {
  if (!ex.selection) return;
  const q = new URLSearchParams({ from: toISO(ex.selection.from), to: toISO(ex.selection.to), metric: ex.metric.id });
  const g = document.getElementById("window-group").value;
  if (g) q.set("group", g);
  location.href = `/scan?${q}`;
}

// -- detectors
async function loadCatalogue() {
  const list = await getJSON("/api/detectors");
  const sel = document.getElementById("detector-add");
  for (const d of list) {
    ex.catalogue[d.name] = d;
    sel.append(h("option", { value: d.name, title: plainDoc(d.doc || ""), translate: "no" }, d.name));
  }
  if (ex.catalogue.robust_bands) { addDetector("robust_bands"); sel.value = "robust_bands"; }
  else if (list.length) addDetector(list[0].name);
}
function addDetector(name) {
  const info = ex.catalogue[name];
  if (!info) return;
  const spec = { name, params: { ...info.params }, changed: new Set() };
  ex.detectors.push(spec);
  renderDetectors();
}
function renderDetectors() {
  const box = document.getElementById("detectors");
  box.replaceChildren(...ex.detectors.map((spec, i) => {
    const params = Object.entries(spec.params).map(([k, v]) => h("label", { class: "field" }, h("span", { translate: "no" }, k),
      h("input", { type: "text", value: v == null ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)), "data-param": k,
        oninput: (e) => { spec.params[k] = parseParam(e.target.value); spec.changed.add(k); e.target.classList.remove("invalid"); } })));
    return h("div", { class: "det", "data-detector": spec.name },
      h("b", { style: `color:${COLORS[i % COLORS.length]}` }, spec.name), " ",
      detectorDoc(spec.name), " ",
      h("button", { type: "button", onclick: () => { ex.detectors.splice(i, 1); renderDetectors(); } }, t("remove")),
      h("div", { class: "params" }, params));
  }));
}
// a detector's description: the catalogue's (i18n: "detector: NAME") where it has one, else its docstring
function detectorDoc(name) {
  const key = `detector: ${name}`, own = t(key);
  if (own !== key) return h("span", { class: "muted detector-doc" }, own);
  return h("span", { class: "muted detector-doc", translate: "no" }, plainDoc(ex.catalogue[name]?.doc || ""));
}
// a detector's docstring as text: ``code`` and *emphasis* marks dropped
function plainDoc(doc) { return String(doc).replace(/``([^`]*)``/g, "$1").replace(/`([^`]*)`/g, "$1").replace(/\*\*?([^*]+)\*\*?/g, "$1"); }
// only what the user changed is sent: the defaults stay the detector's own
const changedParams = (d) => Object.fromEntries([...d.changed].map((k) => [k, d.params[k]]).filter(([, v]) => v !== null));
function parseParam(text) {
  const t = text.trim();
  if (t === "") return null;
  if (t === "true" || t === "false") return t === "true";
  if (!Number.isNaN(Number(t))) return Number(t);
  try { return JSON.parse(t); } catch (_) { return t; }
}

// A detector's error names the parameter: the API passes the library's message through, which often
// does not ("passed window abc is not compatible …"); the suspects are the parameters the user changed.
function detectorError(spec, index, message) {
  const changed = spec ? Object.keys(changedParams(spec)) : [];
  const named = changed.filter((k) => new RegExp(`\\b${k}\\b`).test(message));
  const suspects = named.length ? named : changed;
  const inputs = document.querySelectorAll("#detectors .det")[index]?.querySelectorAll("input[data-param]") || [];
  for (const el of inputs) el.classList.toggle("invalid", suspects.includes(el.dataset.param));
  if (!suspects.length) return message;
  const which = suspects.map((k) => `${k} = ${JSON.stringify(spec.params[k])}`).join(", ");
  return `${suspects.length > 1 ? t("parameters") : t("parameter")} ${which}: ${message}`;
}

function trainShare() {
  const pct = Number(document.getElementById("train-share").value);
  return pct > 0 && pct < 100 ? { train_share: pct / 100 } : {};
}

function detectBody() {
  const body = {
    metric: String(ex.metric.id),
    detectors: ex.detectors.map((d) => ({ name: d.name, params: changedParams(d) })),
    threshold: Number(document.getElementById("threshold").value),
    calibrate: document.getElementById("calibrate").checked,
    ...trainShare(),
    min_points: Number(document.getElementById("min-points").value),
    merge_gap: Number(document.getElementById("merge-gap").value),
    max_points: DETECT_POINTS,
  };
  const w = ex.detectors.find((d) => d.name === "robust_bands")?.params.window;
  if (Number.isInteger(w) && w >= 2) body.band_window = w;
  return body;
}

async function runDetect() {
  const summary = document.getElementById("detect-summary");
  if (!ex.detectors.length) { summary.replaceChildren(h("span", { class: "muted" }, t("Add a detector to see anomalies."))); return; }
  const btn = document.getElementById("run-detect");
  btn.disabled = true;
  summary.replaceChildren(h("span", { class: "muted" }, t("running…")));
  const seq = ++ex.detectSeq, metricId = ex.metric.id;
  const specs = ex.detectors.slice();
  try {
    const result = await postJSON("/api/detect", detectBody());
    if (seq !== ex.detectSeq || metricId !== ex.metric.id) return;
    ex.lastResult = result;
    ex.zoomed = null;
    chartEl.dataset.anomalies = String(result.results.reduce((n, r) => n + r.anomalies.length, 0));
    summary.replaceChildren(h("table", { class: "grid", id: "detect-table" },
      h("thead", {}, h("tr", {}, ["Detector", "Anomalies", "Time", "Note"].map((x) => h("th", {}, t(x))))),
      h("tbody", {}, result.results.map((r, i) => h("tr", { "data-detector": r.detector },
        h("td", {}, h("b", { style: `color:${COLORS[i % COLORS.length]}` }, r.detector)),
        h("td", { class: "num anomaly-count" }, String(r.anomalies.length)),
        h("td", { class: "num" }, t("{ms} ms", { ms: fmtInt(r.seconds * 1000) })),
        h("td", {}, r.error ? h("span", { class: "error-box detector-error" }, detectorError(specs[i], i, r.error)) : ""))))),
      h("div", { id: "zoom-note", class: "muted" }));
    await redraw();
    scheduleZoomDetect();
  } catch (err) { showError(summary, err); } finally { btn.disabled = false; }
}

// Zoomed in: the detection runs again over the view plus the stretch before it, fitted (and
// calibrated) on that stretch, so that the band and the scores come at the view's resolution.
function scheduleZoomDetect() {
  const m = ex.metric, v = ex.view, note = document.getElementById("zoom-note");
  const whole = m.last - m.first;
  if (!ex.lastResult || !ex.detectors.length || !v || v.to - v.from >= whole * ZOOM_DETECT_SHARE || v.to <= m.first || v.from >= m.last) {
    if (ex.zoomed) { ex.zoomed = null; redraw(); }
    if (note) { note.textContent = ""; delete note.dataset.state; }
    return;
  }
  if (ex.zoomed && ex.zoomed.from === v.from && ex.zoomed.to === v.to && ex.zoomed.metricId === m.id) return;
  const body = detectBody();
  const span = v.to - v.from;
  const wantContext = Math.max(3 * span, 2 * DAY, (body.band_window || 288) * 60_000 * 2);
  const from = Math.max(m.first, v.from - wantContext);
  const to = Math.min(m.last, v.to) + 60_000;   // exclusive
  if (v.from - from >= 0.2 * (to - from)) body.train_share = Math.min(1, (v.from - from) / (to - from));
  body.from = toISO(from); body.to = toISO(to);
  const seq = ++ex.zoomSeq;
  if (note) { note.textContent = t("zoomed in: re-running the detection for the visible range…"); note.dataset.state = "running"; }
  postJSON("/api/detect", body).then((result) => {
    if (seq !== ex.zoomSeq || m !== ex.metric) return;
    ex.zoomed = { from: v.from, to: v.to, metricId: m.id, result };
    const inView = result.results.map((r) => r.anomalies.filter((a) => toMs(a.end) >= v.from && toMs(a.start) <= v.to).length);
    if (note) {
      const fitted = body.train_share && body.train_share !== trainShare().train_share;
      note.textContent = t("Zoomed in: band, scores and anomalies re-computed over {from} – {to} ", { from: fmtTime(from), to: fmtTime(to) }) +
        (fitted ? t("(the visible range and the stretch before it, fitted on that stretch)") : t("(the visible range and what precedes it)")) +
        t("; in view: {counts}. The table counts the whole series.", { counts: result.results.map((r, i) => `${r.detector} ${inView[i]}`).join(", ") });
      note.dataset.state = "done";
    }
    redraw();
  }).catch((err) => {
    if (seq !== ex.zoomSeq) return;
    if (note) { note.textContent = t("zoomed detection failed: {error}", { error: err.message }); note.dataset.state = "error"; }
  });
}

async function storeDetection() {
  const box = document.getElementById("store-result");
  const d = ex.detectors[0];
  if (!d) { showError(box, new Error(t("Add a detector first."))); return; }
  try {
    const r = await postJSON("/api/detect/run", {
      metric_ids: [ex.metric.id],
      detector: { name: d.name, params: changedParams(d) },
      // stored detection always calibrates; the threshold applies when the explorer calibrates too
      ...(document.getElementById("calibrate").checked ? { threshold: Number(document.getElementById("threshold").value) } : {}),
      min_points: Number(document.getElementById("min-points").value),
      merge_gap: Number(document.getElementById("merge-gap").value),
    });
    box.replaceChildren(h("div", { class: "ok-box", id: "store-ok" },
      t("Stored anomalies of {detector} for this metric: {n}. ", { n: fmtInt(r.anomalies), detector: r.detector }),
      h("a", { href: "/incidents" }, t("Incidents →"))));
    loadOverlays(ex.loadSeq);   // the stored anomalies changed
  } catch (err) { showError(box, err); }
}

// -- forecast ahead (the forecast API, when installed)
async function drawForecast(seq) {
  let body;
  try { body = await optionalJSON(`/api/forecast/${ex.metric.id}`); } catch (_) {
    if (seq === ex.loadSeq) chartEl.dataset.forecast = "failed";
    return;
  }
  if (seq !== ex.loadSeq) return;
  if (!body) { chartEl.dataset.forecast = "unavailable"; return; }
  const t = (body.t || []).map(toMs);
  const y = body.mean;
  if (!t.length || !Array.isArray(y)) { chartEl.dataset.forecast = "empty"; return; }
  const levels = Object.keys(body.intervals || {}).sort((a, b) => Number(a) - Number(b));
  const iv = levels.length ? body.intervals[levels[0]] : null;
  // the whole view reaches to the forecast's end; a zoomed view stays where it is
  ex.forecast = { t, mean: y, lo: iv && iv.lower, hi: iv && iv.upper, level: levels[0], model: body.model };
  await redraw();
  chartEl.dataset.forecast = "drawn";
}

// -- decomposition
async function decompose() {
  await loadPlotly();
  const st = document.getElementById("decomp-status");
  const box = document.getElementById("decomp-chart");
  st.textContent = t("decomposing…");
  try {
    const d = await getJSON(`/api/decompose/${ex.metric.id}`);
    const parts = [["observed", d.observed], ["trend", d.trend], ["daily", d.daily], ["weekly", d.weekly], ["residual", d.residual]]
      .filter(([, v]) => v);
    const dt = dates(d.t);
    const traces = parts.map(([name, v], i) => ({ x: dt, y: v, type: "scattergl", mode: "lines", name: t(name),
      xaxis: "x", yaxis: `y${i ? i + 1 : ""}`, line: { width: 1 } }));
    const layout = plotLayout({ grid: { rows: parts.length, columns: 1, pattern: "coupled" }, height: 110 * parts.length + 40,
      margin: { l: 60, r: 20, t: 10, b: 30 }, showlegend: false, xaxis: dateAxis({ type: "date" }) });
    parts.forEach(([name], i) => { layout[`yaxis${i ? i + 1 : ""}`] = { title: { text: t(name) } }; });
    box.classList.remove("hidden");
    box.style.height = `${layout.height}px`;
    await Plotly.newPlot(box, traces, layout, { displaylogo: false, responsive: true });
    box.dataset.parts = parts.map(([n]) => n).join(",");
    st.textContent = t("{n} points at {min}-minute steps", { n: fmtInt(d.t.length), min: d.step_seconds / 60 }) +
      (d.weekly ? "" : t(" (weekly needs three weeks of data)")) + (d.daily ? "" : t(" (daily needs three days)"));
  } catch (err) { showError(st, err); }
}

if (ex.metrics.length) {
  document.getElementById("metric-select").addEventListener("change", (e) => {
    // another metric keeps the window when it has data there
    const m = ex.metrics.find((x) => x.id === Number(e.target.value));
    const keep = ex.view && m && ex.view.to > m.first && ex.view.from < m.last ? ex.view : null;
    drawMetric(e.target.value, keep);
  });
  document.getElementById("mode-zoom").addEventListener("click", () => setMode("zoom"));
  document.getElementById("mode-select").addEventListener("click", () => setMode("select"));
  document.getElementById("reset-zoom").addEventListener("click", () => { ex.relative = false; ex.rangeNote = null; setView(null); syncRangeSelect(); });
  for (const [id, key] of [["show-stored", "stored"], ["show-labels", "labels"]]) {
    document.getElementById(id).addEventListener("change", (e) => { ex.show[key] = e.target.checked; redraw(); });
  }
  document.getElementById("scan-window").addEventListener("click", scanSelection);
  document.getElementById("window-group").addEventListener("change", (e) => { e.target.dataset.touched = "1"; });
  document.getElementById("detector-add-btn").addEventListener("click", () => addDetector(document.getElementById("detector-add").value));
  document.getElementById("run-detect").addEventListener("click", runDetect);
  document.getElementById("calibrate").addEventListener("change", (e) => {
    document.getElementById("threshold").value = e.target.checked ? "5" : "8";
  });
  document.getElementById("store-detect").addEventListener("click", storeDetection);
  document.getElementById("decompose-btn").addEventListener("click", decompose);
  const initial = document.getElementById("metric-select").value;
  ex.catalogueReady = loadCatalogue().catch((err) => showError(document.getElementById("detectors"), err));
  drawMetric(initial);
}
