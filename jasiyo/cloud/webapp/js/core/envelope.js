// Event envelopes, as jasiyo/sync/envelope.py makes them:
//   "v1.<kid>.<b64url-no-pad(nonce12 || ciphertext+tag16)>"
// AES-256-GCM under the tenant key `kid`, associated data
//   "jasiyo-event-v1|<tenant_id>|<event_id>|<origin>"
// so the cloud cannot move a ciphertext to another event, agent or tenant unnoticed.

import { b64urlDecode, b64urlEncode, randomBytes, utf8 } from "./b64.js";
import { DashError } from "./errors.js";

export const KID_RE = /^k[0-9a-f]{12}$/;
// Envelopes larger than this are refused before any decryption is tried (as in Python).
export const MAX_ENVELOPE = 256 * 1024;

export function aad(tenantId, eventId, origin) {
  return utf8.encode(`jasiyo-event-v1|${tenantId}|${eventId}|${origin}`);
}

// The key id an envelope names, without decrypting it.
export function envelopeKid(envelope) {
  const parts = typeof envelope === "string" ? splitEnvelope(envelope) : [];
  if (parts.length !== 3 || parts[0] !== "v1" || !KID_RE.test(parts[1])) {
    throw new DashError("an event envelope is malformed");
  }
  return parts[1];
}

function splitEnvelope(text) {
  const a = text.indexOf(".");
  if (a < 0) return [text];
  const b = text.indexOf(".", a + 1);
  if (b < 0) return [text.slice(0, a), text.slice(a + 1)];
  return [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
}

// Decrypt an envelope; DashError naming the event (never the key) if it does not verify.
export async function openEnvelope(keyring, tenantId, envelope, eventId, origin) {
  if (typeof envelope !== "string") throw new DashError(`event ${eventId}: the envelope is malformed; refusing it`);
  if (envelope.length > MAX_ENVELOPE) throw new DashError(`event ${eventId}: envelope too large; refusing it`);
  let kid;
  try {
    kid = envelopeKid(envelope);
  } catch {
    throw new DashError(`event ${eventId}: the envelope is malformed; refusing it`);
  }
  const key = keyring.keys.get(kid);
  if (!key) {
    throw new DashError(
      `event ${eventId} is sealed with tenant key ${kid}, which this dashboard does not hold; ` +
        "unlock with the latest recovery file (`jasiyo tenant export-recovery`)",
      { code: "unknown_key" },
    );
  }
  let raw;
  try {
    raw = b64urlDecode(splitEnvelope(envelope)[2]);
  } catch {
    throw new DashError(`event ${eventId}: the envelope is malformed; refusing it`);
  }
  if (raw.length < 12 + 16) throw new DashError(`event ${eventId}: the envelope is malformed; refusing it`);
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: raw.subarray(0, 12), additionalData: aad(tenantId, eventId, origin), tagLength: 128 },
      key,
      raw.subarray(12),
    );
    return new Uint8Array(plain);
  } catch {
    throw new DashError(
      `event ${eventId} from agent ${origin} failed authentication: tampered with, ` +
        "or moved from another event or tenant; refusing it",
      { code: "tampered" },
    );
  }
}

// The envelope of `plaintext` (bytes) under the keyring's current key (or `kid`).
// `nonce` (12 bytes) only for test vectors: a nonce must never repeat under one key.
export async function sealEnvelope(keyring, tenantId, plaintext, eventId, origin, { nonce, kid } = {}) {
  const useKid = kid || keyring.current;
  const key = keyring.keys.get(useKid);
  if (!key) throw new DashError(`tenant key ${useKid} is not in the keyring`);
  const iv = nonce || randomBytes(12);
  if (iv.length !== 12) throw new DashError("an envelope nonce is 12 bytes");
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: aad(tenantId, eventId, origin), tagLength: 128 },
      key,
      plaintext,
    ),
  );
  const raw = new Uint8Array(12 + ct.length);
  raw.set(iv, 0);
  raw.set(ct, 12);
  return `v1.${useKid}.${b64urlEncode(raw)}`;
}
