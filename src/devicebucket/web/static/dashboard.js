// devicebucket dashboard: JSON checked while typing, and a confirmation before deleting.
"use strict";
document.addEventListener("input", (event) => {
  const area = event.target;
  if (!(area instanceof HTMLTextAreaElement) || !area.classList.contains("json-input")) return;
  let message = "";
  try { JSON.parse(area.value); } catch (error) { message = area.value.trim() ? "Not valid JSON yet: " + error.message : ""; }
  area.setAttribute("aria-invalid", message ? "true" : "false");
  let note = area.nextElementSibling;
  if (!note || !note.classList.contains("json-error")) {
    note = document.createElement("p");
    note.className = "json-error";
    note.setAttribute("aria-live", "polite");
    area.after(note);
  }
  note.textContent = message;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// Live pages: follow the server's event stream of this page (data-live), no reload.
(() => {
  const holder = document.querySelector("[data-live]");
  if (!holder || !window.EventSource) return;
  const state = document.getElementById("live-state");
  const say = (text) => { if (state) state.textContent = text; };
  const source = new EventSource(holder.dataset.live);
  source.onopen = () => say("Live");
  source.onerror = () => say("Reconnecting…");
  const text = (value) => JSON.stringify(value, null, 2);
  // A form the operator is using: an open edit, or the add form with something typed.
  const editing = (form) => form && (form.closest("details[open]") !== null ||
    (form.classList.contains("add") && form.querySelector("textarea").value.trim() !== ""));
  const warn = (form, message) => {
    let note = form.querySelector(".changed-elsewhere");
    if (!note) {
      note = document.createElement("p");
      note.className = "alert conflict changed-elsewhere";
      note.setAttribute("role", "alert");
      form.prepend(note);
    }
    note.textContent = message;
  };
  const onDevicePage = (change) => {
    const section = [...document.querySelectorAll("section.bucket[data-bucket]")]
      .find((s) => s.dataset.bucket === (change.job || ""));
    if (!section) return;
    const version = section.querySelector(".version");
    if (version) version.textContent = change.version;
    const keys = [...Object.keys(change.changed || {}), ...(change.removed || [])];
    const who = `${change.actor} (version ${change.version})`;
    const added = [];
    for (const key of keys) {
      const row = [...section.querySelectorAll("tr[data-key]")].find((r) => r.dataset.key === key);
      const forms = [...section.querySelectorAll("form")].filter((f) =>
        (f.querySelector('input[name="key"]') || {}).value === key && editing(f));
      for (const form of forms) {
        warn(form, `${key} was just changed by ${who}. Saving now shows you both versions.`);
        form.dataset.stale = "1";
      }
      if (!row) { if (key in (change.changed || {})) added.push(key); continue; }
      row.classList.remove("updated", "removed");
      if (key in (change.changed || {})) {
        const shown = row.querySelector("pre.json, .masked");
        if (shown) shown.textContent = text(change.changed[key]);
        row.classList.add("updated");
      } else {
        row.classList.add("removed");
      }
    }
    // Forms nobody is using move to the new version; a stale edit keeps the one it saw.
    for (const input of section.querySelectorAll('input[name="version"]')) {
      if (!input.form.dataset.stale && !editing(input.form)) input.value = change.version;
    }
    const news = added.length ? ` · new key ${added.join(", ")}: reload to see it` : "";
    say(`Live · last change: version ${change.version} by ${change.actor}${news}`);
  };
  const onActivityPage = (change) => {
    const body = document.getElementById("latest");
    const empty = body.querySelector(".empty");
    if (empty) empty.remove();
    const row = document.createElement("tr");
    const cells = [change.at || "", change.device, `${change.job ? "job " + change.job : "device"} · v${change.version}`,
      change.actor || "expiry", [...Object.keys(change.changed || {}), ...(change.removed || []).map((k) => "−" + k)].join(" ")];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    body.prepend(row);
    while (body.rows.length > 200) body.deleteRow(-1);
    const bar = document.getElementById("this-minute");
    if (bar) bar.dataset.writes = String(Number(bar.dataset.writes) + 1);
    const total = document.getElementById("writes-total");
    if (total) total.textContent = (Number(total.textContent.replace(/,/g, "")) + 1).toLocaleString("en-US");
  };
  const handle = holder.id === "live-state" ? onDevicePage : onActivityPage;
  source.addEventListener("change", (event) => handle(JSON.parse(event.data)));
  source.addEventListener("resync", () => say("Changed while away: reload to see the latest."));
  source.addEventListener("overflow", () => say("Too many changes to follow: reload."));
})();
