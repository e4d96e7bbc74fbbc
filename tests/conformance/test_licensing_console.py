"""The console's own license through the `veeam-spc` client: GetConsoleLicenseInformation,
InstallConsoleLicense, UpdateConsoleLicense and GetConsoleLicenseSettings, with real files minted
by `tallyman license issue` and renewals from a running `tallyman portal`.

The console has one license slot per server, so the tests of this module build on each other in
file order (pytest's default): each one installs the file it needs first. The "nothing installed"
tests use the plain ``server`` fixture, which no test installs anything on.

Contract: ENDPOINTS.md (console rows), conventions.md section 7.
"""

from __future__ import annotations

import secrets
import uuid

import pytest
from veeam_spc.v3_6_1.api.licensing import (
    get_console_license_information,
    get_console_license_settings,
    install_console_license,
    update_console_license,
)
from veeam_spc.v3_6_1.models.console_license import ConsoleLicense
from veeam_spc.v3_6_1.models.get_console_license_information_response_200 import (
    GetConsoleLicenseInformationResponse200,
)
from veeam_spc.v3_6_1.models.get_console_license_settings_response_200 import (
    GetConsoleLicenseSettingsResponse200,
)
from veeam_spc.v3_6_1.models.install_console_license_body import InstallConsoleLicenseBody
from veeam_spc.v3_6_1.models.install_console_license_response_200 import (
    InstallConsoleLicenseResponse200,
)
from veeam_spc.v3_6_1.models.license_settings import LicenseSettings
from veeam_spc.v3_6_1.models.update_console_license_response_200 import (
    UpdateConsoleLicenseResponse200,
)

from conftest import MintedLicense, Tallyman
from licensing_support import (
    client,
    end_of_next_month,
    expect,
    expect_error,
    in_days,
    read_only_token,
    tamper,
    upload,
    wire_instant,
)


def mint(server: Tallyman, license_type: str = "Subscription", product: str = "console", **claims) -> MintedLicense:
    flags = {"company": f"Console Licensee {secrets.token_hex(3)}", **claims}
    if license_type != "Perpetual" and "expires" not in flags:
        flags["expires"] = in_days(120)
    return server.issuer.mint(product, license_type, **flags)


def install(server: Tallyman, payload, sent=None) -> ConsoleLicense:
    with client(server, sent=sent) as c:
        response = install_console_license.sync_detailed(
            client=c, body=InstallConsoleLicenseBody(license_=upload(payload))
        )
    data = expect(response, 200, InstallConsoleLicenseResponse200, install_console_license).data
    assert isinstance(data, ConsoleLicense)
    return data


def get(server: Tallyman) -> ConsoleLicense:
    with client(server) as c:
        response = get_console_license_information.sync_detailed(client=c)
    return expect(
        response, 200, GetConsoleLicenseInformationResponse200, get_console_license_information
    ).data


def settings(server: Tallyman) -> LicenseSettings:
    with client(server) as c:
        response = get_console_license_settings.sync_detailed(client=c)
    data = expect(
        response, 200, GetConsoleLicenseSettingsResponse200, get_console_license_settings
    ).data
    assert isinstance(data, LicenseSettings)
    return data


def check_claims(data: ConsoleLicense, minted: MintedLicense) -> None:
    claims = minted.claims
    assert uuid.UUID(data.license_id) == minted.license_id
    assert data.support_id == claims["supportId"]
    assert data.licensee_company == claims["company"]
    assert data.licensee_email == claims["email"]
    assert data.edition == claims["edition"]
    assert data.type_.value == claims["type"]
    assert data.expiration_date == wire_instant(claims["expirationDate"])
    assert data.support_expiration_date == wire_instant(claims["supportExpirationDate"])


# ---- nothing installed (plain server) -------------------------------------------------------


def test_console_without_a_license_parses(server):
    data = get(server)
    assert data.type_.value == "NotInstalled"
    assert data.status.value == "Error"  # the console has no Unlicensed status
    assert data.expiration_date is None
    assert settings(server).is_auto_update_enabled is False


def test_update_without_a_portal_is_1000(server):
    """A server started without --portal-url cannot update: code 1000, "not possible now"."""
    with client(server) as c:
        response = update_console_license.sync_detailed(client=c)
    expect_error(response, 400, 1000, update_console_license)


# ---- install, get (licensing_server; in file order) -----------------------------------------


def test_update_without_a_license_is_1300(licensing_server):
    """Runs before any install on this module's licensing server."""
    with client(licensing_server) as c:
        response = update_console_license.sync_detailed(client=c)
    expect_error(response, 400, 1300, update_console_license)


def test_install_console_license_then_get(licensing_server):
    server = licensing_server
    minted = mint(server, instances=250)
    sent: list = []
    data = install(server, minted, sent=sent)

    request = sent[-1]
    assert request.method == "PUT" and request.url.path == "/api/v3/licensing/console"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="license"' in request.read()
    check_claims(data, minted)
    assert data.instances == 250
    assert data.status.value == "Valid"
    assert get(server).to_dict() == data.to_dict()


def test_console_accepts_the_cloud_connect_file(licensing_server):
    """RULES.md, install fit: the console takes a Cloud Connect file whose flag is not No."""
    server = licensing_server
    minted = mint(server, product="cloud-connect", cloud_connect="Yes")
    data = install(server, minted)
    assert uuid.UUID(data.license_id) == minted.license_id
    assert data.cloud_connect.value == "Yes"


def test_a_file_for_another_product_is_refused_and_nothing_changes(licensing_server):
    server = licensing_server
    before = install(server, mint(server)).to_dict()
    other = server.issuer.mint("vb365", "Subscription", expires=in_days(120))
    with client(server) as c:
        response = install_console_license.sync_detailed(
            client=c, body=InstallConsoleLicenseBody(license_=upload(other))
        )
    expect_error(response, 400, 1300, install_console_license)
    assert get(server).to_dict() == before


def test_a_tampered_file_is_refused_and_nothing_changes(licensing_server):
    server = licensing_server
    genuine = mint(server, instances=100)
    before = install(server, tamper(genuine)).to_dict()  # control: re-armoured, untouched
    with client(server) as c:
        response = install_console_license.sync_detailed(
            client=c,
            body=InstallConsoleLicenseBody(license_=upload(tamper(genuine, instances=100000))),
        )
    expect_error(response, 400, 1300, install_console_license)
    assert get(server).to_dict() == before


def test_a_read_only_token_cannot_install(licensing_server):
    server = licensing_server
    before = install(server, mint(server)).to_dict()
    with client(server, token=read_only_token(server)) as c:
        response = install_console_license.sync_detailed(
            client=c, body=InstallConsoleLicenseBody(license_=upload(mint(server)))
        )
    error = expect_error(response, 403, 403, install_console_license)
    assert error.errors[0].type_.value == "security"
    assert get(server).to_dict() == before


# ---- update and settings --------------------------------------------------------------------


def test_update_console_license_installs_the_renewal(licensing_server):
    server = licensing_server
    minted = mint(server, "Rental", expires=in_days(3))
    server.portal.publish(minted)
    installed = install(server, minted)
    assert installed.status.value == "Warning"

    with client(server) as c:
        response = update_console_license.sync_detailed(client=c)
    data = expect(response, 200, UpdateConsoleLicenseResponse200, update_console_license).data

    assert uuid.UUID(data.license_id) == minted.license_id
    assert data.expiration_date == end_of_next_month(wire_instant(minted.claims["expirationDate"]))
    assert data.status.value == "Valid"
    assert data.last_update_status.value == "Success"
    assert data.last_update_date is not None
    assert get(server).to_dict() == data.to_dict()


def test_update_of_a_license_the_portal_does_not_know_is_1300(licensing_server):
    server = licensing_server
    before = install(server, mint(server)).to_dict()  # never published
    with client(server) as c:
        response = update_console_license.sync_detailed(client=c)
    expect_error(response, 400, 1300, update_console_license)
    after = get(server)
    # Nothing was installed; the failed attempt is what the console reports.
    assert after.license_id == before["licenseId"]
    assert after.expiration_date.isoformat() == before["expirationDate"]
    assert after.last_update_status.value == "Error"
    assert after.last_update_message


@pytest.mark.parametrize("license_type", ["Evaluation", "NFR"])
def test_settings_show_auto_update_forced_on_for_trials(licensing_server, license_type):
    """RULES.md, install: auto-update is forced on for Evaluation/NFR files with a license id."""
    server = licensing_server
    install(server, mint(server, license_type, expires=in_days(20)))
    assert settings(server).is_auto_update_enabled is True
