// streamsense dashboard: REST for the initial state, /ws/live for everything after (camera
// states are polled: camstate.js).
// Every string that comes from data is set as text (textContent, canvas fillText), never as
// markup; the page's CSP allows no inline script either.
// Results are data no one vouches for: see guard.js.
"use strict";

const TIMELINE_POINTS = 120;
const THUMB_EVERY_MS = 250;     // at most this often per camera while results arrive
const THUMB_CHECK_MS = 2000;    // and this often regardless (notices an expired thumbnail)
// A frame and its result travel on different topics, so the frame may land second: while a
// camera's result is fresh and it has no frame to show, the page asks at THUMB_EVERY_MS.
const COLORS = { positive: "#3ecf6e", negative: "#ff5d5d", neutral: "#9aa5b1" };
// Source ids are the producers' choice and a tile holds a canvas (~0.7 MB), so the page keeps
// at most this many of each, the ones with the latest results, and says how many it left out.
const MAX_CAMERA_TILES = 48;
const MAX_TEXT_CARDS = 24;
const HIDDEN_COUNTED = 10000;  // distinct ids left out, counted up to this many
const MAX_MIX_LABELS = 16;     // labels a text card's mix counts apart; the rest count as OTHER
const OTHER = "other";
const cameras = new Map();   // id -> {det, seg, thumb, hadThumb, offline, state, touched, ...}
const texts = new Map();     // id -> {points: [{score, label}], counts: Map, el, resultMs, touched}
const hidden = { cameras: new Set(), texts: new Set() };
let received = 0;
let socket = null;

const enc = encodeURIComponent;
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const labelColor = (label) => (Object.hasOwn(COLORS, label) ? COLORS[label]
  : "#" + (Math.abs(hash(String(label))) % 0xffffff).toString(16).padStart(6, "8"));
function hash(s) { let h = 0; for (const c of s) h = (h * 31 + c.charCodeAt(0)) | 0; return h; }
// When the input of a result was captured (or, without that, produced), server clock ms.
const resultMs = (res) => (res.timings.capture_ns || res.timings.produced_ns) / 1e6;

function caption(name) {
  const cap = el("div", "caption");
  const left = el("span");
  left.append(el("span", "name", name), el("span", "badge stale-mark", "stale"));
  cap.append(left, el("span", "muted info", ""), el("span", "muted age", ""));
  return cap;
}
// Room for one more tile in `items`: when full, close the one whose latest result is oldest
// if `evict`, else refuse. `kind` is "cameras" or "texts" (the hidden set and the note).
function makeRoom(kind, items, max, evict) {
  if (items.size < max) return true;
  if (!evict) return false;
  let oldest = null;
  for (const [id, item] of items) {
    if (oldest === null || item.touched < items.get(oldest).touched) oldest = id;
  }
  const gone = items.get(oldest);
  gone.el.remove();
  if (gone.thumb) gone.thumb.close();
  items.delete(oldest);
  dirty.delete((kind === "cameras" ? "cam:" : "text:") + oldest);
  leftOut(kind, oldest);
  return true;
}
function leftOut(kind, id) {
  if (hidden[kind].size < HIDDEN_COUNTED) hidden[kind].add(id);
  showLeftOut(kind);
}
function showLeftOut(kind) {
  const n = hidden[kind].size, note = document.getElementById(kind + "-hidden");
  const max = kind === "cameras" ? MAX_CAMERA_TILES : MAX_TEXT_CARDS;
  note.hidden = n === 0;
  const what = kind === "cameras" ? "cameras" : "text sources";
  note.textContent = n === 0 ? "" : `${n}${n >= HIDDEN_COUNTED ? "+" : ""} more ${what} not ` +
    `shown: the dashboard keeps the ${max} with the latest results`;
}

function placeholder(containerId, text) {
  const p = document.querySelector("#" + containerId + " .empty");
  if (p) p.textContent = text;
}

// -- cameras -------------------------------------------------------------------------------

// The tile of camera `id`, made if there is room (see makeRoom); null when there is none.
function camera(id, evict = true) {
  let cam = cameras.get(id);
  if (cam) return cam;
  if (!makeRoom("cameras", cameras, MAX_CAMERA_TILES, evict)) {
    leftOut("cameras", id);
    return null;
  }
  if (hidden.cameras.delete(id)) showLeftOut("cameras");
  document.querySelector("#cameras .empty")?.remove();
  const tile = el("div", "tile");
  tile.dataset.camera = id;
  tile.dataset.boxes = "0";
  const canvas = el("canvas");
  canvas.width = 480; canvas.height = 360;
  tile.append(canvas, caption(id));
  document.getElementById("cameras").append(tile);
  cam = { det: null, seg: null, thumb: null, hadThumb: false, offline: false, thumbAt: -1e9,
          fetching: false, mask: null, el: tile, resultMs: null, state: null,
          touched: performance.now() };
  cameras.set(id, cam);
  return cam;
}

async function refreshThumb(id, cam, minGap) {
  if (cam.fetching || performance.now() - cam.thumbAt < minGap) return;
  cam.fetching = true;
  cam.thumbAt = performance.now();
  try {
    const blob = await (await api("/api/thumbnail/" + enc(id))).blob();
    const bitmap = await createImageBitmap(blob);
    if (cam.thumb) cam.thumb.close();
    cam.thumb = bitmap;
    if (cameras.get(id) !== cam) { bitmap.close(); cam.thumb = null; }  // closed meanwhile
    cam.hadThumb = true;
    cam.offline = false;
  } catch (e) {
    if (e.status === 404) {  // expired: the camera has sent no frame for the thumbnail TTL
      cam.thumb = null;
      cam.offline = cam.hadThumb || isStale(cam.resultMs);
    }
  }
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
  const cam = cameras.get(id);  // none: closed for a camera with newer results
  shown(cam, () => paintCamera(cam));
}

function paintCamera(cam) {
  const canvas = cam.el.querySelector("canvas");
  const ref = cam.thumb || cam.det || cam.seg;
  const aspect = ref ? ref.height / ref.width : 0.75;
  canvas.height = Math.round(canvas.width * aspect);
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
  cam.el.classList.toggle("offline", cam.offline);
  cam.el.dataset.offline = cam.offline ? "1" : "0";
  cam.el.dataset.thumb = cam.thumb ? "1" : "0";
  if (cam.offline) {  // old boxes on a black frame would look like a live, empty scene
    const note = noFrameNote(cam);  // camstate.js: what the camera's status says, if any
    ctx.fillStyle = "#8b96a1"; ctx.font = Math.round(W / 20) + "px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.fillText(note, W / 2, H / 2); ctx.textAlign = "start";
    cam.el.dataset.boxes = "0";
    cam.el.querySelector(".info").textContent = note;
    return;
  }
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
  const parts = [];
  if (cam.det) parts.push(boxes + " objects");
  if (cam.seg && Object.hasOwn(cam.seg.class_areas, "person"))
    parts.push("person " + Math.round(cam.seg.class_areas.person * 100) + "%");
  cam.el.querySelector(".info").textContent = parts.join(" · ");
}

// -- text sentiment ------------------------------------------------------------------------

function textSource(id, evict = true) {
  let t = texts.get(id);
  if (t) return t;
  if (!makeRoom("texts", texts, MAX_TEXT_CARDS, evict)) {
    leftOut("texts", id);
    return null;
  }
  if (hidden.texts.delete(id)) showLeftOut("texts");
  document.querySelector("#texts .empty")?.remove();
  const card = el("div", "text");
  card.dataset.source = id;
  card.dataset.points = "0";
  const tl = el("canvas", "timeline"); tl.width = 560; tl.height = 120;
  const mix = el("canvas", "mix"); mix.width = 560; mix.height = 22;
  card.append(caption(id), tl, mix);
  document.getElementById("texts").append(card);
  t = { points: [], counts: new Map(), total: 0, last: "", el: card, resultMs: null,
        touched: performance.now() };
  texts.set(id, t);
  return t;
}

function addSentiment(res) {
  const ms = resultMs(res);  // a result without timings throws here, before it is kept
  const t = textSource(res.source_id);
  t.touched = performance.now();
  const p = res.probs || {};
  const prob = (k) => (Object.hasOwn(p, k) ? p[k] : 0);
  t.points.push({ score: prob("positive") - prob("negative"), label: res.label });
  if (t.points.length > TIMELINE_POINTS) t.points.shift();
  // bounded: a model (or whoever publishes) with thousands of labels must not grow the card
  const key = t.counts.has(res.label) || t.counts.size < MAX_MIX_LABELS ? res.label : OTHER;
  t.counts.set(key, (t.counts.get(key) || 0) + 1);
  t.total += 1;
  t.last = String(res.text);
  t.resultMs = Math.max(t.resultMs || 0, ms);
}

function drawText(id) {
  const t = texts.get(id);
  shown(t, () => paintText(t));
}

function paintText(t) {
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
  for (const [label, count] of [...t.counts.entries()].sort()) {
    const w = (count / t.total) * mix.width;
    m.fillStyle = labelColor(label); m.fillRect(x, 0, w, mix.height);
    m.fillStyle = "#000";
    if (w > 60) m.fillText(label + " " + Math.round((count / t.total) * 100) + "%", x + 4, 15);
    x += w;
  }
  t.el.dataset.points = String(n);
  t.el.dataset.labels = String(t.counts.size);
  t.el.querySelector(".info").textContent = t.total + " results" + (t.last ? " · " + t.last.slice(0, 40) : "");
}

// -- freshness: the age of each tile's latest result, stale past the server's limit ---------

const isStale = (ms) => ms === null || serverNow() - ms > ui.staleAfterMs;
function markAge(item) {
  const stale = isStale(item.resultMs);
  item.el.classList.toggle("stale", stale);
  item.el.dataset.stale = stale ? "1" : "0";
  item.el.querySelector(".age").textContent =
    item.resultMs === null ? "no result yet" : "result " + ageText(serverNow() - item.resultMs) + " old";
}
function markAges() {
  for (const cam of cameras.values()) markAge(cam);
  for (const t of texts.values()) markAge(t);
}

// -- live updates --------------------------------------------------------------------------

const dirty = new Map();  // "kind:id" -> [kind, id]
let frameQueued = false;
function schedule(kind, id) {
  dirty.set(kind + ":" + id, [kind, id]);
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    for (const [k, id] of dirty.values()) { if (k === "cam") drawCamera(id); else drawText(id); }
    dirty.clear();
    markAges();
  });
}

function onResult(task, res) {
  received += 1;
  if (task === "sentiment") { addSentiment(res); schedule("text", res.source_id); return; }
  const ms = resultMs(res);
  const cam = camera(res.source_id);
  if (!cam) return;
  cam.touched = performance.now();
  if (task === "detect") cam.det = res; else if (task === "segment") cam.seg = res;
  cam.resultMs = Math.max(cam.resultMs || 0, ms);
  schedule("cam", res.source_id);
  refreshThumb(res.source_id, cam, THUMB_EVERY_MS);
}

async function connect(delay) {
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  let ticket;
  try {
    ticket = (await (await api("/api/live/ticket", { method: "POST" })).json()).ticket;
  } catch (e) {
    if (e.status === 401) return;  // waits for a token from the form
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(proto + "//" + location.host + "/ws/live?ticket=" + enc(ticket));
  socket = ws;
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
      if (msg.type === "result") { onResult(msg.task, msg.result); return; }
    } catch (e) {  // one message this page cannot use; the next ones still count
      skipped(e);
      return;
    }
    if (msg.type === "hello") {
      ui.wsOpen = true; ui.redisLive = msg.redis !== false; setClock(msg.server_ms);
      ui.staleAfterMs = msg.stale_after_s * 1000; delay = 500; render();
    } else if (msg.type === "status") { ui.redisLive = msg.redis; setClock(msg.server_ms); render(); }
  };
  ws.onclose = () => {
    ui.wsOpen = false; render();
    if (socket === ws) setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

let lastCount = 0, lastAt = performance.now();
function tick() {
  const now = performance.now();
  const rate = ((received - lastCount) * 1000) / (now - lastAt);
  document.getElementById("rate").textContent = rate.toFixed(1) + " results/s live";
  lastCount = received; lastAt = now;
  markAges();
}

async function loadState() {
  const src = await (await api("/api/sources")).json();
  for (const id of src.cameras) {
    const cam = camera(id, false);
    if (!cam) continue;
    for (const task of ["detect", "segment"]) {
      try {
        const latest = await (await api(`/api/latest/${task}/${enc(id)}`)).json();
        if (task === "detect") cam.det = cam.det || latest.result;
        else cam.seg = cam.seg || latest.result;
        cam.resultMs = Math.max(cam.resultMs || 0, resultMs(latest.result));
      } catch (e) {
        if (!perSource(e)) throw e;
        if (!(e instanceof ApiError)) skipped(e);
      }
    }
    drawCamera(id);
    refreshThumb(id, cam, 0);
  }
  for (const id of src.tasks.sentiment) {
    if (!textSource(id, false)) continue;
    let page;
    try {
      page = await (await api(`/api/results/sentiment/${enc(id)}?limit=${TIMELINE_POINTS}`)).json();
    } catch (e) {
      if (!perSource(e)) throw e;
      if (!(e instanceof ApiError)) skipped(e);
      continue;
    }
    for (const item of page.items) {
      try { addSentiment(item.result); } catch (e) { skipped(e); }
    }
    drawText(id);
  }
  placeholder("cameras", "no camera results yet");
  placeholder("texts", "no sentiment results yet");
  markAges();
}

async function start() {
  try { await loadState(); }
  catch (e) {
    if (e.status === 401) return;  // the form calls start() again with a token
    const why = "results unavailable: " + ((e.body && e.body.error) || e.message);
    placeholder("cameras", why); placeholder("texts", why);
    setTimeout(start, 2000);
    return;
  }
  connect(500);
  refreshStats(); refreshModels(); refreshCameraStates();
}

initAuthForm(start);
render();
setInterval(tick, 1000);
setInterval(refreshStats, 2000);
setInterval(refreshModels, 10000);
setInterval(refreshCameraStates, CAMERA_STATE_EVERY_MS);
const thumbGap = (cam) => (!cam.thumb && !isStale(cam.resultMs) ? THUMB_EVERY_MS : THUMB_CHECK_MS);
setInterval(() => { for (const [id, cam] of cameras) refreshThumb(id, cam, thumbGap(cam)); },
            THUMB_EVERY_MS);
start();
