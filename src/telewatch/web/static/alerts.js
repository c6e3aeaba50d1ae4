// Alerts and configuration over the alerting API: silences (create, expire), notification history with
// delivery attempts, channels with "send a test alert", alert rules and monitors when those APIs exist.
"use strict";

const $ = (id) => document.getElementById(id);

function table(id, headers, rows) {
  return h("table", { class: "grid", id }, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, t(x))))), h("tbody", {}, rows));
}
// Whether the server has an alerting configuration (alerts.html reads the server's settings): without one,
// the channel and rule APIs answer 400, so the page shows the "not configured" state without asking them.
const ALERTING_CONFIGURED = document.body.querySelector("[data-alerting]")?.dataset.alerting !== "unconfigured";
function showUnconfigured(box, what) {
  box.replaceChildren(h("div", { class: "notice", "data-unconfigured": what },
    t("{what}: alerting is not configured on this server — set TELEWATCH_ALERTING_CONFIG to the alerting YAML file (see the alerting guide) and restart telewatch.", { what: t(what) })));
}
function configProblem(box, err, what) {
  // a 400 ConfigError: alerting is installed but not configured on this server
  if (err.status === 400 && err.body.error === "ConfigError") {
    box.replaceChildren(h("div", { class: "notice", "data-unconfigured": what }, `${t(what)}: ${err.message}`));
    return true;
  }
  return false;
}

// When a silence ended: expired by hand before its planned end shows the expiry (planned end in the tooltip).
function silenceEnd(s) {
  if (s.expired_at) {
    return h("td", { class: "silence-end", "data-expired-at": s.expired_at, title: t("planned end {time}", { time: fmtUTC(s.ends_at) }) },
      fmtTime(s.expired_at), " ", h("span", { class: "muted" }, t("(expired)")));
  }
  return h("td", { class: "silence-end" }, timeEl(s.ends_at));
}

async function drawSilences() {
  const box = $("silence-list");
  try {
    const body = await optionalJSON(`/api/silences?include_expired=${$("silence-expired").checked}`);
    if (body === null) { showUnavailable(box, "Silences"); $("silence-create").disabled = true; return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("p", { class: "muted" }, t("No silences."))); return; }
    box.replaceChildren(table("silences-table", ["Id", "Matchers", "Starts", "Ends", "State", "By", "Comment", ""],
      list.map((s) => h("tr", { class: "silence-row", "data-silence-id": s.id },
        h("td", {}, `#${s.id}`),
        h("td", { translate: "no" }, (s.matchers || []).map((m) => h("span", { class: "tag" }, `${m.name}${m.op}${m.value}`))),
        h("td", {}, timeEl(s.starts_at)), silenceEnd(s),
        h("td", {}, stateBadge(s.active ? "active" : s.state)), h("td", { translate: "no" }, s.created_by), h("td", { translate: "no" }, s.comment),
        h("td", {}, s.active || s.state === "pending" ? h("button", { type: "button", class: "danger", "data-expire": s.id, "data-write": true, onclick: async () => {
          try { await api(`/api/silences/${s.id}`, { method: "DELETE" }); drawSilences(); } catch (err) { showError($("silence-error"), err); }
        } }, t("Expire now")) : "")))));
  } catch (err) { showError(box, err); }
}

async function createSilence(ev) {
  ev.preventDefault();
  $("silence-error").replaceChildren();
  const body = {
    matchers: [{ name: $("silence-name").value.trim(), op: $("silence-op").value, value: $("silence-value").value }],
    duration_minutes: Number($("silence-minutes").value), created_by: $("silence-by").value || "ui", comment: $("silence-comment").value,
  };
  try {
    const s = await postJSON("/api/silences", body);
    $("silence-error").replaceChildren(h("div", { class: "ok-box", id: "silence-ok" }, t("Silence #{id} created, until {time}.", { id: s.id, time: `${fmtTime(s.ends_at)} ${tzName()}` })));
    drawSilences();
  } catch (err) { showError($("silence-error"), err); }
}

async function drawHistory() {
  const box = $("history-list");
  const qs = new URLSearchParams({ limit: "200" });
  if ($("history-status").value) qs.set("status", $("history-status").value);
  if ($("history-channel").value.trim()) qs.set("channel", $("history-channel").value.trim());
  try {
    const body = await optionalJSON(`/api/alerts/notifications?${qs}`);
    if (body === null) { showUnavailable(box, "Notification history"); return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("p", { class: "muted" }, t("No notifications yet."))); return; }
    box.replaceChildren(table("history-table", ["Id", "Created", "Channel", "Kind", "Severity", "Subject", "Status", "Attempts", "Sent", "Last error"],
      list.map((n) => h("tr", { class: "notification-row", "data-notification-id": n.id },
        h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); showNotification(n.id); } }, `#${n.id}`)),
        h("td", {}, timeEl(n.created_at)), h("td", { translate: "no" }, n.channel), h("td", {}, t(n.kind)), h("td", {}, t(n.severity)),
        h("td", { translate: "no" }, n.subject), h("td", {}, stateBadge(n.status)), h("td", { class: "num" }, String(n.attempts)),
        h("td", {}, timeEl(n.sent_at)), h("td", { translate: "no" }, n.last_error || "")))));
  } catch (err) { showError(box, err); }
}

async function showNotification(id) {
  const box = $("history-detail");
  try {
    const n = await getJSON(`/api/alerts/notifications/${id}`);
    box.replaceChildren(h("div", { class: "card" }, h("h3", {}, `#${n.id} ${n.subject}`),
      h("pre", { style: "white-space:pre-wrap" }, n.body_text),
      table("attempts-table", ["Attempt", "Started", "Finished", "OK", "Error", "Remote id"],
        n.attempts_log.map((a) => h("tr", {}, h("td", {}, String(a.attempt)), h("td", {}, timeEl(a.started_at)), h("td", {}, timeEl(a.finished_at)),
          h("td", {}, a.ok == null ? "?" : (a.ok ? t("yes") : t("no"))), h("td", {}, a.error || ""), h("td", {}, a.remote_id || ""))))));
  } catch (err) { showError(box, err); }
}

async function drawChannels() {
  const box = $("channel-list");
  if (!ALERTING_CONFIGURED) { showUnconfigured(box, "Channels"); return; }
  try {
    const body = await optionalJSON("/api/alerts/channels");
    if (body === null) { showUnavailable(box, "Channels"); return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("p", { class: "muted" }, t("No channels configured."))); return; }
    box.replaceChildren(table("channels-table", ["Name", "Type", "Details", ""],
      list.map((c) => h("tr", { "data-channel": c.name },
        h("td", { translate: "no" }, h("b", {}, c.name)), h("td", { translate: "no" }, c.type || ""),
        h("td", { translate: "no" }, Object.entries(c).filter(([k]) => !["name", "type"].includes(k)).map(([k, v]) => h("span", { class: "tag" }, `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`))),
        h("td", {}, h("button", { type: "button", "data-test-channel": c.name, "data-write": true, onclick: () => testSend(c.name) }, t("Send a test alert")))))));
  } catch (err) { if (!configProblem(box, err, "Channels")) showError(box, err); }
}

async function testSend(name) {
  const box = $("test-result");
  box.replaceChildren(h("div", { class: "notice" }, t("sending a test alert to {name}…", { name })));
  try {
    const r = await postJSON("/api/alerts/test", { channel: name });
    box.replaceChildren(h("div", { class: r.ok ? "ok-box" : "error-box", id: "test-outcome" },
      r.ok ? t("{name} accepted the test alert (notification #{id}).", { name, id: r.notification_id })
        : t("{name} refused the test alert: {error}", { name, error: r.error })));
  } catch (err) { showError(box, err); }
}

async function drawOptionalList(boxId, url, what, columns, needsAlerting = false) {
  const box = $(boxId);
  if (needsAlerting && !ALERTING_CONFIGURED) { showUnconfigured(box, what); return; }
  try {
    const body = await optionalJSON(url);
    if (body === null) { showUnavailable(box, what); return; }
    const list = items(body);
    if (!list.length) { box.replaceChildren(h("p", { class: "muted" }, t(`No ${what.toLowerCase()}.`))); return; }
    const cols = columns || Object.keys(list[0]).slice(0, 8);
    box.replaceChildren(table(`${boxId}-table`, cols, list.map((r) => h("tr", {}, cols.map((c) => {
      const v = r[c];
      return h("td", { translate: "no" }, v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
    })))));
  } catch (err) { if (!configProblem(box, err, what)) showError(box, err); }
}

const loaders = {
  silences: drawSilences, history: drawHistory, channels: drawChannels,
  rules: () => drawOptionalList("rule-list", "/api/alerts/rules", "Alert rules",
    ["name", "match", "severity", "channels", "routes", "min_duration", "repeat_interval", "owner"], true),
  monitors: () => drawOptionalList("monitor-list", "/api/monitor-status", "Monitors",
    ["monitor", "status", "last_run_at", "attempts", "error", "series", "runs", "last_points", "last_anomalies"]),
};
function openTab(name) {
  document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll("section.tab").forEach((s) => s.classList.toggle("hidden", s.id !== `tab-${name}`));
  history.replaceState(null, "", `#${name}`);
  loaders[name]();
}
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => openTab(b.dataset.tab)));
$("silence-form").addEventListener("submit", createSilence);
$("silence-expired").addEventListener("change", drawSilences);
$("history-refresh").addEventListener("click", drawHistory);
$("history-status").addEventListener("change", drawHistory);
openTab((location.hash || "#silences").slice(1) in loaders ? (location.hash || "#silences").slice(1) : "silences");
