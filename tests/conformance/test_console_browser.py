"""The web console in a real headless Chromium (Playwright's sync API with the system browser).

Flows: log in; the overview's counts agree with the API; every expired Backup & Replication
license through the status filter; installing a license by file upload (and an API error shown
with its message); the auto-update switch; approving last month's report and downloading its
CSV; a read-only session without write controls; a reseller's and a company's users seeing only
their own scope; and a server that answers every call with 202, which the console follows.

Each page is saved as a screenshot under ``target/screenshots/``. Without Chromium at
/usr/bin/chromium (or $TALLYMAN_CHROMIUM), or without the `playwright` package, the module is
skipped with that reason; CI installs Chromium so the tests run there.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TALLYMAN_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(
        f"browser tests not run: no Chromium at {CHROMIUM} (apt-get install chromium, "
        "or point TALLYMAN_CHROMIUM at one)",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests not run: the playwright package is not installed"
)
expect = playwright_api.expect

from conftest import REPO_ROOT, Tallyman  # noqa: E402
from licensing_support import in_days, month_of, tamper, today  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "target" / "screenshots"
PASSWORD = "Console-" + secrets.token_urlsafe(10)
TIMEOUT_MS = 20_000
LAST_MONTH = month_of(today(), 1)
EARLIER_MONTH = month_of(today(), 2)
KINDS = ["sites", "backupServers", "voneServers", "vb365Servers"]


def _days_ago(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fleet:
    server: Tallyman
    acme_valid: uuid.UUID  # Acme Ltd (under the reseller), valid, licensed to the provider
    acme_expired: uuid.UUID  # Acme Ltd, expired
    beta_expired: uuid.UUID  # Beta Cloud (under the provider), expired
    provider_warning: uuid.UUID  # the provider's own, expires in 3 days
    spare: uuid.UUID  # the provider's, no license: the upload target
    vone: uuid.UUID


def _add_user(server: Tallyman, name: str, role: str, organization: uuid.UUID) -> None:
    server.cli("user", "add", name, "--role", role, "--organization", str(organization),
               "--password-stdin", stdin=PASSWORD + "\n")


def _install(server: Tallyman, path: str, minted) -> dict:
    with server.http(server.admin_token) as http:
        response = http.put(path, files={"license": ("license.lic", minted.bytes, "application/octet-stream")})
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture(scope="module")
def fleet(licensing_server) -> Fleet:
    server = licensing_server
    issuer = server.issuer
    server.cli("rates", "set", "--product", "BackupAndReplication", "--edition", "Enterprise Plus",
               "--workload", "VBR_VM", "--weight", "10")
    reseller = server.add_org("Northwind", "Reseller")
    acme = server.add_org("Acme Ltd", "Company", parent=reseller)
    beta = server.add_org("Beta Cloud", "Company")
    _add_user(server, "northwind-admin", "ServiceProviderAdministrator", reseller)
    _add_user(server, "acme-owner", "CompanyOwner", acme)

    agent_acme = server.enroll_agent(acme, "acme agent")
    agent_beta = server.enroll_agent(beta, "beta agent")
    fleet = Fleet(
        server,
        acme_valid=agent_acme.register("BackupServer", "vbr.acme-1"),
        acme_expired=agent_acme.register("BackupServer", "vbr.acme-2"),
        beta_expired=agent_beta.register("BackupServer", "vbr.beta"),
        provider_warning=server.add_managed_server("vbr.provider", "backup-server"),
        spare=server.add_managed_server("vbr.spare", "backup-server"),
        vone=agent_beta.register("VOneServer", "vone.beta"),
    )
    product = "backup-and-replication"
    _install(server, f"/licensing/backupServers/{fleet.acme_valid}",
             issuer.mint(product, "Subscription", company="My Company", edition="Enterprise Plus",
                         units=100, expires=in_days(200)))
    _install(server, f"/licensing/backupServers/{fleet.acme_expired}",
             issuer.mint(product, "Subscription", company="Acme Ltd", units=50,
                         issued_at=_days_ago(60), expires=_days_ago(10)[:10]))
    _install(server, f"/licensing/backupServers/{fleet.beta_expired}",
             issuer.mint(product, "Rental", company="Beta Cloud", units=20,
                         issued_at=_days_ago(90), expires=_days_ago(12)[:10]))
    _install(server, f"/licensing/backupServers/{fleet.provider_warning}",
             issuer.mint(product, "Rental", company="My Company", units=40, expires=in_days(3)))
    _install(server, f"/licensing/voneServers/{fleet.vone}",
             issuer.mint("vone", "Subscription", company="Beta Cloud", units=10, expires=in_days(90)))
    site = server.add_managed_server("cc.provider", "cloud-connect-site")
    _install(server, f"/licensing/sites/{site}",
             issuer.mint("cloud-connect", "Rental", company="My Company", expires=in_days(20)))
    vb365 = agent_beta.register("Vb365Server", "vb365.beta")
    _install(server, f"/licensing/vb365Servers/{vb365}",
             issuer.mint("vb365", "Subscription", company="Beta Cloud", licensed_users=50, expires=in_days(45)))
    _install(server, "/licensing/console",
             issuer.mint("console", "Rental", company="My Company", expires=in_days(100)))

    for month, used in [(EARLIER_MONTH, 9), (LAST_MONTH, 12)]:
        sampled = dt.datetime(month.year, month.month, 10, 10, tzinfo=dt.timezone.utc).isoformat()
        agent_acme.report_usage(fleet.acme_valid, sampled,
                                [{"workloadType": "VBR_VM", "platform": "vSphere", "used": used, "new": 1}])
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    agent_acme.report_usage(fleet.acme_valid, now, [{"workloadType": "VBR_VM", "platform": "vSphere", "used": 14, "new": 2}])
    server.generate_reports(EARLIER_MONTH.strftime("%Y-%m"))
    server.generate_reports(LAST_MONTH.strftime("%Y-%m"))
    return fleet


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (its own sessionStorage) that fails the test on a script error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"script errors in the console: {errors}"


def shot(page, server: Tallyman, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{server.backend}-{name}.png"), full_page=True)


def login(page, server: Tallyman, name: str | None = None, password: str | None = None, read_only: bool = False) -> None:
    page.goto(server.base_url + "/")
    page.fill("input[name=username]", name or server.admin_name)
    page.fill("input[name=password]", password or server.admin_password)
    if read_only:
        page.check("input[name=readOnly]")
    page.click("button[type=submit]")
    expect(page.locator("#overview-stats")).to_be_visible()


def api_items(server: Tallyman, path: str, token: str | None = None) -> list[dict]:
    with server.http(token or server.admin_token) as http:
        response = http.get(path)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def stat(page, label: str):
    return page.locator(f'[data-stat="{label}"] .stat-value')


# ---- the provider administrator --------------------------------------------------------------


def test_login_page_and_overview_counts(page, fleet):
    server = fleet.server
    page.goto(server.base_url + "/")
    expect(page.locator("form.login-card")).to_be_visible()
    shot(page, server, "login")
    # A wrong password shows the API's own message.
    page.fill("input[name=username]", server.admin_name)
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator(".login-error")).to_contain_text(re.compile(r"\S"))

    login(page, server)
    licenses = [lic for kind in KINDS for lic in api_items(server, f"/licensing/{kind}")]
    licenses.append(api_items(server, "/licensing/console"))
    expect(stat(page, "Licenses")).to_have_text(str(len(licenses)))
    for status in ["Valid", "Warning", "Expired"]:
        expected = sum(1 for lic in licenses if lic["status"] == status)
        expect(stat(page, status)).to_have_text(str(expected))
    assert sum(1 for lic in licenses if lic["status"] == "Expired") == 2
    # The provider's Rental license runs out in 3 days.
    expect(page.locator("#expiring")).to_contain_text(str(fleet.provider_warning)[:8])
    expect(page.locator("#by-status")).to_contain_text("Backup & Replication")
    shot(page, server, "overview")


def test_every_expired_backup_server_license_through_the_status_filter(page, fleet):
    server = fleet.server
    login(page, server)
    page.click("nav >> text=Backup & Replication")
    expect(page.locator("h1")).to_have_text("Backup & Replication licenses")
    page.select_option("select[name=status]", "Expired")
    expected = [lic for lic in api_items(server, "/licensing/backupServers") if lic["status"] == "Expired"]
    expect(page.locator(".pager-info")).to_have_text(f"1–{len(expected)} of {len(expected)}")
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(len(expected))
    for uid in (fleet.acme_expired, fleet.beta_expired):
        expect(page.locator("table.data")).to_contain_text(str(uid)[:8])
    badges = page.locator("table.data tbody .badge")
    assert badges.all_inner_texts() == ["Expired"] * len(expected)
    shot(page, server, "backup-servers-expired")

    # Search on the company, sort by a column, all on the server's own filter and sort.
    page.select_option("select[name=status]", "")
    page.fill("input[name=q]", "my comp")
    page.click("form.toolbar button[type=submit]")
    expect(page.locator(".pager-info")).to_have_text("1–2 of 2")
    page.click('button[data-sort="expirationDate"]')
    expect(page).to_have_url(re.compile(r"sort=expirationDate&dir=asc"))
    rows = page.locator("table.data tbody tr")
    expect(rows.first).to_contain_text(str(fleet.provider_warning)[:8])
    expect(rows.last).to_contain_text(str(fleet.acme_valid)[:8])
    page.click('button[data-sort="expirationDate"]')
    expect(page).to_have_url(re.compile(r"dir=desc"))
    expect(rows.first).to_contain_text(str(fleet.acme_valid)[:8])


def test_install_a_license_by_upload_and_see_api_errors(page, fleet, tmp_path):
    server = fleet.server
    minted = server.issuer.mint("backup-and-replication", "Subscription", company="Spare Co",
                                units=30, expires=in_days(150))
    forged = tmp_path / "forged.lic"
    forged.write_bytes(tamper(minted, units=9999))
    login(page, server)
    page.goto(f"{server.base_url}/#/licenses/backupServers/{fleet.spare}")
    expect(page.locator("#install")).to_be_visible()

    # A forged file: the API refuses it and the console shows the API's message.
    with server.http(server.admin_token) as http:
        refused = http.put(f"/licensing/backupServers/{fleet.spare}",
                           files={"license": ("forged.lic", forged.read_bytes())})
    assert refused.status_code == 400, refused.text
    message = refused.json()["errors"][0]["message"]
    page.set_input_files("#license-file", str(forged))
    page.click("#install")
    expect(page.locator("#flash .flash-error")).to_contain_text(message)
    shot(page, server, "install-error")

    page.set_input_files("#license-file", str(minted.path))
    page.click("#install")
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text("License installed.")
    expect(page.locator(".detail-head .badge")).to_have_text("Valid")
    expect(page.locator(".facts")).to_contain_text("Spare Co")
    data = api_items(server, f"/licensing/backupServers/{fleet.spare}")
    assert str(minted.license_id) in data["licenseIds"]
    shot(page, server, "license-detail")


def test_delete_a_license(page, fleet):
    server = fleet.server
    target = server.add_managed_server("vbr.to-delete", "backup-server")
    path = f"/licensing/backupServers/{target}"
    _install(server, path, server.issuer.mint("backup-and-replication", "Subscription",
                                              company="Gone Co", units=5, expires=in_days(60)))
    login(page, server)
    page.goto(f"{server.base_url}/#/licenses/backupServers/{target}")
    page.select_option("#delete-section", "All")
    page.click("#delete")
    # Cancelling the confirmation changes nothing.
    page.click("dialog >> text=Cancel")
    assert api_items(server, path)["licenseIds"]
    page.click("#delete")
    page.click("dialog [data-action=confirm]")
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text("License removed.")
    assert api_items(server, path)["licenseIds"] == []


def test_update_renews_from_the_license_portal(page, fleet):
    server = fleet.server
    target = server.add_managed_server("vbr.renewing", "backup-server")
    # A Rental file in its last days, which the portal renews when asked.
    minted = server.issuer.mint("backup-and-replication", "Rental", company="Renewal Co",
                                units=25, expires=in_days(3))
    server.portal.publish(minted)
    path = f"/licensing/backupServers/{target}"
    assert _install(server, path, minted)["status"] == "Warning"
    login(page, server)
    page.goto(f"{server.base_url}/#/licenses/backupServers/{target}")
    expect(page.locator(".detail-head .badge")).to_have_text("Warning")
    page.click("#update")
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text("License updated from the license portal.")
    expect(page.locator(".detail-head .badge")).to_have_text("Valid")
    renewed = api_items(server, path)
    assert renewed["status"] == "Valid"
    assert renewed["expirationDate"] > minted.claims["expirationDate"]


def test_every_license_kind_page_lists_what_the_api_lists(page, fleet):
    server = fleet.server
    login(page, server)
    for kind, heading in [("sites", "Cloud Connect sites"), ("backupServers", "Backup & Replication"),
                          ("voneServers", "Veeam ONE"), ("vb365Servers", "Microsoft 365")]:
        page.click(f"nav >> text={heading}")
        expect(page.locator("h1")).to_have_text(f"{heading} licenses")
        total = len(api_items(server, f"/licensing/{kind}"))
        expect(page.locator(".pager-info")).to_have_text(f"1–{total} of {total}")
        shot(page, server, f"list-{kind}")
    # Sites take no query parameters; the console filters them itself.
    page.click("nav >> text=Cloud Connect sites")
    page.select_option("select[name=status]", "Expired")
    expect(page.locator(".pager-info")).to_have_text("0–0 of 0")
    site = api_items(server, "/licensing/sites")[0]
    page.select_option("select[name=status]", site["status"])
    expect(page.locator(".pager-info")).to_have_text("1–1 of 1")
    page.fill("input[name=q]", "no such company")
    page.click("form.toolbar button[type=submit]")
    expect(page.locator("table.data tbody")).to_contain_text("No license matches these filters.")


def test_toggle_auto_update(page, fleet):
    server = fleet.server
    path = f"/licensing/backupServers/{fleet.acme_valid}"
    before = api_items(server, path)["autoUpdateEnabled"]
    login(page, server)
    page.goto(f"{server.base_url}/#{path.replace('/licensing', '/licenses')}")
    switch = page.locator("#auto-update")
    expect(switch).to_be_visible()
    assert switch.is_checked() == before
    switch.click()
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text(f"Automatic update is {'off' if before else 'on'}.")
    assert api_items(server, path)["autoUpdateEnabled"] is (not before)
    switch.click()
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text(f"Automatic update is {'on' if before else 'off'}.")
    assert api_items(server, path)["autoUpdateEnabled"] is before


def test_live_usage_and_organizations_pages(page, fleet):
    server = fleet.server
    login(page, server)
    page.click("nav >> text=Live usage")
    expect(page.locator("#usage-orgs")).to_contain_text("Acme Ltd")
    expect(page.locator("#usage-workloads")).to_contain_text("14")
    shot(page, server, "usage")
    page.click("nav >> text=Organizations")
    expect(page.locator(".pager-info")).to_have_text("1–4 of 4")
    page.select_option("select[name=type]", "Company")
    expect(page.locator(".pager-info")).to_have_text("1–2 of 2")
    shot(page, server, "organizations")
    page.click("nav >> text=Console")
    expect(page.locator(".facts").first).to_contain_text("My Company")
    shot(page, server, "console-license")


def test_approve_last_months_report_and_download_its_csv(page, fleet, tmp_path):
    server = fleet.server
    month = LAST_MONTH.strftime("%Y-%m")
    provider = str(server.provider_uid())
    waiting = {r["reportParameters"]["organizationUid"]: r for r in api_items(server, f"/licensing/reports/{month}")}
    assert waiting[provider]["reportStatus"] == "ApprovalRequired"
    login(page, server)
    page.click("nav >> text=Monthly reports")
    expect(page.locator("#points-chart svg rect")).not_to_have_count(0)
    expect(page.locator("#latest-reports")).to_contain_text("ApprovalRequired")
    shot(page, server, "reports")

    page.click("#finalize")
    page.click("dialog [data-action=confirm]")
    expect(page.locator("#flash")).to_contain_text("Finalized")
    expect(page.locator("#latest-reports")).to_contain_text("Approved")
    after = {r["reportParameters"]["organizationUid"]: r for r in api_items(server, f"/licensing/reports/{month}")}
    # The provider approves its own report; each reseller approves its own.
    assert after[provider]["reportStatus"] == "Approved"
    assert all(r["reportStatus"] == "ApprovalRequired" for uid, r in after.items() if uid != provider)
    shot(page, server, "reports-approved")

    report_id = waiting[provider]["reportParameters"]["reportId"]
    with page.expect_download() as info:
        page.click(f'[data-csv="{report_id}"]')
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    with server.http(server.admin_token) as http:
        direct = http.get(f"/licensing/reports/{report_id}/csv")
    assert saved.read_bytes() == direct.content
    assert saved.read_bytes().startswith(b"\xef\xbb\xbfReport ID,")


# ---- other callers --------------------------------------------------------------------------


def test_a_read_only_session_sees_no_write_controls(page, fleet):
    server = fleet.server
    login(page, server, read_only=True)
    expect(page.locator("#read-only-badge")).to_be_visible()
    page.goto(f"{server.base_url}/#/licenses/backupServers/{fleet.acme_valid}")
    expect(page.locator("#read-only-note")).to_be_visible()
    for control in ["#install", "#license-file", "#auto-update", "#update", "#delete", "#license-actions"]:
        expect(page.locator(control)).to_have_count(0)
    shot(page, server, "read-only-detail")
    page.click("nav >> text=Monthly reports")
    expect(page.locator("#reports-table")).to_be_visible()
    expect(page.locator("#finalize")).to_have_count(0)
    expect(page.locator("#auto-approve")).to_be_disabled()
    page.click("nav >> text=Console")
    expect(page.locator("#read-only-note")).to_be_visible()
    expect(page.locator("#install")).to_have_count(0)


def test_a_reseller_sees_only_its_companies_servers(page, fleet):
    server = fleet.server
    login(page, server, "northwind-admin", PASSWORD)
    nav = page.locator("nav.sidebar")
    expect(nav).not_to_contain_text("Cloud Connect sites")
    expect(nav).not_to_contain_text("Console")
    page.click("nav >> text=Backup & Replication")
    expect(page.locator(".pager-info")).to_have_text("1–2 of 2")
    table = page.locator("table.data")
    for uid in (fleet.acme_valid, fleet.acme_expired):
        expect(table).to_contain_text(str(uid)[:8])
    for uid in (fleet.beta_expired, fleet.provider_warning, fleet.spare):
        expect(table).not_to_contain_text(str(uid)[:8])
    shot(page, server, "reseller-backup-servers")
    # Outside its scope a server reads as not found, with the API's message.
    page.goto(f"{server.base_url}/#/licenses/backupServers/{fleet.beta_expired}")
    expect(page.locator("#flash .flash-error")).to_contain_text(re.compile(r"not found|was not found", re.I))


def test_a_company_user_sees_only_its_own_organization(page, fleet):
    server = fleet.server
    login(page, server, "acme-owner", PASSWORD)
    nav = page.locator("nav.sidebar")
    expect(nav).not_to_contain_text("Backup & Replication")
    expect(nav).not_to_contain_text("Monthly reports")
    expect(stat(page, "Licenses")).to_have_text("0")
    expect(page.locator("#no-license-access")).to_be_visible()
    page.click("nav >> text=Organizations")
    expect(page.locator(".pager-info")).to_have_text("1–1 of 1")
    expect(page.locator("table.data tbody")).to_contain_text("Acme Ltd")
    shot(page, server, "company-organizations")


def test_logout_and_an_ended_session(page, fleet):
    server = fleet.server
    login(page, server)
    page.click("#logout")
    expect(page.locator("form.login-card")).to_be_visible()
    expect(page.locator(".login-error")).to_have_text("You are logged out.")
    assert page.evaluate("sessionStorage.length") == 0
    # Tokens the server no longer accepts (and no refresh possible): back to the login page.
    login(page, server)
    page.evaluate("""() => sessionStorage.setItem('tallyman.tokens',
        JSON.stringify({access: 'gone', refresh: 'gone', expiresAt: Date.now() + 3600000}))""")
    page.click("nav >> text=Organizations")
    expect(page.locator("form.login-card")).to_be_visible()


def test_an_expired_access_token_is_renewed_with_the_refresh_grant(page, fleet):
    server = fleet.server
    login(page, server)
    # Pretend the access token ran out: the console must renew it before the next call.
    old = page.evaluate("JSON.parse(sessionStorage.getItem('tallyman.tokens')).access")
    page.evaluate("""() => { const t = JSON.parse(sessionStorage.getItem('tallyman.tokens'));
        t.expiresAt = 0; sessionStorage.setItem('tallyman.tokens', JSON.stringify(t)); }""")
    page.click("nav >> text=Organizations")
    expect(page.locator(".pager-info")).to_have_text("1–4 of 4")
    new = page.evaluate("JSON.parse(sessionStorage.getItem('tallyman.tokens')).access")
    assert new != old
    # An access token the server refuses (401) is renewed too, and the call sent again.
    page.evaluate("""() => { const t = JSON.parse(sessionStorage.getItem('tallyman.tokens'));
        t.access = 'refused'; sessionStorage.setItem('tallyman.tokens', JSON.stringify(t)); }""")
    page.click("nav >> text=Overview")
    page.click("nav >> text=Organizations")
    expect(page.locator(".pager-info")).to_have_text("1–4 of 4")
    assert page.evaluate("JSON.parse(sessionStorage.getItem('tallyman.tokens')).access") not in (new, "refused")


# ---- a server that answers with 202 ------------------------------------------------------------


def test_the_console_follows_async_actions(page, licensing_async_server):
    server = licensing_async_server
    target = server.add_managed_server("vbr.async", "backup-server")
    minted = server.issuer.mint("backup-and-replication", "Subscription", company="Async Co",
                                units=10, expires=in_days(100))
    login(page, server)
    page.goto(f"{server.base_url}/#/licenses/backupServers/{target}")
    expect(page.locator("#install")).to_be_visible()
    page.set_input_files("#license-file", str(minted.path))
    page.click("#install")
    expect(page.locator("#flash .flash-info .flash-text")).to_have_text("License installed.")
    expect(page.locator(".facts")).to_contain_text("Async Co")
    page.click("nav >> text=Backup & Replication")
    expect(page.locator(".pager-info")).to_have_text("1–1 of 1")
    shot(page, server, "async-backup-servers")
