// Metric explorer: the series (resampled server-side to the visible range), its expected band,
// anomalies per detector, the forecast ahead, scores, a decomposition, and window selection.
"use strict";

const TARGET_POINTS = 2500;           // points per visible range; the server resamples to this
const COLORS = ["#d62728", "#9467bd", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2"];
const ex = {
  metrics: JSON.parse(document.getElementById("metrics-data")?.textContent || "[]"),
  metric: null, detectors: [], catalogue: {}, selection: null, fetchSeq: 0, relayoutTimer: null,
  firstPaintMs: null, lastResult: null,
};
window.__tw = ex;  // for tests and the curious

const chartEl = document.getElementById("main-chart");
const scoreEl = document.getElementById("score-chart");
const statusEl = document.getElementById("status");
function status(text) { if (statusEl) statusEl.textContent = text; }

// x values as Date objects: a restyle re-guesses the axis type, and epoch numbers would read as linear
const dates = (t) => t.map((ms) => new Date(ms));

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

function envelopeTraces(series) {
  const on = Array.isArray(series.min);
  return [
    { x: on ? dates(series.t) : [], y: on ? series.min : [], type: "scatter", mode: "lines", line: { width: 0 },
      hoverinfo: "skip", showlegend: false, meta: "env-lo" },
    { x: on ? dates(series.t) : [], y: on ? series.max : [], type: "scatter", mode: "lines", line: { width: 0 },
      fill: "tonexty", fillcolor: "rgba(31,119,180,0.3)", name: "min–max per bucket", hoverinfo: "skip", meta: "env-hi",
      showlegend: on },
  ];
}

function baseLayout() {
  const m = ex.metric;
  return {
    margin: { l: 60, r: 20, t: 10, b: 30 }, height: 420, dragmode: "zoom", hovermode: "x",
    showlegend: true, legend: { orientation: "h", y: 1.08, x: 0 },
    xaxis: { type: "date", range: [toISO(m.first), toISO(m.last)] },
    yaxis: { title: { text: m.unit || "" }, fixedrange: false },
    shapes: [],
  };
}

async function drawMetric(id) {
  ex.metric = ex.metrics.find((m) => m.id === Number(id)) || ex.metrics[0];
  if (!ex.metric) return;
  history.replaceState(null, "", `/explore/${ex.metric.id}`);
  ex.selection = null;
  document.getElementById("window-panel").classList.add("hidden");
  const began = performance.now();
  status("loading…");
  let series;
  try { series = await fetchSeries(null, null); } catch (err) { showError(chartEl, err); return; }
  const trace = {
    x: dates(series.t), y: series.v, type: "scattergl", mode: "lines", name: ex.metric.display,
    line: { width: 1.2, color: "#1f77b4" }, connectgaps: false, meta: "series",
  };
  const layout = baseLayout();
  await Plotly.newPlot(chartEl, [...envelopeTraces(series), trace], layout, { displaylogo: false, responsive: true, scrollZoom: true });
  ex.firstPaintMs = performance.now() - began;
  if (ex.firstPaintAt == null) ex.firstPaintAt = performance.now();  // since navigation start
  chartEl.dataset.points = String(series.t.length);
  chartEl.dataset.step = String(series.step_seconds ?? "raw");
  chartEl.classList.add("drawn");
  status(`${series.t.length.toLocaleString()} points shown` +
    (series.step_seconds ? ` (averaged per ${series.step_seconds / 60} min; zoom in for raw points)` : " (raw)"));
  if (chartEl.removeAllListeners) { chartEl.removeAllListeners("plotly_relayout"); chartEl.removeAllListeners("plotly_selected"); }
  chartEl.on("plotly_relayout", onRelayout);
  chartEl.on("plotly_selected", onSelected);
  Plotly.newPlot(scoreEl, [], {
    margin: { l: 60, r: 20, t: 4, b: 30 }, height: 220, xaxis: { type: "date", range: layout.xaxis.range },
    yaxis: { title: { text: "score" } }, showlegend: true, legend: { orientation: "h" },
  }, { displaylogo: false, responsive: true });
  ex.catalogueReady.then(runDetect);
  drawForecast();
}

// -- zoom and pan: re-read the visible range from the server at a step that fits it
function onRelayout(ev) {
  if (!Object.keys(ev).some((k) => k.startsWith("xaxis.range") || k === "xaxis.autorange")) return;
  clearTimeout(ex.relayoutTimer);
  ex.relayoutTimer = setTimeout(refetchVisible, 120);
  const range = chartEl.layout.xaxis.range;
  Plotly.relayout(scoreEl, { "xaxis.range": range });
}

async function refetchVisible() {
  const range = chartEl.layout.xaxis.range.map((d) => new Date(d).getTime());
  const seq = ++ex.fetchSeq;
  const pad = (range[1] - range[0]) * 0.25;   // a margin so a short pan stays drawn
  const lo = Math.max(ex.metric.first, range[0] - pad), hi = Math.min(ex.metric.last, range[1] + pad);
  if (hi <= lo) return;
  try {
    const series = await fetchSeries(lo, hi);
    if (seq !== ex.fetchSeq) return;   // a newer zoom won
    const at = (meta) => chartEl.data.findIndex((t) => t.meta === meta);
    const env = envelopeTraces(series);
    Plotly.restyle(chartEl, { x: [dates(series.t), env[0].x, env[1].x], y: [series.v, env[0].y, env[1].y], showlegend: [true, false, env[1].showlegend] },
      [at("series"), at("env-lo"), at("env-hi")]);
    chartEl.dataset.points = String(series.t.length);
    chartEl.dataset.step = String(series.step_seconds ?? "raw");
    status(`${series.t.length.toLocaleString()} points shown` +
      (series.step_seconds ? ` (averaged per ${series.step_seconds / 60} min)` : " (raw 1-minute points)"));
  } catch (err) { status("could not load: " + err.message); }
}

// -- window selection → window scan
function setMode(mode) {
  Plotly.relayout(chartEl, { dragmode: mode });
  document.getElementById("mode-zoom").classList.toggle("primary", mode === "zoom");
  document.getElementById("mode-select").classList.toggle("primary", mode === "select");
}
function onSelected(ev) {
  if (!ev || !ev.range || !ev.range.x) return;
  const [a, b] = ev.range.x.map((d) => new Date(d).getTime());
  ex.selection = { from: Math.min(a, b), to: Math.max(a, b) };
  document.getElementById("window-text").textContent = `${fmtTime(ex.selection.from)} – ${fmtTime(ex.selection.to)} UTC`;
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
    sel.append(h("option", { value: d.name, title: d.doc }, d.name));
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
    const params = Object.entries(spec.params).map(([k, v]) => h("label", { class: "field" }, k,
      h("input", { type: "text", value: v == null ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)), "data-param": k,
        oninput: (e) => { spec.params[k] = parseParam(e.target.value); spec.changed.add(k); } })));
    return h("div", { class: "det", "data-detector": spec.name },
      h("b", { style: `color:${COLORS[i % COLORS.length]}` }, spec.name), " ",
      h("span", { class: "muted" }, ex.catalogue[spec.name]?.doc || ""), " ",
      h("button", { type: "button", onclick: () => { ex.detectors.splice(i, 1); renderDetectors(); } }, "remove"),
      h("div", { class: "params" }, params));
  }));
}
// only what the user changed is sent: the defaults stay the detector's own
const changedParams = (d) => Object.fromEntries([...d.changed].map((k) => [k, d.params[k]]).filter(([, v]) => v !== null));
function parseParam(text) {
  const t = text.trim();
  if (t === "") return null;
  if (t === "true" || t === "false") return t === "true";
  if (!Number.isNaN(Number(t))) return Number(t);
  try { return JSON.parse(t); } catch (_) { return t; }
}

function trainShare() {
  const pct = Number(document.getElementById("train-share").value);
  return pct > 0 && pct < 100 ? { train_share: pct / 100 } : {};
}

async function runDetect() {
  const summary = document.getElementById("detect-summary");
  if (!ex.detectors.length) { summary.replaceChildren(h("span", { class: "muted" }, "Add a detector to see anomalies.")); return; }
  const btn = document.getElementById("run-detect");
  btn.disabled = true;
  summary.replaceChildren(h("span", { class: "muted" }, "running…"));
  const body = {
    metric: String(ex.metric.id),
    detectors: ex.detectors.map((d) => ({ name: d.name, params: changedParams(d) })),
    threshold: Number(document.getElementById("threshold").value),
    calibrate: document.getElementById("calibrate").checked,
    ...trainShare(),
    min_points: Number(document.getElementById("min-points").value),
    merge_gap: Number(document.getElementById("merge-gap").value),
    max_points: 3000,
  };
  const w = ex.detectors.find((d) => d.name === "robust_bands")?.params.window;
  if (Number.isInteger(w) && w >= 2) body.band_window = w;
  try {
    const result = await postJSON("/api/detect", body);
    ex.lastResult = result;
    drawDetection(result);
    summary.replaceChildren(h("table", { class: "grid", id: "detect-table" },
      h("thead", {}, h("tr", {}, ["Detector", "Anomalies", "Time", "Note"].map((t) => h("th", {}, t)))),
      h("tbody", {}, result.results.map((r, i) => h("tr", { "data-detector": r.detector },
        h("td", {}, h("b", { style: `color:${COLORS[i % COLORS.length]}` }, r.detector)),
        h("td", { class: "num anomaly-count" }, String(r.anomalies.length)),
        h("td", { class: "num" }, `${(r.seconds * 1000).toFixed(0)} ms`),
        h("td", {}, r.error ? h("span", { class: "error-box" }, r.error) : ""))))));
  } catch (err) { showError(summary, err); } finally { btn.disabled = false; }
}

function drawDetection(result) {
  const keep = chartEl.data.filter((t) => ["env-lo", "env-hi", "series", "forecast"].includes(t.meta));
  const traces = [];
  if (result.band) {
    const bt = dates(result.band.t);
    traces.push({ x: bt, y: result.band.lower, type: "scatter", mode: "lines", line: { width: 0 },
      hoverinfo: "skip", showlegend: false, meta: "band-lo" });
    traces.push({ x: bt, y: result.band.upper, type: "scatter", mode: "lines", line: { width: 0 },
      fill: "tonexty", fillcolor: "rgba(31,119,180,0.13)", name: "expected band", hoverinfo: "skip", meta: "band-hi" });
  }
  const shapes = [];
  result.results.forEach((r, i) => {
    const color = COLORS[i % COLORS.length];
    traces.push({ x: r.anomalies.map((a) => a.peak), y: r.anomalies.map((a) => a.value), type: "scatter", mode: "markers",
      marker: { color, size: 8, symbol: "circle-open", line: { width: 2 } }, name: `${r.detector} anomalies (${r.anomalies.length})`,
      text: r.anomalies.map((a) => `${r.detector}: score ${a.peak_score.toFixed(1)}`), meta: "anomalies" });
    for (const a of r.anomalies) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: a.start, x1: a.end, y0: 0, y1: 1,
        fillcolor: color, opacity: 0.15, line: { width: 0 }, layer: "below" });
    }
  });
  const layout = baseLayout();
  layout.xaxis.range = chartEl.layout.xaxis.range;
  layout.dragmode = chartEl.layout.dragmode;
  layout.shapes = shapes;
  Plotly.react(chartEl, [...traces, ...keep], layout);
  chartEl.dataset.anomalies = String(result.results.reduce((n, r) => n + r.anomalies.length, 0));
  const scoreTraces = result.results.map((r, i) => ({ x: dates(r.scores.t), y: r.scores.v, type: "scattergl", mode: "lines",
    line: { width: 1, color: COLORS[i % COLORS.length] }, name: r.detector }));
  scoreTraces.push({ x: dates([result.series.t[0], result.series.t[result.series.t.length - 1]]), y: [result.threshold, result.threshold],
    type: "scatter", mode: "lines", line: { dash: "dash", color: "#555", width: 1 }, name: "threshold" });
  Plotly.react(scoreEl, scoreTraces, { ...scoreEl.layout, xaxis: { ...scoreEl.layout.xaxis, range: chartEl.layout.xaxis.range } });
}

async function storeDetection() {
  const box = document.getElementById("store-result");
  const d = ex.detectors[0];
  if (!d) { showError(box, new Error("Add a detector first.")); return; }
  try {
    const r = await postJSON("/api/detect/run", {
      metric_ids: [ex.metric.id],
      detector: { name: d.name, params: changedParams(d) },
      // stored detection always calibrates; the threshold applies when the explorer calibrates too
      ...(document.getElementById("calibrate").checked ? { threshold: Number(document.getElementById("threshold").value) } : {}),
      min_points: Number(document.getElementById("min-points").value),
      merge_gap: Number(document.getElementById("merge-gap").value),
    });
    box.replaceChildren(h("div", { class: "ok-box", id: "store-ok" }, `Stored ${r.anomalies} anomalies of ${r.detector} for this metric. `,
      h("a", { href: "/incidents" }, "Incidents →")));
  } catch (err) { showError(box, err); }
}

// -- forecast ahead (the forecast API, when installed)
async function drawForecast() {
  let body;
  try { body = await optionalJSON(`/api/forecast/${ex.metric.id}`); } catch (_) { return; }
  if (!body) { chartEl.dataset.forecast = "unavailable"; return; }
  const t = dates(body.t || []);
  const y = body.mean;
  if (!Array.isArray(t) || !Array.isArray(y) || !t.length) return;
  const levels = Object.keys(body.intervals || {}).sort((a, b) => Number(a) - Number(b));
  const iv = levels.length ? body.intervals[levels[0]] : null;
  const lo = iv && iv.lower, hi = iv && iv.upper;
  const traces = [];
  if (lo && hi && lo.some((v) => v != null)) {
    traces.push({ x: t, y: lo, type: "scatter", mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip", meta: "forecast" });
    traces.push({ x: t, y: hi, type: "scatter", mode: "lines", line: { width: 0 }, fill: "tonexty",
      fillcolor: "rgba(44,160,44,0.15)", name: `forecast ${levels[0]}% interval`, meta: "forecast" });
  }
  traces.push({ x: t, y, type: "scatter", mode: "lines", line: { dash: "dot", color: "#2ca02c" }, name: `forecast (${body.model})`, meta: "forecast" });
  Plotly.addTraces(chartEl, traces);
  const end = t[t.length - 1].getTime();
  // show the forecast ahead, unless the user has zoomed elsewhere meanwhile
  const shownEnd = new Date(chartEl.layout.xaxis.range[1]).getTime();
  if (end > ex.metric.last && Math.abs(shownEnd - ex.metric.last) < 60e3) {
    Plotly.relayout(chartEl, { "xaxis.type": "date", "xaxis.range": [toISO(new Date(chartEl.layout.xaxis.range[0]).getTime()), toISO(end)] });
  }
  chartEl.dataset.forecast = "drawn";
}

// -- decomposition
async function decompose() {
  const st = document.getElementById("decomp-status");
  const box = document.getElementById("decomp-chart");
  st.textContent = "decomposing…";
  try {
    const d = await getJSON(`/api/decompose/${ex.metric.id}`);
    const parts = [["observed", d.observed], ["trend", d.trend], ["daily", d.daily], ["weekly", d.weekly], ["residual", d.residual]]
      .filter(([, v]) => v);
    const dt = dates(d.t);
    const traces = parts.map(([name, v], i) => ({ x: dt, y: v, type: "scattergl", mode: "lines", name,
      xaxis: "x", yaxis: `y${i ? i + 1 : ""}`, line: { width: 1 } }));
    const layout = { grid: { rows: parts.length, columns: 1, pattern: "coupled" }, height: 110 * parts.length + 40,
      margin: { l: 60, r: 20, t: 10, b: 30 }, showlegend: false };
    parts.forEach(([name], i) => { layout[`yaxis${i ? i + 1 : ""}`] = { title: { text: name } }; });
    box.classList.remove("hidden");
    box.style.height = `${layout.height}px`;
    await Plotly.newPlot(box, traces, layout, { displaylogo: false, responsive: true });
    box.dataset.parts = parts.map(([n]) => n).join(",");
    st.textContent = `${d.t.length} points at ${d.step_seconds / 60}-minute steps` +
      (d.weekly ? "" : " (weekly needs three weeks of data)") + (d.daily ? "" : " (daily needs three days)");
  } catch (err) { showError(st, err); }
}

if (ex.metrics.length) {
  document.getElementById("metric-select").addEventListener("change", (e) => drawMetric(e.target.value));
  document.getElementById("mode-zoom").addEventListener("click", () => setMode("zoom"));
  document.getElementById("mode-select").addEventListener("click", () => setMode("select"));
  document.getElementById("reset-zoom").addEventListener("click", () => {
    Plotly.relayout(chartEl, { "xaxis.range": [toISO(ex.metric.first), toISO(ex.metric.last)] });
  });
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
