"""`filter`, `sort`, `select`, `limit` and `offset` on the Licensing collections, over real
license data. veeam-spc 0.4.2 cannot send `filter`, `sort` or `select` (its generated modules
only take `limit` and `offset`), so these requests are plain httpx; the unfiltered pages are also
read through the client, and every filtered page is parsed with the client's list model.

Contract: ENDPOINTS.md (paged collections), conventions.md test cases 21-37, and
docs/query-language.md for the choices Tallyman documents.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

import pytest
from veeam_spc.v3_6_1.api.licensing import (
    get_backup_servers_licenses,
    install_backup_server_license,
    install_site_license,
    install_v_one_server_license,
    install_vb_365_server_license,
)
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.get_backup_servers_licenses_response_200 import (
    GetBackupServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.get_licensing_reports_response_200 import (
    GetLicensingReportsResponse200,
)
from veeam_spc.v3_6_1.models.get_site_licenses_response_200 import GetSiteLicensesResponse200
from veeam_spc.v3_6_1.models.get_v_one_servers_licenses_response_200 import (
    GetVOneServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.get_vb_365_servers_licenses_response_200 import (
    GetVb365ServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_body import (
    InstallBackupServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_site_license_body import InstallSiteLicenseBody
from veeam_spc.v3_6_1.models.install_v_one_server_license_body import (
    InstallVOneServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_vb_365_server_license_body import (
    InstallVb365ServerLicenseBody,
)

import contract
from conftest import Tallyman
from licensing_support import client, expect, in_days, unknown_properties, upload


@dataclass
class Data:
    server: Tallyman
    backup_servers: dict  # uid -> (company, expected status)


def _days_ago(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def data(licensing_server) -> Data:
    server = licensing_server
    issuer = server.issuer
    product = "backup-and-replication"
    files = {
        # company, file (None: no license), expected status
        "Acme Ltd": (issuer.mint(product, "Subscription", company="Acme Ltd", units=100,
                                 expires=in_days(120)), "Valid"),
        "acme cloud": (issuer.mint(product, "Rental", company="acme cloud", units=250,
                                   expires=in_days(3)), "Warning"),
        "Zeta": (issuer.mint(product, "Subscription", company="Zeta", units=50,
                             issued_at=_days_ago(60), expires=_days_ago(10)[:10]), "Expired"),
        "Beta": (issuer.mint(product, "Perpetual", company="Beta", units=10), "Valid"),
        "srv10": (issuer.mint(product, "Subscription", company="srv10", units=100,
                              expires=in_days(200)), "Valid"),
        "srv2": (issuer.mint(product, "Subscription", company="srv2", units=100,
                             expires=in_days(100)), "Valid"),
    }
    backup_servers = {}
    with client(server) as c:
        for company, (minted, status) in files.items():
            uid = server.add_managed_server(f"vbr-{company}", "backup-server")
            response = install_backup_server_license.sync_detailed(
                uid, client=c, body=InstallBackupServerLicenseBody(license_=upload(minted))
            )
            assert response.status_code == 200, response.content
            assert response.parsed.data.status.value == status, (company, response.content)
            backup_servers[uid] = (company, status)
        backup_servers[server.add_managed_server("vbr-unlicensed", "backup-server")] = (None, "Unknown")

        for i in range(3):
            uid = server.add_managed_server(f"vone-{i}", "vone-server")
            minted = issuer.mint("vone", "Subscription", company=f"Vone {i}", units=10 * (i + 1),
                                 expires=in_days(30 + 40 * i))
            assert install_v_one_server_license.sync_detailed(
                uid, client=c, body=InstallVOneServerLicenseBody(license_=upload(minted))
            ).status_code == 200
            uid = server.add_managed_server(f"vb365-{i}", "vb365-server")
            minted = issuer.mint("vb365", "Subscription", company=f"M365 {i}",
                                 licensed_users=100 * (i + 1), expires=in_days(60 + 40 * i))
            assert install_vb_365_server_license.sync_detailed(
                uid, client=c, body=InstallVb365ServerLicenseBody(license_=upload(minted))
            ).status_code == 200
        for i in range(2):
            uid = server.add_managed_server(f"site-{i}", "cloud-connect-site")
            minted = issuer.mint("cloud-connect", "Rental", company=f"Site {i}", expires=in_days(90))
            assert install_site_license.sync_detailed(
                uid, client=c, body=InstallSiteLicenseBody(license_=upload(minted))
            ).status_code == 200
    return Data(server, backup_servers)


COLLECTIONS = {
    # path: (operationId, client list model, uid property)
    "/licensing/backupServers": ("GetBackupServersLicenses", GetBackupServersLicensesResponse200, "backupServerUid"),
    "/licensing/voneServers": ("GetVOneServersLicenses", GetVOneServersLicensesResponse200, "vOneServerUid"),
    "/licensing/vb365Servers": ("GetVb365ServersLicenses", GetVb365ServersLicensesResponse200, "vb365ServerUid"),
}


def query(data: Data, path: str, **params):
    """GET with JSON-valued query parameters, as VSPC scripts send them (percent-encoded)."""
    encoded = {k: (v if isinstance(v, (str, int)) else json.dumps(v)) for k, v in params.items()}
    with data.server.http(data.server.admin_token) as http:
        return http.get(path, params=encoded)


def page(data: Data, path: str, **params) -> dict:
    """A 200 page, checked against the contract and parsed with the client's model."""
    response = query(data, path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    operation_id, model, _ = COLLECTIONS.get(path, (None, None, None))
    if operation_id and "select" not in params:
        contract.assert_conforms(operation_id, 200, body)
        parsed = model.from_dict(body)
        assert not unknown_properties(parsed)
    paging = body["meta"]["pagingInfo"]
    assert paging["count"] == len(body["data"])
    return body


def bad_parameter(data: Data, path: str, name: str, **params) -> None:
    response = query(data, path, **params)
    assert response.status_code == 400, response.text
    contract.assert_conforms(COLLECTIONS[path][0], 400, response.json())
    parsed = ErrorResponse.from_dict(response.json())
    assert parsed.errors[0].code == 400
    assert parsed.errors[0].type_.value == "logical"
    assert response.json()["errors"][0].get("parameterName") == name


def statuses(body: dict) -> list[str]:
    return [item["status"] for item in body["data"]]


# ---- filter ---------------------------------------------------------------------------------


def test_filter_on_status(data):
    everything = page(data, "/licensing/backupServers")["data"]
    valid = page(data, "/licensing/backupServers",
                 filter=[{"property": "status", "operation": "equals", "value": "Valid"}])
    expected = [i for i in everything if i["status"] == "Valid"]
    assert valid["data"] == expected
    assert valid["meta"]["pagingInfo"]["total"] == len(expected) == 4


def test_filter_written_the_powershell_way_is_the_same(data):
    """Single quotes and raw brackets in the URL (conventions.md test case 29)."""
    raw = "[{'property':'status','operation':'equals','value':'Valid'}]"
    with data.server.http(data.server.admin_token) as http:
        response = http.get(f"/licensing/backupServers?filter={raw}")
    assert response.status_code == 200, response.text
    typed = page(data, "/licensing/backupServers",
                 filter=[{"property": "status", "operation": "equals", "value": "Valid"}])
    assert response.json() == typed


def test_filter_collation_and_contains(data):
    exact = page(data, "/licensing/backupServers",
                 filter=[{"property": "status", "operation": "equals", "value": "valid"}])
    assert exact["meta"]["pagingInfo"]["total"] == 0
    ignoring = page(data, "/licensing/backupServers",
                    filter=[{"property": "status", "operation": "equals", "value": "valid",
                             "collation": "ignorecase"}])
    assert set(statuses(ignoring)) == {"Valid"} and len(ignoring["data"]) == 4
    acme = page(data, "/licensing/backupServers",
                filter=[{"property": "company", "operation": "contains", "value": "acme",
                         "collation": "ignorecase"}])
    assert sorted(i["company"] for i in acme["data"]) == ["Acme Ltd", "acme cloud"]


def test_filter_groups_in_and_not(data):
    either = page(data, "/licensing/backupServers", filter=[{"operation": "or", "items": [
        {"property": "status", "operation": "equals", "value": "Warning"},
        {"property": "status", "operation": "equals", "value": "Expired"},
    ]}])
    listed = page(data, "/licensing/backupServers",
                  filter=[{"property": "status", "operation": "in", "value": ["Warning", "Expired"]}])
    assert either == listed
    assert sorted(statuses(either)) == ["Expired", "Warning"]
    others = page(data, "/licensing/backupServers", filter=[{"operation": "not", "items": [
        {"property": "status", "operation": "equals", "value": "Valid"}]}])
    assert sorted(statuses(others)) == ["Expired", "Unknown", "Warning"]


def test_filter_on_numbers_dates_and_uids(data):
    many = page(data, "/licensing/backupServers",
                filter=[{"property": "units", "items": None, "operation": "greaterThanOrEqual",
                         "collation": "ordinal", "value": "100"}])  # PHP SDK style
    assert sorted(i["units"] for i in many["data"]) == [100, 100, 100, 250]
    soon = page(data, "/licensing/backupServers",
                filter=[{"property": "expirationDate", "operation": "lessThan",
                         "value": in_days(30)}])
    assert sorted(i["company"] for i in soon["data"]) == ["Zeta", "acme cloud"]
    uid, (company, _) = next(iter(data.backup_servers.items()))
    one = page(data, "/licensing/backupServers",
               filter=[{"property": "backupServerUid", "operation": "equals", "value": str(uid).upper()}])
    assert [i["company"] for i in one["data"]] == [company]


def test_filter_errors_name_the_parameter(data):
    bad_parameter(data, "/licensing/backupServers", "filter",
                  filter=[{"property": "noSuchField", "operation": "equals", "value": 1}])
    bad_parameter(data, "/licensing/backupServers", "filter", filter="[{")
    bad_parameter(data, "/licensing/backupServers", "filter",
                  filter=[{"property": "units", "operation": "equals", "value": "lots"}])


@pytest.mark.parametrize("path", ["/licensing/voneServers", "/licensing/vb365Servers"])
def test_filter_on_the_other_server_collections(data, path):
    everything = page(data, path)["data"]
    assert len(everything) == 3
    cutoff = in_days(80)
    early = page(data, path, filter=[{"property": "expirationDate", "operation": "lessThan", "value": cutoff}])
    expected = [i for i in everything if i["expirationDate"][:10] < cutoff]
    assert early["data"] == expected and 0 < len(expected) < 3


# ---- sort -------------------------------------------------------------------------------------


def test_sort_descending_puts_nulls_last(data):
    body = page(data, "/licensing/backupServers",
                sort=[{"property": "expirationDate", "direction": "descending"}])
    dates = [i["expirationDate"] for i in body["data"]]
    present = [dt.datetime.fromisoformat(d) for d in dates if d is not None]
    assert present == sorted(present, reverse=True)
    assert dates[len(present):] == [None] * (len(dates) - len(present))
    assert len(present) == 5


def test_sort_ascending_by_default_and_by_two_keys(data):
    body = page(data, "/licensing/backupServers", sort=[{"property": "units"}])
    units = [i.get("units") for i in body["data"]]
    assert units == sorted(units, key=lambda u: (u is not None, u or 0))
    body = page(data, "/licensing/backupServers",
                sort=[{"property": "status"}, {"property": "company", "collation": "lexicographic"}])
    valid = [i["company"] for i in body["data"] if i["status"] == "Valid"]
    assert valid == ["Acme Ltd", "Beta", "srv2", "srv10"]


def test_sort_errors_name_the_parameter(data):
    bad_parameter(data, "/licensing/backupServers", "sort", sort=[{"property": "packages"}])
    bad_parameter(data, "/licensing/backupServers", "sort",
                  sort=[{"property": "status", "direction": "sideways"}])


# ---- paging -----------------------------------------------------------------------------------


def test_paging_walks_every_item_once(data):
    total = page(data, "/licensing/backupServers")["meta"]["pagingInfo"]["total"]
    seen = []
    for offset in range(0, total, 3):
        body = page(data, "/licensing/backupServers", limit=3, offset=offset)
        assert body["meta"]["pagingInfo"] == {"total": total, "count": len(body["data"]), "offset": offset}
        seen += [i["backupServerUid"] for i in body["data"]]
    assert len(seen) == len(set(seen)) == total == len(data.backup_servers)
    past = page(data, "/licensing/backupServers", offset=1000)
    assert past["data"] == [] and past["meta"]["pagingInfo"]["total"] == total


def test_the_client_pages_with_limit_and_offset(data):
    with client(data.server) as c:
        first = get_backup_servers_licenses.sync_detailed(client=c, limit=2, offset=0)
        second = get_backup_servers_licenses.sync_detailed(client=c, limit=2, offset=2)
    one = expect(first, 200, GetBackupServersLicensesResponse200, get_backup_servers_licenses)
    two = expect(second, 200, GetBackupServersLicensesResponse200, get_backup_servers_licenses)
    assert len(one.data) == len(two.data) == 2
    assert two.meta.paging_info.offset == 2
    uids = [i.backup_server_uid for i in one.data + two.data]
    assert len(set(uids)) == 4


@pytest.mark.parametrize("params, name", [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "abc"}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_paging_errors_name_the_parameter(data, params, name):
    bad_parameter(data, "/licensing/backupServers", name, **params)


# ---- select -----------------------------------------------------------------------------------


def test_select_keeps_only_the_named_properties(data):
    body = page(data, "/licensing/backupServers",
                select=[{"propertyPath": "backupServerUid"}, {"propertyPath": "status"}])
    assert body["data"] and all(set(i) == {"backupServerUid", "status"} for i in body["data"])
    assert body["meta"]["pagingInfo"]["total"] == len(data.backup_servers)


def test_select_on_a_single_resource(data):
    uid = next(iter(data.backup_servers))
    with data.server.http(data.server.admin_token) as http:
        response = http.get(f"/licensing/backupServers/{uid}",
                            params={"select": json.dumps([{"propertyPath": "expirationDate"}])})
    assert response.status_code == 200, response.text
    assert set(response.json()["data"]) == {"expirationDate"}


def test_select_with_an_unknown_path_is_400(data):
    bad_parameter(data, "/licensing/backupServers", "select", select=[{"propertyPath": "nope"}])


def test_sites_take_select_and_ignore_paging(data):
    """GetSiteLicenses is not paged: limit/offset are ignored, select works."""
    full = query(data, "/licensing/sites")
    assert full.status_code == 200
    contract.assert_conforms("GetSiteLicenses", 200, full.json())
    GetSiteLicensesResponse200.from_dict(full.json())
    limited = query(data, "/licensing/sites", limit=1, offset=1)
    assert limited.json() == full.json()
    selected = query(data, "/licensing/sites", select=[{"propertyPath": "siteUid"}])
    assert [set(i) for i in selected.json()["data"]] == [{"siteUid"}] * 2


# ---- reports and usage ----------------------------------------------------------------------


def test_reports_filter_sort_select(data):
    last_month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    data.server.cli("report", "generate", "--month", last_month)
    everything = query(data, "/licensing/reports")
    assert everything.status_code == 200
    GetLicensingReportsResponse200.from_dict(everything.json())
    total = len(everything.json()["data"])
    assert total >= 1  # last month's, generated above
    approved = query(data, "/licensing/reports",
                     filter=[{"property": "reportStatus", "operation": "equals", "value": "Approved"}])
    assert approved.status_code == 200, approved.text
    assert all(r["reportStatus"] == "Approved" for r in approved.json()["data"])
    none = query(data, "/licensing/reports",
                 filter=[{"property": "reportStatus", "operation": "equals", "value": "Finalization"}])
    assert none.json()["data"] == []
    ids = query(data, "/licensing/reports", select=[{"propertyPath": "reportParameters.reportId"}],
                sort=[{"property": "reportParameters.reportId", "direction": "descending"}])
    assert ids.status_code == 200, ids.text
    got = [r["reportParameters"]["reportId"] for r in ids.json()["data"]]
    assert got == sorted(got, reverse=True) and len(got) == total
    assert all(set(r) == {"reportParameters"} and set(r["reportParameters"]) == {"reportId"}
               for r in ids.json()["data"])


def test_usage_filter_and_select(data):
    server = data.server
    company = server.add_org(f"Usage Co {secrets.token_hex(2)}", "Company")
    agent = server.enroll_agent(company)
    uid = agent.register("BackupServer", "vbr-usage")
    agent.report_usage(uid, dt.datetime.now(dt.timezone.utc).isoformat(),
                       [{"workloadType": "VBR_VM", "platform": "vSphere", "used": 3}])
    body = query(data, "/licensing/usage/organizations",
                 filter=[{"property": "organizationUid", "operation": "equals", "value": str(company)}])
    assert body.status_code == 200, body.text
    contract.assert_conforms("GetOrganizationsLicenseUsage", 200, body.json())
    assert [o["organizationUid"] for o in body.json()["data"]] == [str(company)]
    selected = query(data, "/licensing/usage/organizations",
                     select=[{"propertyPath": "organizationUid"}])
    assert selected.status_code == 200, selected.text
    assert all(set(o) == {"organizationUid"} for o in selected.json()["data"])
    assert str(company) in {o["organizationUid"] for o in selected.json()["data"]}
