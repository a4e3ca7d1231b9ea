// The figures panels: throughput and latency per task (/api/stats), models in service
// (/api/models). Every value is set as text.
"use strict";

const fmt = (p, key) => (p ? p[key].toFixed(1) + " ms" : "–");
const row = (cells) => { const tr = el("tr"); for (const c of cells) tr.append(el("td", "", String(c))); return tr; };

async function refreshStats() {
  const lag = document.getElementById("lag");
  try {
    const s = await (await api("/api/stats")).json();
    setClock(s.now_ms);
    document.querySelector("#stats tbody").replaceChildren(...Object.entries(s.tasks).map(([task, t]) =>
      row([task, t.per_s.toFixed(1), fmt(t.e2e_ms, "p50"), fmt(t.e2e_ms, "p95"), fmt(t.sink_ms, "p50")])));
    lag.textContent = `window ${s.window_s} s · sink consumer lag ${s.total_lag} · ` +
      `${s.live_clients} live clients · ${s.live_dropped} dropped and ` +
      `${s.live_evicted} closed for slow clients`;
  } catch (e) { lag.textContent = "stats unavailable: " + e.message; }
}

async function refreshModels() {
  const body = document.querySelector("#models tbody");
  try {
    const m = await (await api("/api/models")).json();
    const champ = (name) => (m.models.find((x) => x.name === name) || {}).champion || "–";
    const rows = m.in_service.map((s) => row([s.task, s.name, s.version, s.sources, champ(s.name)]));
    if (!rows.length) { const tr = el("tr"); const td = el("td", "muted", "no results yet"); td.colSpan = 5; tr.append(td); rows.push(tr); }
    body.replaceChildren(...rows);
  } catch (e) { body.dataset.error = e.message; }
}

