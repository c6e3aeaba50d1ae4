// Upload: preview the head of a file (POST /api/ingest/preview), map columns, upload (POST /api/ingest),
// then open the explorer. Errors name the line and column.
"use strict";

const $ = (id) => document.getElementById(id);
const up = { preview: null };
window.__tw = up;
const HEAD_BYTES = 512 * 1024;

function mapping(includeMetrics) {
  const fd = new FormData();
  fd.set("format", $("format").value);
  fd.set("shape", $("shape").value);
  if ($("columns").value.trim()) fd.set("columns", $("columns").value.trim());
  if ($("timestamp-column").value) fd.set("timestamp_column", $("timestamp-column").value);
  fd.set("timezone", $("timezone").value.trim() || "UTC");
  if (includeMetrics) {
    const boxes = [...document.querySelectorAll("#metric-columns input[type=checkbox]")];
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    if (boxes.length && chosen.length && chosen.length < boxes.length) fd.set("metrics", chosen.join(","));
  }
  return fd;
}

function clearError() { $("upload-error").replaceChildren(); }

async function preview() {
  const file = $("file").files[0];
  if (!file) return;
  clearError();
  // (the Upload button stays enabled: a blur of an edited field previews while the user clicks it)
  const fd = mapping(false);
  // the head is enough for a preview; compressed files go whole (they cannot be cut)
  const compressed = /\.(gz|xz|bz2)$/i.test(file.name);
  fd.set("file", compressed ? file : file.slice(0, HEAD_BYTES), file.name);
  try {
    const p = await api("/api/ingest/preview", { method: "POST", body: fd });
    up.preview = p;
    renderPreview(p, file);
    $("upload-btn").disabled = false;
  } catch (err) {
    $("preview").classList.add("hidden");
    showError($("upload-error"), err);
    $("upload-error").firstChild.dataset.line = err.body.line ?? "";
    $("upload-error").firstChild.dataset.column = err.body.column ?? "";
  }
}

function renderPreview(p, file) {
  $("preview").classList.remove("hidden");
  const facts = [["File", t("{name} ({kib} KiB, ~{lines} lines in the previewed part)", { name: file.name, kib: fmtInt(file.size / 1024), lines: fmtInt(p.lines_in_file) })],
    ["Format", p.format], ["Delimiter", p.delimiter === "\t" ? t("tab") : p.delimiter], ["Shape", t(p.shape)],
    ["Header", p.header ? t("yes") : t("no (name the columns above, or they are col1, col2, …)")],
    ["Timestamp column", p.timestamp_column], ["Rows parsed", fmtInt(p.rows_parsed)]];
  $("preview-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", { "data-fact": k }, v)]));
  for (const w of p.warnings) $("preview-facts").append(h("dt", {}, t("Warning")), h("dd", {}, w));
  const tsIndex = p.columns.indexOf(p.timestamp_column);
  const seriesNames = new Set(p.series.map((s) => s.name));
  const head = h("tr", {}, p.columns.map((c) => h("th", {}, c)));
  const body = (p.header ? p.rows.slice(1) : p.rows).map((r) => h("tr", {}, r.map((cell, i) =>
    h("td", { class: i === tsIndex ? "ts" : (seriesNames.has(p.columns[i]) ? "metric" : "") }, cell))));
  $("preview-table").replaceChildren(h("thead", {}, head), h("tbody", {}, body));
  $("preview-series").replaceChildren(
    h("thead", {}, h("tr", {}, ["Metric", "Labels", "Values", "Missing", "First", "Last"].map((x) => h("th", {}, t(x))))),
    h("tbody", {}, p.series.map((s) => h("tr", {}, h("td", { translate: "no" }, s.name),
      h("td", { translate: "no" }, Object.entries(s.labels).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`))),
      h("td", { class: "num" }, fmtInt(s.points)), h("td", { class: "num" }, fmtInt(s.missing)),
      h("td", {}, timeEl(s.first)), h("td", {}, timeEl(s.last))))));
  // the mapping controls follow what was found
  const tsSel = $("timestamp-column");
  const current = tsSel.value;
  tsSel.replaceChildren(h("option", { value: "" }, t("detect ({column})", { column: p.timestamp_column })),
    ...p.columns.map((c) => h("option", { value: c, selected: c === current }, c)));
  if (p.shape === "wide") {
    const known = new Set([...document.querySelectorAll("#metric-columns input")].map((b) => b.value));
    if (p.series.some((s) => !known.has(s.name))) {
      $("metric-columns").replaceChildren(h("span", { class: "muted" }, t("Metrics:")),
        ...p.series.map((s) => h("label", {}, h("input", { type: "checkbox", value: s.name, checked: true }), " ", s.name)));
    }
  } else {
    $("metric-columns").replaceChildren();
  }
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) { showError($("upload-error"), new Error(t("Choose a file first."))); return; }
  clearError();
  const fd = mapping(true);
  if ($("group").value.trim()) fd.set("group", $("group").value.trim());
  fd.set("file", file, file.name);
  $("upload-btn").disabled = true;
  $("upload-result").replaceChildren(h("div", { class: "notice" }, t("uploading {name}…", { name: file.name })));
  try {
    const r = await api("/api/ingest", { method: "POST", body: fd });
    // the summary stays on the page (it used to jump to the explorer before anyone could read it)
    $("upload-result").replaceChildren(h("div", { class: "ok-box", id: "upload-ok" },
      t("Stored {points} values of {series} metric(s) from {rows} rows.", { points: fmtInt(r.points), series: r.series.length, rows: fmtInt(r.rows) }), " ",
      t("Open in the explorer:"), " ",
      ...r.series.map((s) => h("a", { href: `/explore/${s.metric_id}`, style: "margin-right:8px", translate: "no", class: "uploaded-metric" }, s.name)),
      ...r.warnings.map((w) => h("div", {}, t("warning: {text}", { text: w })))));
  } catch (err) {
    $("upload-result").replaceChildren();
    showError($("upload-error"), err);
  } finally { $("upload-btn").disabled = false; }
}

$("file").addEventListener("change", () => {
  const f = $("file").files[0];   // the browser's own "Choose File" text is in its language, so it is hidden
  $("file-name").textContent = f ? f.name : t("no file chosen");
  $("file-name").setAttribute("translate", f ? "no" : "yes"); $("metric-columns").replaceChildren(); $("timestamp-column").value = ""; preview(); });
for (const id of ["format", "shape", "timestamp-column", "timezone", "columns"]) $(id).addEventListener("change", preview);
$("preview-btn").addEventListener("click", preview);
$("upload-form").addEventListener("submit", upload);
