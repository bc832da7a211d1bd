// Stockyard console: the little that needs script. Pages work without it, except Live.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms that change something irreversible ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
  // Choosing a range or a breakdown reloads the overview.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  const live = document.getElementById("live-rows");
  if (live) startLive(live);
});

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function startLive(tbody) {
  const status = document.getElementById("live-status");
  const source = new EventSource("/ui/live/events");
  let seen = 0;
  source.addEventListener("open", () => { status.textContent = "connected: waiting for requests"; });
  source.addEventListener("error", () => { status.textContent = "disconnected: retrying"; });
  source.addEventListener("lagged", (e) => { status.textContent = "skipped " + e.data + " requests (too many to show)"; });
  source.addEventListener("trace", (e) => {
    const t = JSON.parse(e.data);
    const tr = document.createElement("tr");
    if (t.status >= 400) tr.className = "err";
    const link = document.createElement("a");
    link.href = "/ui/traces/" + encodeURIComponent(t.id);
    link.textContent = new Date(t.ts_ms).toISOString().replace("T", " ").slice(0, 19);
    const first = document.createElement("td");
    first.appendChild(link);
    tr.append(first, cell(t.requested_model), cell(t.provider || "–"), cell(String(t.status), "num"),
      cell((t.latency_us / 1000).toFixed(0) + " ms", "num"), cell(String(t.prompt_tokens + t.completion_tokens), "num"),
      cell(t.key_id || "–"), cell(t.cache || "–"));
    tbody.prepend(tr);
    while (tbody.rows.length > 200) tbody.deleteRow(-1);
    seen += 1;
    status.textContent = "connected: " + seen + " requests since this page opened";
  });
}
