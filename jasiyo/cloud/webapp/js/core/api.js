// The cloud's API as the dashboard uses it. Every tenant request is signed with the
// dashboard's identity (core/signing.js); the admin token is used only to make an
// enrolment and to store or read the wrapped keyring. Errors are DashErrors whose message
// a person reads; `status` keeps the HTTP status, `retryable` says whether to try again.

import { utf8 } from "./b64.js";
import { DashError } from "./errors.js";
import { signedHeaders } from "./signing.js";

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

function messageFor(status, kind, code) {
  if (status === 401) {
    if (kind === "admin") return "the cloud does not accept this admin token (mistyped, or replaced)";
    if (kind === "enroll") return "the enrolment token is unknown, already used or expired; ask the tenant admin for a new one";
    return "this dashboard was revoked or is not enrolled (or this computer's clock is more than 5 minutes off); enrol it again";
  }
  if (status === 403) {
    if (kind === "admin") return "this admin token belongs to another tenant";
    return "the cloud does not let a dashboard do that (or this dashboard belongs to another tenant)";
  }
  if (status === 409) {
    if (kind === "enroll") return "this dashboard id is already enrolled";
    return "the cloud does not know the tenant key these events are sealed with (unlock with the latest recovery file)";
  }
  if (status === 413) return "the request is too large for the cloud; send fewer changes at once";
  if (status === 422 || status === 400) return `the cloud refused the request as malformed (${code || status})`;
  if (status === 429) return "the cloud is rate limiting this dashboard; it will try again shortly";
  if (status === 404) return "the cloud has no such thing (not found)";
  if (status >= 500) return `the cloud is unavailable (HTTP ${status}); it will try again shortly`;
  return `the cloud answered HTTP ${status}${code ? " " + code : ""}`;
}

export class Cloud {
  // `baseUrl`: the cloud's origin (the app is served from it, so usually location.origin).
  constructor(baseUrl, { tenantId = null, agentId = null, identity = null } = {}) {
    this.baseUrl = String(baseUrl || "").replace(/\/+$/, "");
    this.tenantId = tenantId;
    this.agentId = agentId;
    this.identity = identity;
  }

  // One call. `auth`: "signed" | "admin" | "enroll" | "none"; `adminToken` for admin.
  async request(method, path, { body, query, auth = "signed", adminToken, signal, notFound } = {}) {
    const url = new URL(this.baseUrl + path, globalThis.location ? globalThis.location.href : undefined);
    if (query) for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const bytes = body === undefined ? new Uint8Array() : utf8.encode(JSON.stringify(body));
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth === "admin") headers.Authorization = `Bearer ${adminToken}`;
    if (auth === "signed") {
      if (!this.identity || !this.tenantId || !this.agentId) throw new DashError("this dashboard is not enrolled yet");
      Object.assign(headers, await signedHeaders(this.identity, this.tenantId, this.agentId, method, url.pathname + url.search, bytes));
    }
    let resp;
    try {
      resp = await fetch(url, { method, headers, body: body === undefined ? undefined : bytes, signal, cache: "no-store", credentials: "omit" });
    } catch (exc) {
      if (exc && exc.name === "AbortError") throw exc;
      throw new DashError(`cannot reach the cloud at ${url.origin}; check the connection`, { retryable: true });
    }
    if (resp.status === 404 && notFound !== undefined) return notFound;
    let doc = null;
    try {
      doc = await resp.json();
    } catch {
      doc = null;
    }
    if (!resp.ok) {
      const code = doc && typeof doc.error === "string" ? doc.error : null;
      throw new DashError(messageFor(resp.status, auth, code), { status: resp.status, code, retryable: RETRYABLE.has(resp.status) });
    }
    if (doc === null) throw new DashError(`the cloud's answer to ${method} ${path} is not JSON`, { status: resp.status });
    return doc;
  }

  #t() {
    if (!this.tenantId) throw new DashError("no tenant chosen");
    return `/v1/tenants/${encodeURIComponent(this.tenantId)}`;
  }

  // An enrolment token for this dashboard, made with the tenant admin token.
  createEnrolment(adminToken, { ttlSeconds } = {}) {
    return this.request("POST", `${this.#t()}/enrolments`, { auth: "admin", adminToken, body: ttlSeconds ? { ttl_seconds: ttlSeconds } : {} });
  }

  // Enrol this browser's public key → {tenant_id, agent_id}.
  enroll(token, agentId, name, publicKeyText, { kind = "dashboard" } = {}) {
    return this.request("POST", "/v1/agents/enroll", {
      auth: "enroll",
      body: { token, agent_id: agentId, name, public_key: publicKeyText, kind },
    });
  }

  // The wrapped keyring document, or null if none is stored yet.
  async getWrapped(adminToken) {
    const doc = await this.request("GET", `${this.#t()}/wrapped-key`, { auth: "admin", adminToken, notFound: null });
    return doc ? doc.wrapped : null;
  }

  putWrapped(adminToken, doc) {
    return this.request("PUT", `${this.#t()}/wrapped-key`, { auth: "admin", adminToken, body: { wrapped: doc } });
  }

  // {floor, events:[{seq,id,origin,envelope,received_at}], cursor, head, now}
  pull(after, { limit = 1000, wait = 0, signal } = {}) {
    return this.request("GET", `${this.#t()}/events`, { query: { after, limit, wait }, signal });
  }

  // events: [{id, origin, envelope}] (origin = this dashboard) → {accepted, duplicates, head}
  push(events) {
    return this.request("POST", `${this.#t()}/events`, { body: { events } });
  }

  // The newest snapshot's description {id, origin, seq, parts, ...}, or null if none.
  snapshot() {
    return this.request("GET", `${this.#t()}/snapshot`, { notFound: null });
  }

  snapshotPart(id, i) {
    return this.request("GET", `${this.#t()}/snapshots/${encodeURIComponent(id)}/parts/${i}`);
  }

  // {head, now, agents:[{agent_id,name,kind,created_at,revoked_at,last_seen,cursor,backlog}]}
  agents() {
    return this.request("GET", `${this.#t()}/agents`);
  }

  revoke(adminToken, agentId) {
    return this.request("POST", `${this.#t()}/agents/${encodeURIComponent(agentId)}/revoke`, { auth: "admin", adminToken, body: {} });
  }
}
