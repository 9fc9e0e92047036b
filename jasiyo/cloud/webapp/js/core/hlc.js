// Hybrid logical clocks, as jasiyo/sync/hlc.py encodes them: string order is clock order.
//   "<wall ms, 15 digits>.<counter, 6 digits>.<origin>"

import { DashError } from "./errors.js";

// How far an event's clock may be ahead of the cloud's when the cloud stored it.
export const MAX_AHEAD_MS = 6 * 60 * 1000;
// A remote clock further ahead than this is not followed (it would drag every clock).
export const MAX_DRIFT_MS = 24 * 3600 * 1000;

export function encodeHlc(wallMs, counter, origin) {
  return `${String(wallMs).padStart(15, "0")}.${String(counter).padStart(6, "0")}.${origin}`;
}

export function decodeHlc(text) {
  const m = typeof text === "string" ? /^(-?\d+)\.(-?\d+)\.([\s\S]*)$/.exec(text) : null;
  if (!m) throw new DashError(`bad clock value ${JSON.stringify(text)}`);
  return { wallMs: Number(m[1]), counter: Number(m[2]), origin: m[3] };
}

// `hlc`, or, if more than MAX_AHEAD_MS ahead of `receivedAt` (the cloud's clock, unix
// seconds, when it stored the event), that bound: the same on every POP and dashboard.
export function bounded(hlc, receivedAt) {
  if (!receivedAt) return hlc;
  const ts = decodeHlc(hlc);
  const limit = Math.floor(receivedAt * 1000) + MAX_AHEAD_MS;
  if (ts.wallMs <= limit) return hlc;
  return encodeHlc(limit, 0, ts.origin);
}

// Issues timestamps that never go backwards and that follow any timestamp received.
export class Clock {
  constructor(origin, { wallMs } = {}) {
    this.origin = origin;
    this._wall = wallMs || (() => Date.now());
    this._last = { wallMs: 0, counter: 0 };
  }

  now() {
    const wall = this._wall();
    if (wall > this._last.wallMs) this._last = { wallMs: wall, counter: 0 };
    else this._last = { wallMs: this._last.wallMs, counter: this._last.counter + 1 };
    return encodeHlc(this._last.wallMs, this._last.counter, this.origin);
  }

  // Advance past a remote timestamp; false (not followed) if it is more than a day ahead.
  observe(remote) {
    const ts = decodeHlc(remote);
    const wall = this._wall();
    if (ts.wallMs - wall > MAX_DRIFT_MS) return false;
    const last = this._last;
    const top = Math.max(wall, last.wallMs, ts.wallMs);
    let counter;
    if (top === last.wallMs && top === ts.wallMs) counter = Math.max(last.counter, ts.counter) + 1;
    else if (top === last.wallMs) counter = last.counter + 1;
    else if (top === ts.wallMs) counter = ts.counter + 1;
    else counter = 0;
    this._last = { wallMs: top, counter };
    return true;
  }
}
