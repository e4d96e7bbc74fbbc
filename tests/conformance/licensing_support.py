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

import datetime as dt
import io
import uuid
from typing import Any, Optional

import attrs
import httpx
from veeam_spc.v3_6_1.client import AuthenticatedClient
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body import OAuth2IssueTokenBody
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body_grant_type import (
    OAuth2IssueTokenBodyGrantType,
)
from veeam_spc.v3_6_1.api.authentication import o_auth_2_issue_token
from veeam_spc.v3_6_1.client import Client
from veeam_spc.v3_6_1.types import File, Response, Unset

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


def unknown_properties(model: Any, where: str = "data") -> list[str]:
    """Paths of properties the client did not know, anywhere in a parsed model tree."""
    out: list[str] = []
    if isinstance(model, list):
        for i, item in enumerate(model):
            out += unknown_properties(item, f"{where}[{i}]")
    elif attrs.has(type(model)):
        extra = getattr(model, "additional_properties", {}) or {}
        out += [f"{where}.{key}" for key in extra]
        for field in attrs.fields(type(model)):
            if field.name != "additional_properties":
                out += unknown_properties(getattr(model, field.name), f"{where}.{field.name}")
    return out


def expect(
    response: Response,
    status: int,
    model: type,
    operation_id: str,
) -> Any:
    """Asserts one client response (see the module docstring) and returns the parsed model."""
    assert response.status_code == status, (
        f"{operation_id}: expected {status}, got {int(response.status_code)}: "
        f"{response.content[:2000]!r}"
    )
    assert isinstance(response.parsed, model), (
        f"{operation_id}: the client parsed {type(response.parsed).__name__}, not {model.__name__}"
    )
    unknown = unknown_properties(response.parsed)
    assert not unknown, f"{operation_id}: properties the client does not know: {unknown}"
    if model is not ErrorResponse or status != 200:
        import json

        contract.assert_conforms(operation_id, status, json.loads(response.content))
    return response.parsed


def expect_error(response: Response, status: int, code: int, operation_id: str) -> ErrorResponse:
    """An ErrorResponse the client parses, with the given HTTP status and VSPC error code."""
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
    """The first day of the month ``back`` months before ``day``'s."""
    year, month = day.year, day.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return dt.date(year, month, 1)


def end_of_next_month(instant: dt.datetime) -> dt.datetime:
    """23:59:59 UTC on the last day of the calendar month after ``instant``'s (Rental renewal)."""
    first_after = month_of(instant.date(), -2)
    return dt.datetime.combine(first_after, dt.time(), dt.timezone.utc) - dt.timedelta(seconds=1)


def unset_to_none(value: Any) -> Any:
    return None if isinstance(value, Unset) else value


def new_uid() -> uuid.UUID:
    return uuid.uuid4()
