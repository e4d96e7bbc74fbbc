"""Licensing operations that become async actions (202), through the `veeam-spc` client, on a
server started with ``--force-async true``: the generated module maps 202 to ``parsed is None``,
the caller polls GetAsyncActionInfo with the X-Request-id it chose, and the stored result parses
into the operation's own 200 model.

The generated modules type ``x_request_id`` as a UUID but put it into the headers as it is, which
httpx refuses (a client defect); like a real script, these tests pass ``str(uuid)``.

Contract: ENDPOINTS.md ("Every Licensing operation may answer 202 instead of 200").
"""

from __future__ import annotations

import csv
import io
import time
import datetime as dt
import uuid

from veeam_spc.v3_6_1.api.async_actions import get_async_action_info, get_async_action_result
from veeam_spc.v3_6_1.api.licensing import (
    delete_backup_server_license,
    get_backup_server_license,
    install_backup_server_license,
    patch_v_one_server_license,
)
from veeam_spc.v3_6_1.models.async_action_status import AsyncActionStatus
from veeam_spc.v3_6_1.models.empty_response import EmptyResponse
from veeam_spc.v3_6_1.models.get_backup_server_license_response_200 import (
    GetBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_body import (
    InstallBackupServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_response_200 import (
    InstallBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.json_patch import JsonPatch
from veeam_spc.v3_6_1.models.json_patch_op import JsonPatchOp
from veeam_spc.v3_6_1.models.patch_v_one_server_license_response_200 import (
    PatchVOneServerLicenseResponse200,
)

import contract
from licensing_support import client, in_days, unknown_properties, upload

POLL_TIMEOUT_S = 10.0


def finished(c, action_id: uuid.UUID) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while True:
        info = get_async_action_info.sync_detailed(action_id, client=c)
        assert info.status_code == 200, info.content
        if info.parsed.data.status != AsyncActionStatus.RUNNING:
            assert info.parsed.data.status == AsyncActionStatus.SUCCEED, info.content
            return
        assert time.monotonic() < deadline, "the action did not finish"
        time.sleep(0.05)


def result_as(c, action_id: uuid.UUID, model: type, operation_id: str):
    """The stored result, parsed with the original operation's 200 model."""
    result = get_async_action_result.sync_detailed(action_id, client=c)
    assert result.status_code == 200, result.content
    body = result.parsed.to_dict()
    contract.assert_conforms(operation_id, 200, body)
    parsed = model.from_dict(body)
    assert not unknown_properties(parsed)
    return parsed


def test_install_as_an_async_action(licensing_async_server):
    server = licensing_async_server
    uid = server.add_managed_server("vbr-async", "backup-server")
    minted = server.issuer.mint("backup-and-replication", "Subscription", expires=in_days(100))
    request_id = uuid.uuid4()
    with client(server) as c:
        accepted = install_backup_server_license.sync_detailed(
            uid, client=c, body=InstallBackupServerLicenseBody(license_=upload(minted)),
            x_request_id=str(request_id),
        )
        assert accepted.status_code == 202, accepted.content
        assert accepted.parsed is None
        assert accepted.headers["location"].endswith(f"/api/v3/asyncActions/{request_id}")
        finished(c, request_id)
        installed = result_as(c, request_id, InstallBackupServerLicenseResponse200,
                              "InstallBackupServerLicense")
        assert installed.data.license_ids == [minted.license_id]

        # A read is async too; its result is the same resource.
        read_id = uuid.uuid4()
        read = get_backup_server_license.sync_detailed(uid, client=c, x_request_id=str(read_id))
        assert read.status_code == 202
        finished(c, read_id)
        got = result_as(c, read_id, GetBackupServerLicenseResponse200, "GetBackupServerLicense")
        assert got.data.to_dict() == installed.data.to_dict()

        # Deleting answers an EmptyResponse when done.
        delete_id = uuid.uuid4()
        deleted = delete_backup_server_license.sync_detailed(uid, client=c, x_request_id=str(delete_id))
        assert deleted.status_code == 202
        finished(c, delete_id)
        empty = result_as(c, delete_id, EmptyResponse, "DeleteBackupServerLicense")
        assert empty.errors == []


def test_patch_as_an_async_action(licensing_async_server):
    server = licensing_async_server
    uid = server.add_managed_server("vone-async", "vone-server")
    minted = server.issuer.mint("vone", "Subscription", expires=in_days(100))
    with server.http(server.admin_token) as http:
        put = http.put(f"/licensing/voneServers/{uid}", files={"license": ("v.lic", minted.bytes)})
    assert put.status_code == 202  # installed in the background
    with client(server) as c:
        finished(c, uuid.UUID(put.headers["location"].rsplit("/", 1)[-1]))
        request_id = uuid.uuid4()
        accepted = patch_v_one_server_license.sync_detailed(
            uid, client=c, x_request_id=str(request_id),
            body=[JsonPatch(op=JsonPatchOp.REPLACE, path="/autoUpdateEnabled", value="true")],
        )
        assert accepted.status_code == 202 and accepted.parsed is None
        finished(c, request_id)
        patched = result_as(c, request_id, PatchVOneServerLicenseResponse200, "PatchVOneServerLicense")
    assert patched.data.auto_update_enabled is True
    assert patched.data.license_id == minted.license_id


def test_report_csv_as_an_async_action(licensing_async_server):
    """The stored result of DownloadLicensingReportCsv is the CSV itself (the contract's result is
    "untyped": the body of the original call), so it is read with plain httpx."""
    server = licensing_async_server
    today = dt.date.today()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    server.cli("report", "generate", "--month", last_month)
    request_id = uuid.uuid4()
    with server.http(server.admin_token) as http:
        listing = http.get("/licensing/reports", headers={"X-Request-id": str(request_id)})
        assert listing.status_code == 202
        with client(server) as c:
            finished(c, request_id)
        reports = http.get(f"/asyncActions/{request_id}/result").json()["data"]
        assert reports, "last month's report was generated above"
        report_id = reports[0]["reportParameters"]["reportId"]
        csv_id = uuid.uuid4()
        accepted = http.get(f"/licensing/reports/{report_id}/csv", headers={"X-Request-id": str(csv_id)})
        assert accepted.status_code == 202
        with client(server) as c:
            finished(c, csv_id)
        result = http.get(f"/asyncActions/{csv_id}/result")
    assert result.status_code == 200
    assert result.headers["content-type"].split(";")[0] == "application/csv"
    header = next(csv.reader(io.StringIO(result.content.decode("utf-8-sig"))))
    assert header[:2] == ["Report ID", "Month"]
