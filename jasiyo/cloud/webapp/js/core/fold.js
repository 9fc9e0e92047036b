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

import { eraseInto } from "./erase.js";
import {
  LOCAL_COLUMNS, OPS, Refused, SECRET_NAMES, SEP, SPECS, STATE_ENTITIES, Unresolved, after, asciiUpper, cmp, fits, freeze, keep,
  keepAll, pyEqual, stored, thaw, unbox, wallSeconds,
} from "./foldrules.js";

export { SPECS, STATE_ENTITIES, fits } from "./foldrules.js";

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
    for (const ev of erasures) eraseInto(this, ev, touched);
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
      for (const [name, v] of Object.entries(state)) if (!LOCAL_COLUMNS.has(name) && !SECRET_NAMES.has(name)) values[name] = unbox(v);
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
      if (fk.ref || !fk.entity) continue; // resolved above (Unresolved), or a table only the POP has
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

  // --------------------------------------------------------------- reading

  // {entity: {key: row}} for every entity the dashboard shows (rows are live: read only).
  state() {
    const out = {};
    for (const name of STATE_ENTITIES) out[name] = this.rows[name] || {};
    for (const name of Object.keys(this.rows)) if (!(name in out)) out[name] = this.rows[name];
    return out;
  }

  // The data of an entity's event(s) as they carry it, before the table's columns are
  // applied (secrets masked as true/null): for an append entity the earliest event's data
  // (a request's username, amount...), for a state entity the latest value of each field.
  // null if no event is known.
  record(entity, key) {
    const rec = (this.records[entity] || {})[key];
    if (!rec) return null;
    if (rec.a) return rec.a[2];
    const out = {};
    for (const [name, f] of Object.entries(rec.f)) out[name] = f[2];
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
