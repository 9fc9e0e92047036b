"""schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.cloud.st_hooks``): who is calling.

Each generated request is sent as the caller its operation names in the OpenAPI document:
the operator (``POST /v1/tenants``), the tenant admin (other bearer operations) or the
agent, whose requests are signed on the wire like the sync client's. ``{tenant}`` path
parameters are mostly our tenant's id, so the handlers behind the authentication run.
The identities come from the environment (see test_openapi_fuzz.py).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import requests
import schemathesis

from jasiyo.sync.signing import load_signing_key, sign_headers


class _Signed(requests.auth.AuthBase):
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        key = load_signing_key(Path(os.environ["JASIYO_ST_KEY"]))
        r.headers.update(
            sign_headers(
                key,
                os.environ["JASIYO_ST_TENANT"],
                os.environ["JASIYO_ST_AGENT"],
                r.method or "GET",
                r.path_url,
                body,
            )
        )
        return r


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    if path_parameters and "tenant" in path_parameters and random.random() < 0.9:
        path_parameters["tenant"] = os.environ["JASIYO_ST_TENANT"]
    return path_parameters


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    security = case.operation.definition.raw.get("security") or []
    names = {name for requirement in security for name in requirement}
    # Only where schemathesis put credentials: a case it sends without them (to see it
    # refused) goes without them.
    present = {k.lower() for k in (case.headers or {})}
    if "agentSignature" in names and "x-jasiyo-signature" in present:
        kwargs["auth"] = _Signed()
    elif "bearer" in names and "authorization" in present:
        who = "JASIYO_ST_OPERATOR" if case.operation.path == "/v1/tenants" else "JASIYO_ST_ADMIN"
        headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        case.headers = {**headers, "authorization": f"Bearer {os.environ[who]}"}
