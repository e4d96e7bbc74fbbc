"""Who may call the Licensing operations: every one of the 34, called through its generated
`veeam-spc` module with the token of a role the contract does not admit
(``x-veeam-vspc-admitted-roles``), is refused with a 403 ``security`` ErrorResponse the client
parses; a role it admits gets through; and a reseller's administrator sees only its own
organizations' servers.

Contract: ENDPOINTS.md (Roles column), conventions.md section 9 ("Role model").
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest
from veeam_spc.v3_6_1.api.licensing import (
    delete_backup_server_license,
    delete_v_one_server_license,
    download_licensing_report_csv,
    finalize_licensing_reports,
    get_backup_server_license,
    get_backup_servers_licenses,
    get_console_license_information,
    get_console_license_settings,
    get_latest_licensing_reports,
    get_licensing_reports,
    get_licensing_reports_for_date,
    get_licensing_reports_settings,
    get_organizations_license_usage,
    get_site_license,
    get_site_licenses,
    get_v_one_server_license,
    get_v_one_servers_licenses,
    get_vb_365_server_license,
    get_vb_365_servers_licenses,
    install_backup_server_license,
    install_console_license,
    install_site_license,
    install_v_one_server_license,
    install_vb_365_server_license,
    patch_backup_server_license,
    patch_licensing_reports_settings,
    patch_site_license,
    patch_v_one_server_license,
    patch_vb_365_server_license,
    update_backup_server_license,
    update_console_license,
    update_site_license,
    update_v_one_server_license,
    update_vb_365_server_license,
)
from veeam_spc.v3_6_1.models.get_backup_server_license_response_200 import (
    GetBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.get_backup_servers_licenses_response_200 import (
    GetBackupServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.get_site_licenses_response_200 import GetSiteLicensesResponse200
from veeam_spc.v3_6_1.models.install_backup_server_license_body import (
    InstallBackupServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_console_license_body import InstallConsoleLicenseBody
from veeam_spc.v3_6_1.models.install_site_license_body import InstallSiteLicenseBody
from veeam_spc.v3_6_1.models.install_v_one_server_license_body import (
    InstallVOneServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_vb_365_server_license_body import (
    InstallVb365ServerLicenseBody,
)
from veeam_spc.v3_6_1.models.json_patch import JsonPatch
from veeam_spc.v3_6_1.models.json_patch_op import JsonPatchOp

import contract
from licensing_support import client, expect, expect_error, in_days, op_id, upload

FAKE_FILE = b"-----BEGIN TALLYMAN LICENSE-----\nnot checked before the role\n-----END TALLYMAN LICENSE-----\n"


def _patch():
    return [JsonPatch(op=JsonPatchOp.REPLACE, path="/autoUpdateEnabled", value="true")]


def _calls() -> dict:
    """One call per Licensing operation: module -> f(client). Path uids are random: the role is
    checked before anything is looked up."""
    u = uuid.uuid4
    return {
        get_site_licenses: lambda c: get_site_licenses.sync_detailed(client=c),
        get_site_license: lambda c: get_site_license.sync_detailed(u(), client=c),
        install_site_license: lambda c: install_site_license.sync_detailed(
            u(), client=c, body=InstallSiteLicenseBody(license_=upload(FAKE_FILE))),
        patch_site_license: lambda c: patch_site_license.sync_detailed(u(), client=c, body=_patch()),
        update_site_license: lambda c: update_site_license.sync_detailed(u(), client=c),
        get_licensing_reports: lambda c: get_licensing_reports.sync_detailed(client=c),
        get_latest_licensing_reports: lambda c: get_latest_licensing_reports.sync_detailed(client=c),
        download_licensing_report_csv: lambda c: download_licensing_report_csv.sync_detailed(1, client=c),
        get_licensing_reports_for_date: lambda c: get_licensing_reports_for_date.sync_detailed(
            dt.date(2025, 1, 1), client=c),
        finalize_licensing_reports: lambda c: finalize_licensing_reports.sync_detailed(client=c),
        get_licensing_reports_settings: lambda c: get_licensing_reports_settings.sync_detailed(client=c),
        patch_licensing_reports_settings: lambda c: patch_licensing_reports_settings.sync_detailed(
            client=c, body=[JsonPatch(op=JsonPatchOp.REPLACE, path="/autoApprove", value="true")]),
        get_backup_servers_licenses: lambda c: get_backup_servers_licenses.sync_detailed(client=c),
        get_backup_server_license: lambda c: get_backup_server_license.sync_detailed(u(), client=c),
        install_backup_server_license: lambda c: install_backup_server_license.sync_detailed(
            u(), client=c, body=InstallBackupServerLicenseBody(license_=upload(FAKE_FILE))),
        delete_backup_server_license: lambda c: delete_backup_server_license.sync_detailed(u(), client=c),
        patch_backup_server_license: lambda c: patch_backup_server_license.sync_detailed(
            u(), client=c, body=_patch()),
        update_backup_server_license: lambda c: update_backup_server_license.sync_detailed(u(), client=c),
        get_v_one_servers_licenses: lambda c: get_v_one_servers_licenses.sync_detailed(client=c),
        get_v_one_server_license: lambda c: get_v_one_server_license.sync_detailed(u(), client=c),
        install_v_one_server_license: lambda c: install_v_one_server_license.sync_detailed(
            u(), client=c, body=InstallVOneServerLicenseBody(license_=upload(FAKE_FILE))),
        delete_v_one_server_license: lambda c: delete_v_one_server_license.sync_detailed(u(), client=c),
        patch_v_one_server_license: lambda c: patch_v_one_server_license.sync_detailed(
            u(), client=c, body=_patch()),
        update_v_one_server_license: lambda c: update_v_one_server_license.sync_detailed(u(), client=c),
        get_vb_365_servers_licenses: lambda c: get_vb_365_servers_licenses.sync_detailed(client=c),
        get_vb_365_server_license: lambda c: get_vb_365_server_license.sync_detailed(u(), client=c),
        install_vb_365_server_license: lambda c: install_vb_365_server_license.sync_detailed(
            u(), client=c, body=InstallVb365ServerLicenseBody(license_=upload(FAKE_FILE))),
        patch_vb_365_server_license: lambda c: patch_vb_365_server_license.sync_detailed(
            u(), client=c, body=_patch()),
        update_vb_365_server_license: lambda c: update_vb_365_server_license.sync_detailed(u(), client=c),
        get_console_license_information: lambda c: get_console_license_information.sync_detailed(client=c),
        install_console_license: lambda c: install_console_license.sync_detailed(
            client=c, body=InstallConsoleLicenseBody(license_=upload(FAKE_FILE))),
        update_console_license: lambda c: update_console_license.sync_detailed(client=c),
        get_console_license_settings: lambda c: get_console_license_settings.sync_detailed(client=c),
        get_organizations_license_usage: lambda c: get_organizations_license_usage.sync_detailed(client=c),
    }


CALLS = _calls()
ROLE_OF = {module: contract.operation(op_id(module))[2]["x-veeam-vspc-admitted-roles"] for module in CALLS}


def test_the_table_covers_every_licensing_operation():
    licensing = {
        op["operationId"]
        for path, item in contract.document()["paths"].items() if path.startswith("/licensing/")
        for op in item.values() if isinstance(op, dict)
    }
    assert len(licensing) == 34
    assert {op_id(m) for m in CALLS} == licensing


def _token(server, role: str, organization=None) -> str:
    name = f"{role.lower()}-{secrets.token_hex(3)}"
    password = "Pw-" + secrets.token_urlsafe(12)
    args = ["user", "add", name, "--role", role, "--password-stdin"]
    if organization is not None:
        args += ["--organization", str(organization)]
    server.cli(*args, stdin=password + "\n")
    return server.login(name, password)["access_token"]


@pytest.fixture(scope="module")
def tokens(licensing_server) -> dict:
    return {role: _token(licensing_server, role) for role in ("PortalOperator", "SiteAdministrator")}


@pytest.mark.parametrize("module", list(CALLS), ids=[op_id(m) for m in CALLS])
def test_a_portal_operator_is_refused_everywhere(licensing_server, tokens, module):
    assert "PortalOperator" not in ROLE_OF[module]
    with client(licensing_server, token=tokens["PortalOperator"]) as c:
        response = CALLS[module](c)
    error = expect_error(response, 403, 403, module)
    assert error.errors[0].type_.value == "security"


@pytest.mark.parametrize(
    "module",
    [m for m in CALLS if "SiteAdministrator" not in ROLE_OF[m]],
    ids=[op_id(m) for m in CALLS if "SiteAdministrator" not in ROLE_OF[m]],
)
def test_a_site_administrator_is_refused_reports_and_console(licensing_server, tokens, module):
    with client(licensing_server, token=tokens["SiteAdministrator"]) as c:
        response = CALLS[module](c)
    expect_error(response, 403, 403, module)


def test_a_site_administrator_manages_site_licenses(licensing_server, tokens):
    server = licensing_server
    uid = server.add_managed_server("site-for-site-admin", "cloud-connect-site")
    minted = server.issuer.mint("cloud-connect", "Subscription", expires=in_days(100))
    with client(server, token=tokens["SiteAdministrator"]) as c:
        installed = install_site_license.sync_detailed(
            uid, client=c, body=InstallSiteLicenseBody(license_=upload(minted)))
        listed = get_site_licenses.sync_detailed(client=c)
    assert installed.status_code == 200, installed.content
    assert installed.parsed.data.license_ids == [minted.license_id]
    page = expect(listed, 200, GetSiteLicensesResponse200, get_site_licenses)
    assert uid in {s.site_uid for s in page.data}


def test_a_reseller_administrator_sees_only_its_organizations(licensing_server):
    server = licensing_server
    reseller = server.add_org(f"Reseller {secrets.token_hex(2)}", "Reseller")
    company = server.add_org(f"Company {secrets.token_hex(2)}", "Company", parent=reseller)
    theirs = server.add_managed_server("vbr-of-the-reseller", "backup-server", organization=company)
    ours = server.add_managed_server("vbr-of-the-provider", "backup-server")
    token = _token(server, "ServiceProviderAdministrator", organization=reseller)

    with client(server, token=token) as c:
        listed = get_backup_servers_licenses.sync_detailed(client=c)
        own = get_backup_server_license.sync_detailed(theirs, client=c)
        foreign = get_backup_server_license.sync_detailed(ours, client=c)
        install = install_backup_server_license.sync_detailed(
            ours, client=c, body=InstallBackupServerLicenseBody(license_=upload(
                server.issuer.mint("backup-and-replication", "Subscription", expires=in_days(100)))))
    page = expect(listed, 200, GetBackupServersLicensesResponse200, get_backup_servers_licenses)
    assert {s.backup_server_uid for s in page.data} == {theirs}
    assert expect(own, 200, GetBackupServerLicenseResponse200, get_backup_server_license).data.backup_server_uid == theirs
    # Another organization's server is "not found", not "forbidden" (no existence leak).
    expect_error(foreign, 404, 404, get_backup_server_license)
    expect_error(install, 404, 404, install_backup_server_license)
