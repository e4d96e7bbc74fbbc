"""Monthly license usage reports and live usage through the `veeam-spc` client:
GetLicensingReports, GetLatestLicensingReports, GetLicensingReportsForDate,
DownloadLicensingReportCsv, FinalizeLicensingReports, GetLicensingReportsSettings,
PatchLicensingReportsSettings and GetOrganizationsLicenseUsage.

The fleet is real: organizations from `tallyman org add`, agents enrolled with tokens from
`tallyman org enroll-token`, servers the agents register, licenses minted with
`tallyman license issue` and installed through the client, usage samples the agents post, and
reports built by `tallyman report generate`.

Which month: `serve` generates last month's reports as soon as it starts and, from the 3rd of a
month on, approves them at once; an approved report never changes (docs/report-csv.md). Samples
for last month would therefore never reach a report. The fleet reports usage for the month
before last instead (REPORT_MONTH, finished and never touched by the server's own job) and for
the current month (live usage).

The tests build on each other in file order (pytest's default): the report-status tests come
before finalization, which comes last among the report tests.

Contract: ENDPOINTS.md (reports and usage rows); docs/report-csv.md for the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from veeam_spc.v3_6_1.api.licensing import (
    download_licensing_report_csv,
    finalize_licensing_reports,
    get_latest_licensing_reports,
    get_licensing_reports,
    get_licensing_reports_for_date,
    get_licensing_reports_settings,
    get_organizations_license_usage,
    install_backup_server_license,
    install_console_license,
    install_v_one_server_license,
    patch_licensing_reports_settings,
)
from veeam_spc.v3_6_1.models.finalize_licensing_reports_response_200 import (
    FinalizeLicensingReportsResponse200,
)
from veeam_spc.v3_6_1.models.get_latest_licensing_reports_response_200 import (
    GetLatestLicensingReportsResponse200,
)
from veeam_spc.v3_6_1.models.get_licensing_reports_for_date_response_200 import (
    GetLicensingReportsForDateResponse200,
)
from veeam_spc.v3_6_1.models.get_licensing_reports_response_200 import (
    GetLicensingReportsResponse200,
)
from veeam_spc.v3_6_1.models.get_licensing_reports_settings_response_200 import (
    GetLicensingReportsSettingsResponse200,
)
from veeam_spc.v3_6_1.models.get_organizations_license_usage_organization_type import (
    GetOrganizationsLicenseUsageOrganizationType as OrgType,
)
from veeam_spc.v3_6_1.models.get_organizations_license_usage_response_200 import (
    GetOrganizationsLicenseUsageResponse200,
)
from veeam_spc.v3_6_1.models.get_organizations_license_usage_server_type import (
    GetOrganizationsLicenseUsageServerType as ServerType,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_body import (
    InstallBackupServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_console_license_body import InstallConsoleLicenseBody
from veeam_spc.v3_6_1.models.install_v_one_server_license_body import (
    InstallVOneServerLicenseBody,
)
from veeam_spc.v3_6_1.models.json_patch import JsonPatch
from veeam_spc.v3_6_1.models.json_patch_op import JsonPatchOp
from veeam_spc.v3_6_1.models.patch_licensing_reports_settings_response_200 import (
    PatchLicensingReportsSettingsResponse200,
)
from veeam_spc.v3_6_1.models.single_license_report import SingleLicenseReport
from veeam_spc.v3_6_1.types import File

from conftest import Tallyman
from licensing_support import client, expect, expect_error, in_days, month_of, today, upload

TODAY = today()
REPORT_MONTH = month_of(TODAY, 2)
LAST_MONTH = month_of(TODAY, 1)
OLDER_MONTH = month_of(TODAY, 3)  # generated with auto-approve on
PROVIDER_LICENSEE = "Provider Licensee"
OTHER_LICENSEE = "Other Licensee"
# Weights set with `tallyman rates set` before the reports are built, so the expected points do
# not depend on the seeded defaults.
VBR_VM_WEIGHT = 12
VBR_AGENT_WEIGHT = 7
VONE_VM_WEIGHT = 3

CSV_COLUMNS = [
    "Report ID", "Month", "Report Owner", "Report Status", "Section", "Licensee",
    "Organization Type", "Organization", "Organization UID", "Server", "Server UID", "Product",
    "Edition", "License ID", "Support ID", "Workload Type", "Platform", "Points Per Workload",
    "Licensed Count", "New Count", "Reported Count", "Points", "Note", "Generation Date",
]


def month_text(first_day: dt.date) -> str:
    return first_day.strftime("%Y-%m")


@dataclass
class Fleet:
    server: Tallyman
    provider: uuid.UUID
    reseller: uuid.UUID
    company_one: uuid.UUID  # under the reseller
    company_two: uuid.UUID  # directly under the provider
    s1: uuid.UUID  # company one, Backup & Replication, licensed to the provider's licensee
    s2: uuid.UUID  # company two, Backup & Replication, licensed to the provider's licensee
    s3: uuid.UUID  # company two, Veeam ONE, licensed to another licensee (appendix)
    licenses: dict = field(default_factory=dict)


def _generate_last_month(server: Tallyman) -> None:
    """A report of last month without usage, built before the fleet exists. (`serve` builds last
    month's reports by itself only when the installation predates that month.)"""
    server.cli("report", "generate", "--month", month_text(LAST_MONTH))


def _at(day: int, hour: int = 10) -> str:
    return dt.datetime(REPORT_MONTH.year, REPORT_MONTH.month, day, hour, tzinfo=dt.timezone.utc).isoformat()


@pytest.fixture(scope="module")
def fleet(licensing_server) -> Fleet:
    server = licensing_server
    _generate_last_month(server)
    server.cli("rates", "set", "--product", "BackupAndReplication", "--edition", "Enterprise Plus",
               "--workload", "VBR_VM", "--weight", str(VBR_VM_WEIGHT))
    server.cli("rates", "set", "--product", "BackupAndReplication", "--edition", "Enterprise Plus",
               "--workload", "VBR_Server_Agent", "--weight", str(VBR_AGENT_WEIGHT))
    server.cli("rates", "set", "--product", "VONE", "--workload", "VONE_VM",
               "--weight", str(VONE_VM_WEIGHT))

    provider = server.provider_uid()
    reseller = server.add_org("Reseller One", "Reseller")
    company_one = server.add_org("Company One", "Company", parent=reseller)
    company_two = server.add_org("Company Two", "Company")
    agent_one = server.enroll_agent(company_one, "agent of company one")
    agent_two = server.enroll_agent(company_two, "agent of company two")
    s1 = agent_one.register("BackupServer", "vbr.company-one")
    s2 = agent_two.register("BackupServer", "vbr.company-two")
    s3 = agent_two.register("VOneServer", "vone.company-two")
    fleet = Fleet(server, provider, reseller, company_one, company_two, s1, s2, s3)

    issuer = server.issuer
    console = issuer.mint("console", "Rental", company=PROVIDER_LICENSEE, expires=in_days(100))
    vbr = {uid: issuer.mint("backup-and-replication", "Rental", company=PROVIDER_LICENSEE,
                            edition="Enterprise Plus", expires=in_days(100)) for uid in (s1, s2)}
    vone = issuer.mint("vone", "Rental", company=OTHER_LICENSEE, expires=in_days(100))
    fleet.licenses = {"console": console, s1: vbr[s1], s2: vbr[s2], s3: vone}
    with client(server) as c:
        for response, model in [
            (install_console_license.sync_detailed(
                client=c, body=InstallConsoleLicenseBody(license_=upload(console))), None),
            (install_backup_server_license.sync_detailed(
                s1, client=c, body=InstallBackupServerLicenseBody(license_=upload(vbr[s1]))), None),
            (install_backup_server_license.sync_detailed(
                s2, client=c, body=InstallBackupServerLicenseBody(license_=upload(vbr[s2]))), None),
            (install_v_one_server_license.sync_detailed(
                s3, client=c, body=InstallVOneServerLicenseBody(license_=upload(vone))), None),
        ]:
            assert response.status_code == 200, response.content

    # REPORT_MONTH: the month's high-water marks are VBR_VM 15 used / 2 new on s1 (two samples).
    agent_one.report_usage(s1, _at(5), [
        {"workloadType": "VBR_VM", "platform": "vSphere", "used": 12, "new": 2},
        {"workloadType": "VBR_Server_Agent", "used": 3},
    ])
    agent_one.report_usage(s1, _at(20), [
        {"workloadType": "VBR_VM", "platform": "vSphere", "used": 15, "new": 1},
    ])
    agent_two.report_usage(s2, _at(7), [{"workloadType": "VBR_VM", "platform": "HyperV", "used": 4}])
    agent_two.report_usage(s3, _at(8), [{"workloadType": "VONE_VM", "used": 10}])
    # OLDER_MONTH: one sample, for the auto-approve test.
    older = dt.datetime(OLDER_MONTH.year, OLDER_MONTH.month, 15, tzinfo=dt.timezone.utc)
    agent_two.report_usage(s2, older.isoformat(), [{"workloadType": "VBR_VM", "platform": "HyperV", "used": 2}])
    # Now: live usage.
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    agent_one.report_usage(s1, now, [{"workloadType": "VBR_VM", "platform": "vSphere", "used": 7, "new": 1}])
    agent_two.report_usage(s2, now, [{"workloadType": "VBR_VM", "platform": "HyperV", "used": 5}])
    agent_two.report_usage(s3, now, [{"workloadType": "VONE_VM", "used": 9}])

    out = server.generate_reports(month_text(REPORT_MONTH))
    assert out.count("created") == 2, out  # the provider's and the reseller's
    return fleet


# Expected points of REPORT_MONTH, from the samples and weights above.
S1_POINTS = 15 * VBR_VM_WEIGHT + 3 * VBR_AGENT_WEIGHT
S2_POINTS = 4 * VBR_VM_WEIGHT
S3_POINTS = 10 * VONE_VM_WEIGHT
PROVIDER_TOTAL = S1_POINTS + S2_POINTS  # s3's usage is under another licensee: appendix
RESELLER_TOTAL = S1_POINTS


# ---- helpers --------------------------------------------------------------------------------


def reports_of_month(fleet: Fleet, first_day: dt.date) -> dict[uuid.UUID, SingleLicenseReport]:
    with client(fleet.server) as c:
        response = get_licensing_reports_for_date.sync_detailed(first_day, client=c)
    page = expect(response, 200, GetLicensingReportsForDateResponse200, get_licensing_reports_for_date)
    return {r.report_parameters.organization_uid: r for r in page.data}


def interval_of(report: SingleLicenseReport) -> tuple[dt.datetime, dt.datetime]:
    interval = report.report_parameters.report_interval
    return interval.start_of_interval, interval.end_of_interval


def month_bounds(first_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first_day, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(month_of(first_day, -1), dt.time(), dt.timezone.utc) - dt.timedelta(seconds=1)
    return start, end


def as_datetime(value) -> dt.datetime:
    """The client declares the interval bounds as dates; the contract (and VSPC) send
    date-times. Accept what the client made of them."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.combine(value, dt.time(), dt.timezone.utc)


def download_csv(fleet: Fleet, report_id: int):
    with client(fleet.server) as c:
        response = download_licensing_report_csv.sync_detailed(report_id, client=c)
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, File)
    return response


def parse_csv(raw: bytes) -> list[dict[str, str]]:
    assert raw.startswith(b"\xef\xbb\xbf"), "the CSV starts with a UTF-8 byte-order mark"
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CSV_COLUMNS
    return [dict(zip(rows[0], row)) for row in rows[1:] if row]


# ---- the reports ----------------------------------------------------------------------------


def test_get_licensing_reports_lists_every_report(fleet):
    with client(fleet.server) as c:
        response = get_licensing_reports.sync_detailed(client=c)
    page = expect(response, 200, GetLicensingReportsResponse200, get_licensing_reports)

    months = {}
    for report in page.data:
        assert isinstance(report, SingleLicenseReport)
        start, _ = interval_of(report)
        months.setdefault(as_datetime(start).date(), set()).add(report.report_parameters.organization_uid)
    assert months[REPORT_MONTH] == {fleet.provider, fleet.reseller}
    assert fleet.provider in months[LAST_MONTH]  # built before the fleet existed
    paging = page.meta.paging_info
    assert paging.total == paging.count == len(page.data)
    ids = [r.report_parameters.report_id for r in page.data]
    assert len(set(ids)) == len(ids)


def test_reports_for_date_show_the_month(fleet):
    reports = reports_of_month(fleet, REPORT_MONTH)
    assert set(reports) == {fleet.provider, fleet.reseller}

    provider = reports[fleet.provider]
    params = provider.report_parameters
    assert params.license_company_name == PROVIDER_LICENSEE
    assert params.organization_name == "My Company"  # the provider's default name
    start, end = month_bounds(REPORT_MONTH)
    # The client parses the bounds as dates (its schema says format: date); the instants on
    # the wire are checked in test_reports_for_date_take_a_month_in_the_path.
    assert tuple(as_datetime(v).date() for v in interval_of(provider)) == (start.date(), end.date())
    assert provider.report_status.value == "ApprovalRequired"

    summary = provider.report_summary
    assert summary.total_points == PROVIDER_TOTAL
    assert sum(p.total_points for p in summary.products_usage) == PROVIDER_TOTAL
    by_org = {o.organization_uid: o.used_points for o in provider.organizations_usage}
    # The reseller's company rolls up into the reseller's line in the provider's report.
    assert by_org == {fleet.reseller: S1_POINTS, fleet.company_two: S2_POINTS}
    assert [a.license_company_name for a in provider.appendices] == [OTHER_LICENSEE]
    assert provider.appendices[0].appendix_summary.total_points == S3_POINTS

    reseller = reports[fleet.reseller]
    assert reseller.report_summary.total_points == RESELLER_TOTAL
    assert {o.organization_uid: o.used_points for o in reseller.organizations_usage} == {
        fleet.company_one: S1_POINTS
    }
    vm = [w for p in reseller.report_summary.products_usage for w in p.workload_usage
          if w.workload_type.value == "VBR_VM"]
    assert [(w.reported_count, w.new_count, w.weight, w.used_points) for w in vm] == [
        (15, 2, VBR_VM_WEIGHT, 15 * VBR_VM_WEIGHT)
    ]


def test_reports_for_date_take_a_month_in_the_path(fleet):
    """The contract's path value is a month (YYYY-MM), though the client sends YYYY-MM-DD."""
    with fleet.server.http(fleet.server.admin_token) as http:
        by_month = http.get(f"/licensing/reports/{month_text(REPORT_MONTH)}")
        by_day = http.get(f"/licensing/reports/{REPORT_MONTH.isoformat()}")
    assert by_month.status_code == by_day.status_code == 200
    assert by_month.json() == by_day.json()
    assert len(by_month.json()["data"]) == 2
    start, end = month_bounds(REPORT_MONTH)
    for report in by_month.json()["data"]:
        interval = report["reportParameters"]["reportInterval"]
        assert dt.datetime.fromisoformat(interval["startOfInterval"]) == start
        assert dt.datetime.fromisoformat(interval["endOfInterval"]) == end


def test_reports_for_a_month_without_reports_are_empty(fleet):
    with client(fleet.server) as c:
        response = get_licensing_reports_for_date.sync_detailed(dt.date(2001, 1, 1), client=c)
    page = expect(response, 200, GetLicensingReportsForDateResponse200, get_licensing_reports_for_date)
    assert page.data == []
    assert page.meta.paging_info.total == 0


def test_latest_reports_are_each_owners_newest(fleet):
    with client(fleet.server) as c:
        response = get_latest_licensing_reports.sync_detailed(client=c)
    page = expect(response, 200, GetLatestLicensingReportsResponse200, get_latest_licensing_reports)
    latest = {r.report_parameters.organization_uid: as_datetime(interval_of(r)[0]).date() for r in page.data}
    # The provider's newest is last month's (built before the fleet); the reseller, created
    # after it, has only REPORT_MONTH's.
    assert latest == {fleet.provider: LAST_MONTH, fleet.reseller: REPORT_MONTH}


@pytest.mark.parametrize("owner", ["provider", "reseller"])
def test_csv_main_rows_add_up_to_the_report_total(fleet, owner):
    report = reports_of_month(fleet, REPORT_MONTH)[getattr(fleet, owner)]
    report_id = report.report_parameters.report_id
    response = download_csv(fleet, report_id)
    assert response.headers["content-type"].split(";")[0] == "application/csv"
    raw = response.parsed.payload.read()
    assert raw == response.content
    rows = parse_csv(raw)

    assert {row["Report ID"] for row in rows} == {str(report_id)}
    assert {row["Month"] for row in rows} == {month_text(REPORT_MONTH)}
    main = [row for row in rows if row["Section"] == "Main"]
    assert main, rows
    total = sum(Decimal(row["Points"]) for row in main)
    assert total == Decimal(str(report.report_summary.total_points))
    for row in main:
        assert Decimal(row["Points"]) == Decimal(row["Reported Count"]) * Decimal(row["Points Per Workload"])
        assert row["Licensee"] == PROVIDER_LICENSEE
    # Appendix rows add up to their appendix's total.
    for appendix in report.appendices:
        rows_of = [r for r in rows if r["Section"] == "Appendix" and r["Licensee"] == appendix.license_company_name]
        assert sum(Decimal(r["Points"]) for r in rows_of) == Decimal(str(appendix.appendix_summary.total_points))
    # Every server's license shows up on its rows.
    by_server = {row["Server UID"]: row["License ID"] for row in rows}
    for uid, license_id in by_server.items():
        assert license_id == str(fleet.licenses[uuid.UUID(uid)].license_id)


def test_csv_ignores_the_accept_header(fleet):
    """The PowerShell CSV script sends Accept: application/octet-stream (conventions.md 7)."""
    report_id = reports_of_month(fleet, REPORT_MONTH)[fleet.provider].report_parameters.report_id
    with fleet.server.http(fleet.server.admin_token) as http:
        response = http.get(f"/licensing/reports/{report_id}/csv",
                            headers={"Accept": "application/octet-stream"})
    assert response.status_code == 200
    assert response.content == download_csv(fleet, report_id).content


def test_a_report_without_usage_totals_zero(fleet):
    import math

    empty = reports_of_month(fleet, LAST_MONTH)[fleet.provider]
    assert empty.organizations_usage == [] and empty.usage_details == []
    total = empty.report_summary.total_points
    assert total == 0
    assert math.copysign(1.0, total) == 1.0, f"totalPoints is {total!r}"


def test_csv_of_an_unknown_report_is_404(fleet):
    with client(fleet.server) as c:
        response = download_licensing_report_csv.sync_detailed(987654, client=c)
    expect_error(response, 404, 404, download_licensing_report_csv)


# ---- settings -------------------------------------------------------------------------------


def _settings(fleet: Fleet) -> bool:
    with client(fleet.server) as c:
        response = get_licensing_reports_settings.sync_detailed(client=c)
    data = expect(response, 200, GetLicensingReportsSettingsResponse200, get_licensing_reports_settings).data
    return data.auto_approve


def _patch_settings(fleet: Fleet, *ops: JsonPatch):
    with client(fleet.server) as c:
        return patch_licensing_reports_settings.sync_detailed(client=c, body=list(ops))


def test_report_settings_auto_approve_applies_to_new_reports(fleet):
    assert _settings(fleet) is False
    on = _patch_settings(fleet, JsonPatch(op=JsonPatchOp.REPLACE, path="/autoApprove", value="true"))
    assert expect(on, 200, PatchLicensingReportsSettingsResponse200,
                  patch_licensing_reports_settings).data.auto_approve is True
    assert _settings(fleet) is True
    try:
        fleet.server.generate_reports(month_text(OLDER_MONTH))
        older = reports_of_month(fleet, OLDER_MONTH)
        assert set(older) == {fleet.provider, fleet.reseller}
        assert {r.report_status.value for r in older.values()} == {"Approved"}
        assert older[fleet.provider].report_summary.total_points == 2 * VBR_VM_WEIGHT
    finally:
        # The official example spells the path /AutoApprove: paths match ignoring case.
        off = _patch_settings(fleet, JsonPatch(op=JsonPatchOp.REPLACE, path="/AutoApprove", value="false"))
    assert expect(off, 200, PatchLicensingReportsSettingsResponse200,
                  patch_licensing_reports_settings).data.auto_approve is False
    assert _settings(fleet) is False
    # Reports built while it was off still wait for approval.
    assert reports_of_month(fleet, REPORT_MONTH)[fleet.provider].report_status.value == "ApprovalRequired"


def test_report_settings_refuse_unknown_paths(fleet):
    response = _patch_settings(fleet, JsonPatch(op=JsonPatchOp.REPLACE, path="/noSuchSetting", value="true"))
    expect_error(response, 400, 1001, patch_licensing_reports_settings)
    assert _settings(fleet) is False


# ---- finalization (changes the reports: keep it after the report tests) ----------------------


def _finalize(server: Tallyman, token=None):
    with client(server, token=token) as c:
        response = finalize_licensing_reports.sync_detailed(client=c)
    return expect(response, 200, FinalizeLicensingReportsResponse200, finalize_licensing_reports).data


def test_finalize_approves_the_callers_waiting_reports(fleet):
    waiting = reports_of_month(fleet, REPORT_MONTH)
    assert {r.report_status.value for r in waiting.values()} == {"ApprovalRequired"}

    status = _finalize(fleet.server)
    assert status.report_approval_status.value == "Finalized"
    assert status.message

    after = reports_of_month(fleet, REPORT_MONTH)
    # The provider's report is approved and otherwise unchanged ...
    expected = waiting[fleet.provider].to_dict()
    expected["reportStatus"] = "Approved"
    assert after[fleet.provider].to_dict() == expected
    # ... while the reseller approves its own.
    assert after[fleet.reseller].report_status.value == "ApprovalRequired"

    again = _finalize(fleet.server)
    assert again.report_approval_status.value in ("Approved", "NotApprovable")


def test_a_reseller_sees_and_finalizes_only_its_own_reports(fleet):
    server = fleet.server
    password = "Res3ller-" + uuid.uuid4().hex[:12]
    name = "reseller-admin-" + uuid.uuid4().hex[:6]
    server.cli("user", "add", name, "--role", "ServiceProviderGlobalAdministrator",
               "--organization", str(fleet.reseller), "--password-stdin", stdin=password + "\n")
    token = server.login(name, password)["access_token"]

    with client(server, token=token) as c:
        response = get_licensing_reports.sync_detailed(client=c)
    page = expect(response, 200, GetLicensingReportsResponse200, get_licensing_reports)
    assert {r.report_parameters.organization_uid for r in page.data} == {fleet.reseller}

    status = _finalize(server, token=token)
    assert status.report_approval_status.value == "Finalized"
    assert reports_of_month(fleet, REPORT_MONTH)[fleet.reseller].report_status.value == "Approved"


def test_approved_reports_never_change(fleet):
    before = {o: r.to_dict() for o, r in reports_of_month(fleet, REPORT_MONTH).items()}
    assert {r["reportStatus"] for r in before.values()} == {"Approved"}
    fleet.server.generate_reports(month_text(REPORT_MONTH))
    after = {o: r.to_dict() for o, r in reports_of_month(fleet, REPORT_MONTH).items()}
    assert after == before


# ---- live usage -----------------------------------------------------------------------------


def usage(fleet: Fleet, **filters):
    with client(fleet.server) as c:
        response = get_organizations_license_usage.sync_detailed(client=c, **filters)
    page = expect(response, 200, GetOrganizationsLicenseUsageResponse200, get_organizations_license_usage)
    assert page.meta.paging_info.total == len(page.data)
    return {
        org.organization_uid: {
            server.server_uid: {w.description: w for w in server.workloads} for server in org.servers
        }
        for org in page.data
    }, page


def test_organizations_license_usage_shows_the_latest_samples(fleet):
    seen, page = usage(fleet)
    assert set(seen) == {fleet.company_one, fleet.company_two}
    assert set(seen[fleet.company_one]) == {fleet.s1}
    assert set(seen[fleet.company_two]) == {fleet.s2, fleet.s3}
    by_org = {o.organization_uid: o for o in page.data}
    assert by_org[fleet.company_one].provider_uid == fleet.reseller
    assert by_org[fleet.company_two].provider_uid == fleet.provider
    assert {o.organization_type.value for o in page.data} == {"Company"}
    types = {s.server_uid: s.server_type.value for o in page.data for s in o.servers}
    assert types == {fleet.s1: "BackupAndReplication", fleet.s2: "BackupAndReplication", fleet.s3: "VONE"}

    (vm,) = seen[fleet.company_one][fleet.s1].values()
    assert (vm.used_count, vm.new_count) == (7, 1)
    assert vm.used_units == 7 * VBR_VM_WEIGHT
    assert [p.type_id for p in vm.workloads_by_platform] == ["vSphere"]
    (vone,) = seen[fleet.company_two][fleet.s3].values()
    assert (vone.used_count, vone.used_units) == (9, 9 * VONE_VM_WEIGHT)


def test_organizations_license_usage_filters(fleet):
    only_one, _ = usage(fleet, organization_uid=fleet.company_one)
    assert set(only_one) == {fleet.company_one}

    by_server, _ = usage(fleet, server_uid=fleet.s3)
    assert set(by_server) == {fleet.company_two}
    assert set(by_server[fleet.company_two]) == {fleet.s3}

    vone, _ = usage(fleet, server_type=ServerType.VONE)
    assert {uid for servers in vone.values() for uid in servers} == {fleet.s3}

    vbr, _ = usage(fleet, server_type=ServerType.BACKUPANDREPLICATION)
    assert {uid for servers in vbr.values() for uid in servers} == {fleet.s1, fleet.s2}

    companies, _ = usage(fleet, organization_type=OrgType.COMPANY)
    assert set(companies) == {fleet.company_one, fleet.company_two}
    resellers, _ = usage(fleet, organization_type=OrgType.RESELLER)
    assert resellers == {}

    under_reseller, _ = usage(fleet, provider_uid=fleet.reseller)
    assert set(under_reseller) == {fleet.company_one}

    nothing, _ = usage(fleet, organization_uid=fleet.company_one, server_uid=fleet.s3)
    assert nothing == {}
