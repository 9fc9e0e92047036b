// The tenant's state folded from its events, by the rules of jasiyo/agent/fold.py, so the
// dashboard shows the rows every agent computes.
//
// - State entities: per (entity, key) the events fold in (hlc, id) order; an upsert sets
//   the fields it carries, a delete clears everything written before it, an erase sets
//   the fields it clears. Kept compactly: per field the latest write, and the latest
//   delete, which is the same fold whatever order events arrive in.
// - Append entities (payments, ledger entries, ...): the earliest event per key is the
//   record; a payment is one payment by its reference whatever its case.
// - Only what an event may set reaches a row, as in fold._row_values: fields that are
//   columns of the agent's table, of the declared type (fold._fits), never a secret (a
//   password stays out of the state), never a column the agent derives itself. A row
//   missing a required column is not shown; a row a constraint of the agent's store would
//   refuse (CHECK, UNIQUE, a reference not arrived yet) waits, pending, as on a POP.
//
// The tables' columns and constraints come from core/entities.js (generated from the
// agent's schema). References (a subscriber's plan, a payment's username) hold the
// referenced row's name.

import { ENTITIES as GENERATED } from "./entities.js";
import { sha256Hex } from "./sha256.js";

const OPS = new Set(["upsert", "delete", "append", "erase"]);
const LOCAL_COLUMNS = new Set(["id", "created_at", "updated_at"]);
const INT64 = 2 ** 63;
const SEP = "\u0000";

// Entities the agents will sync (issue 16) before their tables exist in this schema:
// folded loosely (every field kept) until entities.js describes them.
const PROVISIONAL = {
  request: { kind: "append", rank: 4 },
  request_result: { kind: "append", rank: 4 },
  suspense: { kind: "state", rank: 4 },
};

// As jasiyo/agent/scrub.py.
const PERSONAL = ["name", "phone", "ip", "tax_pin", "mac"];
const MONEY_PERSONAL = ["phone", "payer", "customer_tax_pin", "source", "msisdn"];
const PSEUDONYM = /^erased-[0-9a-f]{12}$/;
const ERASED = "[erased]";

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

class Unresolved extends Error {}
class Refused extends Error {}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// (hlc, id) order, as the agents' ORDER BY hlc, id.
function after(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

function unbox(v) {
  return v instanceof Number ? v.valueOf() : v;
}

function isFloatBox(v) {
  return v instanceof Number;
}

function isPlainObject(v) {
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
function stored(v, decl) {
  if (typeof v === "boolean") return v ? 1 : 0;
  v = unbox(v);
  if (decl === "REAL" && typeof v === "number") return v;
  return v;
}

// Python's ==, for comparing an event's data with a stored row (fold._converge_money).
function pyEqual(a, b) {
  a = unbox(a);
  b = unbox(b);
  if (typeof a === "boolean") a = a ? 1 : 0;
  if (typeof b === "boolean") b = b ? 1 : 0;
  if (a === null || a === undefined) return b === null || b === undefined;
  if (typeof a === "object" || typeof b === "object") return false; // JSON text vs a dict
  return a === b;
}

function asciiUpper(s) {
  return s.replace(/[a-z]/g, (c) => c.toUpperCase());
}

function clone(v) {
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
function freeze(v) {
  if (v instanceof Number) return { $f: v.valueOf() };
  if (Array.isArray(v)) return v.map(freeze);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = freeze(v[k]);
    return out;
  }
  return v;
}

function thaw(v) {
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

// What the fold keeps of a field: a secret only as whether it is set (true or null), so
// no password reaches the state or the cache; anything else as a copy.
function keep(spec, name, value) {
  if (name in spec.secrets) return value === null || value === undefined ? null : true;
  return clone(value);
}

function keepAll(spec, data) {
  const out = {};
  for (const [k, v] of Object.entries(data && typeof data === "object" ? data : {})) out[k] = keep(spec, k, v);
  return out;
}

function wallSeconds(hlc) {
  const dot = hlc.indexOf(".");
  return Number(dot < 0 ? hlc : hlc.slice(0, dot)) / 1000;
}

function traces(values) {
  // scrub._traces: the name (3+ characters), the phone's last nine digits.
  const out = [];
  if (typeof values.name === "string" && values.name.length >= 3) out.push(values.name);
  const digits = String(values.phone || "").replace(/\D/g, "");
  if (digits.length >= 9) out.push(digits.slice(-9));
  return out;
}

function scrubText(value, found) {
  for (const t of found) if (value.includes(t)) value = value.split(t).join(ERASED);
  return value;
}

function scrubValue(k, v, username, pseudonym, found, personal, password) {
  if (personal.includes(k)) return null;
  if (k === "password" && password !== null) return true; // a new password: set, never kept
  if (k === "username" && v === username) return pseudonym;
  if (typeof v === "string") return scrubText(v, found);
  return v;
}

export class Fold {
  constructor() {
    // entity -> key -> compact record: state {d: [hlc,id]|null, w: [hlc,id]|null,
    // f: {field: [hlc, id, value]}}; append {a: [hlc, id, data], ids: [other ids]}.
    this.records = {};
    // entity -> key -> row (what state() shows).
    this.rows = {};
    // entity -> key -> {secret column: set (not null)}: never shown.
    this.sealed = {};
    this.pending = new Set(); // "entity\0key" waiting for a reference, or in conflict
    this.conflicts = {}; // "entity\0key" -> why (what a POP would log)
    this.applied = 0;
    this._index();
  }

  // --------------------------------------------------------------- indexes

  _index() {
    // (entity, unique #) -> Map(value tuple -> row key); (entity, fk #) -> Map(value -> Set(keys))
    this.uidx = {};
    this.fidx = {};
    for (const [name, spec] of Object.entries(SPECS)) {
      this.uidx[name] = spec.uniques.map(() => new Map());
      this.fidx[name] = spec.foreignKeys.map(() => new Map());
      for (const [key, row] of Object.entries(this.rows[name] || {})) this._indexRow(spec, key, row, true);
    }
  }

  _uniqueValue(u, row) {
    if (u.where) {
      const w = row[u.where.field];
      if (u.where.notNull ? w === null || w === undefined : w !== u.where.equals) return null;
    }
    const parts = [];
    for (const f of u.fields) {
      let v = row[f];
      if (v === null || v === undefined) return null; // NULLs never collide
      v = unbox(v);
      if (u.upper) v = typeof v === "string" ? asciiUpper(v) : v;
      parts.push(typeof v + ":" + (typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    return parts.join(SEP);
  }

  _indexRow(spec, key, row, add) {
    spec.uniques.forEach((u, i) => {
      const v = this._uniqueValue(u, row);
      if (v === null) return;
      if (add) this.uidx[spec.name][i].set(v, key);
      else if (this.uidx[spec.name][i].get(v) === key) this.uidx[spec.name][i].delete(v);
    });
    spec.foreignKeys.forEach((fk, i) => {
      const v = row[fk.field];
      if (v === null || v === undefined) return;
      const m = this.fidx[spec.name][i];
      if (add) {
        if (!m.has(v)) m.set(v, new Set());
        m.get(v).add(key);
      } else if (m.has(v)) {
        m.get(v).delete(key);
        if (!m.get(v).size) m.delete(v);
      }
    });
  }

  _table(entity) {
    if (!this.rows[entity]) this.rows[entity] = {};
    return this.rows[entity];
  }

  _putRow(spec, key, row, sealed) {
    const table = this._table(spec.name);
    if (table[key]) this._indexRow(spec, key, table[key], false);
    table[key] = row;
    this._indexRow(spec, key, row, true);
    if (sealed && Object.keys(sealed).length) (this.sealed[spec.name] ||= {})[key] = sealed;
    else if (this.sealed[spec.name]) delete this.sealed[spec.name][key];
  }

  _dropRow(spec, key) {
    const table = this._table(spec.name);
    if (!table[key]) return;
    this._indexRow(spec, key, table[key], false);
    delete table[key];
    if (this.sealed[spec.name]) delete this.sealed[spec.name][key];
  }

  // --------------------------------------------------------------- apply

  // Fold a batch of opened events {id, hlc, origin, entity, key, op, data}; how many were
  // new. Synchronous; the same batch twice changes nothing.
  apply(events) {
    const touched = new Set();
    const erasures = [];
    let applied = 0;
    for (const ev of events) {
      if (!ev || !OPS.has(ev.op) || typeof ev.entity !== "string" || typeof ev.key !== "string") continue;
      const spec = SPECS[ev.entity];
      if (!spec) continue; // an agent's entity this dashboard does not show
      const isNew = spec.kind === "append" ? this._takeAppend(ev) : this._takeState(ev);
      if (isNew === null) continue;
      if (isNew) {
        applied += 1;
        if (ev.op === "erase" && ev.entity === "subscriber") erasures.push(ev);
      }
      touched.add(ev.entity + SEP + ev.key);
    }
    for (const ev of erasures) this._erase(ev, touched);
    if (!touched.size) return applied;
    for (const p of this.pending) touched.add(p);
    this.pending = this._settleAll(touched);
    this.applied += applied;
    return applied;
  }

  // A state entity's event into its compact record. true: it changed something we keep
  // (or may have); null: a duplicate that changes nothing.
  _takeState(ev) {
    const spec = SPECS[ev.entity];
    const recs = (this.records[ev.entity] ||= {});
    const rec = (recs[ev.key] ||= { d: null, w: null, f: {} });
    const clock = [ev.hlc, ev.id];
    if (ev.op === "delete") {
      if (rec.d && !after(clock, rec.d)) return rec.d[1] === ev.id ? null : true;
      rec.d = clock;
      for (const [name, f] of Object.entries(rec.f)) if (!after([f[0], f[1]], clock)) delete rec.f[name];
      if (rec.w && !after(rec.w, clock)) rec.w = null;
      return true;
    }
    const data = ev.data && typeof ev.data === "object" ? ev.data : {};
    if (rec.d && !after(clock, rec.d)) return true; // older than a delete: folded away
    if (!rec.w || after(clock, rec.w)) rec.w = clock;
    for (const [name, value] of Object.entries(data)) {
      const f = rec.f[name];
      if (f && f[1] === ev.id && f[0] > ev.hlc) f[0] = ev.hlc; // our own event, its clock bounded by the cloud
      else if (!f || after(clock, [f[0], f[1]])) rec.f[name] = [ev.hlc, ev.id, keep(spec, name, value)];
    }
    return true;
  }

  _takeAppend(ev) {
    if (ev.op !== "append") return true; // stored by the agents, never folded
    const recs = (this.records[ev.entity] ||= {});
    const rec = recs[ev.key];
    const clock = [ev.hlc, ev.id];
    if (!rec) {
      recs[ev.key] = { a: [ev.hlc, ev.id, keepAll(SPECS[ev.entity], ev.data)], ids: [] };
      return true;
    }
    if (rec.a[1] === ev.id || rec.ids.includes(ev.id)) return null; // seen: not touched again
    if (after([rec.a[0], rec.a[1]], clock)) {
      rec.ids.push(rec.a[1]);
      rec.a = [ev.hlc, ev.id, keepAll(SPECS[ev.entity], ev.data)];
    } else {
      rec.ids.push(ev.id);
    }
    return true;
  }

  // --------------------------------------------------------------- settling

  _settleAll(todo) {
    let waiting = [...todo];
    for (;;) {
      const order = waiting
        .map((ek) => {
          const i = ek.indexOf(SEP);
          return [ek.slice(0, i), ek.slice(i + 1), ek];
        })
        .sort((a, b) => SPECS[a[0]].rank - SPECS[b[0]].rank || cmp(a[0], b[0]) || cmp(a[1], b[1]));
      const still = order.filter(([e, k]) => !this._settle(e, k)).map((x) => x[2]);
      if (still.length === waiting.length) return new Set(still);
      waiting = still;
    }
  }

  _settle(entity, key) {
    const spec = SPECS[entity];
    try {
      if (spec.kind === "append") this._settleAppend(spec, key);
      else this._materialize(spec, key);
      delete this.conflicts[entity + SEP + key];
      return true;
    } catch (exc) {
      if (exc instanceof Unresolved) return false;
      if (exc instanceof Refused) {
        this.conflicts[entity + SEP + key] = exc.message;
        return false;
      }
      throw exc;
    }
  }

  // fold._fold over the compact record: (fields, wall time per field, exists).
  _foldState(spec, key) {
    const rec = (this.records[spec.name] || {})[key];
    const state = {};
    const stamps = {};
    if (!rec || !rec.w) return { state, stamps, exists: false };
    for (const [name, f] of Object.entries(rec.f)) {
      state[name] = f[2];
      stamps[name] = wallSeconds(f[0]);
    }
    return { state, stamps, exists: true };
  }

  // fold._row_values: {values (row fields), sealed (secret columns set)}; Unresolved if a
  // referenced row has not arrived.
  _rowValues(spec, key, state, stamps) {
    const values = {};
    const sealed = {};
    if (spec.loose) {
      for (const [name, v] of Object.entries(state)) if (!LOCAL_COLUMNS.has(name)) values[name] = unbox(v);
      return { values, sealed };
    }
    const cols = spec.columns;
    for (const [name, value] of Object.entries(state)) {
      const isSecret = name in spec.secrets;
      const isRef = name in spec.refs;
      if (spec.derived.has(name) && !isSecret && !isRef) continue; // derived locally
      if (!isSecret && !isRef && name in cols && !fits(value, cols[name].type)) continue; // not a valid TYPE
      if (isSecret) {
        sealed[spec.secrets[name]] = value !== null && value !== undefined;
      } else if (isRef) {
        if (typeof value !== "string") continue; // reference is not a name
        const ref = spec.refs[name];
        if (!(this.rows[ref.entity] && Object.hasOwn(this.rows[ref.entity], value))) throw new Unresolved();
        values[name] = value;
      } else if (name in cols && !LOCAL_COLUMNS.has(name)) {
        values[name] = stored(value, cols[name].type);
      }
    }
    for (const [name, column] of Object.entries(spec.stamps)) {
      if (name in stamps && column in cols) values[column] = stamps[name];
    }
    if (spec.key) values[spec.key] = key;
    return { values, sealed };
  }

  // Columns present: a row's fields, references by their column, secrets by theirs.
  _present(spec, values, sealed) {
    const out = new Set(Object.keys(sealed));
    for (const name of Object.keys(values)) out.add(name in spec.refs ? spec.refs[name].column : name);
    return out;
  }

  // Would the agent's store accept this row (NOT NULL, CHECK, UNIQUE, foreign keys)?
  // Returns the reason it would not, or null.
  _violation(spec, key, row, sealed) {
    if (spec.loose) return null;
    for (const [col, c] of Object.entries(spec.columns)) {
      if (!c.notnull || c.pk || LOCAL_COLUMNS.has(col)) continue;
      if (spec.secretColumns.has(col)) {
        if (sealed[col] === false) return `NOT NULL constraint failed: ${spec.table}.${col}`;
        continue;
      }
      const v = row[spec.field(col)];
      if (v === null || v === undefined) return `NOT NULL constraint failed: ${spec.table}.${col}`;
    }
    for (const ch of spec.checks) {
      let v = unbox(row[ch.field]);
      if (v === null || v === undefined) continue;
      if (typeof v === "boolean") v = v ? 1 : 0;
      const ok = ch.in
        ? ch.in.some((x) => x === v)
        : typeof v === "number" &&
          { ">": v > ch.value, ">=": v >= ch.value, "<": v < ch.value, "<=": v <= ch.value }[ch.op];
      if (!ok) return `CHECK constraint failed: ${ch.column}`;
    }
    for (let i = 0; i < spec.uniques.length; i++) {
      const v = this._uniqueValue(spec.uniques[i], row);
      if (v === null) continue;
      const other = this.uidx[spec.name][i].get(v);
      if (other !== undefined && other !== key) return `UNIQUE constraint failed: ${spec.table}.${spec.uniques[i].columns.join(", ")}`;
    }
    for (const fk of spec.foreignKeys) {
      if (fk.ref) continue; // resolved above (Unresolved)
      const v = row[fk.field];
      if (v === null || v === undefined) continue;
      const target = fk.entity && this.rows[fk.entity];
      const tspec = fk.entity && SPECS[fk.entity];
      const there = target && (tspec.key === fk.targetColumn ? Object.hasOwn(target, v) : Object.values(target).some((r) => r[tspec.field(fk.targetColumn)] === v));
      if (!there) {
        return `FOREIGN KEY constraint failed: ${spec.table}.${fk.column}`;
      }
    }
    return null;
  }

  // Remove a row unless others refer to it (a restricting foreign key); cascades.
  _delete(spec, key) {
    const row = this._table(spec.name)[key];
    if (!row) return;
    const cascades = [];
    for (const { spec: from, fk } of spec.referrers) {
      // A reference holds the referenced row's name: its key here.
      const target = fk.ref ? key : row[spec.field(fk.targetColumn)];
      const i = from.foreignKeys.indexOf(fk);
      const keys = this.fidx[from.name][i].get(target);
      if (!keys || !keys.size) continue;
      if (!fk.cascade) throw new Refused(`FOREIGN KEY constraint failed: ${from.table} refers to ${spec.table} ${key}`);
      cascades.push([from, [...keys]]);
    }
    for (const [from, keys] of cascades) for (const k of keys) this._dropRow(from, k);
    this._dropRow(spec, key);
  }

  // fold.materialize: make a state entity's row equal the fold of its events.
  _materialize(spec, key) {
    const { state, stamps, exists } = this._foldState(spec, key);
    const current = this._table(spec.name)[key];
    const { values, sealed } = exists ? this._rowValues(spec, key, state, stamps) : { values: {}, sealed: {} };
    const present = this._present(spec, values, sealed);
    const missing = Object.entries(spec.columns).some(([c, d]) => d.required && !present.has(c) && c !== "created_at" && c !== "updated_at");
    if (!exists || missing) {
      if (current) this._delete(spec, key);
      return;
    }
    let row;
    let seal;
    if (current) {
      row = { ...current, ...values }; // UPDATE sets the columns given, keeps the rest
      seal = { ...((this.sealed[spec.name] || {})[key] || {}), ...sealed };
    } else {
      row = {};
      for (const [c, d] of Object.entries(spec.columns)) {
        if (d.pk || LOCAL_COLUMNS.has(c) || spec.secretColumns.has(c) || c in spec.refs || spec.field(c) !== c) continue;
        row[c] = d.default;
      }
      Object.assign(row, values);
      seal = { ...sealed };
    }
    const why = this._violation(spec, key, row, seal);
    if (why) throw new Refused(why);
    this._putRow(spec, key, row, seal);
  }

  // The stored row with the natural key of a payment or ledger entry (fold._money_row),
  // found through the unique index the agents' store has for it.
  _moneyRow(spec, key, data) {
    let probe;
    let upper;
    if (spec.name === "payment") {
      probe = { reference: key };
      upper = true;
    } else {
      const { kind, reference } = data;
      if (typeof kind !== "string" || typeof reference !== "string") return null;
      probe = { kind, reference };
      upper = kind === "payment";
    }
    for (let i = 0; i < spec.uniques.length; i++) {
      const u = spec.uniques[i];
      if (u.upper !== upper || !u.fields.includes("reference")) continue;
      if (spec.name === "ledger" && (upper ? !u.where || u.where.field !== "kind" : u.fields.length !== 2)) continue;
      const v = this._uniqueValue(u, probe);
      if (v === null) continue;
      const k = this.uidx[spec.name][i].get(v);
      const r = k === undefined ? null : this._table(spec.name)[k];
      if (r && (spec.name === "payment" || r.kind === probe.kind)) return [k, r];
    }
    return null;
  }

  // An append entity: its earliest event is the record (fold._settle, insert_append).
  _settleAppend(spec, key) {
    const rec = (this.records[spec.name] || {})[key];
    if (!rec) return;
    const data = rec.a[2];
    const { values, sealed } = this._rowValues(spec, key, data, {}); // Unresolved first: nothing changed
    if (spec.name === "payment" || spec.name === "ledger") {
      // fold._converge_money: one receipt is one payment; the stored one gives way to
      // the earliest event of this key unless it is the same record.
      const found = this._moneyRow(spec, key, data);
      if (found) {
        const [k, r] = found;
        const same = Object.entries(data).every(([f, v]) => !(f in r) || pyEqual(r[f], v));
        if (same) {
          if (k !== key) return; // INSERT OR IGNORE meets the unique reference
        } else {
          this._dropRow(spec, k);
        }
      }
    } else if (spec.name === "voucher_use") {
      const r = this._table(spec.name)[key];
      if (r && !(pyEqual(r.started_at, data.started_at) && pyEqual(r.mac, data.mac) && pyEqual(r.pop, data.pop))) this._dropRow(spec, key);
    }
    if (this._table(spec.name)[key] && !spec.loose) return; // INSERT OR IGNORE: the key is taken
    if (spec.loose) {
      this._putRow(spec, key, values, sealed);
      return;
    }
    const row = {};
    for (const [c, d] of Object.entries(spec.columns)) {
      if (d.pk || LOCAL_COLUMNS.has(c) || spec.secretColumns.has(c) || spec.field(c) !== c) continue;
      row[c] = d.default;
    }
    Object.assign(row, values);
    const present = this._present(spec, values, sealed);
    const missing = Object.entries(spec.columns).some(([c, d]) => d.required && !present.has(c));
    const why = missing ? "NOT NULL" : this._violation(spec, key, row, sealed);
    if (why && why.startsWith("FOREIGN KEY")) throw new Refused(why); // OR IGNORE does not cover these
    if (why) return; // INSERT OR IGNORE: skipped, as on every POP
    this._putRow(spec, key, row, sealed);
  }

  // --------------------------------------------------------------- erasure

  // scrub.apply_erasure: the person's row and events move to the pseudonym, without their
  // personal data; their money stays, under the pseudonym.
  _erase(ev, touched) {
    const pseudonym = ev.key;
    const data = ev.data || {};
    const password = data.password;
    if (!PSEUDONYM.test(pseudonym) || typeof password !== "string") return;
    const subject = String(data.subject ?? "");
    const username = this._findErased(subject);
    if (username === null) return;
    const subSpec = SPECS.subscriber;
    const row = this._table("subscriber")[username] || null;
    let found = traces(row || {});
    const recs = (this.records.subscriber ||= {});
    const rec = recs[username];
    if (!row && rec) {
      const vals = {};
      for (const [k, f] of Object.entries(rec.f)) vals[k] = f[2];
      found = [...new Set(traces(vals))].sort();
    }
    if (rec) {
      for (const [k, f] of Object.entries(rec.f)) f[2] = scrubValue(k, f[2], username, pseudonym, found, PERSONAL, password);
      delete recs[username];
      const into = recs[pseudonym];
      if (!into) recs[pseudonym] = rec;
      else {
        if (rec.d && (!into.d || after(rec.d, into.d))) into.d = rec.d;
        if (rec.w && (!into.w || after(rec.w, into.w))) into.w = rec.w;
        for (const [k, f] of Object.entries(rec.f)) if (!into.f[k] || after([f[0], f[1]], [into.f[k][0], into.f[k][1]])) into.f[k] = f;
        if (into.d) {
          for (const [k, f] of Object.entries(into.f)) if (!after([f[0], f[1]], into.d)) delete into.f[k];
          if (into.w && !after(into.w, into.d)) into.w = null;
        }
      }
    }
    if (!row) return;
    for (const name of ["payment", "ledger", "invoice", "credit_note", "sms_consent"]) {
      const spec = SPECS[name];
      if (!spec) continue;
      for (const [k, r] of Object.entries(this._table(name))) {
        if (r.username !== username) continue;
        if (name === "ledger" && (r.reference === null || r.reference === undefined)) continue;
        const mrec = (this.records[name] || {})[k];
        if (mrec && mrec.a) {
          const d = mrec.a[2];
          for (const f of Object.keys(d)) d[f] = scrubValue(f, d[f], username, pseudonym, found, MONEY_PERSONAL, null);
        } else if (mrec && mrec.f) {
          for (const [f, v] of Object.entries(mrec.f)) v[2] = scrubValue(f, v[2], username, pseudonym, found, MONEY_PERSONAL, null);
        }
        this._putRow(spec, k, { ...r, username: pseudonym }, (this.sealed[name] || {})[k]);
      }
    }
    if (row.mac) {
      for (const name of ["voucher", "voucher_use"]) {
        for (const [k, r] of Object.entries(this._table(name))) {
          if (r.mac !== row.mac) continue;
          const vrec = (this.records[name] || {})[k];
          if (vrec && vrec.a && vrec.a[2].mac === row.mac) vrec.a[2].mac = null;
          if (vrec && vrec.f && vrec.f.mac && vrec.f.mac[2] === row.mac) vrec.f.mac[2] = null;
          this._putRow(SPECS[name], k, { ...r, mac: null }, (this.sealed[name] || {})[k]);
        }
      }
    }
    const moved = { ...row, username: pseudonym, name: null, phone: null, ip: null, tax_pin: null, mac: null, sms_consent: 0, status: "terminated", status_reason: "erased" };
    const seal = { ...((this.sealed.subscriber || {})[username] || {}), password_enc: true };
    this._dropRow(subSpec, username);
    this._putRow(subSpec, pseudonym, moved, seal);
    touched.add("subscriber" + SEP + pseudonym);
  }

  _findErased(subject) {
    for (const name of Object.keys(this._table("subscriber"))) {
      if (!name.startsWith("erased-") && sha256Hex(`jasiyo-erasure|${name}`) === subject) return name;
    }
    for (const name of Object.keys(this.records.subscriber || {})) {
      if (!PSEUDONYM.test(name) && sha256Hex(`jasiyo-erasure|${name}`) === subject) return name;
    }
    return null;
  }

  // --------------------------------------------------------------- reading

  // {entity: {key: row}} for every entity the dashboard shows (rows are live: read only).
  state() {
    const out = {};
    for (const name of STATE_ENTITIES) out[name] = this.rows[name] || {};
    for (const name of Object.keys(this.rows)) if (!(name in out)) out[name] = this.rows[name];
    return out;
  }

  // Entities waiting (a reference not arrived, or a row the agents' store would refuse).
  waiting() {
    return [...this.pending].map((ek) => {
      const i = ek.indexOf(SEP);
      return { entity: ek.slice(0, i), key: ek.slice(i + 1), reason: this.conflicts[ek] || "waiting for a referenced row" };
    });
  }

  toJSON() {
    const rows = {};
    for (const [e, t] of Object.entries(this.rows)) {
      rows[e] = {};
      for (const [k, r] of Object.entries(t)) rows[e][k] = freeze(r);
    }
    return {
      format: "jasiyo-dashboard-fold-v1",
      records: freeze(this.records),
      rows,
      sealed: this.sealed,
      pending: [...this.pending],
      conflicts: this.conflicts,
      applied: this.applied,
    };
  }

  static fromJSON(obj) {
    const f = new Fold();
    if (!obj || obj.format !== "jasiyo-dashboard-fold-v1") return f;
    f.records = thaw(obj.records || {});
    f.rows = {};
    for (const [e, t] of Object.entries(obj.rows || {})) {
      f.rows[e] = {};
      for (const [k, r] of Object.entries(t)) f.rows[e][k] = thaw(r);
    }
    f.sealed = obj.sealed || {};
    f.pending = new Set(obj.pending || []);
    f.conflicts = obj.conflicts || {};
    f.applied = obj.applied || 0;
    f._index();
    return f;
  }
}

export { balances, revenueByDay, localDay } from "./views.js";
