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
