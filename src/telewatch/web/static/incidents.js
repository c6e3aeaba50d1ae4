// Incidents list (the incidents API, when installed) and stored anomalies with feedback buttons.
"use strict";

async function drawIncidents() {
  const box = document.getElementById("incident-list");
  const state = document.getElementById("state-filter").value;
  const qs = state ? `?state=${state}&limit=200` : "?limit=200";
  try {
    const body = await optionalJSON(`/api/incidents${qs}`);
    if (body === null) { showUnavailable(box, "Incident tracking"); return; }
    const list = items(body);
    document.getElementById("incident-count").textContent = `${body.total ?? list.length} incident(s)`;
    if (!list.length) { box.replaceChildren(h("span", { class: "muted" }, "No incidents.")); return; }
    box.replaceChildren(h("table", { class: "grid", id: "incidents-table" },
      h("thead", {}, h("tr", {}, ["Id", "Title", "Type", "State", "Start (UTC)", "End (UTC)", "Peak score", "Metrics"].map((t) => h("th", {}, t)))),
      h("tbody", {}, list.map((inc) => h("tr", { class: "incident-row", "data-incident-id": inc.id },
        h("td", {}, h("a", { href: `/incidents/${inc.id}` }, `#${inc.id}`)),
        h("td", {}, h("a", { href: `/incidents/${inc.id}` }, pick(inc, "title", "summary") || "incident")),
        h("td", {}, pick(inc, "type_title", "type") || "—"),
        h("td", {}, stateBadge(pick(inc, "state", "status"))),
        h("td", {}, fmtTime(pick(inc, "start", "start_ts", "started_at"))),
        h("td", {}, fmtTime(pick(inc, "end", "end_ts", "ended_at"))),
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
    if (!list.length && !anomalyOffset) { box.replaceChildren(h("span", { class: "muted" }, "No stored anomalies (run telewatch detect, or a monitor).")); return; }
    const more = list.length > PAGE;
    const verdicts = await anomalyVerdicts(list.slice(0, PAGE).map((a) => a.id));
    const nav = h("div", { class: "toolbar" },
      h("button", { type: "button", disabled: anomalyOffset === 0, onclick: () => { anomalyOffset = Math.max(0, anomalyOffset - PAGE); drawAnomalies(); } }, "← newer"),
      h("span", { class: "muted" }, `${anomalyOffset + 1}–${anomalyOffset + Math.min(list.length, PAGE)}`),
      h("button", { type: "button", disabled: !more, onclick: () => { anomalyOffset += PAGE; drawAnomalies(); } }, "older →"));
    box.replaceChildren(h("table", { class: "grid", id: "anomalies-table" },
      h("thead", {}, h("tr", {}, ["Metric", "Detector", "Start (UTC)", "End (UTC)", "Peak score", "Feedback"].map((t) => h("th", {}, t)))),
      h("tbody", {}, list.slice(0, PAGE).map((a) => h("tr", { class: "anomaly-row", "data-anomaly-id": a.id },
        h("td", {}, h("a", { href: exploreHref(a.metric_id, a.start, a.end) }, a.metric)),
        h("td", {}, a.detector), h("td", {}, fmtTime(a.start)), h("td", {}, fmtTime(a.end)),
        h("td", { class: "num" }, fmtNum(a.peak_score)),
        h("td", {}, feedbackButtons({ anomaly_id: a.id }, null, verdicts.get(a.id))))))), nav);
  } catch (err) { showError(box, err); }
}

document.getElementById("state-filter").addEventListener("change", drawIncidents);
document.getElementById("group-incidents").addEventListener("click", async (ev) => {
  const button = ev.currentTarget, result = document.getElementById("group-result");
  button.disabled = true;
  result.replaceChildren(h("span", { class: "muted" }, "grouping…"));
  try {
    const r = await optionalJSON("/api/incidents/update", { method: "POST" });
    if (r === null) { result.replaceChildren(); showUnavailable(document.getElementById("incident-list"), "Incident tracking"); }
    else {
      // the outcome stays next to the button (the list's own count is redrawn below)
      result.replaceChildren(h("span", { class: "ok-inline", id: "group-outcome" },
        `Grouped at ${fmtTime(Date.now())} UTC: ${r.created.length} new, ${r.updated.length} updated`
        + `${(r.merged || []).length ? `, ${r.merged.length} merged` : ""} (${r.open} open, ${r.resolved} resolved)`));
      await drawIncidents();
    }
  } catch (err) { result.replaceChildren(); showError(document.getElementById("incident-list"), err); } finally { button.disabled = false; }
});
drawIncidents();
drawAnomalies();
