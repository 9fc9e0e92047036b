// Ed25519 request signing, as jasiyo/sync/signing.py does it. The dashboard has its own
// identity like an agent: a key pair made here (the private key cannot be exported, and
// can be kept in IndexedDB as a CryptoKey), its public key enrolled once.
//
//   X-Jasiyo-Signature = base64(Ed25519(canonical(method, target, body, ts, nonce, tenant, agent)))
//   canonical = "jasiyo-req-v1\nMETHOD\ntarget\nsha256hex(body)\nts\nnonce\ntenant\nagent"

import { b64Encode, hex, randomBytes, utf8 } from "./b64.js";
import { DashError } from "./errors.js";

const ED25519 = { name: "Ed25519" };
// PKCS#8 header of a raw 32-byte Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

async function publicText(publicKey) {
  return b64Encode(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey)));
}

// A new identity: {privateKey (non-extractable), publicKey, publicKeyText (base64 raw 32)}.
export async function generateIdentity() {
  let pair;
  try {
    pair = await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"]);
  } catch {
    throw new DashError("this browser has no Ed25519 in WebCrypto; use a current Chromium or Firefox");
  }
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyText: await publicText(pair.publicKey) };
}

// The identity of a known 32-byte seed (test vectors; never for a real dashboard).
export async function identityFromSeed(seed) {
  const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
  pkcs8.set(PKCS8_PREFIX, 0);
  pkcs8.set(seed, PKCS8_PREFIX.length);
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, ED25519, true, ["verify"]);
  return { privateKey, publicKey, publicKeyText: await publicText(publicKey) };
}

// The exact bytes that are signed. `target` is the path plus "?query" if any.
export async function canonical(method, target, body, timestamp, nonce, tenantId, agentId) {
  const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", body || new Uint8Array())));
  return utf8.encode(["jasiyo-req-v1", method.toUpperCase(), target, digest, timestamp, nonce, tenantId, agentId].join("\n"));
}

export async function sign(identity, bytes) {
  return new Uint8Array(await crypto.subtle.sign(ED25519, identity.privateKey, bytes));
}

export async function verify(publicKey, signature, bytes) {
  return crypto.subtle.verify(ED25519, publicKey, signature, bytes);
}

// The headers that authenticate one request. `now` (unix seconds) and `nonce` for vectors.
export async function signedHeaders(identity, tenantId, agentId, method, target, bodyBytes, { now, nonce } = {}) {
  const ts = String(Math.floor(now ?? Date.now() / 1000));
  const n = nonce || hex(randomBytes(16));
  const sig = await sign(identity, await canonical(method, target, bodyBytes, ts, n, tenantId, agentId));
  return {
    "X-Jasiyo-Tenant": tenantId,
    "X-Jasiyo-Agent": agentId,
    "X-Jasiyo-Timestamp": ts,
    "X-Jasiyo-Nonce": n,
    "X-Jasiyo-Signature": b64Encode(sig),
  };
}
