// COCO run-length masks as pycocotools writes them (mask.encode -> "counts" string).
// The string packs each run length in 5-bit groups (LEB128-like, a continuation bit 0x20 and a
// sign bit 0x10 in the last group, +48 to stay printable); from the third run on, each value is
// the difference to the run two before. Runs alternate 0s and 1s, starting with 0s, over the
// pixels in column-major (Fortran) order.
"use strict";

function decodeRleCounts(s) {
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0, k = 0, more = true, mult = 1;
    while (more) {
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * mult;
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x -= mult * 32;  // sign-extend the last 5-bit group
      mult *= 32;
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// An ImageData (width x height of the mask) with the 1-pixels in rgba and the rest clear.
function rleToImageData(rle, rgba) {
  const h = rle.size[0], w = rle.size[1];
  const img = new ImageData(w, h);
  const d = img.data;
  const counts = decodeRleCounts(rle.counts);
  let pos = 0, ones = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (i % 2 === 1) {
      for (let idx = pos; idx < pos + n; idx++) {
        const x = Math.floor(idx / h), y = idx - x * h, o = (y * w + x) * 4;
        d[o] = rgba[0]; d[o + 1] = rgba[1]; d[o + 2] = rgba[2]; d[o + 3] = rgba[3];
      }
      ones += n;
    }
    pos += n;
  }
  img.ones = ones;
  return img;
}

// Row-major 0/1 array of the mask (what the tests compare with pycocotools' decode).
function rleToArray(rle) {
  const h = rle.size[0], w = rle.size[1];
  const out = new Uint8Array(h * w);
  let pos = 0;
  decodeRleCounts(rle.counts).forEach((n, i) => {
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

window.ssRle = { decodeRleCounts, rleToImageData, rleToArray };
