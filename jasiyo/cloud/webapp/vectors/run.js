// Runs every shared vector (sync-vectors.json, made by `python -m jasiyo.sync.vectors`)
// through the dashboard's core modules: one line per vector in the page, and
// window.vectorResults (and #result, as JSON) = {done, passed, failed, results: [{group,
// name, ok, detail}], messages} for tests/dashboard/test_vectors_browser.py.

import { b64Decode, b64urlDecode, utf8 } from "../js/core/b64.js";
import { openEnvelope, sealEnvelope } from "../js/core/envelope.js";
import { DashError } from "../js/core/errors.js";
import { Fold, balances } from "../js/core/fold.js";
import { Clock, bounded } from "../js/core/hlc.js";
import { Keyring, parseRecovery, unwrapKeyring, wrapKeyring } from "../js/core/keys.js";
import { canonical, identityFromSeed, signedHeaders, verify } from "../js/core/signing.js";
import { decodeSnapshot, openEvents, parsePlain, plainOf, sealEvent } from "../js/core/sync.js";
import { uuid7, UUID_RE } from "../js/core/uuid7.js";

const results = [];
const messages = {};

function unboxed(v) {
  return v instanceof Number ? v.valueOf() : v;
}

function same(a, b) {
  a = unboxed(a);
  b = unboxed(b);
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same(a[k], b[k]));
}

function expectEqual(got, want, what) {
  if (!same(got, want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

async function expectError(fn, text) {
  try {
    await fn();
  } catch (exc) {
    if (!(exc instanceof DashError)) throw new Error(`threw ${exc && exc.name}: ${exc && exc.message}, not a DashError`);
    if (!exc.message.includes(text)) throw new Error(`message ${JSON.stringify(exc.message)} does not say ${JSON.stringify(text)}`);
    return exc;
  }
  throw new Error(`did not fail (wanted: ${text})`);
}

async function check(group, name, fn) {
  try {
    await fn();
    results.push({ group, name, ok: true, detail: "" });
  } catch (exc) {
    results.push({ group, name, ok: false, detail: String((exc && exc.stack) || exc) });
  }
}

async function ringOf(tenantId, keys, current) {
  const ring = new Keyring(tenantId, current || Object.keys(keys)[0]);
  for (const [kid, k] of Object.entries(keys)) await ring.add(kid, b64urlDecode(k));
  return ring;
}

async function envelopes(cases) {
  for (const c of cases) {
    await check("envelope", c.name, async () => {
      const ring = await ringOf(c.tenant_id, c.keys, c.kid);
      const open = () => openEnvelope(ring, c.tenant_id, c.envelope, c.event_id, c.origin);
      if (c.error) {
        const exc = await expectError(open, c.error);
        if (c.name === "tampered ciphertext") messages.tampered = exc.message;
        return;
      }
      expectEqual(utf8.decode(await open()), c.plaintext, "opened");
      const sealed = await sealEnvelope(ring, c.tenant_id, utf8.encode(c.plaintext), c.event_id, c.origin, { nonce: b64urlDecode(c.nonce) });
      expectEqual(sealed, c.envelope, "sealed");
    });
  }
}

async function plains(cases) {
  for (const c of cases) {
    await check("plain", c.event.entity, async () => expectEqual(utf8.decode(plainOf(c.event)), c.plaintext, "plaintext"));
  }
}

async function signatures(cases) {
  for (const c of cases) {
    await check("signature", c.name, async () => {
      const id = await identityFromSeed(b64urlDecode(c.seed));
      expectEqual(id.publicKeyText, c.public_key, "public key");
      const body = utf8.encode(c.body);
      const bytes = await canonical(c.method, c.target, body, c.timestamp, c.nonce, c.tenant_id, c.agent_id);
      expectEqual(utf8.decode(bytes), c.canonical, "canonical");
      const h = await signedHeaders(id, c.tenant_id, c.agent_id, c.method, c.target, body, { now: Number(c.timestamp), nonce: c.nonce });
      expectEqual(h["X-Jasiyo-Signature"], c.signature, "signature");
      expectEqual([h["X-Jasiyo-Tenant"], h["X-Jasiyo-Agent"], h["X-Jasiyo-Timestamp"], h["X-Jasiyo-Nonce"]], [c.tenant_id, c.agent_id, c.timestamp, c.nonce], "headers");
      if (!(await verify(id.publicKey, b64Decode(c.signature), bytes))) throw new Error("Python's signature does not verify");
    });
  }
}

async function wrapped(cases) {
  for (const c of cases) {
    await check("wrapped", c.name, async () => {
      if (c.error) {
        const exc = await expectError(() => unwrapKeyring(c.wrapped, c.passphrase, c.tenant_id), c.error);
        if (c.name === "wrong passphrase") messages.wrongPassphrase = exc.message;
        return;
      }
      const doc = await wrapKeyring(c.recovery, c.passphrase, c.tenant_id, { iterations: c.iterations, salt: b64urlDecode(c.salt), iv: b64urlDecode(c.iv) });
      expectEqual(doc, c.wrapped, "wrapped document");
      const text = await unwrapKeyring(c.wrapped, c.passphrase, c.tenant_id);
      expectEqual(text, c.recovery, "unwrapped");
      const ring = await parseRecovery(text);
      expectEqual(ring.tenantId, c.tenant_id, "tenant");
    });
  }
}

async function recoveries(cases) {
  for (const c of cases) {
    await check("recovery", c.name, async () => {
      if (c.error) {
        const exc = await expectError(() => parseRecovery(c.text), c.error);
        messages.notRecovery = exc.message;
        return;
      }
      const ring = await parseRecovery(c.text);
      expectEqual([ring.tenantId, ring.current, [...ring.keys.keys()].sort()], [c.tenant_id, c.current, c.kids], "keyring");
      const again = await parseRecovery(ring.toRecoveryText());
      expectEqual(again.toRecovery(), ring.toRecovery(), "written back");
    });
  }
}

async function clocks(cases) {
  for (const c of cases) {
    await check("hlc", c.hlc.slice(0, 24), async () => expectEqual(bounded(c.hlc, unboxed(c.received_at)), c.bounded, "bounded"));
  }
}

async function snapshots(cases) {
  for (const c of cases) {
    await check("snapshot", c.name, async () => {
      const ring = await ringOf(c.tenant_id, c.keys);
      const chunks = [];
      for (let i = 0; i < c.parts.length; i++) chunks.push(await openEnvelope(ring, c.tenant_id, c.parts[i], `snapshot:${c.id}:${i}`, c.origin));
      expectEqual(await decodeSnapshot(chunks), c.events, "events");
      await expectError(() => openEnvelope(ring, c.tenant_id, c.parts[0], `snapshot:${c.id}:1`, c.origin), "failed authentication");
    });
  }
}

function rowCheck(state, expect, where) {
  for (const [entity, rows] of Object.entries(expect || {})) {
    for (const [key, fields] of Object.entries(rows)) {
      const row = (state[entity] || {})[key];
      if (fields === null) {
        if (row) throw new Error(`${where}: ${entity} ${key} should not exist: ${JSON.stringify(row)}`);
        continue;
      }
      if (!row) throw new Error(`${where}: ${entity} ${key} is missing`);
      for (const [name, want] of Object.entries(fields)) expectEqual(row[name], want, `${where}: ${entity} ${key}.${name}`);
    }
  }
}

function endCheck(c, fold, refused, where) {
  const state = fold.state();
  rowCheck(state, c.expect, where);
  for (const [entity, n] of Object.entries(c.count || {})) expectEqual(Object.keys(state[entity] || {}).length, n, `${where}: ${entity} rows`);
  const b = balances(state);
  for (const [u, want] of Object.entries(c.balances || {})) expectEqual(b[u] && b[u].balance_minor, want, `${where}: balance of ${u}`);
  for (const [entity, rows] of Object.entries(c.absent || {})) {
    for (const [key, names] of Object.entries(rows)) {
      const row = state[entity][key];
      if (!row) throw new Error(`${where}: ${entity} ${key} is missing`);
      const shown = names.filter((n) => n in row);
      if (shown.length) throw new Error(`${where}: ${entity} ${key} shows ${shown}`);
    }
  }
  for (const [entity, rows] of Object.entries(c.details || {})) {
    for (const [key, fields] of Object.entries(rows)) {
      for (const [name, want] of Object.entries(fields)) expectEqual((state[entity][key] || {})[name], want, `${where}: ${entity} ${key}.${name}`);
    }
  }
  const everything = JSON.stringify(state) + JSON.stringify(fold.toJSON());
  for (const s of c.secrets || []) if (everything.includes(s)) throw new Error(`${where}: a secret is in the state or its cache`);
  expectEqual(refused, c.refused || [], `${where}: refused`);
}

async function folds(cases) {
  for (const c of cases) {
    await check("fold", c.name, async () => {
      const ring = c.keyring ? await parseRecovery(JSON.stringify(c.keyring)) : null;
      const fold = new Fold();
      const refused = [];
      const batches = [];
      for (let i = 0; i < c.steps.length; i++) {
        const step = c.steps[i];
        let events = step.events;
        if (step.raw) {
          events = await openEvents(ring, ring.tenantId, step.raw);
          refused.push(...events.refused.map((r) => r.id));
        }
        batches.push(events);
        fold.apply(events);
        rowCheck(fold.state(), step.expect, `after step ${i + 1}`);
      }
      endCheck(c, fold, refused, "at the end");
      // The cache: the fold written out and read back is the same fold.
      const reopened = Fold.fromJSON(JSON.parse(JSON.stringify(fold.toJSON())));
      endCheck(c, reopened, refused, "reopened from its cache");
      // Every batch again (a replay after a lost cursor) changes nothing.
      for (const events of batches) reopened.apply(events);
      endCheck(c, reopened, refused, "after a replay");
    });
  }
}

async function misc(tenantId, keys) {
  await check("misc", "uuid7 ids are v7 and increase", async () => {
    const ids = Array.from({ length: 5000 }, () => uuid7());
    if (!ids.every((i) => UUID_RE.test(i) && i[14] === "7" && "89ab".includes(i[19]))) throw new Error("not a v7 uuid");
    if (!ids.every((id, i) => i === 0 || id > ids[i - 1])) throw new Error("not increasing");
  });
  await check("misc", "the clock never goes back and follows a remote clock", async () => {
    let wall = 1796083200000;
    const clock = new Clock("dash", { wallMs: () => wall });
    const a = clock.now();
    wall -= 5000;
    const b = clock.now();
    if (!(b > a)) throw new Error("went back");
    if (!clock.observe("001796083260000.000004.pop")) throw new Error("refused a near clock");
    const c = clock.now();
    expectEqual(c, "001796083260000.000006.dash", "after observe");
    if (clock.observe("001796283260000.000000.pop")) throw new Error("followed a clock two days ahead");
  });
  await check("misc", "an event the dashboard seals opens to itself", async () => {
    const ring = await ringOf(tenantId, keys);
    const clock = new Clock("0190a000-0000-7000-8000-0000000000dd");
    const data = { status: "suspended", status_reason: "by the dashboard", manual_suspend: 1 };
    const sealed = await sealEvent(ring, tenantId, clock, clock.origin, "subscriber", "alice", "upsert", data);
    const opened = await openEvents(ring, tenantId, [{ seq: 1, id: sealed.id, origin: sealed.origin, envelope: sealed.envelope, received_at: Date.now() / 1000 }]);
    expectEqual(opened.length, 1, "opened");
    expectEqual(opened[0], sealed.event, "event");
  });
}

async function requests() {
  await check("misc", "a request's details stay readable, its password does not", async () => {
    const fold = new Fold();
    const key = uuid7();
    const data = { action: "subscriber.add", by: "front desk", at: 1796083200, username: "zawadi", password: "zawadi-pw-77", plan: "home", router: "r1" };
    fold.apply([{ id: uuid7(), hlc: "001796083200000.000000.dash", origin: "dash", entity: "request", key, op: "append", data }]);
    const rec = fold.record("request", key);
    expectEqual([rec.action, rec.username, rec.password], ["subscriber.add", "zawadi", true], "record");
    const row = fold.state().request[key];
    if (!row || row.action !== "subscriber.add" || row.username !== "zawadi" || "password" in row) {
      throw new Error(`the request row: ${JSON.stringify(row)}`);
    }
    if (JSON.stringify(fold.toJSON()).includes("zawadi-pw-77") || JSON.stringify(fold.state()).includes("zawadi-pw-77")) {
      throw new Error("the password is in the fold");
    }
  });
}

async function main() {
  const text = await (await fetch("sync-vectors.json", { cache: "no-store" })).text();
  const doc = parsePlain(text);
  await envelopes(doc.envelope);
  await plains(doc.plain);
  await signatures(doc.signature);
  await wrapped(doc.wrapped);
  await recoveries(doc.recovery);
  await clocks(doc.hlc);
  await snapshots(doc.snapshot);
  await folds(doc.fold);
  await misc(doc.envelope[0].tenant_id, doc.envelope[0].keys);
  await requests();
  const failed = results.filter((r) => !r.ok);
  const list = document.getElementById("results");
  for (const r of results) {
    const li = document.createElement("li");
    li.className = r.ok ? "pass" : "fail";
    li.textContent = `${r.ok ? "pass" : "FAIL"} ${r.group}: ${r.name}${r.ok ? "" : " — " + r.detail}`;
    list.appendChild(li);
  }
  document.getElementById("summary").textContent = `${results.length - failed.length} passed, ${failed.length} failed`;
  report({ done: true, passed: results.length - failed.length, failed: failed.length, results, messages });
}

// Into window.vectorResults and, for a test that cannot evaluate script under the page's
// CSP, into #result (JSON text) with data-done set.
function report(doc) {
  window.vectorResults = doc;
  const out = document.getElementById("result");
  out.textContent = JSON.stringify(doc);
  out.dataset.done = "1";
}

main().catch((exc) => {
  document.getElementById("summary").textContent = `the vector run failed: ${exc}`;
  report({ done: true, passed: 0, failed: 1, results: [{ group: "run", name: "main", ok: false, detail: String(exc && exc.stack) }], messages });
});
