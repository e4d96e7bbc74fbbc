"""Authentication as VSPC clients do it: POST /token (password and refresh grants, form-urlencoded
and multipart), bearer tokens, expiry, and DELETE /users/{uid}/tokens.

Contract: conventions.md section 1, test cases 1-11 and 14.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx
import pytest
from veeam_spc.v3_6_1.api.about import get_about_information
from veeam_spc.v3_6_1.api.accounts import revoke_authentication_token
from veeam_spc.v3_6_1.api.authentication import o_auth_2_issue_token
from veeam_spc.v3_6_1.client import AuthenticatedClient, Client
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.get_about_information_response_200 import (
    GetAboutInformationResponse200,
)
from veeam_spc.v3_6_1.models.o_auth_2_error import OAuth2Error
from veeam_spc.v3_6_1.models.o_auth_2_error_error import OAuth2ErrorError
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body import OAuth2IssueTokenBody
from veeam_spc.v3_6_1.models.o_auth_2_issue_token_body_grant_type import (
    OAuth2IssueTokenBodyGrantType as Grant,
)
from veeam_spc.v3_6_1.models.o_auth_2_result import OAuth2Result
from veeam_spc.v3_6_1.models.response_error_type import ResponseErrorType
from veeam_spc.v3_6_1.models.revoke_authentication_token_response_200 import (
    RevokeAuthenticationTokenResponse200,
)

from conftest import HTTP_TIMEOUT_S, SHORT_ACCESS_TTL_S

OAUTH2_RESULT_KEYS = {
    "access_token",
    "token_type",
    "refresh_token",
    "mfa_token",
    "encrypted_code",
    "expires_in",
}


def issue(server, body: OAuth2IssueTokenBody):
    """POST /token through the generated client; returns the detailed response."""
    with Client(base_url=server.api_url, timeout=httpx.Timeout(HTTP_TIMEOUT_S)) as client:
        return o_auth_2_issue_token.sync_detailed(client=client, body=body, x_client_version="3.6.1")


def about_with(server, token: str, prefix: str = "Bearer"):
    """GET /about through the generated client with the given bearer token."""
    with AuthenticatedClient(
        base_url=server.api_url, token=token, prefix=prefix, timeout=httpx.Timeout(HTTP_TIMEOUT_S)
    ) as client:
        return get_about_information.sync_detailed(client=client, x_client_version="3.6.1")


def password_body(server, **extra) -> OAuth2IssueTokenBody:
    return OAuth2IssueTokenBody(
        grant_type=Grant.PASSWORD,
        username=server.admin_name,
        password=server.admin_password,
        **extra,
    )


def assert_security_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("www-authenticate", "").startswith("Bearer")
    assert isinstance(response.parsed, ErrorResponse)
    assert response.parsed.errors, "401 body must carry at least one error"
    assert response.parsed.errors[0].type_ == ResponseErrorType.SECURITY
    assert response.parsed.errors[0].code == 401


# ---- password grant -------------------------------------------------------------------------


def test_client_connect_logs_in_and_holds_a_token_pair(server):
    async def scenario():
        async with server.session() as vc:
            assert isinstance(vc._access_token, str) and vc._access_token
            assert isinstance(vc._refresh_token, str) and vc._refresh_token
            assert vc._access_token != vc._refresh_token
            # The client computes expiry as now + expires_in - 30 s: expires_in is seconds.
            left = vc._expires_at - datetime.now(timezone.utc)
            assert timedelta(seconds=3500) < left <= timedelta(seconds=3570)
            about = await vc.call(vc.api("about").get_about_information)
            assert isinstance(about, GetAboutInformationResponse200)

    asyncio.run(scenario())


def test_password_grant_answers_a_bare_oauth2_result(server):
    with server.http() as http:
        response = http.post(
            "/token",
            data={
                "grant_type": "password",
                "username": server.admin_name,
                "password": server.admin_password,
            },
            headers={"X-Client-Version": "3.6.1"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == OAUTH2_RESULT_KEYS, "no envelope, no extra keys"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert body["token_type"] == "bearer"
    assert type(body["expires_in"]) is int and body["expires_in"] == 3600
    assert body["mfa_token"] is None
    assert body["encrypted_code"] is None


def test_issue_token_parses_into_oauth2_result(server):
    response = issue(server, password_body(server))
    assert response.status_code == 200
    assert isinstance(response.parsed, OAuth2Result)
    assert response.parsed.token_type == "bearer"
    assert response.parsed.expires_in == 3600
    assert response.parsed.additional_properties == {}


def test_bad_credentials_are_an_invalid_request_oauth2_error(server):
    unknown = OAuth2IssueTokenBody(
        grant_type=Grant.PASSWORD, username=f"nobody-{secrets.token_hex(4)}", password="x"
    )
    wrong_password = OAuth2IssueTokenBody(
        grant_type=Grant.PASSWORD, username=server.admin_name, password="not-the-password"
    )
    for body in (unknown, wrong_password):
        response = issue(server, body)
        assert response.status_code == 400
        assert isinstance(response.parsed, OAuth2Error)
        assert response.parsed.error == OAuth2ErrorError.INVALID_REQUEST
        assert isinstance(response.parsed.error_description, str)
        assert response.parsed.error_description
        assert response.parsed.error_uri is None


def test_unknown_grant_type_is_unsupported(server):
    with server.http() as http:
        response = http.post("/token", data={"grant_type": "foo"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unsupported_grant_type"
    assert isinstance(body["error_description"], str)
    assert body["error_uri"] is None


@pytest.mark.parametrize("grant", [Grant.MFA, Grant.AS])
def test_grants_the_server_does_not_offer_are_unsupported(server, grant):
    response = issue(server, OAuth2IssueTokenBody(grant_type=grant))
    assert response.status_code == 400
    assert isinstance(response.parsed, OAuth2Error)
    assert response.parsed.error == OAuth2ErrorError.UNSUPPORTED_GRANT_TYPE


@pytest.mark.parametrize(
    "form",
    [
        {"username": "admin", "password": "whatever"},
        {},
        {"grant_type": ""},
    ],
    ids=["no-grant-type", "empty-form", "empty-grant-type"],
)
def test_missing_grant_type_is_invalid_request(server, form):
    with server.http() as http:
        response = http.post(
            "/token",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_empty_form_fields_count_as_absent(server):
    # What form builders that list every key (the PHP SDK, Swagger-like UIs) send.
    form = (
        f"grant_type=password&username={server.admin_name}&password={server.admin_password}"
        "&refresh_token=&mfa_token=&mfa_code=&code=&public_key=&userUid=&readOnly="
    )
    with server.http() as http:
        response = http.post(
            "/token", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 200, response.text
    assert about_with(server, response.json()["access_token"]).status_code == 200


def test_password_grant_as_multipart_form_data(server):
    fields = {
        "grant_type": (None, "password"),
        "username": (None, server.admin_name),
        "password": (None, server.admin_password),
    }
    with server.http() as http:
        response = http.post("/token", files=fields)
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200, response.text
    assert OAUTH2_RESULT_KEYS <= set(response.json())
    assert about_with(server, response.json()["access_token"]).status_code == 200


def test_token_endpoint_ignores_an_empty_bearer_header(server):
    # Veeam's own token example carries an empty "Authorization: Bearer" header.
    with server.http() as http:
        response = http.post(
            "/token",
            data={
                "grant_type": "password",
                "username": server.admin_name,
                "password": server.admin_password,
            },
            headers={"Authorization": "Bearer", "X-Client-Version": "3.6.1"},
        )
    assert response.status_code == 200, response.text


# ---- refresh grant --------------------------------------------------------------------------


def test_refresh_grant_issues_a_new_working_pair(server):
    first = issue(server, password_body(server)).parsed
    assert isinstance(first, OAuth2Result)
    response = issue(
        server,
        OAuth2IssueTokenBody(grant_type=Grant.REFRESH_TOKEN, refresh_token=first.refresh_token),
    )
    assert response.status_code == 200
    second = response.parsed
    assert isinstance(second, OAuth2Result)
    assert second.token_type == "bearer"
    assert second.expires_in == 3600
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    about = about_with(server, second.access_token)
    assert about.status_code == 200
    assert isinstance(about.parsed, GetAboutInformationResponse200)


def test_client_refreshes_its_token_when_due(server):
    async def scenario():
        async with server.session() as vc:
            old_access = vc._access_token
            # Pretend the token is about to expire, and make the client's fallback (a fresh
            # password login) impossible: only a working refresh grant can keep it going.
            vc._expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
            vc.password = "not-the-password"
            about = await vc.call(vc.api("about").get_about_information)
            assert isinstance(about, GetAboutInformationResponse200)
            assert vc._access_token != old_access
            assert vc._expires_at > datetime.now(timezone.utc) + timedelta(seconds=3000)

    asyncio.run(scenario())


def test_bad_refresh_tokens_are_invalid_grant(server):
    pair = server.login()
    for bogus in ("garbage", pair["access_token"]):
        response = issue(
            server, OAuth2IssueTokenBody(grant_type=Grant.REFRESH_TOKEN, refresh_token=bogus)
        )
        assert response.status_code == 400
        assert isinstance(response.parsed, OAuth2Error)
        assert response.parsed.error == OAuth2ErrorError.INVALID_GRANT


# ---- bearer handling ------------------------------------------------------------------------


def test_bearer_scheme_is_case_insensitive(server):
    token = server.login()["access_token"]
    for prefix in ("bearer", "BEARER", "Bearer"):
        response = about_with(server, token, prefix=prefix)
        assert response.status_code == 200, prefix
        assert isinstance(response.parsed, GetAboutInformationResponse200)


def test_unknown_bearer_token_is_401(server):
    assert_security_401(about_with(server, "not-a-token-this-server-issued"))


def test_expired_access_token_is_401_and_the_client_recovers(short_ttl_server):
    server = short_ttl_server

    async def scenario():
        async with server.session() as vc:
            stale = vc._access_token
            # Let the access token run out (no clock hook exists in the binary).
            await asyncio.sleep(SHORT_ACCESS_TTL_S + 0.5)
            assert_security_401(about_with(server, stale))
            # expires_in is shorter than the client's 30 s safety margin, so the client
            # refreshes before every call; the refresh token outlives the access token.
            about = await vc.call(vc.api("about").get_about_information)
            assert isinstance(about, GetAboutInformationResponse200)
            assert vc._access_token != stale

    pair = server.login()
    assert pair["expires_in"] == SHORT_ACCESS_TTL_S
    asyncio.run(scenario())


# ---- revocation -----------------------------------------------------------------------------


def _operator(server) -> tuple[str, str, uuid.UUID]:
    name = f"operator-{secrets.token_hex(4)}"
    password = "Op-" + secrets.token_urlsafe(10)
    uid = server.add_user(name, "PortalOperator", password)
    return name, password, uid


def test_user_revokes_own_tokens(server):
    name, password, uid = _operator(server)

    async def scenario():
        async with server.session(name, password) as vc:
            access, refresh = vc._access_token, vc._refresh_token
            response = await vc.call(revoke_authentication_token.asyncio_detailed, uid)
            assert response.status_code == 200
            assert isinstance(response.parsed, RevokeAuthenticationTokenResponse200)
            assert response.parsed.data is True
            assert response.content.replace(b" ", b"") == b'{"data":true}'
            return access, refresh

    access, refresh = asyncio.run(scenario())
    assert_security_401(about_with(server, access))
    again = issue(server, OAuth2IssueTokenBody(grant_type=Grant.REFRESH_TOKEN, refresh_token=refresh))
    assert again.status_code == 400
    assert again.parsed.error == OAuth2ErrorError.INVALID_GRANT
    # Revocation ends sessions, not the account.
    assert about_with(server, server.login(name, password)["access_token"]).status_code == 200


def test_admin_revokes_another_users_tokens(server):
    name, password, uid = _operator(server)
    victim = server.login(name, password)["access_token"]
    with AuthenticatedClient(base_url=server.api_url, token=server.admin_token) as admin:
        response = revoke_authentication_token.sync_detailed(uid, client=admin, user_login_id=1)
    assert response.status_code == 200
    assert response.parsed.data is True
    assert_security_401(about_with(server, victim))
    assert about_with(server, server.admin_token).status_code == 200


def test_only_an_administrator_revokes_someone_else(server):
    name, password, _ = _operator(server)
    admin_uid = server.user_uid(server.admin_name)
    operator_token = server.login(name, password)["access_token"]
    with AuthenticatedClient(base_url=server.api_url, token=operator_token) as operator:
        response = revoke_authentication_token.sync_detailed(admin_uid, client=operator)
    assert response.status_code == 403
    assert isinstance(response.parsed, ErrorResponse)
    assert response.parsed.errors[0].type_ == ResponseErrorType.SECURITY
    assert response.parsed.errors[0].code == 403
    assert about_with(server, server.admin_token).status_code == 200


def test_revoking_an_unknown_user_is_404(server):
    with AuthenticatedClient(base_url=server.api_url, token=server.admin_token) as admin:
        response = revoke_authentication_token.sync_detailed(uuid.uuid4(), client=admin)
    assert response.status_code == 404
    assert isinstance(response.parsed, ErrorResponse)
    assert response.parsed.errors[0].code == 404
    assert response.parsed.errors[0].type_ == ResponseErrorType.LOGICAL


# ---- login throttle -------------------------------------------------------------------------

# The server refuses password logins for a user name from one address after this many failures
# within its window (HttpConfig::login_max_failures, default 5).
LOGIN_MAX_FAILURES = 5


@pytest.fixture(scope="module")
def throttled_user(server) -> tuple[str, str]:
    """A user whose password logins from this address are blocked by LOGIN_MAX_FAILURES misses."""
    name, password, _ = _operator(server)
    for _ in range(LOGIN_MAX_FAILURES):
        failed = issue(
            server, OAuth2IssueTokenBody(grant_type=Grant.PASSWORD, username=name, password="wrong")
        )
        assert failed.status_code == 400
        assert failed.parsed.error == OAuth2ErrorError.INVALID_REQUEST
    return name, password


def test_repeated_failed_logins_are_throttled(server, throttled_user):
    name, password = throttled_user
    with server.http() as http:
        response = http.post(
            "/token", data={"grant_type": "password", "username": name, "password": password}
        )
    # Even the right password is refused now, with a hint when to come back.
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("application/json")
    # Other users are not affected.
    assert server.login()["token_type"] == "bearer"


def test_throttled_login_is_a_429_error_response(server, throttled_user):
    # Throttling follows VSPC's documented 429: an ErrorResponse item of type transport with
    # retryAfter, plus a Retry-After header. (/token declares no 429, so the generated client
    # cannot parse it; scripts see the status code.)
    name, password = throttled_user
    with server.http() as http:
        response = http.post(
            "/token", data={"grant_type": "password", "username": name, "password": password}
        )
    assert response.status_code == 429, response.text
    item = response.json()["errors"][0]
    assert item["type"] == "transport" and item["code"] == 429
    assert 0 < item["retryAfter"] <= 900
    assert isinstance(item["message"], str) and item["message"]
