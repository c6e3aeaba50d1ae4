// Plotly on the side: loaded when a page first needs it (its download can start early with
// <link rel="preload">), and a light preview of a series to show meanwhile.
"use strict";

// Plotly (4.8 MB) loads on the side: the page paints at once, the series is fetched meanwhile and shown
// as a light SVG preview, and the interactive chart replaces it once Plotly is there. Running Plotly
// takes the main thread for a second or more, so it starts only after the preview is drawn.
let plotlyLoading = null;
function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = "/static/plotly.min.js";
      tag.async = true;
      tag.onload = () => resolve(window.Plotly);
      tag.onerror = () => reject(new Error(t("could not load the chart library")));
      document.head.append(tag);
    });
  }
  return plotlyLoading;
}
// (its download starts at once: <link rel="preload"> in explore.html; it runs after the first preview)

// The series as an SVG line in a chart's box (its range and time span labelled) while Plotly loads;
// the chart's first Plotly draw removes it (.preview). True when drawn.
function drawSeriesPreview(chartEl, series) {
  const w = chartEl.clientWidth || 1200, hgt = 420, t0 = series.t[0], t1 = series.t[series.t.length - 1];
  const vals = series.v.filter((v) => v != null && Number.isFinite(v));
  if (!vals.length || !(t1 > t0)) return false;
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = { l: 60, r: 20, t: 30, b: 30 };
  const x = (ms) => pad.l + (ms - t0) / (t1 - t0) * (w - pad.l - pad.r);
  const y = (v) => pad.t + (hi - v) / (hi - lo) * (hgt - pad.t - pad.b);
  let d = "", pen = false;
  series.t.forEach((ms, i) => {
    const v = series.v[i];
    if (v == null || !Number.isFinite(v)) { pen = false; return; }
    d += `${pen ? "L" : "M"}${x(ms).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "preview");
  svg.setAttribute("width", w); svg.setAttribute("height", hgt);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "#1f77b4"); path.setAttribute("stroke-width", "1.2");
  svg.append(path);
  for (const [text, tx, ty, anchor] of [[fmtNum(hi), pad.l - 6, pad.t + 4, "end"], [fmtNum(lo), pad.l - 6, hgt - pad.b, "end"],
    [fmtTime(t0), pad.l, hgt - 8, "start"], [fmtTime(t1), w - pad.r, hgt - 8, "end"]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", tx); label.setAttribute("y", ty); label.setAttribute("text-anchor", anchor);
    label.setAttribute("font-size", "12"); label.setAttribute("fill", "#6b7785");
    label.textContent = text;
    svg.append(label);
  }
  chartEl.querySelectorAll(".preview, .chart-wait").forEach((el) => el.remove());
  chartEl.append(svg);
  return true;
}

