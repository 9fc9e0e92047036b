// The agent fold's rules as the browser applies them: the entity specs (from the generated
// core/entities.js) and what an event's field becomes in the fold (fold._row_values and
// fold._fits), decided once when the event arrives, so the fold keeps plain values only.

import { ENTITIES as GENERATED } from "./entities.js";

export const OPS = new Set(["upsert", "delete", "append", "erase"]);
export const LOCAL_COLUMNS = new Set(["id", "created_at", "updated_at"]);
const INT64 = 2 ** 63;
export const SEP = "\u0000";
// A field's write the agents ignore (wrong type, a reference that is not a name): a state
// entity's fold skips it (the older valid write stands), an append record holding one is
// ignored whole. Keeps the raw value (erase.js passes it through untouched).
export const BAD = "\u0000bad";
export const bad = (raw) => ({ [BAD]: raw === undefined ? null : raw });
export const isBad = (v) => v !== null && typeof v === "object" && Object.hasOwn(v, BAD);

// Entities the agents will sync (issue 16) before their tables exist in this schema:
// folded loosely (every field kept) until entities.js describes them.
const PROVISIONAL = {
  request: { kind: "append", rank: 4 },
  request_result: { kind: "append", rank: 4 },
  suspense: { kind: "state", rank: 4 },
};
// Entities whose events carry more than their table keeps, read with Fold.record().
const KEEP_ALL_FIELDS = new Set(["request", "request_result"]);
// Fields never kept in clear whatever the entity (a subscriber.add request carries the new
// subscriber's password); the agents' tables hold such values only sealed.
export const SECRET_NAMES = new Set(["password", "radius_secret"]);

export const STATE_ENTITIES = [
  "subscriber", "plan", "payment", "ledger", "pop", "voucher", "voucher_use", "invoice", "credit_note",
  "suspense", "request", "request_result", "router", "sms_consent", "usage",
];

function finish(spec) {
  const { columns } = spec;
  spec.insertTemplate = {};
  spec.notNull = [];
  spec.required = [];
  for (const [c, d] of Object.entries(columns)) {
    if (d.required && c !== "created_at" && c !== "updated_at") spec.required.push(c);
    if (d.pk || LOCAL_COLUMNS.has(c)) continue;
    if (d.notnull) spec.notNull.push(c);
    if (!spec.secretColumns.has(c) && spec.field(c) === c) spec.insertTemplate[c] = d.default;
  }
  return spec;
}

function buildSpecs() {
  const specs = {};
  for (const [name, g] of Object.entries(GENERATED)) {
    const refColumns = Object.values(g.refs).map((r) => r.column);
    const derived = new Set([...Object.values(g.secrets), ...refColumns, ...Object.values(g.stamps), ...LOCAL_COLUMNS]);
    const refColumnField = {};
    for (const [f, r] of Object.entries(g.refs)) refColumnField[r.column] = f;
    // A column as the JS row holds it: a reference column by its field (a name).
    const field = (c) => refColumnField[c] || c;
    specs[name] = finish({
      ...g,
      name,
      loose: false,
      keepAll: KEEP_ALL_FIELDS.has(name),
      derived,
      secretColumns: new Set(Object.values(g.secrets)),
      field,
      uniques: g.uniques.map((u) => ({ ...u, fields: u.columns.map(field), where: u.where && { ...u.where, field: field(u.where.column) } })),
      checks: g.checks.map((c) => ({ ...c, field: field(c.column) })),
      foreignKeys: g.foreignKeys.map((f) => ({ ...f, field: field(f.column) })),
    });
  }
  for (const [name, p] of Object.entries(PROVISIONAL)) {
    if (specs[name]) continue;
    specs[name] = finish({
      name, loose: true, keepAll: true, kind: p.kind, rank: p.rank, key: "", table: name, secrets: {}, refs: {},
      stamps: {}, columns: {}, checks: [], uniques: [], foreignKeys: [], derived: LOCAL_COLUMNS,
      secretColumns: new Set(), field: (c) => c,
    });
  }
  // Who refers to whom: a row others refer to cannot be deleted (foreign keys are on).
  for (const spec of Object.values(specs)) spec.referrers = [];
  for (const spec of Object.values(specs)) {
    for (const fk of spec.foreignKeys) if (fk.entity && specs[fk.entity]) specs[fk.entity].referrers.push({ spec, fk });
  }
  return specs;
}

export const SPECS = buildSpecs();

// Changes when the rules change: a fold cached under other rules is folded again.
export const RULES_VERSION = (() => {
  const text = JSON.stringify(GENERATED);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `r1-${h.toString(16)}`;
})();

export class Unresolved extends Error {}
export class Refused extends Error {}

export function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// An event's place in the fold: "hlc id". The space sorts below every character of an
// agent id, so string order is the agents' ORDER BY hlc, id.
export function clockOf(ev) {
  return ev.hlc + " " + ev.id;
}

export function idOf(clock) {
  return clock.slice(clock.lastIndexOf(" ") + 1);
}

export function wallSeconds(clock) {
  return Number(clock.slice(0, clock.indexOf("."))) / 1000;
}

export function unbox(v) {
  return v instanceof Number ? v.valueOf() : v;
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Number);
}

// fold._fits: does an event value suit a column of declared type `decl` (null always does)?
// A whole float arrives boxed (core/sync.js parsePlain), so an INTEGER column refuses it.
export function fits(value, decl) {
  if (value === null || value === undefined) return true;
  if (decl === "INTEGER") {
    if (typeof value === "boolean") return true; // a Python bool is an int
    return typeof value === "number" && Number.isInteger(value) && value >= -INT64 && value < INT64;
  }
  if (decl === "REAL") {
    const n = unbox(value);
    return typeof n === "number" && Number.isFinite(n) && Math.abs(n) < 1e18;
  }
  if (decl === "TEXT") return typeof value === "string" || Array.isArray(value) || isPlainObject(value);
  return false; // BLOB columns (sealed secrets) are never set from events
}

function plain(v) {
  if (v instanceof Number) return v.valueOf();
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = plain(v[k]);
    return out;
  }
  return v;
}

export const SKIP = Symbol("skip");

// What the fold keeps of one field of an event: the value a row would take (bool as 0/1,
// objects as objects), bad(raw) if the agents drop it, true/null for a secret (set or
// not: never the secret), or SKIP if it can never reach a row.
export function keep(spec, name, value) {
  if (name in spec.secrets || SECRET_NAMES.has(name)) return value === null || value === undefined ? null : true;
  if (spec.loose) return LOCAL_COLUMNS.has(name) ? SKIP : plain(value);
  if (name in spec.refs) return typeof value === "string" ? value : bad(plain(value));
  if (spec.derived.has(name)) return SKIP; // derived locally
  const col = spec.columns[name];
  if (!col) return spec.keepAll ? plain(value) : SKIP;
  if (!fits(value, col.type)) return bad(plain(value));
  if (typeof value === "boolean") return value ? 1 : 0;
  return plain(value);
}

export function keepAll(spec, data) {
  const out = {};
  if (!data || typeof data !== "object") return out;
  for (const k of Object.keys(data)) {
    const v = keep(spec, k, data[k]);
    if (v !== SKIP) out[k] = v;
  }
  return out;
}

// Python's ==, for an event's data against a stored row (fold._converge_money).
export function pyEqual(a, b) {
  if (isBad(a)) a = a[BAD];
  if (typeof a === "boolean") a = a ? 1 : 0;
  if (typeof b === "boolean") b = b ? 1 : 0;
  if (a === null || a === undefined) return b === null || b === undefined;
  if (typeof a === "object" || typeof b === "object") return false; // JSON text vs a dict
  return a === b;
}

export function asciiUpper(s) {
  return s.replace(/[a-z]/g, (c) => c.toUpperCase());
}

// ------------------------------------------------------------ compact state records
// {d: clock of the latest delete | null, w: clock of the latest write | null,
//  c: [clocks], f: {field: value}, t: {field: index into c}}: per field its latest write,
// which is the agents' fold (in clock order, a delete clearing what came before) whatever
// the order events arrive in.

export function newRecord() {
  return { d: null, w: null, c: [], f: {}, t: {} };
}

export function fieldClock(rec, name) {
  const i = rec.t[name];
  return i === undefined ? null : rec.c[i];
}

export function setField(rec, name, clock, value) {
  let i = rec.c.indexOf(clock);
  if (i < 0) {
    const old = rec.t[name];
    let shared = old === undefined;
    if (!shared) for (const k in rec.t) if (k !== name && rec.t[k] === old) shared = true;
    if (!shared) rec.c[(i = old)] = clock; // the field's old clock is no one else's: reuse it
    else {
      if (rec.c.length >= 8) compactClocks(rec);
      i = rec.c.push(clock) - 1;
    }
  }
  rec.f[name] = value;
  rec.t[name] = i;
}

export function dropField(rec, name) {
  delete rec.f[name];
  delete rec.t[name];
}

function compactClocks(rec) {
  const used = [...new Set(Object.values(rec.t))].sort((a, b) => a - b);
  const map = new Map(used.map((old, i) => [old, i]));
  rec.c = used.map((i) => rec.c[i]);
  for (const k of Object.keys(rec.t)) rec.t[k] = map.get(rec.t[k]);
}

// Forget what a delete at `clock` cleared.
export function clearBefore(rec, clock) {
  for (const name of Object.keys(rec.f)) if (fieldClock(rec, name) <= clock) dropField(rec, name);
  if (rec.w && rec.w <= clock) rec.w = null;
}

// Two records of one row (their events now share a key, after an erasure).
export function mergeRecord(into, rec) {
  if (!into) return rec;
  if (rec.d && (!into.d || rec.d > into.d)) into.d = rec.d;
  if (rec.w && (!into.w || rec.w > into.w)) into.w = rec.w;
  for (const name of Object.keys(rec.f)) {
    const clock = fieldClock(rec, name);
    const mine = fieldClock(into, name);
    if (!mine || clock > mine) setField(into, name, clock, rec.f[name]);
  }
  if (into.d) clearBefore(into, into.d);
  return into;
}
