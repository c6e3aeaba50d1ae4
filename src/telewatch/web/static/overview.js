// Overview: open incidents on top (when the incidents API is installed).
"use strict";

async function drawOpenIncidents() {
  const box = document.getElementById("incidents-body");
  try {
    const body = await optionalJSON("/api/incidents?state=open&limit=20");
    if (body === null) { showUnavailable(box, "Incident tracking"); return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("span", { class: "muted" }, "No open incidents.")); return; }
    const rows = list.map((inc) => h("tr", { class: "incident-row" },
      h("td", {}, h("a", { href: `/incidents/${inc.id}` }, `#${inc.id}`)),
      h("td", {}, pick(inc, "title", "summary", "type", "kind") || "incident"),
      h("td", {}, pick(inc, "type", "kind") || ""),
      h("td", {}, stateBadge(pick(inc, "status", "state"))),
      h("td", {}, fmtTime(pick(inc, "start", "started_at", "start_ts", "opened_at"))),
      h("td", {}, String((pick(inc, "metrics", "metric_ids") || []).length || ""))));
    box.replaceChildren(h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["Id", "Summary", "Type", "Status", "Started (UTC)", "Metrics"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)));
  } catch (err) { showError(box, err); }
}
drawOpenIncidents();
