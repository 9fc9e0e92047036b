// Base64 as the Python side writes it: url-safe without padding (envelopes, keys) and
// standard with padding (Ed25519 public keys and signatures).

import { DashError } from "./errors.js";

const CHUNK = 0x8000;

export function b64Encode(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
  }
  return btoa(bin);
}

export function b64Decode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new DashError("a value is not valid base64");
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64urlEncode(bytes) {
  return b64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(text)) {
    throw new DashError("a value is not valid base64url");
  }
  const bare = text.replace(/=+$/, "");
  if (bare.length % 4 === 1) throw new DashError("a value is not valid base64url");
  const std = bare.replace(/-/g, "+").replace(/_/g, "/");
  return b64Decode(std + "=".repeat((4 - (std.length % 4)) % 4));
}

export const utf8 = {
  encode: (text) => new TextEncoder().encode(text),
  decode: (bytes) => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
};

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}
