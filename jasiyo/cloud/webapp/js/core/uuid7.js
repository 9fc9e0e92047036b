// UUIDv7 ids (RFC 9562), as jasiyo/sync/ids.py makes them: time-ordered, lower-case hex,
// monotonic within this page.

import { hex } from "./b64.js";

let lastMs = 0;
let seq = 0;

export function uuid7(nowMs) {
  let ms = nowMs ?? Date.now();
  const rnd = crypto.getRandomValues(new Uint8Array(10));
  if (ms <= lastMs) {
    ms = lastMs;
    seq = (seq + 1) & 0xfff;
    if (seq === 0) ms += 1; // 4096 ids in one millisecond: borrow the next one
  } else {
    seq = ((rnd[0] << 8) | rnd[1]) & 0x3ff;
  }
  lastMs = ms;
  const b = new Uint8Array(16);
  let t = ms;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = 0x70 | ((seq >> 8) & 0x0f);
  b[7] = seq & 0xff;
  b.set(rnd.subarray(2, 10), 8);
  b[8] = 0x80 | (b[8] & 0x3f);
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
