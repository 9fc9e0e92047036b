// The tenant's state folded from its events, by the rules of jasiyo/agent/fold.py, so the
// dashboard shows the rows every agent computes.
//
// - State entities: per (entity, key) the events fold in (hlc, id) order; an upsert sets
//   the fields it carries, a delete clears everything written before it, an erase sets
//   the fields it clears. Kept compactly: per field the latest write, and the latest
//   delete, which is the same fold whatever order events arrive in.
// - Append entities (payments, ledger entries, ...): the earliest valid event per key is
//   the record (one with a badly typed field is ignored whole); a payment is one payment
//   by its reference whatever its case.
// - Only what an event may set reaches a row, as in fold._row_values: fields that are
//   columns of the agent's table, of the declared type (fold._fits), never a secret (a
//   password stays out of the state and of its cache), never a column the agent derives.
//   A row missing a required column is not shown; a row a constraint of the agent's store
//   would refuse (CHECK, UNIQUE, a reference not arrived yet) waits, pending, as on a POP.
//
// The tables' columns and constraints come from core/entities.js (generated from the
// agent's schema). References (a subscriber's plan, a payment's username) hold the
// referenced row's name. Not mirrored: what a POP does locally besides its rows (it logs a
// money conflict into its own suspense list; it voids a duplicate invoice by a new event,
// which reaches the dashboard like any other).

import { eraseInto } from "./erase.js";
import {
  BAD, OPS, RULES_VERSION, Refused, SECRET_NAMES, SEP, SPECS, STATE_ENTITIES, Unresolved, asciiUpper, clearBefore, clockOf, cmp,
  fieldClock, idOf, isBad, keep, keepAll, newRecord, pyEqual, setField, SKIP, unbox, wallSeconds,
} from "./foldrules.js";

export { SPECS, STATE_ENTITIES, fits } from "./foldrules.js";

const FORMAT = "jasiyo-dashboard-fold-v2";

export class Fold {
  constructor() {
    // entity -> key -> compact record: state, see foldrules.newRecord; append
    // {c: clock of the earliest event, ids?: [other event ids], data?: its data, kept
    // while no row holds it}.
    this.records = {};
    this.rows = {}; // entity -> key -> row (what state() shows)
    this.sealed = {}; // entity -> key -> {secret column: set (not null)}: never shown
    this.pending = new Set(); // "entity\0key" waiting for a reference, or in conflict
    this.conflicts = {}; // "entity\0key" -> why (what a POP would log)
    this.applied = 0;
    this._asleep = null; // records not read yet from a cache (Fold.fromJSON)
    this._rowsAsleep = null; // rows not read yet, by entity
    this._index();
  }

  // --------------------------------------------------------------- indexes

  _index() {
    // (entity, unique #) -> Map(value tuple -> row key); (entity, fk #) -> Map(value ->
    // rows referring to it: a count, or the Set of their keys where deletes cascade)
    this.uidx = {};
    this.fidx = {};
    for (const [name, spec] of Object.entries(SPECS)) {
      this.uidx[name] = spec.uniques.map(() => new Map());
      this.fidx[name] = spec.foreignKeys.map(() => new Map());
      const rows = this.rows[name];
      if (rows) for (const key of Object.keys(rows)) this._reindex(spec, key, null, rows[key]);
    }
  }

  _uniqueValue(u, row) {
    if (u.where) {
      const w = row[u.where.field];
      if (u.where.notNull ? w === null || w === undefined : w !== u.where.equals) return null;
    }
    let out = "";
    for (const f of u.fields) {
      let v = row[f];
      if (v === null || v === undefined) return null; // NULLs never collide
      if (u.upper && typeof v === "string") v = asciiUpper(v);
      out += (out ? SEP : "") + typeof v + ":" + (typeof v === "object" ? JSON.stringify(v) : String(v));
    }
    return out;
  }

  // Index a row (old = null), unindex it (row = null), or move it from old to row.
  _reindex(spec, key, old, row) {
    const uniques = spec.uniques;
    for (let i = 0; i < uniques.length; i++) {
      const was = old ? this._uniqueValue(uniques[i], old) : null;
      const now = row ? this._uniqueValue(uniques[i], row) : null;
      if (was === now) continue;
      const m = this.uidx[spec.name][i];
      if (was !== null && m.get(was) === key) m.delete(was);
      if (now !== null) m.set(now, key);
    }
    const fks = spec.foreignKeys;
    for (let i = 0; i < fks.length; i++) {
      const f = fks[i].field;
      const was = old ? old[f] : null;
      const now = row ? row[f] : null;
      if (was === now) continue;
      const m = this.fidx[spec.name][i];
      // Counts, but the keys themselves where a delete cascades to them.
      if (was !== null && was !== undefined) {
        const held = m.get(was);
        if (fks[i].cascade) {
          held.delete(key);
          if (!held.size) m.delete(was);
        } else if (held > 1) m.set(was, held - 1);
        else m.delete(was);
      }
      if (now !== null && now !== undefined) {
        if (fks[i].cascade) {
          let keys = m.get(now);
          if (!keys) m.set(now, (keys = new Set()));
          keys.add(key);
        } else m.set(now, (m.get(now) || 0) + 1);
      }
    }
  }

  _table(entity) {
    return this.rows[entity] || (this.rows[entity] = {});
  }

  _putRow(spec, key, row, sealed) {
    const table = this._table(spec.name);
    this._reindex(spec, key, table[key] || null, row);
    table[key] = row;
    if (sealed && Object.keys(sealed).length) (this.sealed[spec.name] ||= {})[key] = sealed;
    else if (this.sealed[spec.name]) delete this.sealed[spec.name][key];
    if (spec.kind === "append" && !spec.keepAll) {
      const rec = (this.records[spec.name] || {})[key];
      if (rec) delete rec.data; // the row holds it now
    }
  }

  _dropRow(spec, key) {
    const table = this._table(spec.name);
    const row = table[key];
    if (!row) return;
    if (spec.kind === "append") {
      // The record's data again (only the row held it): re-settled later, it comes back.
      const rec = (this.records[spec.name] || {})[key];
      if (rec && !rec.data) rec.data = { ...row };
    }
    this._reindex(spec, key, row, null);
    delete table[key];
    if (this.sealed[spec.name]) delete this.sealed[spec.name][key];
  }

  // --------------------------------------------------------------- apply

  // Fold a batch of opened events {id, hlc, origin, entity, key, op, data}; how many were
  // new. Synchronous; the same batch twice changes nothing.
  apply(events) {
    this._wake();
    const touched = new Set();
    const erasures = [];
    let applied = 0;
    for (const ev of events) {
      if (!ev || !OPS.has(ev.op) || typeof ev.entity !== "string" || typeof ev.key !== "string") continue;
      const spec = SPECS[ev.entity];
      if (!spec) continue; // an agent's entity this dashboard does not show
      const isNew = spec.kind === "append" ? this._takeAppend(spec, ev) : this._takeState(spec, ev);
      if (isNew === null) continue;
      applied += 1;
      if (ev.op === "erase" && ev.entity === "subscriber") erasures.push(ev);
      touched.add(ev.entity + SEP + ev.key);
    }
    for (const ev of erasures) eraseInto(this, ev, touched);
    if (!touched.size) return applied;
    for (const p of this.pending) touched.add(p);
    this.pending = this._settleAll(touched);
    this.applied += applied;
    return applied;
  }

  // A state entity's event into its record; null if it can change nothing (a duplicate).
  _takeState(spec, ev) {
    const recs = this.records[spec.name] || (this.records[spec.name] = {});
    const rec = recs[ev.key] || (recs[ev.key] = newRecord());
    const clock = clockOf(ev);
    if (ev.op === "delete") {
      if (rec.d && clock <= rec.d) return clock === rec.d ? null : true;
      rec.d = clock;
      clearBefore(rec, clock);
      return true;
    }
    if (rec.d && clock <= rec.d) return true; // older than a delete: folded away
    if (!rec.w || clock > rec.w) rec.w = clock;
    const data = ev.data && typeof ev.data === "object" ? ev.data : {};
    for (const name of Object.keys(data)) {
      const value = keep(spec, name, data[name]);
      // fold._valid_fields: a badly typed write is as if never made, the older value stands
      if (value === SKIP || isBad(value)) continue;
      const mine = fieldClock(rec, name);
      if (!mine || clock > mine) setField(rec, name, clock, value);
      else if (idOf(mine) === ev.id && clock < mine) setField(rec, name, clock, rec.f[name]); // our own, bounded by the cloud
    }
    return true;
  }

  _takeAppend(spec, ev) {
    if (ev.op !== "append") return true; // stored by the agents, never folded
    const recs = this.records[spec.name] || (this.records[spec.name] = {});
    const rec = recs[ev.key];
    const clock = clockOf(ev);
    if (rec && ((rec.c && idOf(rec.c) === ev.id) || (rec.ids && rec.ids.includes(ev.id)))) return null; // seen: not touched again
    const data = keepAll(spec, ev.data);
    // fold._first_valid_record: a record with a badly typed field is ignored whole (c stays
    // null while no valid one has come), never half kept nor put before a valid one; a
    // request is kept as it came (the agents answer a bad one with a refusal).
    const valid = spec.keepAll || !Object.values(data).some(isBad);
    if (!rec) {
      recs[ev.key] = valid ? { c: clock, data } : { c: null, ids: [ev.id] };
      return true;
    }
    if (!valid || (rec.c && clock > rec.c)) {
      (rec.ids || (rec.ids = [])).push(ev.id);
      return true;
    }
    if (rec.c) (rec.ids || (rec.ids = [])).push(idOf(rec.c));
    rec.c = clock;
    rec.data = data;
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
      const still = [];
      for (const [e, k, ek] of order) if (!this._settle(e, k)) still.push(ek);
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

  // fold._row_values over kept values: {values (row fields), sealed (secret columns set),
  // present (columns given)}; Unresolved if a referenced row has not arrived.
  _rowValues(spec, key, fields, clocks) {
    const values = {};
    const sealed = {};
    for (const name of Object.keys(fields)) {
      const value = fields[name];
      if (isBad(value)) continue;
      if (name in spec.secrets) {
        sealed[spec.secrets[name]] = value !== null && value !== undefined;
      } else if (name in spec.refs) {
        const ref = spec.refs[name];
        const target = this.rows[ref.entity];
        if (!target || !Object.hasOwn(target, value)) throw new Unresolved();
        values[name] = value;
      } else if (SECRET_NAMES.has(name)) {
        continue;
      } else if (spec.loose || spec.keepAll || name in spec.columns) {
        values[name] = unbox(value); // keepAll: a request's details ride along with its row
      }
    }
    if (clocks) {
      for (const [name, column] of Object.entries(spec.stamps)) {
        const clock = fieldClock(clocks, name);
        if (clock && column in spec.columns) values[column] = wallSeconds(clock);
      }
    }
    if (spec.key) values[spec.key] = key;
    return { values, sealed };
  }

  _missing(spec, values, sealed) {
    for (const c of spec.required) {
      if (spec.secretColumns.has(c) ? !(c in sealed) : !(spec.field(c) in values)) return true;
    }
    return false;
  }

  // Would the agent's store accept this row (NOT NULL, CHECK, UNIQUE, foreign keys)?
  // Returns the reason it would not, or null.
  _violation(spec, key, row, sealed) {
    if (spec.loose) return null;
    for (const col of spec.notNull) {
      if (spec.secretColumns.has(col)) {
        if (sealed[col] === false) return `NOT NULL constraint failed: ${spec.table}.${col}`;
        continue;
      }
      const v = row[spec.field(col)];
      if (v === null || v === undefined) return `NOT NULL constraint failed: ${spec.table}.${col}`;
    }
    for (const ch of spec.checks) {
      const v = row[ch.field];
      if (v === null || v === undefined) continue;
      let ok;
      if (ch.in) ok = ch.in.includes(v);
      else if (typeof v !== "number") ok = false;
      else if (ch.op === ">") ok = v > ch.value;
      else if (ch.op === ">=") ok = v >= ch.value;
      else if (ch.op === "<") ok = v < ch.value;
      else ok = v <= ch.value;
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
      const target = this.rows[fk.entity];
      const tspec = SPECS[fk.entity];
      const there = target && (tspec.key === fk.targetColumn ? Object.hasOwn(target, v) : Object.values(target).some((r) => r[tspec.field(fk.targetColumn)] === v));
      if (!there) return `FOREIGN KEY constraint failed: ${spec.table}.${fk.column}`;
    }
    return null;
  }

  // Remove a row unless others refer to it (a restricting foreign key); cascades.
  _delete(spec, key) {
    const row = this._table(spec.name)[key];
    if (!row) return;
    const cascades = [];
    for (const { spec: from, fk } of spec.referrers) {
      const target = fk.ref ? key : row[spec.field(fk.targetColumn)]; // a reference holds the name: the key
      const held = this.fidx[from.name][from.foreignKeys.indexOf(fk)].get(target);
      if (!held) continue;
      if (!fk.cascade) throw new Refused(`FOREIGN KEY constraint failed: ${from.table} refers to ${spec.table} ${key}`);
      cascades.push([from, [...held]]);
    }
    for (const [from, keys] of cascades) for (const k of keys) this._dropRow(from, k);
    this._dropRow(spec, key);
  }

  // fold.materialize: make a state entity's row equal the fold of its events.
  _materialize(spec, key) {
    const rec = (this.records[spec.name] || {})[key];
    const exists = !!(rec && rec.w);
    const current = this._table(spec.name)[key];
    if (!exists) {
      if (current) this._delete(spec, key);
      return;
    }
    const { values, sealed } = this._rowValues(spec, key, rec.f, rec);
    if (this._missing(spec, values, sealed)) {
      if (current) this._delete(spec, key);
      return;
    }
    let row;
    let seal;
    if (current) {
      row = Object.assign({}, current, values); // UPDATE sets the columns given, keeps the rest
      seal = Object.assign({}, (this.sealed[spec.name] || {})[key], sealed);
    } else {
      row = Object.assign({}, spec.insertTemplate, values);
      seal = sealed;
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
    const table = this._table(spec.name);
    if (!rec || !rec.c || (!rec.data && table[key])) return; // no valid record, or its row holds it already
    const data = rec.data || {};
    const { values, sealed } = this._rowValues(spec, key, data, null); // Unresolved first: nothing changed
    if (spec.name === "payment" || spec.name === "ledger") {
      // fold._converge_money: one receipt is one payment; the stored one gives way to the
      // earliest event of this key unless it is the same record.
      const found = this._moneyRow(spec, key, data);
      if (found) {
        const [k, r] = found;
        let same = true;
        for (const f of Object.keys(data)) if (f in r && !pyEqual(data[f], r[f])) same = false;
        if (same) return; // INSERT OR IGNORE meets the unique reference
        this._dropRow(spec, k);
      }
    } else if (spec.name === "voucher_use") {
      const r = table[key];
      if (r && !(pyEqual(data.started_at, r.started_at) && pyEqual(data.mac, r.mac) && pyEqual(data.pop, r.pop))) this._dropRow(spec, key);
    }
    if (table[key]) return; // INSERT OR IGNORE: the key is taken
    if (spec.loose) {
      this._putRow(spec, key, values, sealed);
      return;
    }
    const row = Object.assign({}, spec.insertTemplate, values);
    const why = this._missing(spec, values, sealed) ? "NOT NULL" : this._violation(spec, key, row, sealed);
    if (why && why.startsWith("FOREIGN KEY")) throw new Refused(why); // OR IGNORE does not cover these
    if (why) return; // INSERT OR IGNORE: skipped, as on every POP
    this._putRow(spec, key, row, sealed);
  }

  // --------------------------------------------------------------- reading

  // {entity: {key: row}} for every entity the dashboard shows (rows are live: read only).
  // Just after Fold.fromJSON an entity's rows are read from the cache when first asked for
  // (the subscriber list does not wait for a million ledger rows).
  state() {
    const out = {};
    const names = new Set([...STATE_ENTITIES, ...Object.keys(this.rows), ...Object.keys(this._rowsAsleep || {})]);
    for (const name of names) {
      if (this._rowsAsleep && name in this._rowsAsleep) {
        Object.defineProperty(out, name, { enumerable: true, get: () => this._rowsOf(name) });
      } else out[name] = this.rows[name] || {};
    }
    return out;
  }

  _rowsOf(name) {
    if (this._rowsAsleep && name in this._rowsAsleep) {
      this.rows[name] = JSON.parse(this._rowsAsleep[name]);
      delete this._rowsAsleep[name];
    }
    return this.rows[name] || {};
  }

  // The data of an entity's events as they carry it, before the table's columns apply
  // (secrets as true/null): for a request (append) its event's data, the username and
  // amount a `request` row does not keep; for a state entity the latest value of each
  // field. null if no event is known.
  record(entity, key) {
    this._wake();
    const rec = (this.records[entity] || {})[key];
    if (!rec) return null;
    if (!Array.isArray(rec.c)) return rec.c ? rec.data || (this.rows[entity] || {})[key] || null : null; // append
    const out = {};
    for (const name of Object.keys(rec.f)) out[name] = isBad(rec.f[name]) ? rec.f[name][BAD] : rec.f[name];
    return out;
  }

  // Rows held back: a reference not arrived, or a row the agents' store would refuse.
  waiting() {
    return [...this.pending].map((ek) => {
      const i = ek.indexOf(SEP);
      return { entity: ek.slice(0, i), key: ek.slice(i + 1), reason: this.conflicts[ek] || "waiting for a referenced row" };
    });
  }

  // The cache form: a plain object of strings per entity (IndexedDB stores strings fast,
  // and JSON.stringify of it works too); Fold.fromJSON reads it back.
  toJSON() {
    const entities = {};
    const names = new Set([
      ...Object.keys(this.rows), ...Object.keys(this.records), ...Object.keys(this._asleep || {}),
      ...Object.keys(this._rowsAsleep || {}),
    ]);
    for (const name of names) {
      entities[name] = {
        rows: this._rowsAsleep && name in this._rowsAsleep ? this._rowsAsleep[name] : JSON.stringify(this.rows[name] || {}),
        records: this._asleep && name in this._asleep ? this._asleep[name] : JSON.stringify(this.records[name] || {}),
        sealed: JSON.stringify(this.sealed[name] || {}),
      };
    }
    return {
      format: FORMAT,
      rules: RULES_VERSION,
      applied: this.applied,
      pending: [...this.pending],
      conflicts: this.conflicts,
      entities,
    };
  }

  // The fold a cache holds, or null if it is not one or other rules wrote it (then fold
  // again from the start). The rows are ready at once; what folding needs next (the
  // records and the indexes) is read on the first apply().
  static fromJSON(obj) {
    if (!obj || obj.format !== FORMAT || obj.rules !== RULES_VERSION || !obj.entities) return null;
    const f = new Fold();
    f._asleep = {};
    f._rowsAsleep = {};
    for (const [name, part] of Object.entries(obj.entities)) {
      f._rowsAsleep[name] = part.rows;
      f.sealed[name] = JSON.parse(part.sealed);
      f._asleep[name] = part.records;
    }
    f.pending = new Set(obj.pending || []);
    f.conflicts = obj.conflicts || {};
    f.applied = obj.applied || 0;
    return f;
  }

  _wake() {
    if (!this._asleep) return;
    for (const name of Object.keys(this._rowsAsleep)) this._rowsOf(name);
    for (const [name, text] of Object.entries(this._asleep)) this.records[name] = JSON.parse(text);
    this._asleep = null;
    this._index();
  }
}

export { balances } from "./views.js";
