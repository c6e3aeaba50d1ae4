// Incidents list (the incidents API, when installed) and stored anomalies with feedback buttons.
"use strict";

async function drawIncidents() {
  const box = document.getElementById("incident-list");
  const state = document.getElementById("state-filter").value;
  const q = new URLSearchParams({ limit: "200" });
  if (state) q.set("state", state);
  // the time picker: incidents active in the range (any overlap)
  const range = currentRange();
  if (range.from != null) q.set("since", toISO(range.from));
  if (range.to != null) q.set("until", toISO(range.to));
  try {
    const body = await optionalJSON(`/api/incidents?${q}`);
    if (body === null) { showUnavailable(box, "Incident tracking"); return; }
    const list = items(body);
    document.getElementById("incident-count").textContent = t("{n} incident(s)", { n: fmtInt(body.total ?? list.length) });
    markRefreshed();
    if (!list.length) {
      box.replaceChildren(h("span", { class: "muted", id: "no-incidents" },
        state || range.from != null ? t("No incidents match this state and time range.") : t("No incidents.")));
      return;
    }
    // whose incident it is, once any is a monitor's (each monitor's anomalies make their own incidents)
    const byMonitor = list.some((inc) => inc.monitor);
    const heads = ["Id", "Title", ...(byMonitor ? ["Monitor"] : []), "Type", "State", "Start", "Last activity", "Peak score", "Metrics"];
    box.replaceChildren(h("table", { class: "grid", id: "incidents-table" },
      h("thead", {}, h("tr", {}, heads.map((x) => h("th", {}, t(x))))),
      h("tbody", {}, list.map((inc) => h("tr", { class: "incident-row", "data-incident-id": inc.id },
        h("td", {}, h("a", { href: `/incidents/${inc.id}` }, `#${inc.id}`)),
        h("td", {}, h("a", { href: `/incidents/${inc.id}` }, titleEl(pick(inc, "title", "summary")))),
        ...(byMonitor ? [h("td", { class: "incident-monitor" }, inc.monitor || "—")] : []),
        h("td", {}, pick(inc, "type_title", "type") ? t(pick(inc, "type_title", "type")) : "—"),
        h("td", {}, stateBadge(pick(inc, "state", "status"))),
        h("td", {}, timeEl(pick(inc, "start", "start_ts", "started_at"))),
        h("td", {}, timeEl(pick(inc, "end", "end_ts", "ended_at"))),
        h("td", { class: "num" }, fmtNum(pick(inc, "peak_score", "score"))),
        h("td", { class: "num" }, String(Array.isArray(inc.metrics) ? inc.metrics.length : (inc.metrics ?? ""))))))));
  } catch (err) { showError(box, err); }
}

const PAGE = 25;
let anomalyOffset = 0;
async function drawAnomalies() {
  const box = document.getElementById("anomaly-list");
  try {
    // one more than a page tells whether there is a next page
    const list = await getJSON(`/api/anomalies?limit=${PAGE + 1}&offset=${anomalyOffset}`);
    if (!list.length && !anomalyOffset) { box.replaceChildren(h("span", { class: "muted" }, t("No stored anomalies (run telewatch detect, or a monitor)."))); return; }
    const more = list.length > PAGE;
    const verdicts = await anomalyVerdicts(list.slice(0, PAGE).map((a) => a.id));
    const nav = h("div", { class: "toolbar" },
      h("button", { type: "button", disabled: anomalyOffset === 0, onclick: () => { anomalyOffset = Math.max(0, anomalyOffset - PAGE); drawAnomalies(); } }, t("← newer")),
      h("span", { class: "muted" }, `${anomalyOffset + 1}–${anomalyOffset + Math.min(list.length, PAGE)}`),
      h("button", { type: "button", disabled: !more, onclick: () => { anomalyOffset += PAGE; drawAnomalies(); } }, t("older →")));
    box.replaceChildren(h("table", { class: "grid", id: "anomalies-table" },
      h("thead", {}, h("tr", {}, ["Metric", "Detector", "Start", "End", "Peak score", "Feedback"].map((x) => h("th", {}, t(x))))),
      h("tbody", {}, list.slice(0, PAGE).map((a) => h("tr", { class: "anomaly-row", "data-anomaly-id": a.id },
        h("td", { translate: "no" }, h("a", { href: exploreHref(a.metric_id, a.start, a.end) }, a.metric)),
        h("td", { translate: "no" }, a.detector), h("td", {}, timeEl(a.start)), h("td", {}, timeEl(a.end)),
        h("td", { class: "num" }, fmtNum(a.peak_score)),
        h("td", {}, feedbackButtons({ anomaly_id: a.id }, null, verdicts.get(a.id))))))), nav);
  } catch (err) { showError(box, err); }
}

document.getElementById("state-filter").addEventListener("change", drawIncidents);
document.getElementById("group-incidents").addEventListener("click", async (ev) => {
  const button = ev.currentTarget, result = document.getElementById("group-result");
  button.disabled = true;
  result.replaceChildren(h("span", { class: "muted" }, t("grouping…")));
  try {
    const r = await optionalJSON("/api/incidents/update", { method: "POST" });
    if (r === null) { result.replaceChildren(); showUnavailable(document.getElementById("incident-list"), "Incident tracking"); }
    else {
      // the outcome stays next to the button (the list's own count is redrawn below)
      result.replaceChildren(h("span", { class: "ok-inline", id: "group-outcome" },
        t("Grouped at {time}: {created} new, {updated} updated", { time: fmtTime(Date.now()), created: r.created.length, updated: r.updated.length })
        + `${(r.merged || []).length ? t(", {n} merged", { n: r.merged.length }) : ""}`
        + t(" ({open} open, {resolved} resolved)", { open: r.open, resolved: r.resolved })));
      await drawIncidents();
    }
  } catch (err) { result.replaceChildren(); showError(document.getElementById("incident-list"), err); } finally { button.disabled = false; }
});
window.onTimeRange = () => drawIncidents();
window.onRefresh = () => { drawIncidents(); drawAnomalies(); };
drawIncidents();
drawAnomalies();
