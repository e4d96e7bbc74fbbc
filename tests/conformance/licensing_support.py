"""Shared helpers of the Licensing conformance modules (test_licensing_*.py).

Calls go through the generated `veeam_spc.v3_6_1.api.licensing.*` modules, always the
``sync_detailed`` variant so a test sees the status code, the raw bytes and the parsed model.
``expect`` then checks, for one response, everything a client relies on:

* the status code;
* that the client parsed it into the model the operation declares (not ``ErrorResponse`` for a
  success, not ``None``);
* that no model in the parsed tree kept unknown properties in ``additional_properties``;
* that the raw JSON matches the contract's response schema (contract.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from typing import Any, Optional

import attrs
import httpx
from veeam_spc.v3_6_1.api.authentication import o_auth_2_issue_token
from veeam_spc.v3_6_1.client import AuthenticatedClient, Client
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body import OAuth2IssueTokenBody
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body_grant_type import (
    OAuth2IssueTokenBodyGrantType,
)
from veeam_spc.v3_6_1.types import File, Response

import contract
from conftest import HTTP_TIMEOUT_S, MintedLicense, Tallyman


def client(server: Tallyman, token: Optional[str] = None, sent: Optional[list] = None) -> AuthenticatedClient:
    """The generated client rooted at ``/api/v3`` with a bearer token (the admin's by default).

    ``sent``, when given, collects every ``httpx.Request`` the client sends, so a test can look
    at what the generated module put on the wire.
    """
    hooks = {"request": [sent.append]} if sent is not None else {}
    return AuthenticatedClient(
        base_url=server.api_url,
        token=token or server.admin_token,
        timeout=httpx.Timeout(HTTP_TIMEOUT_S),
        httpx_args={"event_hooks": hooks},
    )


def read_only_token(server: Tallyman) -> str:
    """An access token of the admin issued with ``readOnly: true`` through the client."""
    body = OAuth2IssueTokenBody(
        grant_type=OAuth2IssueTokenBodyGrantType.PASSWORD,
        username=server.admin_name,
        password=server.admin_password,
        read_only=True,
    )
    with Client(base_url=server.api_url, timeout=httpx.Timeout(HTTP_TIMEOUT_S)) as anonymous:
        response = o_auth_2_issue_token.sync_detailed(client=anonymous, body=body)
    assert response.status_code == 200, response.content
    return response.parsed.access_token


def upload(minted: MintedLicense | bytes, file_name: Optional[str] = "license.lic") -> File:
    """The client's ``File`` for an install body, as a script would build it from a .lic file."""
    payload = minted if isinstance(minted, bytes) else minted.bytes
    return File(payload=io.BytesIO(payload), file_name=file_name, mime_type="application/octet-stream")


# Properties the contract adds to the client's ResponseError (conventions.md section 2.2); the
# client keeps them in additional_properties, and contract.py checks them.
CONTRACT_EXTENSIONS = {"ResponseError": {"failedJsonPatch", "retryAfter", "parameterName", "propertyName"}}


def unknown_properties(model: Any, where: str = "data") -> list[str]:
    """Paths of properties the client did not know, anywhere in a parsed model tree."""
    out: list[str] = []
    if isinstance(model, list):
        for i, item in enumerate(model):
            out += unknown_properties(item, f"{where}[{i}]")
    elif attrs.has(type(model)):
        extra = getattr(model, "additional_properties", {}) or {}
        allowed = CONTRACT_EXTENSIONS.get(type(model).__name__, set())
        out += [f"{where}.{key}" for key in extra if key not in allowed]
        for field in attrs.fields(type(model)):
            if field.name != "additional_properties":
                out += unknown_properties(getattr(model, field.name), f"{where}.{field.name}")
    return out


def op_id(op: Any) -> str:
    """An operationId, given as such or as the generated module that calls it."""
    return op if isinstance(op, str) else contract.operation_id_of_module(op.__name__)


def expect(response: Response, status: int, model: type, op: Any) -> Any:
    """Asserts one client response (see the module docstring) and returns the parsed model.

    ``op`` is the generated api module that made the call (or its operationId).
    """
    operation_id = op_id(op)
    assert response.status_code == status, (
        f"{operation_id}: expected {status}, got {int(response.status_code)}: "
        f"{response.content[:2000]!r}"
    )
    assert isinstance(response.parsed, model), (
        f"{operation_id}: the client parsed {type(response.parsed).__name__}, not {model.__name__}"
    )
    unknown = unknown_properties(response.parsed)
    assert not unknown, f"{operation_id}: properties the client does not know: {unknown}"
    contract.assert_conforms(operation_id, status, json.loads(response.content))
    return response.parsed


def expect_error(response: Response, status: int, code: int, op: Any) -> ErrorResponse:
    """An ErrorResponse the client parses, with the given HTTP status and VSPC error code."""
    operation_id = op_id(op)
    parsed = expect(response, status, ErrorResponse, operation_id)
    assert parsed.errors, operation_id
    assert parsed.errors[0].code == code, (operation_id, parsed.to_dict())
    assert parsed.errors[0].message
    return parsed


def wire_instant(value: str) -> dt.datetime:
    """A claim's RFC 3339 instant (``2026-11-30T23:59:59Z``) as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def in_days(days: int) -> str:
    """A ``--expires`` value ``days`` from today (UTC)."""
    return (today() + dt.timedelta(days=days)).isoformat()


def month_of(day: dt.date, back: int) -> dt.date:
    """The first day of the month ``back`` months before ``day``'s (negative: after)."""
    index = day.year * 12 + (day.month - 1) - back
    return dt.date(index // 12, index % 12 + 1, 1)


def end_of_next_month(instant: dt.datetime) -> dt.datetime:
    """23:59:59 UTC on the last day of the calendar month after ``instant``'s (Rental renewal)."""
    first_after = month_of(instant.date(), -2)
    return dt.datetime.combine(first_after, dt.time(), dt.timezone.utc) - dt.timedelta(seconds=1)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def tamper(minted: MintedLicense, **changes: Any) -> bytes:
    """The file with some claims changed and the issuer's signature kept (docs/license-format.md).

    The result is well-formed armour around a well-formed v4.public token whose claims JSON
    differs from what was signed, e.g. more units than were bought. A server must refuse it.
    Without changes it is the genuine token, re-armoured the same way (a control).
    """
    lines = minted.bytes.decode().splitlines()
    begin, end = lines.index("-----BEGIN TALLYMAN LICENSE-----"), lines.index("-----END TALLYMAN LICENSE-----")
    token = "".join(line.strip() for line in lines[begin + 1:end])
    version, purpose, payload, footer = token.split(".")
    raw = _b64url_decode(payload)
    message, signature = raw[:-64], raw[-64:]
    if changes:
        claims = json.loads(message)
        claims.update(changes)
        message = json.dumps(claims, separators=(",", ":")).encode()
    forged = ".".join([version, purpose, _b64url_encode(message + signature), footer])
    body = [forged[i:i + 64] for i in range(0, len(forged), 64)]
    return "\n".join([lines[begin], *body, lines[end], ""]).encode()
