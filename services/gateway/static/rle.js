// COCO run-length masks as pycocotools writes them (mask.encode -> "counts" string).
// The string packs each run length in 5-bit groups (LEB128-like, a continuation bit 0x20 and a
// sign bit 0x10 in the last group, +48 to stay printable); from the third run on, each value is
// the difference to the run two before. Runs alternate 0s and 1s, starting with 0s, over the
// pixels in column-major (Fortran) order.
"use strict";

// Masks come from results, which no one vouches for: the size must be what the result contract
// allows (two integers from 1 to MAX_MASK_SIDE, schemas/results.py; a test keeps the two equal)
// and the runs must be non-negative and add up to exactly that many pixels, as pycocotools
// writes them. Anything else throws a RangeError that says why (one crafted run of 3e13 pixels
// once kept every open dashboard busy for ever).
const MAX_MASK_SIDE = 16384;
// A mask is drawn at most this many pixels a side (a tile is 480 wide): a larger one is reduced
// while its runs are decoded, never allocated at its full 16384 x 16384 x 4 bytes.
const MAX_DRAWN_SIDE = 1024;
// rleToArray (full resolution, for the tests) allocates width x height bytes: this many at most.
const MAX_ARRAY_PIXELS = 4096 * 4096;
const MAX_RUN_GROUPS = 11;  // 5-bit groups per run: 55 bits, past any pixel count

function maskSize(rle) {
  const size = rle && rle.size;
  const ok = Array.isArray(size) && size.length === 2 && size.every(
    (n) => Number.isSafeInteger(n) && n > 0);
  if (!ok) throw new RangeError("mask size is not two positive integers");
  if (size[0] > MAX_MASK_SIDE || size[1] > MAX_MASK_SIDE)
    throw new RangeError(
      `mask of ${size[0]}x${size[1]} pixels is larger than ${MAX_MASK_SIDE} a side`);
  if (typeof rle.counts !== "string") throw new RangeError("mask counts are not a string");
  return size;
}

// The run lengths of `s`; with `total`, checked to be runs over exactly that many pixels.
function decodeRleCounts(s, total) {
  const counts = [];
  let p = 0, sum = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true, mult = 1;
    while (more) {
      if (p >= s.length || k >= MAX_RUN_GROUPS) throw new RangeError("mask counts are malformed");
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RangeError("mask counts hold a character out of range");
      x += (c & 0x1f) * mult;
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x -= mult * 32;  // sign-extend the last 5-bit group
      mult *= 32;
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    if (total !== undefined) {
      sum += x;
      if (x < 0 || sum > total) throw new RangeError("mask runs do not fit its size");
    }
    counts.push(x);
  }
  if (total !== undefined && sum !== total) throw new RangeError("mask runs do not fill its size");
  return counts;
}

// The first of `n` source rows (or columns) that falls in cell `t` of `cells` (floor mapping).
const cellStart = (t, n, cells) => Math.ceil(t * n / cells);

// An ImageData with the 1-pixels in rgba and the rest clear: the mask's own size when both sides
// are at most MAX_DRAWN_SIDE, else reduced to fit (aspect kept) with each pixel's alpha the
// share of its cell that is set. Each run is cut into column segments and each segment adds its
// rows to the cells it covers: the work grows with the runs and the drawn size, never with
// width x height. `img.ones` counts the mask's own pixels that are set.
function rleToImageData(rle, rgba) {
  const [h, w] = maskSize(rle);
  const counts = decodeRleCounts(rle.counts, h * w);
  const scale = Math.min(1, MAX_DRAWN_SIDE / Math.max(w, h));
  const dw = Math.max(1, Math.round(w * scale)), dh = Math.max(1, Math.round(h * scale));
  const hits = new Uint32Array(dw * dh);  // set source pixels per drawn pixel
  let pos = 0, ones = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1 && n > 0) {
      ones += n;
      for (let idx = pos, end = pos + n; idx < end;) {  // one column segment a turn
        const x = Math.floor(idx / h), y0 = idx - x * h, y1 = Math.min(h, y0 + end - idx);
        const col = Math.floor(x * dw / w);
        for (let t = Math.floor(y0 * dh / h); t < dh; t++) {
          const from = Math.max(y0, cellStart(t, h, dh)), to = Math.min(y1, cellStart(t + 1, h, dh));
          if (to <= from) break;
          hits[t * dw + col] += to - from;
        }
        idx += y1 - y0;
      }
    }
    pos += n;
  }
  const img = new ImageData(dw, dh);
  const d = img.data;
  for (let t = 0; t < dh; t++) {
    const rows = cellStart(t + 1, h, dh) - cellStart(t, h, dh);
    for (let c = 0; c < dw; c++) {
      const k = t * dw + c;
      if (!hits[k]) continue;
      const cell = rows * (cellStart(c + 1, w, dw) - cellStart(c, w, dw));
      const o = k * 4;
      d[o] = rgba[0]; d[o + 1] = rgba[1]; d[o + 2] = rgba[2];
      d[o + 3] = Math.max(1, Math.round(rgba[3] * hits[k] / cell));
    }
  }
  img.ones = ones;
  img.maskWidth = w;
  img.maskHeight = h;
  return img;
}

// Row-major 0/1 array of the mask (what the tests compare with pycocotools' decode).
function rleToArray(rle) {
  const [h, w] = maskSize(rle);
  if (h * w > MAX_ARRAY_PIXELS)
    throw new RangeError(`mask of ${h}x${w} pixels is larger than ${MAX_ARRAY_PIXELS} (as an array)`);
  const out = new Uint8Array(h * w);
  let pos = 0;
  decodeRleCounts(rle.counts, h * w).forEach((n, i) => {
    if (i % 2 === 1) {
      for (let idx = pos; idx < pos + n; idx++) {
        const x = Math.floor(idx / h), y = idx - x * h;
        out[y * w + x] = 1;
      }
    }
    pos += n;
  });
  return out;
}

window.ssRle = { decodeRleCounts, rleToImageData, rleToArray, MAX_MASK_SIDE, MAX_DRAWN_SIDE };
