// What this browser keeps (IndexedDB, one object store of named records):
//   identity: the dashboard's enrolment (tenant, agent id, name, non-extractable Ed25519 key)
//   wrapped:  the keyring wrapped under the passphrase (the same document the cloud holds)
//   state:    the folded state and cursor, sealed with AES-256-GCM under a key derived
//             (HKDF-SHA256) from the tenant key, so nothing readable rests on disk;
//   view:     the subscriber list as last shown, sealed the same way: small, so a reopen
//             shows a usable list before the whole fold is restored.
// The passphrase, the unwrapped keyring and the admin token are never stored.

import { b64urlDecode } from "./core/b64.js";

const DB = "jasiyo-dashboard";
const STORE = "kv";
const CACHE_INFO = "jasiyo-dashboard-cache-v2";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let dbPromise = null;

function db() {
  if (!dbPromise) {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    dbPromise = request(req);
  }
  return dbPromise;
}

/** One transaction; resolves with the result of the last request ``fn`` makes once the
 * transaction has committed, rejects if it fails or aborts (a value too large aborts it). */
async function tx(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const t = conn.transaction(STORE, mode);
    let result;
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("the browser's storage refused the write"));
    const reqs = [].concat(fn(t.objectStore(STORE)));
    const last = reqs[reqs.length - 1];
    if (last) last.onsuccess = () => (result = last.result);
  });
}

export const get = (name) => tx("readonly", (s) => s.get(name));
export const put = (name, value) => tx("readwrite", (s) => s.put(value, name));
export const remove = (name) => tx("readwrite", (s) => s.delete(name));

/** Forget everything this browser holds (a revoked dashboard, or "sign out"). */
export async function wipe() {
  await tx("readwrite", (s) => s.clear());
}

//: IndexedDB refuses a value over about 127 MiB: the sealed state is stored in parts.
const PART = 32 * 1024 * 1024;

async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The AES-GCM key sealing the cached state: HKDF of a raw tenant key (bytes from the
 * recovery file), bound to the tenant; non-extractable. */
async function cacheKey(rawKey, tenantId) {
  const ikm = await crypto.subtle.importKey("raw", rawKey, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: new TextEncoder().encode(`${CACHE_INFO}|${tenantId}`),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** The raw key bytes of ``kid`` in a recovery file's JSON text. */
export function rawKey(recoveryText, kid) {
  const doc = JSON.parse(recoveryText);
  const text = doc.keys && doc.keys[kid];
  if (typeof text !== "string") return null;
  return b64urlDecode(text);
}

/** Seal and store ``value`` (JSON-able) as the cached state of ``tenantId``: JSON, gzip,
 * AES-256-GCM, cut into parts; one transaction replaces the previous state whole. */
export async function saveState(recoveryText, tenantId, agentId, value, name = "state") {
  const kid = JSON.parse(recoveryText).current;
  const key = await cacheKey(rawKey(recoveryText, kid), tenantId);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const aad = new TextEncoder().encode(`${CACHE_INFO}|${tenantId}|${agentId}`);
  const packed = await pipe(new TextEncoder().encode(JSON.stringify(value)), new CompressionStream("gzip"));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, packed));
  const parts = [];
  for (let i = 0; i < sealed.length; i += PART) parts.push(sealed.slice(i, i + PART));
  const old = await get(name);
  await tx("readwrite", (s) => {
    const reqs = parts.map((p, i) => s.put(p, `${name}.${i}`));
    for (let i = parts.length; i < ((old && old.parts) || 0); i++) reqs.push(s.delete(`${name}.${i}`));
    reqs.push(s.put({ format: CACHE_INFO, tenantId, kid, iv, parts: parts.length, savedAt: Date.now() / 1000 }, name));
    return reqs;
  });
}

/** The cached state, or null when there is none or it does not open (then start afresh:
 * the cloud still has every event). */
export async function loadState(recoveryText, tenantId, agentId, name = "state") {
  const rec = await get(name);
  if (!rec || rec.format !== CACHE_INFO || rec.tenantId !== tenantId || !rec.parts) return null;
  const raw = rawKey(recoveryText, rec.kid);
  if (!raw) return null;
  try {
    const parts = [];
    for (let i = 0; i < rec.parts; i++) parts.push(await get(`${name}.${i}`));
    const sealed = new Uint8Array(await new Blob(parts).arrayBuffer());
    const key = await cacheKey(raw, tenantId);
    const aad = new TextEncoder().encode(`${CACHE_INFO}|${tenantId}|${agentId}`);
    const packed = await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv, additionalData: aad }, key, sealed);
    const plain = await pipe(packed, new DecompressionStream("gzip"));
    return JSON.parse(new TextDecoder().decode(plain));
  } catch {
    return null;
  }
}
