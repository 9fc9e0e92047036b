// Erasure as the dashboard folds it (jasiyo/agent/scrub.py apply_erasure): the person's
// row and events move to the pseudonym without their personal data; their money stays,
// under the pseudonym; their usage summaries move too. Functions over a Fold.

import { SEP, SPECS, isBad, mergeRecord } from "./foldrules.js";
import { sha256Hex } from "./sha256.js";

// As jasiyo/agent/scrub.py.
const PERSONAL = ["name", "phone", "ip", "tax_pin", "mac"];
const MONEY_PERSONAL = ["phone", "payer", "customer_tax_pin", "source", "msisdn"];
const PSEUDONYM = /^erased-[0-9a-f]{12}$/;
const ERASED = "[erased]";

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
  if (isBad(v)) return v;
  if (k === "password" && password !== null) return true; // the new password: set, never kept
  if (k === "username" && v === username) return pseudonym;
  if (typeof v === "string") return scrubText(v, found);
  return v;
}

// The username an erasure's hash names, among subscribers or their events (scrub._find).
function findErased(fold, subject) {
  for (const name of Object.keys(fold._table("subscriber"))) {
    if (!name.startsWith("erased-") && sha256Hex(`jasiyo-erasure|${name}`) === subject) return name;
  }
  for (const name of Object.keys(fold.records.subscriber || {})) {
    if (!PSEUDONYM.test(name) && sha256Hex(`jasiyo-erasure|${name}`) === subject) return name;
  }
  return null;
}

// scrub._rename_usage: summaries keyed "username|cycle|agent" move to the pseudonym.
function renameUsage(fold, username, pseudonym) {
  const spec = SPECS.usage;
  if (!spec) return;
  const prefix = username + "|";
  const recs = fold.records.usage || {};
  for (const key of Object.keys(recs)) {
    if (!key.startsWith(prefix)) continue;
    const rec = recs[key];
    delete recs[key];
    if (rec.f && rec.f.username === username) rec.f.username = pseudonym;
    const to = pseudonym + key.slice(username.length);
    recs[to] = mergeRecord(recs[to], rec);
  }
  const rows = fold._table("usage");
  for (const key of Object.keys(rows)) {
    if (!key.startsWith(prefix)) continue;
    const row = rows[key];
    const to = pseudonym + key.slice(username.length);
    fold._dropRow(spec, key);
    if (!rows[to]) fold._putRow(spec, to, { ...row, key: to }, null);
  }
  for (const [key, row] of Object.entries(rows)) {
    if (row.username === username) fold._putRow(spec, key, { ...row, username: pseudonym }, null);
  }
}

// scrub._scrub_dashboard: the dashboard's requests about them (a new subscriber's carries
// name, phone, password), their results, and unmatched payments that named them.
function scrubDashboard(fold, username, pseudonym, found) {
  const escaped = username.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const word = new RegExp(`(?<![\\p{L}\\p{N}_.@-])${escaped}(?![\\p{L}\\p{N}_@-])`, "gu");
  const text = (v) => (typeof v === "string" ? scrubText(v.replace(word, pseudonym), found) : v);
  const about = (d, fields) =>
    fields.some((f) => d[f] === username) || Object.values(d).some((v) => typeof v === "string" && found.some((t) => v.includes(t)));
  const rewrite = (d, clear) => {
    for (const k of Object.keys(d)) d[k] = isBad(d[k]) ? d[k] : text(d[k]);
    for (const k of clear) if (k in d) d[k] = null;
  };
  const requests = [];
  for (const [key, rec] of Object.entries(fold.records.request || {})) {
    if (rec.data && about(rec.data, ["username"])) {
      rewrite(rec.data, [...PERSONAL, "password"]);
      requests.push(key);
      const row = fold._table("request")[key];
      if (row) {
        const copy = { ...row };
        rewrite(copy, PERSONAL);
        fold._putRow(SPECS.request, key, copy, null);
      }
    }
  }
  for (const rec of Object.values(fold.records.suspense || {})) {
    if (rec.f && about(rec.f, ["account", "allocated_to"])) rewrite(rec.f, MONEY_PERSONAL);
  }
  const spec = SPECS.request_result;
  for (const key of requests) {
    const rec = (fold.records.request_result || {})[key];
    if (rec && rec.data) rewrite(rec.data, []);
    const row = fold._table("request_result")[key];
    if (spec && row && typeof row.message === "string" && text(row.message) !== row.message) {
      fold._putRow(spec, key, { ...row, message: text(row.message) }, null);
    }
  }
}

// scrub._scrub_local_tables for the unmatched payments: the phone and payer go, the
// account (and the allocation) name the pseudonym.
function scrubSuspenseRows(fold, username, pseudonym) {
  const spec = SPECS.suspense;
  if (!spec) return;
  for (const [key, r] of Object.entries(fold._table("suspense"))) {
    let row = r;
    if (row.account === username) row = { ...row, phone: null, payer: null, account: pseudonym };
    if (row.allocated_to === username) row = { ...row, allocated_to: pseudonym };
    if (row !== r) fold._putRow(spec, key, row, null);
  }
}

// Carry out an erasure event (op "erase" on subscriber, key = the pseudonym) on `fold`;
// `touched` gains what must be materialised after.
export function eraseInto(fold, ev, touched) {
  const pseudonym = ev.key;
  const data = ev.data || {};
  if (!PSEUDONYM.test(pseudonym) || typeof data.password !== "string") return;
  const username = findErased(fold, String(data.subject ?? ""));
  if (username === null) return;
  const subSpec = SPECS.subscriber;
  const row = fold._table("subscriber")[username] || null;
  const recs = (fold.records.subscriber ||= {});
  const rec = recs[username];
  let found = traces(row || {});
  if (!row && rec) found = [...new Set(traces(rec.f))].sort();
  if (rec) {
    for (const k of Object.keys(rec.f)) rec.f[k] = scrubValue(k, rec.f[k], username, pseudonym, found, PERSONAL, true);
    delete recs[username];
    recs[pseudonym] = mergeRecord(recs[pseudonym], rec);
  }
  renameUsage(fold, username, pseudonym);
  scrubDashboard(fold, username, pseudonym, found);
  if (!row) return;
  scrubSuspenseRows(fold, username, pseudonym);
  const money = (f, v) => scrubValue(f, v, username, pseudonym, found, MONEY_PERSONAL, null);
  for (const name of ["payment", "ledger", "invoice", "credit_note", "sms_consent"]) {
    const spec = SPECS[name];
    if (!spec) continue;
    for (const [k, r] of Object.entries(fold._table(name))) {
      if (r.username !== username) continue;
      if (name === "ledger" && (r.reference === null || r.reference === undefined)) continue;
      const mrec = (fold.records[name] || {})[k];
      const held = mrec && (mrec.data || (typeof mrec.c !== "string" && mrec.f));
      if (held) for (const f of Object.keys(held)) held[f] = money(f, held[f]);
      fold._putRow(spec, k, { ...r, username: pseudonym }, (fold.sealed[name] || {})[k]);
    }
  }
  if (row.mac) {
    for (const name of ["voucher", "voucher_use"]) {
      for (const [k, r] of Object.entries(fold._table(name))) {
        if (r.mac !== row.mac) continue;
        const vrec = (fold.records[name] || {})[k];
        const held = vrec && (vrec.data || (typeof vrec.c !== "string" && vrec.f));
        if (held && held.mac === row.mac) held.mac = null;
        fold._putRow(SPECS[name], k, { ...r, mac: null }, (fold.sealed[name] || {})[k]);
      }
    }
  }
  const moved = {
    ...row, username: pseudonym, name: null, phone: null, ip: null, tax_pin: null, mac: null, sms_consent: 0,
    status: "terminated", status_reason: "erased",
  };
  const seal = { ...((fold.sealed.subscriber || {})[username] || {}), password_enc: true };
  fold._dropRow(subSpec, username);
  fold._putRow(subSpec, pseudonym, moved, seal);
  touched.add("subscriber" + SEP + pseudonym);
}
