"""The OpenAPI 3.1 document of the ``/v1`` API, served at ``/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

_ERR = {
    "description": 'Refused; the body is only {"error": code}',
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_SIGNED: list[dict[str, list[str]]] = [{"agentSignature": []}]
_SIGNED_OR_ADMIN: list[dict[str, list[str]]] = [{"agentSignature": []}, {"bearer": []}]


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, **_json(schema)}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _ERR for c in codes}


#: Ids are UUIDv7 text, lower case (what jasiyo.sync.ids makes and the handlers accept).
UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: 32 raw bytes in standard base64 (Ed25519 and X25519 public keys).
KEY32 = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$"
_ID = {"type": "string", "pattern": UUID}
#: Unpadded base64url whose length can be decoded (never 1 mod 4).
_B64URL = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
_TENANT = {"name": "tenant", "in": "path", "required": True, "schema": _ID}
_SNAP = {"name": "snap", "in": "path", "required": True, "schema": _ID}
_PART = {
    "name": "part",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]{1,6}$"},
}
_CURSOR = [
    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {
        "name": "wait",
        "in": "query",
        "description": "Long-poll: seconds to wait for something new",
        "schema": {"type": "number", "minimum": 0, "maximum": 30},
    },
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Jasiyo cloud registry",
        "version": "1",
        "description": (
            "Tenants, their agents, and each tenant's end-to-end encrypted event log. Agent "
            "requests are signed with Ed25519 over method, path, body SHA-256, timestamp and "
            "nonce (headers X-Jasiyo-Tenant, -Agent, -Timestamp, -Nonce, -Signature); stale "
            "(more than 300 s skew) or replayed requests get 401."
        ),
    },
    "paths": {
        "/v1/health": {
            "get": {
                "summary": "Liveness and database reachability",
                "responses": {"200": _json("Health"), **_errors(503)},
            }
        },
        "/v1/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}}}
        },
        "/v1/tenants": {
            "post": {
                "summary": "Create a tenant (operator token)",
                "security": [{"bearer": []}],
                "requestBody": _body("TenantCreate"),
                "responses": {"201": _json("TenantCreated"), **_errors(400, 401, 413, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/enrolments": {
            "post": {
                "summary": "Issue a one-time enrolment token (tenant admin token)",
                "security": [{"bearer": []}],
                "parameters": [_TENANT],
                "requestBody": _json("EnrolmentCreate"),
                "responses": {"201": _json("Enrolment"), **_errors(400, 401, 403, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/agents/{agent}/revoke": {
            "post": {
                "summary": "Revoke an agent (a lost or retired POP): its requests get 401",
                "security": [{"bearer": []}],
                "parameters": [_TENANT, {"name": "agent", "in": "path", "required": True, "schema": _ID}],
                "responses": {"200": {"description": "Revoked"}, **_errors(401, 403, 404, 429)},
            }
        },
        "/v1/tenants/{tenant}/agents": {
            "get": {
                "summary": "The tenant's agents and dashboards, with last contact and backlog "
                "(any enrolled agent or dashboard of the tenant, signed; or the tenant admin token)",
                "security": _SIGNED_OR_ADMIN,
                "parameters": [_TENANT],
                "responses": {"200": _json("Agents"), **_errors(401, 403, 429)},
            }
        },
        "/v1/tenants/{tenant}/wrapped-key": {
            "get": {
                "summary": "The tenant keyring wrapped under a passphrase in the browser (tenant "
                "admin token); 404: none stored",
                "security": [{"bearer": []}],
                "parameters": [_TENANT],
                "responses": {"200": _json("WrappedKey"), **_errors(401, 403, 404, 429)},
            },
            "put": {
                "summary": "Store (replace) the wrapped keyring (tenant admin token). The cloud "
                "checks its shape only: it cannot open it",
                "security": [{"bearer": []}],
                "parameters": [_TENANT],
                "requestBody": _body("WrappedKeyPut"),
                "responses": {
                    "200": _json("WrappedKeyStored"),
                    **_errors(400, 401, 403, 413, 422, 429),
                },
            },
        },
        "/v1/agents/enroll": {
            "post": {
                "summary": "Register an agent's Ed25519 public key with a one-time token",
                "requestBody": _body("Enroll"),
                "responses": {"201": _json("Enrolled"), **_errors(400, 401, 409, 413, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/keys": {
            "post": {
                "summary": "Register a tenant data key id (the key itself never leaves agents)",
                "security": _SIGNED,
                "parameters": [_TENANT],
                "requestBody": _body("KeyId"),
                "responses": {"200": _json("KeyId"), **_errors(400, 401, 403, 413, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/events": {
            "post": {
                "summary": "Append sealed events; idempotent on event id. 403: an event's "
                "origin is not the signing agent; 409: an envelope names a key id "
                "not registered for the tenant",
                "security": _SIGNED,
                "parameters": [_TENANT],
                "requestBody": _body("Push"),
                "responses": {"200": _json("PushResult"), **_errors(400, 401, 403, 409, 413, 422, 429)},
            },
            "get": {
                "summary": "Events after a cursor, in sequence order; long-polls up to `wait` s",
                "security": _SIGNED,
                "parameters": [_TENANT, *_CURSOR],
                "responses": {"200": _json("Pull"), **_errors(400, 401, 403, 429)},
            },
        },
        "/v1/tenants/{tenant}/events/redact": {
            "post": {
                "summary": "Erasure: replace held events' envelopes with ones re-sealed without a "
                "person's data (same id and origin), drop webhook bodies by id. 409: an "
                "envelope names a key id not registered for the tenant",
                "security": _SIGNED,
                "parameters": [_TENANT],
                "requestBody": _body("Redact"),
                "responses": {"200": _json("Redacted"), **_errors(400, 401, 403, 409, 413, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/snapshot": {
            "get": {
                "summary": "The newest committed snapshot of the tenant (404: none yet)",
                "security": _SIGNED,
                "parameters": [_TENANT],
                "responses": {"200": _json("Snapshot"), **_errors(401, 403, 404, 429)},
            }
        },
        "/v1/tenants/{tenant}/snapshots/{snap}/parts/{part}": {
            "post": {
                "summary": "Upload one sealed part of a snapshot (idempotent)",
                "security": _SIGNED,
                "parameters": [_TENANT, _SNAP, _PART],
                "requestBody": _body("SnapshotPart"),
                "responses": {
                    "200": {"description": "Stored"},
                    **_errors(400, 401, 403, 404, 409, 413, 422, 429),
                },
            },
            "get": {
                "summary": "One sealed part of a snapshot",
                "security": _SIGNED,
                "parameters": [_TENANT, _SNAP, _PART],
                "responses": {"200": {"description": '{"envelope": ...}'}, **_errors(401, 403, 404, 429)},
            },
        },
        "/v1/tenants/{tenant}/snapshots/{snap}/commit": {
            "post": {
                "summary": "Make a complete snapshot the newest: the events it covers (but `keep`) "
                "and older snapshots are dropped. 409: unknown, another agent's, or "
                "parts missing",
                "security": _SIGNED,
                "parameters": [_TENANT, _SNAP],
                "requestBody": _body("SnapshotCommit"),
                "responses": {
                    "200": {"description": "Committed"},
                    **_errors(400, 401, 403, 404, 409, 413, 422, 429),
                },
            }
        },
        "/v1/tenants/{tenant}/hook-endpoints": {
            "post": {
                "summary": "Create an unguessable webhook path; callbacks to it are sealed to the "
                "tenant's X25519 public key before they are stored",
                "security": _SIGNED,
                "parameters": [_TENANT],
                "requestBody": _body("HookEndpointCreate"),
                "responses": {"201": _json("HookEndpoint"), **_errors(400, 401, 403, 413, 422, 429)},
            }
        },
        "/v1/tenants/{tenant}/hooks": {
            "get": {
                "summary": "Sealed webhooks after a cursor; long-polls up to `wait` s, answering as "
                "soon as a webhook arrives for the tenant",
                "security": _SIGNED,
                "parameters": [_TENANT, *_CURSOR],
                "responses": {"200": _json("Hooks"), **_errors(400, 401, 403, 429)},
            }
        },
        "/v1/hooks/{tenant}/{token}": {
            "post": {
                "summary": "A payment provider's callback (M-Pesa, Paystack); any body up to 64 KiB",
                "parameters": [
                    _TENANT,
                    {
                        "name": "token",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 16,
                            "maxLength": 64,
                            "pattern": "^[A-Za-z0-9_-]+$",
                        },
                    },
                ],
                "requestBody": {"required": False, "content": {"*/*": {"schema": {}}}},
                "responses": {
                    "200": {
                        "description": "Accepted; M-Pesa endpoints (provider mpesa*) "
                        'get Daraja\'s {"ResultCode": 0, ...}'
                    },
                    **_errors(404, 413, 429),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "agentSignature": {"type": "apiKey", "in": "header", "name": "X-Jasiyo-Signature"},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Health": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "api": {"type": "string"},
                    "backend": {"type": "string"},
                },
            },
            "TenantCreate": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
            },
            "TenantCreated": {
                "type": "object",
                "properties": {"tenant_id": {"type": "string"}, "admin_token": {"type": "string"}},
            },
            "EnrolmentCreate": {
                "type": "object",
                "properties": {"ttl_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 2592000}},
            },
            "Enrolment": {
                "type": "object",
                "properties": {"token": {"type": "string"}, "expires_at": {"type": "number"}},
            },
            "Enroll": {
                "type": "object",
                "required": ["token", "agent_id", "public_key"],
                "properties": {
                    "token": {"type": "string", "maxLength": 300},
                    "agent_id": _ID,
                    "name": {"type": "string", "maxLength": 200},
                    "public_key": {"type": "string", "pattern": KEY32, "description": "base64 raw Ed25519"},
                    "kind": {
                        "type": "string",
                        "enum": ["agent", "dashboard"],
                        "description": "a POP's agent (default) or a browser's dashboard",
                    },
                },
            },
            "Enrolled": {
                "type": "object",
                "properties": {
                    "tenant_id": {"type": "string"},
                    "agent_id": {"type": "string"},
                    "kind": {"type": "string"},
                },
            },
            "Agents": {
                "type": "object",
                "properties": {
                    "head": {"type": "integer", "description": "the tenant log's last seq"},
                    "now": {"type": "number", "description": "the cloud's clock (unix seconds)"},
                    "agents": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
                },
            },
            "Agent": {
                "type": "object",
                "properties": {
                    "agent_id": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["agent", "dashboard"]},
                    "created_at": {"type": ["number", "null"]},
                    "revoked_at": {"type": ["number", "null"]},
                    "last_seen": {
                        "type": ["number", "null"],
                        "description": "its last signed request (recorded at most every 30 s)",
                    },
                    "cursor": {
                        "type": ["integer", "null"],
                        "description": "the last seq it has been sent, or the `after` it asked "
                        "from (null: never pulled)",
                    },
                    "backlog": {
                        "type": ["integer", "null"],
                        "description": "head - cursor: events it has not pulled yet",
                    },
                },
            },
            "WrappedDoc": {
                "type": "object",
                "description": "AES-256-GCM of the recovery file under PBKDF2-SHA256(passphrase); "
                "base64url without padding",
                "required": ["format", "kdf", "iterations", "salt", "iv", "ciphertext"],
                "additionalProperties": False,
                "properties": {
                    "format": {"const": "jasiyo-wrapped-keys-v1"},
                    "kdf": {"const": "PBKDF2-SHA256"},
                    "iterations": {"type": "integer", "minimum": 600000, "maximum": 4294967295},
                    "salt": {"type": "string", "pattern": _B64URL, "minLength": 22, "maxLength": 1366},
                    "iv": {"type": "string", "pattern": _B64URL, "minLength": 16, "maxLength": 16},
                    "ciphertext": {"type": "string", "pattern": _B64URL, "minLength": 22, "maxLength": 60000},
                },
            },
            "WrappedKeyPut": {
                "type": "object",
                "required": ["wrapped"],
                "additionalProperties": False,
                "properties": {"wrapped": {"$ref": "#/components/schemas/WrappedDoc"}},
            },
            "WrappedKey": {
                "type": "object",
                "properties": {
                    "wrapped": {"$ref": "#/components/schemas/WrappedDoc"},
                    "updated_at": {"type": "number"},
                },
            },
            "WrappedKeyStored": {"type": "object", "properties": {"updated_at": {"type": "number"}}},
            "KeyId": {
                "type": "object",
                "required": ["kid"],
                "properties": {"kid": {"type": "string", "pattern": "^k[0-9a-f]{12}$"}},
            },
            "Event": {
                "type": "object",
                "required": ["id", "origin", "envelope"],
                "properties": {
                    "seq": {"type": "integer"},
                    "id": _ID,
                    "origin": _ID,
                    "envelope": {
                        "type": "string",
                        "maxLength": 262144,
                        "pattern": "^v1\\.k[0-9a-f]{12}\\.",
                        "description": "v1.<kid>.<base64url nonce+AES-GCM>",
                    },
                    "received_at": {
                        "type": "number",
                        "description": "when the cloud stored it (pull only; unix seconds)",
                    },
                },
            },
            "Push": {
                "type": "object",
                "required": ["events"],
                "properties": {
                    "events": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 1000,
                        "items": {"$ref": "#/components/schemas/Event"},
                    }
                },
            },
            "Redact": {
                "type": "object",
                "properties": {
                    "events": {
                        "type": "array",
                        "maxItems": 1000,
                        "items": {"$ref": "#/components/schemas/Event"},
                    },
                    "hooks": {"type": "array", "maxItems": 1000, "items": _ID},
                },
            },
            "Redacted": {
                "type": "object",
                "properties": {"replaced": {"type": "integer"}, "dropped": {"type": "integer"}},
            },
            "PushResult": {
                "type": "object",
                "properties": {
                    "accepted": {"type": "integer"},
                    "duplicates": {"type": "integer"},
                    "head": {"type": "integer"},
                },
            },
            "HookEndpointCreate": {
                "type": "object",
                "required": ["provider", "public_key"],
                "properties": {
                    "provider": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"},
                    "public_key": {"type": "string", "pattern": KEY32},
                },
            },
            "HookEndpoint": {"type": "object", "properties": {"path": {"type": "string"}}},
            "Hooks": {
                "type": "object",
                "properties": {
                    "hooks": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "seq": {"type": "integer"},
                                "id": {"type": "string"},
                                "provider": {"type": "string"},
                                "sealed": {
                                    "type": "string",
                                    "description": "x1.<ephemeral X25519>.<nonce+AES-GCM>",
                                },
                            },
                        },
                    },
                    "cursor": {"type": "integer"},
                },
            },
            "Pull": {
                "type": "object",
                "properties": {
                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    "cursor": {"type": "integer"},
                    "head": {"type": "integer"},
                    "floor": {
                        "type": "integer",
                        "description": "events up to here were compacted "
                        "into the newest snapshot: a cursor below it reads that first",
                    },
                    "now": {"type": "number", "description": "the cloud's clock (unix seconds)"},
                },
            },
            "SnapshotPart": {
                "type": "object",
                "required": ["seq", "parts", "envelope"],
                "properties": {
                    "seq": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
                    "parts": {"type": "integer", "minimum": 1, "maximum": 100000},
                    "envelope": {"type": "string", "maxLength": 262144, "pattern": "^v1\\.k[0-9a-f]{12}\\."},
                },
            },
            "SnapshotCommit": {
                "type": "object",
                "properties": {"keep": {"type": "array", "maxItems": 50000, "items": _ID}},
            },
            "Snapshot": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "origin": {"type": "string"},
                    "seq": {"type": "integer"},
                    "parts": {"type": "integer"},
                },
            },
        },
    },
}
