// Opening pulled events, loading a snapshot, sealing the dashboard's own events: the
// browser's half of jasiyo/sync/client.py and snapshots.py.
//
// An event's plaintext is Python's json.dumps({"hlc","entity","key","op","data"},
// sort_keys=True, separators=(",", ":")) in UTF-8; pyDumps() writes the same bytes.
// Events of entity "_tenant_key" (op append, data {kid, key}) carry a rotated tenant key
// sealed under an older one: openEvents learns them on the way, never folds them.

import { b64urlDecode, utf8 } from "./b64.js";
import { openEnvelope, sealEnvelope } from "./envelope.js";
import { DashError } from "./errors.js";
import { bounded } from "./hlc.js";
import { uuid7 } from "./uuid7.js";

export const KEY_ENTITY = "_tenant_key";

// A JSON number written with a fraction or exponent is a Python float even when it is
// whole (1700000000.0): boxed, so the fold's type checks tell it from an int the way the
// Python fold does (an INTEGER column refuses a float). Fractional values stay numbers.
function reviver(_key, value, context) {
  if (typeof value === "number" && Number.isInteger(value) && context && /[.eE]/.test(context.source)) {
    return new Number(value); // eslint-disable-line no-new-wrappers
  }
  return value;
}

// Where a whole float may be written ("1796083200.0", "1e+20"): only then is the slower
// reviver needed. (A browser without JSON.parse source access leaves whole floats as
// numbers: the fold then takes 5.0 in an INTEGER column where the agents drop it.)
const MAYBE_WHOLE_FLOAT = /\d\.0+(?![0-9])|\d[eE]/;

// JSON text → value, floats marked as above. Throws SyntaxError on bad JSON.
export function parsePlain(text) {
  return MAYBE_WHOLE_FLOAT.test(text) ? JSON.parse(text, reviver) : JSON.parse(text);
}

function escapeString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c < 0x20 || c > 0x7f) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += s[i];
  }
  return out + '"';
}

// A number as Python writes it: an int in full, a float by repr() (shortest digits that
// round-trip, fixed notation from 1e-4 to 1e16, always with a fraction or an exponent).
function pyNumber(v, isFloat) {
  if (!Number.isFinite(v)) throw new DashError("a number in an event is not finite");
  if (!isFloat && Number.isInteger(v)) return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const sign = v < 0 ? "-" : "";
  const [mant, expText] = Math.abs(v).toExponential().split("e");
  const e = Number(expText);
  const digits = mant.replace(".", "");
  if (e >= -4 && e < 16) {
    if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
    return `${sign}${digits.slice(0, e + 1).padEnd(e + 1, "0")}.${digits.slice(e + 1) || "0"}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

// Python's json.dumps(value, sort_keys=True, separators=(",", ":")) (ensure_ascii too).
export function pyDumps(value) {
  if (value === null || value === undefined) return "null";
  if (value instanceof Number) return pyNumber(value.valueOf(), true);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return pyNumber(value, false);
  if (typeof value === "string") return escapeString(value);
  if (Array.isArray(value)) return "[" + value.map(pyDumps).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return "{" + keys.map((k) => escapeString(k) + ":" + pyDumps(value[k])).join(",") + "}";
  }
  throw new DashError(`an event holds a value JSON cannot carry (${typeof value})`);
}

// The plaintext bytes of an event, exactly as the Python client's _plain() makes them.
export function plainOf(ev) {
  return utf8.encode(pyDumps({ hlc: ev.hlc, entity: ev.entity, key: ev.key, op: ev.op, data: ev.data }));
}

function checkShape(doc) {
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new DashError("a pulled event is not a JSON object");
  for (const name of ["hlc", "entity", "key", "op"]) {
    if (typeof doc[name] !== "string") throw new DashError(`a pulled event has no valid '${name}'`);
  }
  if (!doc.data || typeof doc.data !== "object" || Array.isArray(doc.data)) throw new DashError("a pulled event's data is not an object");
}

// Open one pulled item {seq,id,origin,envelope,received_at}: the plain event, or null for
// a tenant key (learned into the keyring). Throws DashError naming the event otherwise.
export async function openEvent(keyring, tenantId, item) {
  const plain = await openEnvelope(keyring, tenantId, item.envelope, item.id, item.origin);
  let doc;
  try {
    doc = parsePlain(utf8.decode(plain));
    if (doc && doc.entity === KEY_ENTITY) {
      await keyring.add(String(doc.data.kid), b64urlDecode(String(doc.data.key)));
      return null;
    }
    checkShape(doc);
  } catch (exc) {
    const why = exc instanceof DashError ? exc.message : "its payload is malformed";
    throw new DashError(`event ${item.id} from agent ${item.origin} cannot be used: ${why}`, { code: "malformed" });
  }
  const hlc = bounded(doc.hlc, item.received_at);
  return { id: item.id, hlc, origin: item.origin, entity: doc.entity, key: doc.key, op: doc.op, data: doc.data };
}

// The plain events of a pulled batch, in order, learning tenant keys on the way. An event
// that does not open is not folded: it is listed in the result's `refused`
// ([{seq, id, origin, message}]) so one bad event cannot halt the dashboard, and the app
// shows why. An event sealed under a key that arrives later in the batch is retried.
export async function openEvents(keyring, tenantId, rawEvents) {
  const out = [];
  const refused = [];
  const retry = [];
  let learned = 0;
  for (const item of rawEvents) {
    const before = keyring.keys.size;
    try {
      const ev = await openEvent(keyring, tenantId, item);
      if (ev) out.push(ev);
    } catch (exc) {
      if (!(exc instanceof DashError)) throw exc;
      (exc.code === "unknown_key" ? retry : refused).push({ item, exc });
    }
    learned += keyring.keys.size - before;
  }
  for (const { item, exc } of retry) {
    if (learned === 0) {
      refused.push({ item, exc });
      continue;
    }
    try {
      const ev = await openEvent(keyring, tenantId, item);
      if (ev) out.push(ev);
    } catch (again) {
      if (!(again instanceof DashError)) throw again;
      refused.push({ item, exc: again });
    }
  }
  out.refused = refused.map(({ item, exc }) => ({ seq: item.seq, id: item.id, origin: item.origin, message: exc.message }));
  out.learned = learned;
  return out;
}

// Decompress the concatenation of ``chunks`` (a Blob joins them).
async function gunzip(chunks) {
  const stream = new Blob(chunks).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The plain events of a snapshot's parts (opened), decompressed: gzip of JSON lines.
export async function decodeSnapshot(chunks) {
  let text;
  try {
    text = utf8.decode(await gunzip(chunks));
  } catch {
    throw new DashError("the cloud's snapshot does not decode (damaged or not a snapshot)");
  }
  const out = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    let d;
    try {
      d = parsePlain(line);
    } catch {
      throw new DashError("the cloud's snapshot holds something that is not an event");
    }
    const ok =
      d && typeof d === "object" && ["id", "hlc", "origin", "entity", "key", "op"].every((k) => typeof d[k] === "string") &&
      d.data && typeof d.data === "object" && !Array.isArray(d.data);
    if (!ok) throw new DashError("the cloud's snapshot holds something that is not an event");
    out.push({ id: d.id, hlc: d.hlc, origin: d.origin, entity: d.entity, key: d.key, op: d.op, data: d.data });
  }
  return out;
}

// The newest snapshot {id, seq, events}, or null if the cloud has none. A part is sealed
// with "snapshot:<id>:<i>" in place of an event id and the snapshot's origin.
export async function loadSnapshot(cloud, keyring, tenantId) {
  const meta = await cloud.snapshot();
  if (!meta) return null;
  const chunks = [];
  for (let i = 0; i < Number(meta.parts); i++) {
    const part = await cloud.snapshotPart(meta.id, i);
    chunks.push(await openEnvelope(keyring, tenantId, part.envelope, `snapshot:${meta.id}:${i}`, String(meta.origin)));
  }
  return { id: String(meta.id), seq: Number(meta.seq), events: await decodeSnapshot(chunks) };
}

// A new event of this dashboard, sealed for push: {id, origin, envelope, event}, where
// `event` is the plain event to fold locally at once.
export async function sealEvent(keyring, tenantId, clock, origin, entity, key, op, data) {
  const id = uuid7();
  const ev = { id, hlc: clock.now(), origin, entity, key, op, data };
  const envelope = await sealEnvelope(keyring, tenantId, plainOf(ev), id, origin);
  return { id, origin, envelope, event: ev };
}
