// The agent fold's rules as the browser applies them: the entity specs (from the generated
// core/entities.js), the type check of fold._fits, and the small value helpers of core/fold.js.

import { ENTITIES as GENERATED } from "./entities.js";

export const OPS = new Set(["upsert", "delete", "append", "erase"]);
export const LOCAL_COLUMNS = new Set(["id", "created_at", "updated_at"]);
const INT64 = 2 ** 63;
export const SEP = "\u0000";

// Entities the agents will sync (issue 16) before their tables exist in this schema:
// folded loosely (every field kept) until entities.js describes them.
const PROVISIONAL = {
  request: { kind: "append", rank: 4 },
  request_result: { kind: "append", rank: 4 },
  suspense: { kind: "state", rank: 4 },
};

export const STATE_ENTITIES = [
  "subscriber", "plan", "payment", "ledger", "pop", "voucher", "voucher_use", "invoice", "credit_note",
  "suspense", "request", "request_result", "router", "sms_consent", "usage",
];

function buildSpecs() {
  const specs = {};
  for (const [name, g] of Object.entries(GENERATED)) {
    const derived = new Set([...Object.values(g.secrets), ...Object.values(g.refs).map((r) => r.column), ...Object.values(g.stamps), ...LOCAL_COLUMNS]);
    const refColumnField = {};
    for (const [f, r] of Object.entries(g.refs)) refColumnField[r.column] = f;
    const secretColumns = new Set(Object.values(g.secrets));
    // A column as the JS row holds it: a reference column by its field (a name).
    const field = (c) => refColumnField[c] || c;
    specs[name] = {
      ...g,
      name,
      loose: false,
      derived,
      secretColumns,
      field,
      uniques: g.uniques.map((u) => ({ ...u, fields: u.columns.map(field), where: u.where && { ...u.where, field: field(u.where.column) } })),
      checks: g.checks.map((c) => ({ ...c, field: field(c.column) })),
      foreignKeys: g.foreignKeys.map((f) => ({ ...f, field: field(f.column) })),
    };
  }
  for (const [name, p] of Object.entries(PROVISIONAL)) {
    if (specs[name]) continue;
    specs[name] = {
      name, loose: true, kind: p.kind, rank: p.rank, key: "", table: name, secrets: {}, refs: {}, stamps: {}, columns: {},
      checks: [], uniques: [], foreignKeys: [], derived: LOCAL_COLUMNS, secretColumns: new Set(), field: (c) => c,
    };
  }
  // Who refers to whom: a row others refer to cannot be deleted (foreign keys are on).
  for (const spec of Object.values(specs)) spec.referrers = [];
  for (const spec of Object.values(specs)) {
    for (const fk of spec.foreignKeys) if (fk.entity && specs[fk.entity]) specs[fk.entity].referrers.push({ spec, fk });
  }
  return specs;
}

export const SPECS = buildSpecs();

export class Unresolved extends Error {}
export class Refused extends Error {}

export function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// (hlc, id) order, as the agents' ORDER BY hlc, id.
export function after(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

export function unbox(v) {
  return v instanceof Number ? v.valueOf() : v;
}

export function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Number);
}

// fold._fits: does an event value suit a column of declared type `decl` (null always does)?
export function fits(value, decl) {
  if (value === null || value === undefined) return true;
  if (decl === "INTEGER") {
    if (typeof value === "boolean") return true; // a Python bool is an int
    return typeof value === "number" && Number.isInteger(value) && value >= -INT64 && value < INT64;
  }
  if (decl === "REAL") {
    const n = unbox(value);
    return (typeof n === "number") && Number.isFinite(n) && Math.abs(n) < 1e18;
  }
  if (decl === "TEXT") return typeof value === "string" || Array.isArray(value) || isPlainObject(value);
  return false; // BLOB columns (sealed secrets) are never set from events
}

// fold._value, keeping objects as objects (the agent stores them as JSON text).
export function stored(v, decl) {
  if (typeof v === "boolean") return v ? 1 : 0;
  v = unbox(v);
  if (decl === "REAL" && typeof v === "number") return v;
  return v;
}

// Python's ==, for comparing an event's data with a stored row (fold._converge_money).
export function pyEqual(a, b) {
  a = unbox(a);
  b = unbox(b);
  if (typeof a === "boolean") a = a ? 1 : 0;
  if (typeof b === "boolean") b = b ? 1 : 0;
  if (a === null || a === undefined) return b === null || b === undefined;
  if (typeof a === "object" || typeof b === "object") return false; // JSON text vs a dict
  return a === b;
}

export function asciiUpper(s) {
  return s.replace(/[a-z]/g, (c) => c.toUpperCase());
}

export function clone(v) {
  if (v instanceof Number) return v;
  if (Array.isArray(v)) return v.map(clone);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = clone(v[k]);
    return out;
  }
  return v;
}

// Boxed floats survive toJSON/fromJSON as {"$f": n}.
export function freeze(v) {
  if (v instanceof Number) return { $f: v.valueOf() };
  if (Array.isArray(v)) return v.map(freeze);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = freeze(v[k]);
    return out;
  }
  return v;
}

export function thaw(v) {
  if (Array.isArray(v)) return v.map(thaw);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$f" && typeof v.$f === "number") return new Number(v.$f); // eslint-disable-line no-new-wrappers
    const out = {};
    for (const k of keys) out[k] = thaw(v[k]);
    return out;
  }
  return v;
}

// Fields never kept in clear whatever the entity (a subscriber.add request carries the
// new subscriber's password): the agents' tables have no such column outside secrets.
export const SECRET_NAMES = new Set(["password", "radius_secret"]);

// What the fold keeps of a field: a secret only as whether it is set (true or null), so
// no password reaches the state or the cache; anything else as a copy.
export function keep(spec, name, value) {
  if (name in spec.secrets || SECRET_NAMES.has(name)) return value === null || value === undefined ? null : true;
  return clone(value);
}

export function keepAll(spec, data) {
  const out = {};
  for (const [k, v] of Object.entries(data && typeof data === "object" ? data : {})) out[k] = keep(spec, k, v);
  return out;
}

export function wallSeconds(hlc) {
  const dot = hlc.indexOf(".");
  return Number(dot < 0 ? hlc : hlc.slice(0, dot)) / 1000;
}
