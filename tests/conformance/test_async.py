"""Async actions and X-Request-id: the 202 + Location + poll + result loop that VSPC scripts run,
the seven /asyncActions endpoints, and idempotent replays.

The plain server answers /about synchronously but still records requests that carry an
X-Request-id as actions; the force-async server answers every async-capable operation with 202.

Contract: conventions.md section 4, test cases 20 and 38-44 (for /about, the one async-capable
operation the server has before the Licensing endpoints arrive).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest
from veeam_spc.v3_6_1.api.about import get_about_information
from veeam_spc.v3_6_1.api.accounts import revoke_authentication_token
from veeam_spc.v3_6_1.api.async_actions import (
    attach_request_data_to_async_action,
    cancel_async_action,
    clear_async_action_result,
    get_async_action_info,
    get_async_action_result,
    get_async_actions_config,
    get_async_actions_info,
)
from veeam_spc.v3_6_1.client import AuthenticatedClient
from veeam_spc.v3_6_1.models.async_action_info import AsyncActionInfo
from veeam_spc.v3_6_1.models.async_action_request_data import AsyncActionRequestData
from veeam_spc.v3_6_1.models.async_action_request_data_query_parameters_type_0 import (
    AsyncActionRequestDataQueryParametersType0,
)
from veeam_spc.v3_6_1.models.async_action_status import AsyncActionStatus
from veeam_spc.v3_6_1.models.attach_request_data_to_async_action_response_200 import (
    AttachRequestDataToAsyncActionResponse200,
)
from veeam_spc.v3_6_1.models.empty_response import EmptyResponse
from veeam_spc.v3_6_1.models.empty_response_data import EmptyResponseData
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.get_about_information_response_200 import (
    GetAboutInformationResponse200,
)
from veeam_spc.v3_6_1.models.get_async_action_info_response_200 import (
    GetAsyncActionInfoResponse200,
)
from veeam_spc.v3_6_1.models.get_async_action_result_response_200 import (
    GetAsyncActionResultResponse200,
)
from veeam_spc.v3_6_1.models.get_async_actions_config_response_200 import (
    GetAsyncActionsConfigResponse200,
)
from veeam_spc.v3_6_1.models.get_async_actions_info_response_200 import (
    GetAsyncActionsInfoResponse200,
)
from veeam_spc.v3_6_1.models.response_error_type import ResponseErrorType

from conftest import HTTP_TIMEOUT_S

SERVER_VERSION = re.compile(r"^9\.1\.\d+\.\d+$")
# What PowerShell VSPC modules pull out of a Location header.
LOCATION_ID = re.compile(r"/api/v3/asyncActions/([0-9a-fA-F-]{36})$")
# Polling bound: the loop gives up after this many status reads.
MAX_POLLS = 200
POLL_INTERVAL_S = 0.05


def authed(server, token=None) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=server.api_url,
        token=token or server.admin_token,
        timeout=httpx.Timeout(HTTP_TIMEOUT_S),
    )


def get_about_raw(server, request_id=None, token=None, params=None) -> httpx.Response:
    headers = {"X-Client-Version": "3.6.1"}
    if request_id is not None:
        headers["X-Request-id"] = str(request_id)
    with server.http(token or server.admin_token) as http:
        return http.get("/about", headers=headers, params=params)


def assert_error(response, status: int, code: int, error_type=ResponseErrorType.LOGICAL):
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, ErrorResponse), response.content
    assert response.parsed.errors, "an error response carries at least one error"
    assert response.parsed.errors[0].code == code
    assert response.parsed.errors[0].type_ == error_type


async def wait_until_finished(client: AuthenticatedClient, action_id: uuid.UUID) -> AsyncActionInfo:
    """Polls GET /asyncActions/{id} with the generated client until the action leaves `running`."""
    for _ in range(MAX_POLLS):
        response = await get_async_action_info.asyncio_detailed(
            action_id, client=client, x_client_version="3.6.1"
        )
        assert response.status_code == 200, response.content
        assert isinstance(response.parsed, GetAsyncActionInfoResponse200)
        info = response.parsed.data
        assert info.id == action_id
        if info.status != AsyncActionStatus.RUNNING:
            return info
        await asyncio.sleep(POLL_INTERVAL_S)
    pytest.fail(f"action {action_id} still running after {MAX_POLLS} polls")


def _operator_token(server) -> str:
    name = f"operator-{uuid.uuid4().hex[:8]}"
    server.add_user(name, "PortalOperator", "Operator-pw-1")
    return server.login(name, "Operator-pw-1")["access_token"]


# ---- the plain server -----------------------------------------------------------------------


def test_async_actions_config(server):
    with authed(server) as client:
        response = get_async_actions_config.sync_detailed(client=client)
    assert response.status_code == 200
    assert isinstance(response.parsed, GetAsyncActionsConfigResponse200)
    assert response.parsed.data.result_retention_time == 300
    assert response.parsed.additional_properties == {}


def test_a_tracked_synchronous_request_is_an_action(server):
    request_id = uuid.uuid4()
    answered = get_about_raw(server, request_id)
    assert answered.status_code == 200, "the plain server answers /about within its budget"
    admin_uid = server.user_uid(server.admin_name)

    with authed(server) as client:
        info = get_async_action_info.sync_detailed(request_id, client=client)
        result = get_async_action_result.sync_detailed(request_id, client=client)
        listing = get_async_actions_info.sync_detailed(client=client)

    assert info.status_code == 200
    assert isinstance(info.parsed, GetAsyncActionInfoResponse200)
    action = info.parsed.data
    assert action.id == request_id
    assert action.initiator_uid == admin_uid
    assert action.status == AsyncActionStatus.SUCCEED
    assert isinstance(action.action_name, str) and action.action_name
    assert action.query_parameters.additional_properties == {}

    assert result.status_code == 200
    assert isinstance(result.parsed, GetAsyncActionResultResponse200)
    # The stored result is the operation's own envelope, byte for byte what the caller got.
    assert result.content == answered.content
    about = GetAboutInformationResponse200.from_dict(result.parsed.to_dict())
    assert SERVER_VERSION.match(about.data.server_version)

    assert listing.status_code == 200
    assert isinstance(listing.parsed, GetAsyncActionsInfoResponse200)
    listed = {a.id: a for a in listing.parsed.data}
    assert request_id in listed
    assert listed[request_id].status == AsyncActionStatus.SUCCEED
    paging = listing.parsed.meta.paging_info
    assert paging.total == len(listing.parsed.data) == paging.count
    assert paging.offset == 0


def test_action_name_is_the_vspc_operation_id(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    with authed(server) as client:
        info = get_async_action_info.sync_detailed(request_id, client=client)
    assert info.status_code == 200
    assert info.parsed.data.action_name == "GetAboutInformation"


def test_query_parameters_are_recorded_as_string_arrays(server):
    request_id = uuid.uuid4()
    answered = get_about_raw(
        server, request_id, params=[("select", '[{"propertyPath":"serverVersion"}]'), ("x", "1"), ("x", "2")]
    )
    assert answered.status_code == 200, answered.text
    with authed(server) as client:
        info = get_async_action_info.sync_detailed(request_id, client=client)
    params = info.parsed.data.query_parameters
    assert params["x"] == ["1", "2"]
    assert params["select"] == ['[{"propertyPath":"serverVersion"}]']


def test_same_request_id_replays_the_first_answer(server):
    request_id = uuid.uuid4()
    first = get_about_raw(server, request_id)
    again = get_about_raw(server, request_id)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content


def test_request_id_reused_for_another_request_is_409(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    clash = get_about_raw(server, request_id, params={"offset": "5"})
    assert clash.status_code == 409
    error = clash.json()["errors"][0]
    assert error["code"] == 409
    assert error["type"] == "logical"
    assert error["parameterName"] == "X-Request-id"
    ErrorResponse.from_dict(clash.json())


def test_request_id_must_be_a_uuid(server):
    response = get_about_raw(server, "not-a-uuid")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["parameterName"] == "X-Request-id"
    assert error["type"] == "logical"
    ErrorResponse.from_dict(response.json())


def test_unknown_actions_are_404(server):
    unknown = uuid.uuid4()
    with authed(server) as client:
        responses = [
            get_async_action_info.sync_detailed(unknown, client=client),
            get_async_action_result.sync_detailed(unknown, client=client),
            cancel_async_action.sync_detailed(unknown, client=client),
            clear_async_action_result.sync_detailed(unknown, client=client),
            attach_request_data_to_async_action.sync_detailed(
                unknown, client=client, body=AsyncActionRequestData(request_body="{}")
            ),
        ]
    for response in responses:
        assert_error(response, 404, 404)


def test_malformed_action_id_is_400(server):
    with server.http(server.admin_token) as http:
        response = http.get("/asyncActions/not-a-uuid")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["parameterName"] == "actionId"
    assert error["code"] == 400


def test_actions_are_private_to_their_user(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    with authed(server, _operator_token(server)) as other:
        assert_error(get_async_action_info.sync_detailed(request_id, client=other), 404, 404)
        assert_error(get_async_action_result.sync_detailed(request_id, client=other), 404, 404)
        assert_error(clear_async_action_result.sync_detailed(request_id, client=other), 404, 404)
        listing = get_async_actions_info.sync_detailed(client=other)
    assert listing.status_code == 200
    assert request_id not in {a.id for a in listing.parsed.data}


def test_clearing_a_result(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    with authed(server) as client:
        cleared = clear_async_action_result.sync_detailed(request_id, client=client)
        after = get_async_action_result.sync_detailed(request_id, client=client)
    assert cleared.status_code == 200
    assert isinstance(cleared.parsed, EmptyResponse)
    assert cleared.parsed.errors == []
    assert isinstance(cleared.parsed.data, EmptyResponseData)
    raw = json.loads(cleared.content)
    assert raw["errors"] == [] and isinstance(raw["data"], dict)
    assert_error(after, 404, 404)


def test_cancelling_a_finished_action_is_refused(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    with authed(server) as client:
        cancel = cancel_async_action.sync_detailed(request_id, client=client)
        info = get_async_action_info.sync_detailed(request_id, client=client)
    assert_error(cancel, 400, 1000)
    assert info.parsed.data.status == AsyncActionStatus.SUCCEED


def test_attaching_request_data(server):
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 200
    query = AsyncActionRequestDataQueryParametersType0()
    query["limit"] = ["5"]
    query["expand"] = ["a", "b"]
    body = AsyncActionRequestData(request_body='{"note":"attached"}', query_parameters=query)
    with authed(server) as client:
        response = attach_request_data_to_async_action.sync_detailed(
            request_id, client=client, body=body
        )
        info = get_async_action_info.sync_detailed(request_id, client=client)
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, AttachRequestDataToAsyncActionResponse200)
    attached = response.parsed.data
    assert attached.id == request_id
    assert attached.request_body == '{"note":"attached"}'
    assert attached.query_parameters["limit"] == ["5"]
    assert attached.query_parameters["expand"] == ["a", "b"]
    assert info.parsed.data.query_parameters["limit"] == ["5"]


# ---- the force-async server -----------------------------------------------------------------


def test_forced_202_then_poll_then_result(async_server):
    server = async_server
    request_id = uuid.uuid4()
    accepted = get_about_raw(server, request_id)
    assert accepted.status_code == 202
    assert accepted.headers["location"] == f"{server.api_url}/asyncActions/{request_id}"
    # The 202 body is not empty (scripts that stop on an empty body would never poll) and
    # reads as an AsyncActionInfo envelope.
    pending = GetAsyncActionInfoResponse200.from_dict(accepted.json())
    assert pending.data.id == request_id
    assert pending.data.status in (AsyncActionStatus.RUNNING, AsyncActionStatus.SUCCEED)
    assert pending.data.action_name

    async def scenario():
        async with authed(server) as client:
            done = await wait_until_finished(client, request_id)
            result = await get_async_action_result.asyncio_detailed(request_id, client=client)
            return done, result

    done, result = asyncio.run(scenario())
    assert done.status == AsyncActionStatus.SUCCEED
    assert result.status_code == 200
    assert isinstance(result.parsed, GetAsyncActionResultResponse200)
    about = GetAboutInformationResponse200.from_dict(result.parsed.to_dict())
    assert SERVER_VERSION.match(about.data.server_version)

    # Asking again with the same id now replays the finished answer.
    replay = get_about_raw(server, request_id)
    assert replay.status_code == 200
    assert replay.content == result.content


def test_forced_202_without_request_id_uses_the_location(async_server):
    """The PowerShell module's way: take the action id from Location."""
    server = async_server
    accepted = get_about_raw(server)
    assert accepted.status_code == 202
    match = LOCATION_ID.search(accepted.headers["location"])
    assert match, accepted.headers["location"]
    action_id = uuid.UUID(match.group(1))
    assert accepted.headers["location"].startswith(server.api_url + "/"), "absolute URL"

    async def scenario():
        async with authed(server) as client:
            done = await wait_until_finished(client, action_id)
            result = await get_async_action_result.asyncio_detailed(action_id, client=client)
            listing = await get_async_actions_info.asyncio_detailed(client=client)
            return done, result, listing

    done, result, listing = asyncio.run(scenario())
    assert done.status == AsyncActionStatus.SUCCEED
    assert result.status_code == 200
    assert GetAboutInformationResponse200.from_dict(result.parsed.to_dict()).data.server_version
    assert action_id in {a.id for a in listing.parsed.data}


def test_client_call_on_a_forced_async_server(async_server):
    """The generated client maps 202 to `parsed is None`; the caller then polls by its own id."""
    server = async_server
    request_id = uuid.uuid4()

    async def scenario():
        async with server.session() as vc:
            first = await vc.call(get_about_information.asyncio_detailed, x_request_id=str(request_id))
            done = await wait_until_finished(vc._client, request_id)
            result = await vc.call(get_async_action_result.asyncio_detailed, request_id)
            return first, done, result

    first, done, result = asyncio.run(scenario())
    assert first.status_code == 202
    assert first.parsed is None
    assert done.status == AsyncActionStatus.SUCCEED
    assert result.status_code == 200


def test_async_actions_endpoints_never_go_async(async_server):
    server = async_server
    with authed(server) as client:
        config = get_async_actions_config.sync_detailed(client=client)
        listing = get_async_actions_info.sync_detailed(client=client)
    assert config.status_code == 200
    assert config.parsed.data.result_retention_time == 300
    assert listing.status_code == 200
    assert isinstance(listing.parsed, GetAsyncActionsInfoResponse200)
    # /token is never async either.
    assert server.login()["token_type"] == "bearer"


def test_forced_action_is_private_to_its_user(async_server):
    server = async_server
    request_id = uuid.uuid4()
    assert get_about_raw(server, request_id).status_code == 202
    with authed(server, _operator_token(server)) as other:
        assert_error(get_async_action_info.sync_detailed(request_id, client=other), 404, 404)
        # Reusing someone else's id is not a clash: ids are per user.
        mine = get_about_raw(server, request_id, token=other.token)
    assert mine.status_code == 202


def test_revoking_tokens_is_async_capable(async_server):
    server = async_server
    name = f"revokee-{uuid.uuid4().hex[:8]}"
    uid = server.add_user(name, "PortalOperator", "Revokee-pw-1")
    request_id = uuid.uuid4()
    with authed(server) as client:
        response = revoke_authentication_token.sync_detailed(
            uid, client=client, x_request_id=str(request_id)
        )
    assert response.status_code == 202, response.content
    assert response.headers["location"] == f"{server.api_url}/asyncActions/{request_id}"
