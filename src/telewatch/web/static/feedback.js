// Feedback buttons (confirmed / false alarm / expected): stored as labelled windows via POST /api/feedback.
"use strict";

const FEEDBACK = [["confirmed", "Confirmed"], ["false_alarm", "False alarm"], ["expected", "Expected"]];

function feedbackButtons(target, onDone) {
  // target: {incident_id?, anomaly_id?, metric_ids?, start?, end?}
  const out = h("span", { class: "feedback-result muted" });
  const buttons = FEEDBACK.map(([kind, text]) => h("button", { type: "button", "data-feedback": kind, onclick: async (ev) => {
    const all = ev.target.parentElement.querySelectorAll("button");
    all.forEach((b) => { b.disabled = true; });
    try {
      const fb = await postJSON("/api/feedback", { kind, ...target });
      out.className = "feedback-result";
      out.replaceChildren(h("span", { class: `state state-${kind === "confirmed" ? "open" : "ok"}` }, `marked ${text.toLowerCase()}`));
      if (onDone) onDone(fb);
    } catch (err) { out.replaceChildren(h("span", { class: "error-box" }, err.message)); }
    finally { all.forEach((b) => { b.disabled = false; }); }
  } }, text));
  return h("span", { class: "feedback-buttons" }, buttons, out);
}
