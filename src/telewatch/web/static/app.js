// Draws one chart per metric on the overview page. Data: /api/series, /api/anomalies, /api/labels.
"use strict";

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) {
    const body = await response.json().catch(() => ({ detail: response.statusText }));
    throw new Error(body.detail || response.statusText);
  }
  return response.json();
}

function shapesFor(windows, color, opacity) {
  return windows.map((w) => ({
    type: "rect", xref: "x", yref: "paper", x0: w.start, x1: w.end, y0: 0, y1: 1,
    fillcolor: color, opacity: opacity, line: { width: 0 }, layer: "below",
  }));
}

async function drawMetric(section) {
  const id = section.dataset.metricId;
  const el = document.getElementById("chart-" + id);
  try {
    const [series, anomalies, labels] = await Promise.all([
      getJSON(`/api/series/${id}?step=5min`),
      getJSON(`/api/anomalies?metric=${id}&limit=1000`),
      getJSON(`/api/labels?metric=${id}`),
    ]);
    el.textContent = "";
    const trace = {
      x: series.t.map((ms) => new Date(ms)), y: series.v, type: "scattergl", mode: "lines",
      line: { width: 1, color: "#1f77b4" }, name: series.metric.name, connectgaps: false,
    };
    const peaks = {
      x: anomalies.map((a) => a.peak), y: anomalies.map((a) => a.value), type: "scatter", mode: "markers",
      marker: { color: "#d62728", size: 6 }, name: "anomaly",
      text: anomalies.map((a) => `score ${a.peak_score.toFixed(1)} (${a.detector})`),
    };
    const layout = {
      margin: { l: 50, r: 10, t: 6, b: 24 }, showlegend: false, height: 190,
      xaxis: { type: "date" }, yaxis: { title: { text: series.metric.unit || "" } },
      shapes: shapesFor(labels, "#ffb347", 0.35).concat(shapesFor(anomalies, "#d62728", 0.18)),
    };
    Plotly.newPlot(el, [trace, peaks], layout, { displaylogo: false, responsive: true });
    el.dataset.points = String(series.t.length);
    el.classList.add("drawn");
  } catch (err) {
    el.textContent = "could not load: " + err.message;
    el.classList.add("failed");
  }
}

document.querySelectorAll("section.metric").forEach((section) => { drawMetric(section); });
