// Why a metric is ranked, in plain words and in the page's language, built from the ranking's numbers
// (direction, magnitude, baseline, lead/lag) rather than its statistics sentence; the statistics stay
// one click away ("details"). A change against an almost constant baseline is not quoted as a huge
// multiple; gaps and stuck values in the window are said as such once the series is at hand.
"use strict";

const BASELINE_WORDS = {
  history: "against its history",
  same_hours: "against the same hours of previous days",
  preceding: "against the period before",
};
// "+12 %", "×4.1", "−94 %": a relative change as people read it
function changeText(rel) {
  const pct = rel * 100;
  if (rel >= 1) return `×${fmtNum(1 + rel, 2)}`;
  const digits = Math.abs(pct) >= 10 ? 0 : 1;
  const n = Math.abs(pct).toFixed(digits);
  return `${pct >= 0 ? "+" : "−"}${LANG === "ru" ? n.replace(".", ",") : n} %`;
}
function plainReason(r, { stepSeconds = null, target = null } = {}) {
  const dir = r.direction;
  const base = t(BASELINE_WORDS[r.baseline] || BASELINE_WORDS.preceding);
  let text;
  if (dir === "flat") text = t("barely changed {against}", { against: base });
  else if (r.magnitude_kind === "relative" && r.magnitude != null && Number.isFinite(r.magnitude)) {
    if (Math.abs(r.magnitude) > 20) {   // from a level near zero: a multiple would mean nothing
      text = t(dir === "up" ? "rose sharply from a level near zero, {against}" : "fell sharply, {against}", { against: base });
    } else {
      text = t(dir === "up" ? "rose {change} {against}" : "fell {change} {against}", { change: changeText(r.magnitude), against: base });
    }
  } else {
    // a shift in units of the usual spread: beyond 10, the baseline was almost constant
    const z = Math.abs(r.magnitude ?? 0);
    if (z >= 10) text = t(dir === "up" ? "jumped above a level that was almost constant before" : "dropped below a level that was almost constant before");
    else if (z >= 3) text = t(dir === "up" ? "well above its usual range, {against}" : "well below its usual range, {against}", { against: base });
    else text = t(dir === "up" ? "somewhat above its usual range, {against}" : "somewhat below its usual range, {against}", { against: base });
  }
  if (r.lead_lag != null && r.lead_lag !== 0 && target && dir !== "flat") {
    const minutes = stepSeconds ? Math.round(Math.abs(r.lead_lag) * stepSeconds / 60) : null;
    const when = minutes != null ? t("{n} min", { n: minutes }) : t("{n} steps", { n: Math.abs(r.lead_lag) });
    text += "; " + t(r.lead_lag > 0 ? "moved {when} before {target}" : "moved {when} after {target}", { when, target });
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}
// the statistics behind it, language-neutral numbers
function reasonDetails(r) {
  const parts = [];
  if (r.score != null) parts.push(`${t("score")} ${fmtNum(r.score)}`);
  if (r.magnitude != null) parts.push(r.magnitude_kind === "z" ? `${t("shift")} ${fmtNum(r.magnitude)} σ` : `${t("change")} ${changeText(r.magnitude)}`);
  if (r.ks_p != null) parts.push(`KS D=${fmtNum(r.ks_d)}, p=${r.ks_p < 1e-6 ? "<1e-6" : r.ks_p.toExponential(1)}`);
  if (r.baseline) parts.push(`${t("baseline")}: ${t(BASELINE_WORDS[r.baseline] || r.baseline)}`);
  if (r.lead_lag != null) parts.push(`${t("lead/lag")}: ${r.lead_lag}`);
  return parts.join(" · ");
}
function reasonBox(r, opts) {
  return h("div", { class: "reason", "data-direction": r.direction },
    h("span", { class: "plain" }, plainReason(r, opts)), " ",
    h("details", { class: "reason-details" }, h("summary", {}, t("details")), h("span", { class: "muted" }, reasonDetails(r))));
}
// what the series shows inside [from, to]: a gap of more than two steps, or one value all along
function seriesNotes(s, from, to) {
  const step = seriesStep(s);
  const inside = [];
  s.t.forEach((ms, i) => { if (ms >= from && ms <= to && s.v[i] != null) inside.push([ms, s.v[i]]); });
  const notes = [];
  let longest = 0, prev = from - step;
  for (const [ms] of inside) { longest = Math.max(longest, ms - prev - step); prev = ms; }
  longest = Math.max(longest, to - prev - step);
  if (longest > 2 * step) notes.push(t("no data for {n} min in the window", { n: fmtInt(longest / 60e3) }));
  if (inside.length >= 5 && inside.every(([, v]) => v === inside[0][1])) notes.push(t("stuck at {value} for the whole window", { value: fmtNum(inside[0][1]) }));
  return notes;
}
// the mean level just before the window and inside it, from the series the chart drew: "8 100 → 504"
function levelText(s, from, to) {
  let nb = 0, sb = 0, ni = 0, si = 0;
  s.t.forEach((ms, i) => {
    const v = s.v[i];
    if (v == null || !Number.isFinite(v)) return;
    if (ms < from) { nb++; sb += v; } else if (ms <= to) { ni++; si += v; }
  });
  if (!nb || !ni) return null;
  return t("level {before} before the window → {inside} in it", { before: fmtNum(sb / nb), inside: fmtNum(si / ni) });
}
function addSeriesNotes(box, s, from, to) {
  if (!box) return;
  const level = levelText(s, from, to);
  if (level) box.querySelector(".plain")?.append(` (${level})`);
  const notes = seriesNotes(s, from, to);
  if (notes.length) box.querySelector(".plain")?.after(" ", h("span", { class: "tag series-note" }, notes.join("; ")));
}
