// Camera states from GET /api/cameras, polled: each camera's state on its tile (online,
// reconnecting, offline, or stale once its producer stopped publishing), the age of its last
// frame, fps against the target, reconnects, the reason, and what it reads and who reads it.
// A camera known only from its status gets a tile too, while there is room. Every string from
// data is set as text (textContent); the state only picks a class from a fixed list.
"use strict";

const CAMERA_STATE_EVERY_MS = 2000;
const CAMERA_STATES = ["online", "reconnecting", "offline", "stale"];
let statusCameras = new Set();  // ids shown with a status by the last poll

function stateBlock(tile) {
  let box = tile.querySelector(".camstate");
  if (box) return box;
  box = el("div", "camstate");
  const head = el("div", "camstate-head");
  head.append(el("span", "state"), el("span", "muted frame"), el("span", "muted rate"),
              el("span", "muted reconnects"));
  box.append(head, el("div", "reason"), el("div", "muted origin"));
  tile.append(box);
  return box;
}

const fpsText = (s) => s.fps.toFixed(1) +
  (s.target_fps === null ? " fps (source rate)" : " / " + s.target_fps + " fps");

// A status alone never closes a tile with results: it gets one only while there is room.
function showCameraState(c) {
  const cam = camera(c.camera_id, false);
  if (!cam) return;
  const s = c.reported;
  const state = CAMERA_STATES.includes(c.state) ? c.state : "unknown";
  const box = stateBlock(cam.el);
  const badge = box.querySelector(".state");
  badge.className = "state state-" + state;
  badge.textContent = state;
  box.querySelector(".frame").textContent = c.last_frame_age_s === null ? "no frame yet"
    : "last frame " + ageText(c.last_frame_age_s * 1000) + " ago";
  box.querySelector(".rate").textContent = fpsText(s);
  box.querySelector(".reconnects").textContent =
    s.reconnects + (s.reconnects === 1 ? " reconnect" : " reconnects");
  box.querySelector(".reason").textContent = c.reason || "";
  box.querySelector(".origin").textContent = s.source + " · " + s.producer;
  cam.el.dataset.state = state;
  if (cam.state !== state) { cam.state = state; drawCamera(c.camera_id); }
}

function forgetCameraState(id) {
  const cam = cameras.get(id);
  if (!cam) return;
  cam.el.querySelector(".camstate")?.remove();
  delete cam.el.dataset.state;
  cam.state = null;
  drawCamera(id);
}

// What the tile's frame says when there is no frame to show: its state, when a status says it.
function noFrameNote(cam) {
  if (!cam.state) return "camera offline";
  return cam.state === "online" ? "no thumbnail yet" : "camera " + cam.state;
}

async function refreshCameraStates() {
  let body;
  try { body = await (await api("/api/cameras")).json(); }
  catch (e) { return; }  // the header, banner or token form already say why
  setClock(body.now_ms);
  const seen = new Set();
  for (const c of body.cameras) { showCameraState(c); seen.add(c.camera_id); }
  for (const id of statusCameras) if (!seen.has(id)) forgetCameraState(id);
  statusCameras = seen;
  document.getElementById("cameras").dataset.malformed = String(body.malformed);
  showCut(body.truncated, body.cameras.length, body.total);
}

// The gateway lists at most STREAMSENSE_GATEWAY_MAX_LISTED cameras: say so when there are more.
function showCut(cut, shown, total) {
  const note = document.getElementById("cameras-cut");
  note.hidden = !cut;
  note.textContent = cut ? `states of ${shown} of ${total} cameras shown (the gateway lists at ` +
    "most STREAMSENSE_GATEWAY_MAX_LISTED)" : "";
}
