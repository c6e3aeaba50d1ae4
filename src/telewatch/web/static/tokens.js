// The API tokens page (admin only): list, create (the token is shown once, with a copy button), revoke.
"use strict";

const tokenTime = (v) => timeEl(v);

async function loadTokens() {
  const box = document.getElementById("token-list");
  let rows;
  try { rows = await getJSON("/api/tokens"); } catch (err) {
    box.replaceChildren(h("div", { class: "error-box" }, err.message)); return;
  }
  const table = h("table", { class: "grid", id: "token-table" },
    h("thead", {}, h("tr", {}, ...["name", "scope", "source", "state", "created", "last used", "expires", "revoked", ""].map((x) => h("th", {}, t(x))))));
  const body = h("tbody");
  for (const tok of rows) {
    const revoke = tok.source === "store" && tok.state !== "revoked"
      ? h("button", { type: "button", class: "danger", dataset: { name: tok.name }, onclick: () => revokeToken(tok.name) }, t("Revoke"))
      : "";
    body.append(h("tr", { dataset: { token: tok.name } },
      h("td", { translate: "no" }, tok.name), h("td", {}, t(tok.scope)), h("td", {}, t(tok.source)),
      h("td", {}, h("span", { class: `state state-${tok.state === "active" ? "ok" : tok.state}`, "data-state": tok.state }, t(tok.state))),
      h("td", {}, tokenTime(tok.created_at)), h("td", {}, tokenTime(tok.last_used_at)),
      h("td", {}, tokenTime(tok.expires_at)), h("td", {}, tokenTime(tok.revoked_at)), h("td", {}, revoke)));
  }
  table.append(body);
  box.replaceChildren(table);
}

async function revokeToken(name) {
  if (!window.confirm(t("Revoke the token {name}? Every request and UI session using it is refused from now on.", { name }))) return;
  const error = document.getElementById("token-error");
  error.replaceChildren();
  try { await postJSON(`/api/tokens/${encodeURIComponent(name)}/revoke`, {}); } catch (err) {
    if (err.status === 401) { window.location.href = "/login"; return; }  // this session's own token
    error.replaceChildren(h("div", { class: "error-box" }, err.message));
  }
  await loadTokens();
}

document.getElementById("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("token-error");
  const created = document.getElementById("token-created");
  error.replaceChildren();
  created.classList.add("hidden");
  const expires = document.getElementById("token-expires").value.trim();
  const json = { name: document.getElementById("token-name").value.trim(), scope: document.getElementById("token-scope").value };
  if (expires) json.expires_in = expires;
  try {
    const made = await postJSON("/api/tokens", json);
    document.getElementById("token-created-name").textContent = `${made.name} (${made.scope})`;
    document.getElementById("token-value").textContent = made.token;
    document.getElementById("token-copied").textContent = "";
    created.classList.remove("hidden");
    document.getElementById("token-name").value = "";
  } catch (err) {
    error.replaceChildren(h("div", { class: "error-box" }, err.message));
  }
  await loadTokens();
});

document.getElementById("token-copy").addEventListener("click", async () => {
  const value = document.getElementById("token-value").textContent;
  const note = document.getElementById("token-copied");
  try { await navigator.clipboard.writeText(value); note.textContent = t("copied"); } catch (_) {
    const range = document.createRange();  // no clipboard API (plain http): select it for Ctrl+C
    range.selectNodeContents(document.getElementById("token-value"));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    note.textContent = t("selected: press Ctrl+C");
  }
});

loadTokens();
