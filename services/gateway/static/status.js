// What the header says about the connection: the token (typed into a form, kept for this tab,
// sent only as a bearer header, never in a URL), "token rejected", the degraded banner when
// Redis or the gateway is away, and the server's clock for the age of results.
"use strict";

const TOKEN_KEY = "ss-token";
const ui = {
  token: sessionStorage.getItem(TOKEN_KEY),
  rejected: false,
  redisApi: true,     // the last /api answer was not "redis unavailable"
  redisLive: true,    // what /ws/live last said about its Redis subscriber
  reachable: true,    // the gateway answered the last call
  wsOpen: false,
  offsetMs: 0,        // server clock minus this browser's clock
  staleAfterMs: 10000,
  badMessages: 0,     // live messages or stored results this page could not use
};

class ApiError extends Error {
  constructor(path, status, body) {
    super(path + ": " + status + (body && body.error ? " (" + body.error + ")" : ""));
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, init) {
  const headers = {};
  if (ui.token) headers.Authorization = "Bearer " + ui.token;
  let res;
  try {
    res = await fetch(path, Object.assign({ cache: "no-store" }, init || {}, { headers }));
  } catch (e) {
    ui.reachable = false; render();
    throw new ApiError(path, 0, { error: "gateway unreachable" });
  }
  ui.reachable = true;
  if (res.status === 401) { tokenRejected(); throw new ApiError(path, 401); }
  let body = null;
  if (res.status === 503) {
    try { body = await res.json(); } catch (e) { body = {}; }
    if (body.error === "redis unavailable") { ui.redisApi = false; render(); }
    throw new ApiError(path, 503, body);
  }
  if (!res.ok) { render(); throw new ApiError(path, res.status); }
  ui.redisApi = true; ui.rejected = false; render();
  return res;
}

function tokenRejected() {
  ui.rejected = true;
  const form = document.getElementById("auth");
  document.getElementById("auth-label").textContent =
    ui.token ? "token rejected: gateway token" : "gateway token required";
  form.hidden = false;
  render();
}

function setClock(serverMs) {
  if (typeof serverMs === "number") ui.offsetMs = serverMs - Date.now();
}
const serverNow = () => Date.now() + ui.offsetMs;

function ageText(ms) {
  const s = Math.max(0, ms) / 1000;
  if (s < 1) return "<1 s";
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

function degradedReason() {
  if (!ui.reachable) return "the gateway does not answer";
  if (!ui.redisApi || !ui.redisLive) return "Redis is unavailable";
  return null;
}

function render() {
  const pill = document.getElementById("conn");
  const banner = document.getElementById("banner");
  const reason = degradedReason();
  if (ui.rejected) { pill.textContent = "token rejected"; pill.className = "pill off"; }
  else if (!ui.wsOpen) { pill.textContent = "offline"; pill.className = "pill off"; }
  else if (reason) { pill.textContent = "degraded"; pill.className = "pill warn"; }
  else { pill.textContent = "live"; pill.className = "pill on"; }
  banner.hidden = !reason;
  banner.dataset.reason = reason || "";
  banner.textContent = reason
    ? "Degraded: " + reason + ". Results are not updating; what is shown may be out of date."
    : "";
}

function initAuthForm(onToken) {
  const form = document.getElementById("auth");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();  // never a GET with the token in the URL
    const input = document.getElementById("token-input");
    ui.token = input.value.trim() || null;
    input.value = "";
    if (ui.token) sessionStorage.setItem(TOKEN_KEY, ui.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    ui.rejected = false;
    form.hidden = true;
    render();
    onToken();
  });
}
