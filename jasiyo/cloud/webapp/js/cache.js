// What this browser keeps (IndexedDB, one object store of named records):
//   identity: the dashboard's enrolment (tenant, agent id, name, non-extractable Ed25519 key)
//   wrapped:  the keyring wrapped under the passphrase (the same document the cloud holds)
//   state:    the folded state and cursor, sealed with AES-256-GCM under a key derived
//             (HKDF-SHA256) from the tenant key, so nothing readable rests on disk.
// The passphrase, the unwrapped keyring and the admin token are never stored.

import { b64urlDecode } from "./core/b64.js";

const DB = "jasiyo-dashboard";
const STORE = "kv";
const CACHE_INFO = "jasiyo-dashboard-cache-v1";

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

async function tx(mode, fn) {
  const conn = await db();
  const t = conn.transaction(STORE, mode);
  const result = await request(fn(t.objectStore(STORE)));
  await new Promise((resolve, reject) => {
    t.oncomplete = resolve;
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
  return result;
}

export const get = (name) => tx("readonly", (s) => s.get(name));
export const put = (name, value) => tx("readwrite", (s) => s.put(value, name));
export const remove = (name) => tx("readwrite", (s) => s.delete(name));

/** Forget everything this browser holds (a revoked dashboard, or "sign out"). */
export async function wipe() {
  await tx("readwrite", (s) => s.clear());
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

/** Seal and store ``value`` (JSON-able) as the cached state of ``tenantId``. */
export async function saveState(recoveryText, tenantId, agentId, value) {
  const kid = JSON.parse(recoveryText).current;
  const key = await cacheKey(rawKey(recoveryText, kid), tenantId);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const aad = new TextEncoder().encode(`${CACHE_INFO}|${tenantId}|${agentId}`);
  const plain = new TextEncoder().encode(JSON.stringify(value));
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, plain);
  await put("state", { format: CACHE_INFO, tenantId, kid, iv, sealed, savedAt: Date.now() / 1000 });
}

/** The cached state, or null when there is none or it does not open (then start afresh:
 * the cloud still has every event). */
export async function loadState(recoveryText, tenantId, agentId) {
  const rec = await get("state");
  if (!rec || rec.format !== CACHE_INFO || rec.tenantId !== tenantId) return null;
  const raw = rawKey(recoveryText, rec.kid);
  if (!raw) return null;
  try {
    const key = await cacheKey(raw, tenantId);
    const aad = new TextEncoder().encode(`${CACHE_INFO}|${tenantId}|${agentId}`);
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv, additionalData: aad }, key, rec.sealed);
    return JSON.parse(new TextDecoder().decode(plain));
  } catch {
    return null;
  }
}
