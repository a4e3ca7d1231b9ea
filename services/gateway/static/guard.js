// Results are data no one vouches for (an older or foreign writer may have stored anything,
// and the contracts do not bound everything a browser must draw): a result that cannot be
// shown marks its own tile (data-error and the reason on it), a live message that cannot be
// used is counted and skipped, and every other tile, the live feed and the initial load go on.
"use strict";

// A call about one source that failed for that source alone (404 none yet, 422 an id the
// contracts refuse, 502 what is stored for it is not a result, or a result this page cannot
// use) leaves the others to load; anything else (401, 503, no gateway) stops.
const PER_SOURCE = [404, 422, 502];
const perSource = (e) => !(e instanceof ApiError) || PER_SOURCE.includes(e.status);

// Runs `draw` for one tile or card; when its data cannot be shown, the tile says why instead
// of the error stopping whatever called it (the frame loop, the initial load, a poll).
function shown(item, draw) {
  if (!item) return;
  try {
    draw();
    if (item.el.dataset.error) { delete item.el.dataset.error; item.el.classList.remove("broken"); }
  } catch (e) {
    const why = String((e && e.message) || e).slice(0, 160);
    item.el.dataset.error = why;
    item.el.classList.add("broken");
    item.el.querySelector(".info").textContent = "cannot show this result: " + why;
    console.warn("dashboard:", item.el.dataset.camera || item.el.dataset.source, why);
  }
}

// A result or message this page cannot use is counted (#rate's data-bad) and skipped.
function skipped(e) {
  ui.badMessages += 1;
  document.getElementById("rate").dataset.bad = String(ui.badMessages);
  console.warn("dashboard: a result was skipped:", String((e && e.message) || e));
}

