// streamsense dashboard: REST for the initial state, /ws/live for everything after.
"use strict";

const params = new URLSearchParams(location.search);
if (params.get("token")) sessionStorage.setItem("ss-token", params.get("token"));
const TOKEN = sessionStorage.getItem("ss-token");
const TIMELINE_POINTS = 120;
const THUMB_EVERY_MS = 250;
const COLORS = { positive: "#3ecf6e", negative: "#ff5d5d", neutral: "#9aa5b1" };
const cameras = new Map();   // id -> {det, seg, thumb, thumbAt, fetching, mask, el}
const texts = new Map();     // id -> {points: [{score, label}], counts: {}, el}
const inService = new Map(); // task -> {name, version}
let received = 0;

function headers() { return TOKEN ? { Authorization: "Bearer " + TOKEN } : {}; }
async function api(path) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw new Error(path + ": " + res.status);
  return res;
}
const enc = encodeURIComponent;
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const labelColor = (label) => COLORS[label] || "#" + (Math.abs(hash(label)) % 0xffffff).toString(16).padStart(6, "8");
function hash(s) { let h = 0; for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0; return h; }

// -- cameras -------------------------------------------------------------------------------

function camera(id) {
  let cam = cameras.get(id);
  if (cam) return cam;
  document.querySelector("#cameras .empty")?.remove();
  const tile = el("div", "tile");
  tile.dataset.camera = id;
  tile.dataset.boxes = "0";
  const canvas = el("canvas");
  canvas.width = 480; canvas.height = 360;
  const cap = el("div", "caption");
  cap.append(el("span", "name", id), el("span", "muted info", ""));
  tile.append(canvas, cap);
  document.getElementById("cameras").append(tile);
  cam = { det: null, seg: null, thumb: null, thumbAt: 0, fetching: false, mask: null, el: tile };
  cameras.set(id, cam);
  return cam;
}

async function refreshThumb(id, cam) {
  if (cam.fetching || performance.now() - cam.thumbAt < THUMB_EVERY_MS) return;
  cam.fetching = true;
  cam.thumbAt = performance.now();
  try {
    const blob = await (await api("/api/thumbnail/" + enc(id))).blob();
    cam.thumb = await createImageBitmap(blob);
  } catch (e) { /* no thumbnail (yet): boxes are drawn on black */ }
  cam.fetching = false;
  drawCamera(id);
}

function maskCanvas(cam) {
  const seg = cam.seg;
  if (!seg) return null;
  if (cam.mask && cam.mask.counts === seg.mask.counts) return cam.mask.canvas;
  const img = ssRle.rleToImageData(seg.mask, [79, 179, 255, 110]);
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  c.getContext("2d").putImageData(img, 0, 0);
  cam.mask = { counts: seg.mask.counts, canvas: c, ones: img.ones };
  return c;
}

function drawCamera(id) {
  const cam = cameras.get(id);
  const canvas = cam.el.querySelector("canvas");
  const ref = cam.thumb || cam.det || cam.seg;
  const aspect = ref ? ref.height / ref.width : 0.75;
  canvas.height = Math.round(canvas.width * aspect);
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
  if (cam.thumb) ctx.drawImage(cam.thumb, 0, 0, W, H);
  const mask = maskCanvas(cam);
  if (mask) ctx.drawImage(mask, 0, 0, W, H);
  let boxes = 0;
  ctx.lineWidth = Math.max(2, W / 240);
  ctx.font = Math.max(12, Math.round(W / 36)) + "px system-ui, sans-serif";
  for (const d of (cam.det ? cam.det.detections : [])) {
    const b = d.box, x = b.x1 * W, y = b.y1 * H, w = (b.x2 - b.x1) * W, h = (b.y2 - b.y1) * H;
    const color = labelColor(d.label);
    ctx.strokeStyle = color; ctx.strokeRect(x, y, w, h);
    const text = d.label + " " + Math.round(d.score * 100) + "%";
    const th = Math.max(16, Math.round(W / 28));
    const ty = y - th < 0 ? y : y - th;  // above the box, or inside it at the top edge
    ctx.fillStyle = color; ctx.fillRect(x, ty, ctx.measureText(text).width + 8, th);
    ctx.fillStyle = "#000"; ctx.fillText(text, x + 4, ty + th - th / 4);
    boxes += 1;
  }
  cam.el.dataset.boxes = String(boxes);
  cam.el.dataset.mask = String(cam.mask ? cam.mask.ones : 0);
  cam.el.dataset.thumb = cam.thumb ? "1" : "0";
  const parts = [];
  if (cam.det) parts.push(boxes + " objects");
  if (cam.seg && cam.seg.class_areas.person !== undefined)
    parts.push("person " + Math.round(cam.seg.class_areas.person * 100) + "%");
  cam.el.querySelector(".info").textContent = parts.join(" · ");
}

// -- text sentiment ------------------------------------------------------------------------

function textSource(id) {
  let t = texts.get(id);
  if (t) return t;
  document.querySelector("#texts .empty")?.remove();
  const card = el("div", "text");
  card.dataset.source = id;
  card.dataset.points = "0";
  const head = el("div", "caption");
  head.append(el("span", "name", id), el("span", "muted info", ""));
  const tl = el("canvas", "timeline"); tl.width = 560; tl.height = 120;
  const mix = el("canvas", "mix"); mix.width = 560; mix.height = 22;
  card.append(head, tl, mix);
  document.getElementById("texts").append(card);
  t = { points: [], counts: {}, el: card };
  texts.set(id, t);
  return t;
}

function addSentiment(res) {
  const t = textSource(res.source_id);
  const p = res.probs || {};
  t.points.push({ score: (p.positive || 0) - (p.negative || 0), label: res.label });
  if (t.points.length > TIMELINE_POINTS) t.points.shift();
  t.counts[res.label] = (t.counts[res.label] || 0) + 1;
  t.total = (t.total || 0) + 1;
  t.last = res.text;
}

function drawText(id) {
  const t = texts.get(id);
  const tl = t.el.querySelector("canvas.timeline"), ctx = tl.getContext("2d");
  const W = tl.width, H = tl.height, n = t.points.length;
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#2a323b"; ctx.beginPath(); ctx.moveTo(0, H / 2); ctx.lineTo(W, H / 2); ctx.stroke();
  const span = Math.min(TIMELINE_POINTS, Math.max(n, 30)) - 1;  // fills up, then scrolls
  const xs = (i) => (i / span) * (W - 8) + 4;
  const ys = (s) => H / 2 - s * (H / 2 - 6);
  ctx.strokeStyle = "#4fb3ff"; ctx.lineWidth = 1.5; ctx.beginPath();
  t.points.forEach((pt, i) => (i ? ctx.lineTo(xs(i), ys(pt.score)) : ctx.moveTo(xs(i), ys(pt.score))));
  ctx.stroke();
  t.points.forEach((pt, i) => {
    ctx.fillStyle = labelColor(pt.label);
    ctx.beginPath(); ctx.arc(xs(i), ys(pt.score), 2.5, 0, 2 * Math.PI); ctx.fill();
  });
  const mix = t.el.querySelector("canvas.mix"), m = mix.getContext("2d");
  m.clearRect(0, 0, mix.width, mix.height);
  let x = 0;
  m.font = "11px system-ui, sans-serif";
  for (const [label, count] of Object.entries(t.counts).sort()) {
    const w = (count / t.total) * mix.width;
    m.fillStyle = labelColor(label); m.fillRect(x, 0, w, mix.height);
    m.fillStyle = "#000";
    if (w > 60) m.fillText(label + " " + Math.round((count / t.total) * 100) + "%", x + 4, 15);
    x += w;
  }
  t.el.dataset.points = String(n);
  t.el.querySelector(".info").textContent = t.total + " results" + (t.last ? " · " + t.last.slice(0, 40) : "");
}

// -- live updates --------------------------------------------------------------------------

const dirty = new Set();
let frameQueued = false;
function schedule(kind, id) {
  dirty.add(kind + "\u0000" + id);
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    for (const key of dirty) {
      const [k, id] = key.split("\u0000");
      if (k === "cam") drawCamera(id); else drawText(id);
    }
    dirty.clear();
  });
}

function onResult(task, res) {
  received += 1;
  inService.set(task, { name: res.model.name, version: res.model.version });
  if (task === "sentiment") { addSentiment(res); schedule("text", res.source_id); return; }
  const cam = camera(res.source_id);
  if (task === "detect") cam.det = res; else if (task === "segment") cam.seg = res;
  schedule("cam", res.source_id);
  refreshThumb(res.source_id, cam);
}

function connect(delay) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws/live" + (TOKEN ? "?token=" + enc(TOKEN) : ""));
  const pill = document.getElementById("conn");
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "result") onResult(msg.task, msg.result);
    else if (msg.type === "hello") { pill.textContent = "live"; pill.className = "pill on"; delay = 500; }
  };
  ws.onclose = () => {
    pill.textContent = "offline"; pill.className = "pill off";
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

// -- figures -------------------------------------------------------------------------------

const fmt = (p, key) => (p ? p[key].toFixed(1) + " ms" : "–");
async function refreshStats() {
  try {
    const s = await (await api("/api/stats")).json();
    const rows = Object.entries(s.tasks).map(([task, t]) =>
      `<tr><td>${task}</td><td>${t.per_s.toFixed(1)}</td><td>${fmt(t.e2e_ms, "p50")}</td>` +
      `<td>${fmt(t.e2e_ms, "p95")}</td><td>${fmt(t.sink_ms, "p50")}</td></tr>`);
    document.querySelector("#stats tbody").innerHTML = rows.join("");
    document.getElementById("lag").textContent =
      `window ${s.window_s} s · sink consumer lag ${s.total_lag} · ` +
      `${s.live_clients} live clients · ${s.live_dropped} dropped for slow clients`;
  } catch (e) { document.getElementById("lag").textContent = "stats unavailable: " + e.message; }
}

async function refreshModels() {
  let stored = [];
  try {
    const m = await (await api("/api/models")).json();
    stored = m.models;
    for (const s of m.in_service) if (!inService.has(s.task)) inService.set(s.task, s);
    const champ = (name) => (stored.find((x) => x.name === name) || {}).champion || "–";
    const rows = m.in_service.map((s) =>
      `<tr><td>${s.task}</td><td>${s.name}</td><td>${s.version}</td><td>${s.sources}</td><td>${champ(s.name)}</td></tr>`);
    document.querySelector("#models tbody").innerHTML = rows.join("") ||
      "<tr><td colspan=5 class=muted>no results yet</td></tr>";
  } catch (e) { /* shown as stale */ }
}

let lastCount = 0, lastAt = performance.now();
setInterval(() => {
  const now = performance.now();
  const rate = ((received - lastCount) * 1000) / (now - lastAt);
  document.getElementById("rate").textContent = rate.toFixed(1) + " results/s live";
  lastCount = received; lastAt = now;
}, 1000);

async function init() {
  try {
    const src = await (await api("/api/sources")).json();
    for (const id of src.cameras) {
      const cam = camera(id);
      for (const task of ["detect", "segment"]) {
        try {
          const latest = await (await api(`/api/latest/${task}/${enc(id)}`)).json();
          if (task === "detect") cam.det = cam.det || latest.result;
          else cam.seg = cam.seg || latest.result;
        } catch (e) { /* no result of this task */ }
      }
      drawCamera(id);
      refreshThumb(id, cam);
    }
    for (const id of src.tasks.sentiment) {
      const page = await (await api(`/api/results/sentiment/${enc(id)}?limit=${TIMELINE_POINTS}`)).json();
      for (const item of page.items) addSentiment(item.result);
      drawText(id);
    }
  } catch (e) { console.error("initial state:", e); }
  connect(500);
  refreshStats(); refreshModels();
  setInterval(refreshStats, 2000);
  setInterval(refreshModels, 10000);
}
init();
