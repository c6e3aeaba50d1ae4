// Feedback buttons (confirmed / false alarm / expected): stored as labelled windows via POST /api/feedback;
// the verdict already given (GET /api/feedback) shows on the buttons after a reload.
"use strict";

const FEEDBACK = [["confirmed", "Confirmed"], ["false_alarm", "False alarm"], ["expected", "Expected"]];
const verdictText = (kind) => t((FEEDBACK.find(([k]) => k === kind) || [kind, String(kind).replace("_", " ")])[1].toLowerCase());

function showVerdict(wrap, fb, fresh) {
  // fb: a feedback item {kind, created_at}; the matching button is pressed, the text says when
  wrap.dataset.verdict = fb.kind;
  wrap.querySelectorAll("button[data-feedback]").forEach((b) => {
    b.classList.toggle("pressed", b.dataset.feedback === fb.kind);
    b.setAttribute("aria-pressed", String(b.dataset.feedback === fb.kind));
  });
  const out = wrap.querySelector(".feedback-result");
  out.className = "feedback-result";
  out.replaceChildren(h("span", { class: `state state-${fb.kind === "confirmed" ? "open" : "ok"}`, title: fb.created_at ? t("given {time}", { time: fmtTime(fb.created_at) }) : null },
    fresh ? t("marked {verdict}", { verdict: verdictText(fb.kind) }) : t("verdict: {verdict}", { verdict: verdictText(fb.kind) })));
}

function feedbackButtons(target, onDone, current) {
  // target: {incident_id?, anomaly_id?, metric_ids?, start?, end?}; current: the newest feedback item, if any
  const out = h("span", { class: "feedback-result muted" });
  const buttons = FEEDBACK.map(([kind, text]) => h("button", { type: "button", "data-feedback": kind, "data-write": true, "aria-pressed": "false", onclick: async (ev) => {
    const all = wrap.querySelectorAll("button");
    all.forEach((b) => { b.disabled = true; });
    try {
      const fb = await postJSON("/api/feedback", { kind, ...target });
      showVerdict(wrap, fb, true);
      if (onDone) onDone(fb);
    } catch (err) { out.replaceChildren(h("span", { class: "error-box" }, err.message)); }
    finally { all.forEach((b) => { b.disabled = false; }); }
  } }, t(text)));
  const wrap = h("span", { class: "feedback-buttons" }, buttons, out);
  if (current) showVerdict(wrap, current, false);
  return wrap;
}

// The newest verdict on each stored anomaly (one GET /api/feedback?anomaly=ID per anomaly, in parallel).
async function anomalyVerdicts(ids) {
  // one request for a page of anomalies: newest first, so the first item of each is its current verdict
  const found = new Map();
  if (!ids.length) return found;
  const qs = new URLSearchParams(ids.map((id) => ["anomaly", String(id)]));
  qs.set("limit", "1000");
  try {
    for (const fb of items(await getJSON(`/api/feedback?${qs}`))) {
      if (!found.has(fb.anomaly_id)) found.set(fb.anomaly_id, fb);
    }
  } catch (_) { /* no verdicts shown; the buttons still work */ }
  return found;
}
