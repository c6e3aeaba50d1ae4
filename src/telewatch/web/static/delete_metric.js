// The explorer's «Delete metric» (admin sign-ins; data-write keeps it disabled for read ones): a
// confirmation naming the metric and what goes with it, DELETE /api/metrics/{id}, then the overview,
// which says what was deleted (the notice travels in sessionStorage, read by common.js).
"use strict";

async function deleteMetric() {
  const ex = window.__tw;
  const id = Number(document.getElementById("metric-select").value);
  const m = ex.metrics.find((x) => x.id === id);
  if (!m) return;
  const loaded = ex.metric && ex.metric.id === id;  // the counts shown are those of the metric on screen
  const question = t("Delete the metric {metric} for good? With it go its {points} points, its scores, its {anomalies} stored anomalies and {labels} labelled windows; incidents lose it as a member. This cannot be undone.", {
    metric: metricLabel(m),
    points: fmtNum(m.points ?? 0),
    anomalies: loaded ? fmtNum(ex.stored.length) : "—",
    labels: loaded ? fmtNum(ex.labels.length) : "—",
  });
  if (!window.confirm(question)) return;
  const out = document.getElementById("delete-result");
  try {
    const done = await api(`/api/metrics/${id}`, { method: "DELETE" });
    const rows = done.deleted || {};
    sessionStorage.setItem("tw_notice", t("Deleted the metric {metric}: {points} points, {anomalies} anomalies, {labels} labelled windows.", {
      metric: metricLabel(m), points: fmtNum(rows.points ?? 0), anomalies: fmtNum(rows.anomalies ?? 0),
      labels: fmtNum(rows.label_windows ?? 0),
    }));
    location.assign("/");
  } catch (err) { showError(out, err); }
}

document.getElementById("delete-metric")?.addEventListener("click", deleteMetric);
