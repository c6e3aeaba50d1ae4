// Window scan: rank the metrics that changed in a window (the explain API when installed, else
// telewatch's built-in ranking), each with a small chart over the same window and its reason.
"use strict";

const sc = { metrics: [], window: null };
window.__tw = sc;
const q = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// an instant for the From/To fields: UTC to the minute, "2024-05-01T10:00Z" (no milliseconds)
function isoMinute(ms) {
  const iso = new Date(ms).toISOString();
  return ms % 60000 === 0 ? iso.slice(0, 16) + "Z" : iso.slice(0, 19) + "Z";
}
function readForm() {
  const from = Date.parse($("scan-from").value), to = Date.parse($("scan-to").value);
  return { from, to, group: $("scan-group").value || null, metric: $("scan-metric").value || null };
}

// "; 3 left out (2 without data in the window, 1 without a baseline)" from the explain answer's counts
function leftOutText(counts) {
  const words = { no_data: "without data in the window", no_baseline: "without enough history before it" };
  const parts = Object.entries(counts || {}).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${t(words[k] || k)}`);
  const total = Object.values(counts || {}).reduce((a, n) => a + n, 0);
  return total ? t("; {n} left out ({parts})", { n: total, parts: parts.join(", ") }) : "";
}

async function rank(form) {
  // the explain service's ranking (baselines, seasonality, lead/lag) when it is installed …
  const qs = new URLSearchParams({ from: toISO(form.from), to: toISO(form.to), limit: "30" });
  if (form.group) qs.set("group", form.group);
  if (form.metric) qs.set("metric", form.metric);
  const explained = await optionalJSON(`/api/explain?${qs}`);
  if (explained) {
    sc.source = "explain";
    sc.leftOut = explained.metrics_left_out || {};
    sc.stepSeconds = explained.step_seconds;
    sc.target = explained.target;
    return explained.ranked.map((r) => ({ ...r, metric: { id: r.metric_id, name: r.metric, labels: {} } }));
  }
  // … else telewatch's simple built-in ranking
  sc.source = "scan";
  sc.leftOut = {};
  const body = { from: toISO(form.from), to: toISO(form.to), group: form.group, limit: 30 };
  const res = await postJSON("/api/scan", body);
  return res.items;
}

async function drawContext(form) {
  const id = form.metric || (sc.metrics[0] && sc.metrics[0].id);
  if (!id) return;
  const width = form.to - form.from;
  const lo = form.from - 6 * width, hi = form.to + 2 * width;
  const step = Math.max(1, Math.ceil((hi - lo) / 60000 / 1500));
  const s = await getJSON(`/api/series/${id}?from=${toISO(lo)}&to=${toISO(hi)}${step > 1 ? `&step=${step}min` : ""}`);
  const el = $("context-chart");
  const [ct, cv] = withGaps(s.t, seriesStep(s), s.v);
  await Plotly.newPlot(el, [{ x: wallDates(ct), y: cv, type: "scattergl", mode: "lines", line: { width: 1 }, connectgaps: false, name: plotText(metricLabel(s.metric)) }], plotLayout({
    margin: { l: 60, r: 20, t: 10, b: 30 }, height: 220, dragmode: "select", showlegend: false,
    xaxis: dateAxis({ type: "date" }), title: { text: "" },
    shapes: [{ type: "rect", xref: "x", yref: "paper", x0: wallISO(form.from), x1: wallISO(form.to), y0: 0, y1: 1,
      fillcolor: "#ffb347", opacity: 0.3, line: { width: 0 } }],
  }), { displaylogo: false, responsive: true });
  $("context-hint").replaceChildren(h("span", { translate: "no" }, metricLabel(s.metric)), ` — ${t("drag across the chart to choose another window.")}`);
  el.removeAllListeners?.("plotly_selected");
  el.on("plotly_selected", (ev) => {
    if (!ev || !ev.range || !ev.range.x) return;
    const [a, b] = ev.range.x.map(plotMs);
    $("scan-from").value = isoMinute(Math.min(a, b));
    $("scan-to").value = isoMinute(Math.max(a, b));
    run();
  });
}

async function smallChart(el, metric, form) {
  const width = form.to - form.from;
  const lo = form.from - 3 * width, hi = form.to + width;
  const step = Math.max(1, Math.ceil((hi - lo) / 60000 / 400));
  const s = await getJSON(`/api/series/${metric.id}?from=${toISO(lo)}&to=${toISO(hi)}${step > 1 ? `&step=${step}min` : ""}`);
  const shape = windowShape(form.from, form.to, seriesStep(s), lo, hi, "#ffb347", 0.3);
  shape.x0 = wallISO(shape.x0.getTime()); shape.x1 = wallISO(shape.x1.getTime());
  const [gt, gv] = withGaps(s.t, seriesStep(s), s.v);
  await Plotly.newPlot(el, [{ x: wallDates(gt), y: gv, type: "scatter", mode: "lines", connectgaps: false, line: { width: 1, color: "#1f77b4" } }], {
    ...SMALL_CHART, showlegend: false, xaxis: dateAxis({ type: "date", tickformat: "%H:%M\n%b %d", nticks: 6, range: [wallISO(lo), wallISO(hi)] }),
    shapes: [shape],
  }, { displayModeBar: false, responsive: true, staticPlot: true });
  el.classList.add("drawn");
  return s;
}

async function run(ev) {
  if (ev) ev.preventDefault();
  const form = readForm();
  const st = $("scan-status"), box = $("ranked");
  if (Number.isNaN(form.from) || Number.isNaN(form.to)) {
    showError(st, new Error(t("Choose a window: drag across a chart, or type From and To (e.g. 2024-05-01T10:00Z)."))); return;
  }
  const q2 = new URLSearchParams({ from: toISO(form.from), to: toISO(form.to) });
  if (form.group) q2.set("group", form.group);
  if (form.metric) q2.set("metric", form.metric);
  history.replaceState(null, "", `/scan?${q2}`);
  st.replaceChildren(h("span", { class: "muted" }, t("ranking…")));
  box.replaceChildren();
  try {
    if (form.metric) drawContext(form).catch(() => {});
    const ranked = await rank(form);
    // the context chart: the chosen metric, else the one ranked first
    if (!form.metric && ranked.length) drawContext({ ...form, metric: ranked[0].metric.id }).catch(() => {});
    st.replaceChildren(h("div", { class: "ok-box", id: "scan-summary" },
      t("{n} metric(s) ranked for {from} – {to}", { n: ranked.length, from: fmtTime(form.from), to: `${fmtTime(form.to)} ${tzName(form.to)}` })
      + (form.group ? t(" in group") + " " : ""), form.group ? h("span", { translate: "no" }, form.group) : "", leftOutText(sc.leftOut)));
    if (!ranked.length) { box.replaceChildren(h("p", { class: "muted" }, t("No metric has data in and before this window."))); return; }
    const cards = ranked.map((r, i) => {
      const chart = h("div", { class: "small-chart" });
      const card = h("div", { class: "item", "data-metric-id": r.metric.id, "data-rank": i + 1 },
        h("div", {}, h("span", { class: "rank" }, `#${i + 1}`),
          h("a", { href: exploreHref(r.metric.id, form.from, form.to), translate: "no" }, metricLabel(r.metric)),
          h("span", { class: "tag", style: "float:right" }, t("score {score}", { score: fmtNum(r.score) }))),
        r.direction ? reasonBox(r, { stepSeconds: sc.stepSeconds, target: sc.target }) : h("div", { class: "reason" }, r.reason), chart);
      smallChart(chart, r.metric, form).then((s) => addSeriesNotes(card.querySelector(".reason"), s, form.from, form.to))
        .catch((err) => showError(chart, err));
      return card;
    });
    box.replaceChildren(...cards);
  } catch (err) { showError(st, err); }
}

async function init() {
  sc.metrics = await getJSON("/api/metrics");
  if (q.get("group")) $("scan-group").value = q.get("group");
  if (q.get("metric")) $("scan-metric").value = q.get("metric");
  $("scan-form").addEventListener("submit", run);
  if (q.get("from") && q.get("to")) {
    const tidy = (text) => { const ms = Date.parse(text); return Number.isNaN(ms) ? text : isoMinute(ms); };
    $("scan-from").value = tidy(q.get("from"));
    $("scan-to").value = tidy(q.get("to"));
    run();
  } else if (sc.metrics.length) {
    const m = sc.metrics.find((x) => String(x.id) === q.get("metric")) || sc.metrics[0];
    const last = Date.parse(m.last);
    $("scan-from").value = isoMinute(last - 3600e3);
    $("scan-to").value = isoMinute(last);
    drawContext({ ...readForm(), metric: m.id }).catch(() => {});
  }
}
init().catch((err) => showError($("scan-status"), err));
