// The dashboard's fold at a tenant's scale, in this browser (bench/dashboard_fold.py drives
// it): #subscribers=50000&events=1000000&sample=20000 in the URL's fragment. Synthetic
// events like the agents' (plan, subscribers, paid-through updates, payments with their
// ledger entries); the figures go to #result as JSON.

import { openEvents, sealEvent } from "../js/core/sync.js";
import { Fold, balances } from "../js/core/fold.js";
import { Clock } from "../js/core/hlc.js";
import { Keyring } from "../js/core/keys.js";

const O = "0190a000-0000-7000-8000-0000000000aa";
const T0 = 1796083200000;

function events(subscribers, total) {
  let n = 0;
  const id = () => `0190a000-0000-7000-8000-${(n++).toString(16).padStart(12, "0")}`;
  const hlc = (ms) => `${String(ms).padStart(15, "0")}.000000.${O}`;
  const out = [];
  const plan = { billing: "prepaid", burst: null, currency: "KES", devices: 1, name: "home", period: "30d", portal: 0, price_minor: 150000, rate: "10M/10M", tax_inclusive: 0, tax_rate_bp: 0 };
  out.push({ id: id(), hlc: hlc(T0), origin: O, entity: "plan", key: "home", op: "upsert", data: plan });
  for (let i = 0; i < subscribers; i++) {
    const username = `user${i}`;
    const data = { ip: null, mac: null, name: `Name ${i}`, password: "pw", phone: `+2547${String(i).padStart(8, "0")}`, plan: "home", service: "pppoe", sms_consent: false, status: "active", tax_pin: null, username };
    out.push({ id: id(), hlc: hlc(T0 + i), origin: O, entity: "subscriber", key: username, op: "upsert", data });
  }
  let t = T0 + subscribers;
  while (out.length < total) {
    const i = out.length % subscribers;
    const r = out.length % 3;
    t += 1;
    const username = `user${i}`;
    if (r === 0) out.push({ id: id(), hlc: hlc(t), origin: O, entity: "subscriber", key: username, op: "upsert", data: { paid_until: 1798675200.5 + t } });
    else if (r === 1) {
      const ref = `REF${out.length}`;
      out.push({ id: id(), hlc: hlc(t), origin: O, entity: "payment", key: ref, op: "append", data: { amount_minor: 150000, currency: "KES", method: "mpesa", received_at: t / 1000, recorded_by: "t", reference: ref, username } });
    } else {
      const ref = `REF${out.length - 1}`;
      out.push({ id: id(), hlc: hlc(t), origin: O, entity: "ledger", key: `payment:${ref}`, op: "append", data: { amount_minor: 150000, at: t / 1000, currency: "KES", description: "mpesa payment", kind: "payment", reference: ref, username } });
    }
  }
  return out;
}

function idb(doc) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("jasiyo-fold-bench", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("kv");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const t0 = performance.now();
      const put = db.transaction("kv", "readwrite");
      put.objectStore("kv").put(doc, "fold");
      put.oncomplete = () => {
        const t1 = performance.now();
        const get = db.transaction("kv").objectStore("kv").get("fold");
        get.onsuccess = () => {
          const t2 = performance.now();
          db.close();
          resolve({ value: get.result, put_ms: t1 - t0, get_ms: t2 - t1 });
        };
        get.onerror = () => reject(get.error);
      };
      put.onerror = () => reject(put.error);
    };
  });
}

const ms = (t) => Math.round(performance.now() - t);

async function main() {
  const p = new URLSearchParams(location.hash.slice(1));
  const subscribers = Number(p.get("subscribers") || 50000);
  const total = Number(p.get("events") || 1000000);
  const sample = Number(p.get("sample") || 20000);
  const out = { subscribers, events: total };

  // Opening: AES-256-GCM per event through WebCrypto, on a sample.
  const ring = new Keyring("0190a000-0000-7000-8000-0000000000c1", "k00000000a001");
  await ring.add("k00000000a001", crypto.getRandomValues(new Uint8Array(32)));
  const clock = new Clock(O);
  const plain = events(50, Math.max(sample, 100)).slice(0, sample);
  const sealed = [];
  for (const ev of plain) {
    const s = await sealEvent(ring, ring.tenantId, clock, O, ev.entity, ev.key, ev.op, ev.data);
    sealed.push({ seq: sealed.length + 1, id: s.id, origin: O, envelope: s.envelope, received_at: T0 / 1000 });
  }
  let t = performance.now();
  const opened = await openEvents(ring, ring.tenantId, sealed);
  out.open_per_s = Math.round(opened.length / ((performance.now() - t) / 1000));

  const all = events(subscribers, total);
  const fold = new Fold();
  t = performance.now();
  for (let i = 0; i < all.length; i += 1000) fold.apply(all.slice(i, i + 1000));
  out.fold_ms = ms(t);
  out.rows = Object.fromEntries(Object.entries(fold.state()).map(([k, v]) => [k, Object.keys(v).length]).filter(([, n]) => n));

  t = performance.now();
  const doc = fold.toJSON();
  out.to_json_ms = ms(t);
  out.cache_mb = Math.round(Object.values(doc.entities).reduce((n, e) => n + e.rows.length + e.records.length + e.sealed.length, 0) / 1e6);
  const stored = await idb(doc);
  out.idb_put_ms = Math.round(stored.put_ms);
  out.idb_get_ms = Math.round(stored.get_ms);

  t = performance.now();
  const again = Fold.fromJSON(stored.value);
  const state = again.state();
  const list = Object.keys(state.subscriber).length;
  out.reopen_to_subscriber_rows_ms = ms(t);
  t = performance.now();
  const b = balances(state);
  out.balances_ms = ms(t);
  out.reopened = { subscribers: list, balances: Object.keys(b).length };
  t = performance.now();
  again.apply(all.slice(all.length - 10));
  out.first_apply_after_reopen_ms = ms(t);

  document.getElementById("summary").textContent = "done";
  const el = document.getElementById("result");
  el.textContent = JSON.stringify(out);
  el.dataset.done = "1";
}

main().catch((exc) => {
  const el = document.getElementById("result");
  el.textContent = JSON.stringify({ error: String((exc && exc.stack) || exc) });
  el.dataset.done = "1";
});
