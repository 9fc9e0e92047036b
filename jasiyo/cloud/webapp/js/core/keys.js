// The tenant keyring in the browser: the recovery file (jasiyo/sync/keyring.py's JSON) and
// the copy the cloud stores wrapped under a passphrase it never sees.
//
// Wrapped document (the cloud checks its shape only):
//   {"format":"jasiyo-wrapped-keys-v1","kdf":"PBKDF2-SHA256","iterations":N,
//    "salt":b64url(16+),"iv":b64url(12),"ciphertext":b64url}
// key = PBKDF2-HMAC-SHA256(passphrase UTF-8, salt, N, 256 bits);
// ciphertext = AES-256-GCM(iv, UTF-8 recovery JSON, AAD "jasiyo-wrapped-keys-v1|<tenant>").

import { b64urlDecode, b64urlEncode, randomBytes, utf8 } from "./b64.js";
import { DashError } from "./errors.js";
import { KID_RE } from "./envelope.js";

export const RECOVERY_FORMAT = "jasiyo-tenant-keys-v1";
export const WRAPPED_FORMAT = "jasiyo-wrapped-keys-v1";
export const DEFAULT_ITERATIONS = 600000;
// Unwrapping refuses more than this: a document the cloud altered must not hang the page.
const MAX_ITERATIONS = 10000000;
const NOT_RECOVERY = "this is not a recovery file (make one with `jasiyo tenant export-recovery`)";

async function importAes(raw) {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

// The tenant's data keys: `current` seals, every key in `keys` opens (CryptoKeys that
// cannot be exported). The raw keys stay private, for conflict checks and toRecovery().
export class Keyring {
  #raw = new Map();

  constructor(tenantId, current, createdAt = 0, boxKey = null) {
    this.tenantId = tenantId;
    this.current = current;
    this.createdAt = createdAt;
    this.boxKey = boxKey; // b64url text, or null (webhook key: unused by the dashboard)
    this.keys = new Map();
  }

  // Learn a key (a rotation another POP shared); true if it was new. Never replaces a
  // different key under the same id.
  async add(kid, raw) {
    const bytes = typeof raw === "string" ? b64urlDecode(raw) : raw;
    if (!KID_RE.test(kid) || !(bytes instanceof Uint8Array) || bytes.length !== 32) {
      throw new DashError("a tenant key received from another agent is malformed");
    }
    const text = b64urlEncode(bytes);
    if (this.#raw.has(kid)) {
      if (this.#raw.get(kid) !== text) throw new DashError(`tenant key ${kid} conflicts with the key we already hold`);
      return false;
    }
    this.keys.set(kid, await importAes(bytes));
    this.#raw.set(kid, text);
    return true;
  }

  // The recovery file's JSON document (what jasiyo tenant export-recovery writes).
  toRecovery() {
    const keys = {};
    for (const kid of [...this.#raw.keys()].sort()) keys[kid] = this.#raw.get(kid);
    return {
      format: RECOVERY_FORMAT,
      tenant_id: this.tenantId,
      current: this.current,
      created_at: this.createdAt,
      keys,
      ...(this.boxKey ? { box_key: this.boxKey } : {}),
    };
  }

  toRecoveryText() {
    return JSON.stringify(this.toRecovery(), null, 2) + "\n";
  }
}

// A Keyring from a recovery file's text; DashError("…not a recovery file") otherwise.
export async function parseRecovery(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DashError(NOT_RECOVERY);
  }
  if (
    !doc ||
    typeof doc !== "object" ||
    doc.format !== RECOVERY_FORMAT ||
    typeof doc.tenant_id !== "string" ||
    typeof doc.current !== "string" ||
    !doc.keys ||
    typeof doc.keys !== "object" ||
    Array.isArray(doc.keys)
  ) {
    throw new DashError(NOT_RECOVERY);
  }
  try {
    if (doc.box_key && b64urlDecode(doc.box_key).length !== 32) throw new Error("box_key");
    const created = Number(doc.created_at ?? 0);
    const ring = new Keyring(doc.tenant_id, doc.current, Number.isFinite(created) ? created : 0, doc.box_key || null);
    for (const [kid, raw] of Object.entries(doc.keys)) await ring.add(kid, raw);
    if (!ring.keys.has(ring.current)) throw new Error("current");
    return ring;
  } catch {
    throw new DashError(NOT_RECOVERY);
  }
}

function wrapAad(tenantId) {
  return utf8.encode(`${WRAPPED_FORMAT}|${tenantId}`);
}

async function deriveKey(passphrase, salt, iterations) {
  const base = await crypto.subtle.importKey("raw", utf8.encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

// The wrapped document of a recovery file. `salt` and `iv` only for test vectors.
export async function wrapKeyring(recoveryText, passphrase, tenantId, { iterations = DEFAULT_ITERATIONS, salt, iv } = {}) {
  if (typeof passphrase !== "string" || passphrase.length === 0) throw new DashError("a passphrase is required");
  if (!Number.isInteger(iterations) || iterations < 1) throw new DashError("the iteration count must be a positive whole number");
  const s = salt || randomBytes(16);
  const n = iv || randomBytes(12);
  const key = await deriveKey(passphrase, s, iterations);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: n, additionalData: wrapAad(tenantId) }, key, utf8.encode(recoveryText));
  return {
    format: WRAPPED_FORMAT,
    kdf: "PBKDF2-SHA256",
    iterations,
    salt: b64urlEncode(s),
    iv: b64urlEncode(n),
    ciphertext: b64urlEncode(new Uint8Array(ct)),
  };
}

// The recovery text inside a wrapped document; DashError("wrong passphrase…") if the
// passphrase (or the document, or the tenant) is not the one it was wrapped with.
export async function unwrapKeyring(doc, passphrase, tenantId) {
  let salt, iv, ct;
  try {
    if (doc.format !== WRAPPED_FORMAT || doc.kdf !== "PBKDF2-SHA256") throw new Error("format");
    if (!Number.isInteger(doc.iterations) || doc.iterations < 1 || doc.iterations > MAX_ITERATIONS) throw new Error("n");
    salt = b64urlDecode(doc.salt);
    iv = b64urlDecode(doc.iv);
    ct = b64urlDecode(doc.ciphertext);
    if (salt.length < 8 || iv.length !== 12 || ct.length < 16) throw new Error("sizes");
  } catch {
    throw new DashError("the stored tenant keys are not a wrapped keyring this dashboard can read");
  }
  const key = await deriveKey(passphrase, salt, doc.iterations);
  let plain;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: wrapAad(tenantId) }, key, ct);
  } catch {
    throw new DashError("wrong passphrase: the tenant keys did not unlock", { code: "wrong_passphrase" });
  }
  return utf8.decode(new Uint8Array(plain));
}
