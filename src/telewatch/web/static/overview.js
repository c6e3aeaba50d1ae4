// Overview: open incidents on top (when the incidents API is installed); the metrics table is the server's.
"use strict";

async function drawOpenIncidents() {
  const box = document.getElementById("incidents-body");
  try {
    const body = await optionalJSON("/api/incidents?state=open&limit=20");
    if (body === null) { showUnavailable(box, "Incident tracking"); return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("span", { class: "muted" }, t("No open incidents."))); return; }
    // the API gives the number of metrics (an int) and the type's rule name and title
    const metricCount = (inc) => (Array.isArray(inc.metrics) ? inc.metrics.length : inc.metrics);
    const rows = list.map((inc) => h("tr", { class: "incident-row", "data-incident-id": inc.id },
      h("td", {}, h("a", { href: `/incidents/${inc.id}` }, `#${inc.id}`)),
      h("td", {}, h("a", { href: `/incidents/${inc.id}` }, titleEl(pick(inc, "title", "summary")))),
      h("td", { class: "incident-type" }, typeText(inc)),
      h("td", {}, stateBadge(pick(inc, "state", "status"))),
      h("td", {}, timeEl(pick(inc, "start", "started_at", "start_ts", "opened_at"))),
      h("td", {}, timeEl(pick(inc, "end", "end_ts"))),
      h("td", { class: "num incident-metrics" }, metricCount(inc) != null ? fmtInt(metricCount(inc)) : "—")));
    box.replaceChildren(h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, [t("Id"), t("Summary"), t("Type"), t("State"), t("Started"), t("Last activity"), t("Metrics")]
        .map((x) => h("th", {}, x)))),
      h("tbody", {}, rows)));
  } catch (err) { showError(box, err); }
}
// an incident's type in words: the rule's title when it has one, else its name; "—" when untyped
function typeText(inc) {
  const title = pick(inc, "type_title"), name = pick(inc, "type", "kind");
  if (!title && !name) return t("untyped");
  return h("span", { title: name || "" }, t(title || name));  // shipped types are in the catalogue
}
document.getElementById("group-filter")?.addEventListener("change", (e) => e.target.form.submit());
window.onRefresh = () => location.reload();
drawOpenIncidents();
