// Incident detail: timeline, metrics involved (with charts), type, alerts sent and their delivery,
// feedback buttons and notes.
"use strict";

const root = document.getElementById("incident");
const incidentId = Number(root.dataset.incidentId);
window.__tw = { incidentId };

async function metricChart(el, metricId, start, end) {
  const width = Math.max(end - start, 10 * 60e3);
  const lo = start - 3 * width, hi = end + width;
  const step = Math.max(1, Math.ceil((hi - lo) / 60000 / 500));
  const s = await getJSON(`/api/series/${metricId}?from=${toISO(lo)}&to=${toISO(hi)}${step > 1 ? `&step=${step}min` : ""}`);
  // drawn on the chosen zone's wall clock; a gap of more than two steps breaks the line
  const every = seriesStep(s), x = [], y = [];
  s.t.forEach((ms, i) => {
    if (i && ms - s.t[i - 1] > 2 * every) { x.push(wallISO(ms - every)); y.push(null); }
    x.push(wallISO(ms)); y.push(s.v[i]);
  });
  const shape = windowShape(start, end, every, lo, hi, "#d62728", 0.2);
  shape.x0 = wallISO(shape.x0.getTime()); shape.x1 = wallISO(shape.x1.getTime());
  await Plotly.newPlot(el, [{ x, y, type: "scatter", mode: "lines", line: { width: 1 }, connectgaps: false }], {
    ...SMALL_CHART, showlegend: false, xaxis: dateAxis({ type: "date", tickformat: "%H:%M\n%b %d", nticks: 6, range: [wallISO(lo), wallISO(hi)] }),
    shapes: [shape],
  }, { displayModeBar: false, responsive: true, staticPlot: true });
  el.classList.add("drawn");
  return s;
}

async function alertsFor(id) {
  // the alerting API's notification history, when installed
  for (const url of [`/api/incident-alerts?incident=${id}`]) {
    try {
      const body = await optionalJSON(url);
      if (body !== null) return items(body);
    } catch (_) { /* try the next */ }
  }
  return null;
}

async function draw() {
  let d;
  try { d = await optionalJSON(`/api/incidents/${incidentId}`); } catch (err) { showError(root, err); return; }
  if (d === null) { showUnavailable(root, "Incident tracking"); return; }
  const inc = d.incident || d;
  const metrics = Array.isArray(d.ranked_metrics) ? d.ranked_metrics : (Array.isArray(d.metrics) ? d.metrics : []);
  const start = Date.parse(pick(inc, "start", "start_ts")), end = Date.parse(pick(inc, "end", "end_ts"));
  const metricIds = metrics.map((m) => pick(m, "metric_id", "id")).filter((x) => x != null);
  const [feedback, notes, alerts] = await Promise.all([
    getJSON(`/api/feedback?incident=${incidentId}`).catch(() => ({ items: [] })),
    getJSON(`/api/incident-notes?incident=${incidentId}`).catch(() => []),
    alertsFor(incidentId),
  ]);

  const verdict = items(feedback)[0];  // newest first
  const head = h("section", { class: "card" },
    h("h2", { class: "page", id: "incident-title" }, `#${inc.id} `, titleEl(inc.title), " ", stateBadge(pick(inc, "state", "status"))),
    h("dl", { class: "kv" },
      h("dt", {}, t("Type")), h("dd", { id: "incident-type" }, pick(inc, "type_title", "type") ? t(pick(inc, "type_title", "type")) : t("unclassified")),
      // whose metrics: each monitor's anomalies make their own incidents (none: an upload's, `detect`'s)
      ...(inc.monitor ? [h("dt", {}, t("Monitor")), h("dd", { id: "incident-monitor" }, inc.monitor)] : []),
      h("dt", {}, t("Window")), h("dd", {}, timeEl(start), " – ", timeEl(end), " ", h("span", { class: "muted" }, tzName(start))),
      h("dt", {}, t("Peak")), h("dd", {}, timeEl(pick(inc, "peak", "peak_ts")), ", ", t("score {score}", { score: fmtNum(inc.peak_score) })),
      h("dt", {}, t("Metrics involved")), h("dd", {}, String(metrics.length))),
    inc.state === "open" ? h("button", { type: "button", id: "resolve", "data-write": true, style: "float:right", onclick: async () => {
      try { await postJSON(`/api/incidents/${incidentId}/resolve`, {}); draw(); } catch (err) { showError(root, err); }
    } }, t("Resolve")) : "",
    h("div", { style: "margin-top:10px" }, h("b", {}, t("Your verdict: ")),
      feedbackButtons({ incident_id: incidentId, metric_ids: metricIds, start: toISO(start), end: toISO(end) }, () => draw(), verdict),
      verdict ? h("span", { id: "verdict", class: "tag", style: "margin-left:12px;font-size:13px" },
        t("current verdict: {verdict} ({time})", { verdict: verdictText(verdict.kind), time: fmtTime(verdict.created_at) })) : ""));

  const events = [
    [start, t("started")], [Date.parse(pick(inc, "peak", "peak_ts")), t("peak (score {score})", { score: fmtNum(inc.peak_score) })],
    ...(alerts || []).map((a) => [asDate(pick(a, "created_at", "sent_at", "at"))?.getTime() ?? NaN,
      t("alert {kind} to {channel}: {status}", { kind: t(pick(a, "kind") || ""), channel: pick(a, "channel") || "?", status: t(pick(a, "status") || "") })]),
    ...items(feedback).map((f) => [asDate(f.created_at)?.getTime() ?? NaN, t("feedback: {verdict}", { verdict: verdictText(f.kind) }) + (f.note ? ` — ${f.note}` : "")]),
    ...notes.map((n) => [asDate(n.created_at)?.getTime() ?? NaN, (n.author ? t("note by {author}", { author: n.author }) : t("note")) + `: ${n.text}`]),
  ];
  if (pick(inc, "resolved_at")) events.push([asDate(inc.resolved_at).getTime(), t("resolved")]);
  else if ((pick(inc, "state", "status")) === "resolved") events.push([end, t("resolved")]);
  events.sort((a, b) => a[0] - b[0]);
  const timeline = h("section", { class: "card" }, h("h3", {}, t("Timeline")),
    h("ul", { class: "timeline", id: "timeline" }, events.filter(([when]) => !Number.isNaN(when)).map(([when, text]) => h("li", {}, h("b", {}, timeEl(when)), " ", text))));

  const involved = h("section", { class: "card" }, h("h3", {}, t("Metrics involved")),
    metrics.length ? h("div", { class: "ranked", id: "incident-metrics" }, metrics.map((m, i) => {
      const chart = h("div", { class: "small-chart" });
      const id = pick(m, "metric_id", "id");
      const why = m.direction ? reasonBox(m, {})
        : h("div", { class: "reason" }, m.reason || "");
      if (id != null && !Number.isNaN(start)) {
        metricChart(chart, id, start, end).then((s) => addSeriesNotes(why, s, start, end)).catch((err) => showError(chart, err));
      }
      return h("div", { class: "item", "data-metric-id": id },
        h("div", {}, h("span", { class: "rank" }, `#${pick(m, "rank") ?? i + 1}`), h("a", { href: exploreHref(id, start, end), translate: "no" }, pick(m, "metric", "name") || `metric ${id}`),
          " ", m.direction ? h("span", { class: "tag" }, t(m.direction)) : "", m.anomalous ? h("span", { class: "tag" }, t("anomalous")) : ""),
        why, chart);
    })) : h("p", { class: "muted" }, t("No metrics recorded.")));

  const alertBox = h("section", { class: "card" }, h("h3", {}, t("Alerts sent")));
  if (alerts === null) alertBox.append(h("div", { class: "notice unavailable", "data-unavailable": "Alert history" }, t("Alert history is not available on this server (its API is not installed).")));
  else if (!alerts.length) alertBox.append(h("p", { class: "muted" }, t("No alerts were sent for this incident.")));
  else alertBox.append(h("table", { class: "grid", id: "incident-alerts" },
    h("thead", {}, h("tr", {}, ["When", "Channel", "Kind", "Status", "Attempts", "Error"].map((x) => h("th", {}, t(x))))),
    h("tbody", {}, alerts.map((a) => h("tr", {}, h("td", {}, timeEl(pick(a, "sent_at", "created_at"))), h("td", { translate: "no" }, pick(a, "channel") || ""),
      h("td", {}, t(pick(a, "kind") || "")), h("td", {}, stateBadge(pick(a, "status"))), h("td", { class: "num" }, String(pick(a, "attempts") ?? "")),
      h("td", {}, pick(a, "last_error", "error") || ""))))));

  const noteText = h("textarea", { id: "note-text", rows: 2, cols: 60, placeholder: t("What did you find?") });
  const noteBox = h("section", { class: "card" }, h("h3", {}, t("Notes")),
    notes.length ? h("ul", { id: "notes" }, notes.map((n) => h("li", {}, h("b", {}, timeEl(n.created_at)), ` ${n.author ? n.author + ": " : ""}${n.text}`)))
      : h("p", { class: "muted" }, t("No notes yet.")),
    h("div", { class: "row" }, noteText, h("button", { type: "button", id: "add-note", "data-write": true, onclick: async () => {
      try { await postJSON("/api/incident-notes", { incident_id: incidentId, text: noteText.value }); draw(); }
      catch (err) { noteBox.append(h("div", { class: "error-box" }, err.message)); }
    } }, t("Add note"))));

  root.replaceChildren(head, timeline, involved, alertBox, noteBox);
}
draw();
