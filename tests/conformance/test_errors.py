"""Error responses: every failure is a VSPC ErrorResponse the generated client can parse, with the
right HTTP status -- 401 without a usable token, 403 for read-only tokens that try to write, 404
for unknown routes, 405 for wrong methods, 400/415/413 for bad bodies and parameters.

Contract: conventions.md sections 1.5 and 2, test cases 9, 13, 18 and 20.
"""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest
from veeam_spc.v3_6_1.api.about import get_about_information
from veeam_spc.v3_6_1.api.accounts import revoke_authentication_token
from veeam_spc.v3_6_1.api.async_actions import (
    attach_request_data_to_async_action,
    cancel_async_action,
    get_async_action_info,
    get_async_actions_config,
    get_async_actions_info,
)
from veeam_spc.v3_6_1.api.authentication import o_auth_2_issue_token
from veeam_spc.v3_6_1.client import AuthenticatedClient, Client
from veeam_spc.v3_6_1.models.async_action_request_data import AsyncActionRequestData
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.get_about_information_response_200 import (
    GetAboutInformationResponse200,
)
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body import OAuth2IssueTokenBody
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body_grant_type import (
    OAuth2IssueTokenBodyGrantType as Grant,
)
from veeam_spc.v3_6_1.models.o_auth_2_result import OAuth2Result
from veeam_spc.v3_6_1.models.response_error_type import ResponseErrorType

from conftest import HTTP_TIMEOUT_S

ERROR_TYPES = {"logical", "retryableLogical", "security", "transport", "unspecified"}


def assert_error_body(response: httpx.Response) -> list[dict]:
    """Checks the wire shape of an ErrorResponse and that the client's model accepts it."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]
    for item in body["errors"]:
        assert isinstance(item.get("message"), str) and item["message"]
        assert item.get("type") in ERROR_TYPES
        assert type(item.get("code")) is int
    ErrorResponse.from_dict(body)
    return body["errors"]


def anonymous(server) -> Client:
    return Client(base_url=server.api_url, timeout=httpx.Timeout(HTTP_TIMEOUT_S))


def authed(server, token: str) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=server.api_url, token=token, timeout=httpx.Timeout(HTTP_TIMEOUT_S)
    )


# ---- 401 ------------------------------------------------------------------------------------

CLIENT_CALLS = {
    "about": lambda c: get_about_information.sync_detailed(client=c),
    "asyncActions": lambda c: get_async_actions_info.sync_detailed(client=c),
    "asyncActions/config": lambda c: get_async_actions_config.sync_detailed(client=c),
    "asyncActions/{id}": lambda c: get_async_action_info.sync_detailed(uuid.uuid4(), client=c),
    "DELETE asyncActions/{id}": lambda c: cancel_async_action.sync_detailed(uuid.uuid4(), client=c),
    "DELETE users/{uid}/tokens": lambda c: revoke_authentication_token.sync_detailed(
        uuid.uuid4(), client=c
    ),
}


@pytest.mark.parametrize("call", list(CLIENT_CALLS.values()), ids=list(CLIENT_CALLS))
def test_no_token_is_401_security(server, call):
    with anonymous(server) as client:
        response = call(client)
    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").startswith("Bearer")
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.parsed, ErrorResponse)
    assert response.parsed.errors[0].type_ == ResponseErrorType.SECURITY
    assert response.parsed.errors[0].code == 401
    assert response.parsed.errors[0].message


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWRtaW46YWRtaW4=", "Bearer", "just-a-token", "Bearer not.a.token", "Token abc"],
)
def test_unusable_authorization_headers_are_401(server, authorization):
    with server.http() as http:
        response = http.get("/about", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers.get("www-authenticate", "").startswith("Bearer")
    errors = assert_error_body(response)
    assert errors[0]["type"] == "security" and errors[0]["code"] == 401


# ---- 403: read-only tokens ------------------------------------------------------------------


def _read_only_pair(server) -> OAuth2Result:
    body = OAuth2IssueTokenBody(
        grant_type=Grant.PASSWORD,
        username=server.admin_name,
        password=server.admin_password,
        read_only=True,
    )
    with anonymous(server) as client:
        response = o_auth_2_issue_token.sync_detailed(client=client, body=body)
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, OAuth2Result)
    return response.parsed


def test_read_only_token_reads_but_cannot_delete(server):
    target_name = f"target-{secrets.token_hex(4)}"
    target_uid = server.add_user(target_name, "PortalOperator", "Target-pw-1")
    target_token = server.login(target_name, "Target-pw-1")["access_token"]
    pair = _read_only_pair(server)

    with authed(server, pair.access_token) as read_only:
        about = get_about_information.sync_detailed(client=read_only)
        revoke = revoke_authentication_token.sync_detailed(target_uid, client=read_only)
        cancel = cancel_async_action.sync_detailed(uuid.uuid4(), client=read_only)
        attach = attach_request_data_to_async_action.sync_detailed(
            uuid.uuid4(), client=read_only, body=AsyncActionRequestData(request_body="{}")
        )

    assert about.status_code == 200
    assert isinstance(about.parsed, GetAboutInformationResponse200)
    for response in (revoke, cancel, attach):
        assert response.status_code == 403, response.content
        assert isinstance(response.parsed, ErrorResponse)
        assert response.parsed.errors[0].type_ == ResponseErrorType.SECURITY
        assert response.parsed.errors[0].code == 403
    # The refused DELETE changed nothing.
    with authed(server, target_token) as target:
        assert get_about_information.sync_detailed(client=target).status_code == 200


def test_refreshing_a_read_only_token_keeps_it_read_only(server):
    pair = _read_only_pair(server)
    with anonymous(server) as client:
        refreshed = o_auth_2_issue_token.sync_detailed(
            client=client,
            body=OAuth2IssueTokenBody(grant_type=Grant.REFRESH_TOKEN, refresh_token=pair.refresh_token),
        ).parsed
    assert isinstance(refreshed, OAuth2Result)
    with authed(server, refreshed.access_token) as read_only:
        revoke = revoke_authentication_token.sync_detailed(uuid.uuid4(), client=read_only)
    assert revoke.status_code == 403
    assert revoke.parsed.errors[0].type_ == ResponseErrorType.SECURITY


# ---- 404 and 405 ----------------------------------------------------------------------------


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v3/noSuchResource"),
        ("POST", "/api/v3/noSuchResource/action"),
        ("DELETE", "/api/v3/users/00000000-0000-0000-0000-000000000001/noSuchThing"),
        ("GET", "/no/such/page"),
    ],
)
def test_unknown_route_is_404_json(server, method, path, with_token):
    headers = {"Authorization": f"Bearer {server.admin_token}"} if with_token else {}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as http:
        response = http.request(method, path, headers=headers)
    assert response.status_code == 404
    errors = assert_error_body(response)
    assert errors[0]["code"] == 404
    assert errors[0]["type"] == "logical"


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("POST", "/about", "GET"),
        ("DELETE", "/about", "GET"),
        ("GET", "/token", "POST"),
        ("PUT", "/token", "POST"),
        ("PATCH", "/asyncActions", "GET"),
        ("POST", "/asyncActions/00000000-0000-0000-0000-000000000001/result", "GET"),
    ],
)
def test_wrong_method_is_405_json(server, method, path, allowed):
    with server.http(server.admin_token) as http:
        response = http.request(method, path)
    assert response.status_code == 405
    errors = assert_error_body(response)
    assert errors[0]["code"] == 405
    allow = {m.strip() for m in response.headers.get("allow", "").split(",")}
    assert allowed in allow, response.headers.get("allow")


# ---- bad bodies and parameters --------------------------------------------------------------


def _tracked_action(server) -> uuid.UUID:
    request_id = uuid.uuid4()
    with server.http(server.admin_token) as http:
        assert http.get("/about", headers={"X-Request-id": str(request_id)}).status_code == 200
    return request_id


def test_malformed_json_body_is_400(server):
    action = _tracked_action(server)
    with server.http(server.admin_token) as http:
        response = http.put(
            f"/asyncActions/{action}/requestData",
            content=b'{"requestBody": ',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    errors = assert_error_body(response)
    assert errors[0]["type"] == "logical" and errors[0]["code"] == 400


def test_non_json_body_is_415(server):
    action = _tracked_action(server)
    with server.http(server.admin_token) as http:
        response = http.put(
            f"/asyncActions/{action}/requestData",
            content=b"requestBody=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 415
    errors = assert_error_body(response)
    assert errors[0]["code"] == 415


def test_oversized_body_is_413(server):
    action = _tracked_action(server)
    # Larger than the server's default 4 MiB body limit.
    body = b'{"requestBody":"' + b"x" * (4 * 1024 * 1024 + 1) + b'"}'
    with server.http(server.admin_token) as http:
        response = http.put(
            f"/asyncActions/{action}/requestData",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    errors = assert_error_body(response)
    assert errors[0]["code"] == 413


def test_get_with_a_leftover_body_is_fine(server):
    # Some scripts send the token call's form body along with every later GET.
    with server.http(server.admin_token) as http:
        response = http.request(
            "GET",
            "/about",
            content=b"grant_type=password&username=x&password=y",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    GetAboutInformationResponse200.from_dict(response.json())


def test_every_error_is_an_error_response(server):
    """One sweep over every kind of failure this server can produce today."""
    token = server.admin_token
    bearer = {"Authorization": f"Bearer {token}"}
    unknown = uuid.uuid4()
    cases = [
        ("GET", "/about", {}, None),
        ("GET", "/about", {"Authorization": "Bearer nope"}, None),
        ("GET", "/about", {**bearer, "X-Request-id": "nope"}, None),
        ("GET", "/nothing-here", bearer, None),
        ("PUT", "/about", bearer, None),
        ("GET", "/asyncActions/nope", bearer, None),
        ("GET", f"/asyncActions/{unknown}", bearer, None),
        ("GET", f"/asyncActions/{unknown}/result", bearer, None),
        ("DELETE", f"/asyncActions/{unknown}/result", bearer, None),
        ("DELETE", "/users/nope/tokens", bearer, None),
        ("DELETE", f"/users/{unknown}/tokens", bearer, None),
        ("PUT", f"/asyncActions/{unknown}/requestData", {**bearer, "Content-Type": "application/json"}, b"[1,"),
        ("PUT", f"/asyncActions/{unknown}/requestData", {**bearer, "Content-Type": "text/plain"}, b"x"),
        ("POST", "/token", {"Content-Type": "multipart/form-data; boundary=x"}, b"not multipart"),
    ]
    with server.http() as http:
        for method, path, headers, content in cases:
            response = http.request(method, path, headers=headers, content=content)
            assert 400 <= response.status_code < 600, (method, path, response.status_code)
            if path == "/token":
                # /token speaks OAuth 2.0 errors instead (section 1.1).
                assert response.status_code == 400
                assert response.json()["error"] == "invalid_request"
                continue
            assert_error_body(response)
