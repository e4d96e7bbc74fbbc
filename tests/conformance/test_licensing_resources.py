"""The per-server license resources through the `veeam-spc` client: Cloud Connect sites, Backup &
Replication servers, Veeam ONE servers and Microsoft 365 servers.

Every test mints real license files with `tallyman license issue` (signed by the key the server
was started to trust), registers servers with `tallyman server add`, and drives the generated
`veeam_spc.v3_6_1.api.licensing.*` modules: Get*Licenses, Get*License, Install*License,
Patch*License and Update*License for all four kinds, plus DeleteBackupServerLicense (with
``section_for_delete``) and DeleteVOneServerLicense. Updates go to a running `tallyman portal`,
which renews Rental files that expire within 7 days.

Contract: ENDPOINTS.md (Licensing rows), conventions.md sections 2, 6 and 7.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Optional

import pytest
from veeam_spc.v3_6_1.api.licensing import (
    delete_backup_server_license,
    delete_v_one_server_license,
    get_backup_server_license,
    get_backup_servers_licenses,
    get_site_license,
    get_site_licenses,
    get_v_one_server_license,
    get_v_one_servers_licenses,
    get_vb_365_server_license,
    get_vb_365_servers_licenses,
    install_backup_server_license,
    install_site_license,
    install_v_one_server_license,
    install_vb_365_server_license,
    patch_backup_server_license,
    patch_site_license,
    patch_v_one_server_license,
    patch_vb_365_server_license,
    update_backup_server_license,
    update_site_license,
    update_v_one_server_license,
    update_vb_365_server_license,
)
from veeam_spc.v3_6_1.models.backup_server_license import BackupServerLicense
from veeam_spc.v3_6_1.models.delete_backup_server_license_section_for_delete import (
    DeleteBackupServerLicenseSectionForDelete as Section,
)
from veeam_spc.v3_6_1.models.empty_response import EmptyResponse
from veeam_spc.v3_6_1.models.get_backup_server_license_response_200 import (
    GetBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.get_backup_servers_licenses_response_200 import (
    GetBackupServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.get_site_license_response_200 import GetSiteLicenseResponse200
from veeam_spc.v3_6_1.models.get_site_licenses_response_200 import GetSiteLicensesResponse200
from veeam_spc.v3_6_1.models.get_v_one_server_license_response_200 import (
    GetVOneServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.get_v_one_servers_licenses_response_200 import (
    GetVOneServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.get_vb_365_server_license_response_200 import (
    GetVb365ServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.get_vb_365_servers_licenses_response_200 import (
    GetVb365ServersLicensesResponse200,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_body import (
    InstallBackupServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_backup_server_license_response_200 import (
    InstallBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.install_site_license_body import InstallSiteLicenseBody
from veeam_spc.v3_6_1.models.install_site_license_response_200 import (
    InstallSiteLicenseResponse200,
)
from veeam_spc.v3_6_1.models.install_v_one_server_license_body import (
    InstallVOneServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_v_one_server_license_response_200 import (
    InstallVOneServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.install_vb_365_server_license_body import (
    InstallVb365ServerLicenseBody,
)
from veeam_spc.v3_6_1.models.install_vb_365_server_license_response_200 import (
    InstallVb365ServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.json_patch import JsonPatch
from veeam_spc.v3_6_1.models.json_patch_op import JsonPatchOp
from veeam_spc.v3_6_1.models.patch_backup_server_license_response_200 import (
    PatchBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.patch_site_license_response_200 import PatchSiteLicenseResponse200
from veeam_spc.v3_6_1.models.patch_v_one_server_license_response_200 import (
    PatchVOneServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.patch_vb_365_server_license_response_200 import (
    PatchVb365ServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.site_license import SiteLicense
from veeam_spc.v3_6_1.models.update_backup_server_license_response_200 import (
    UpdateBackupServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.update_site_license_response_200 import (
    UpdateSiteLicenseResponse200,
)
from veeam_spc.v3_6_1.models.update_v_one_server_license_response_200 import (
    UpdateVOneServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.update_vb_365_server_license_response_200 import (
    UpdateVb365ServerLicenseResponse200,
)
from veeam_spc.v3_6_1.models.v_one_server_license import VOneServerLicense
from veeam_spc.v3_6_1.models.vb_365_server_license import Vb365ServerLicense

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


@dataclass(frozen=True)
class Kind:
    """One license resource: how to make its servers and files, and its client modules."""

    id: str
    cli_kind: str  # `tallyman server add --kind`
    agent_kind: str  # agent API `kind`
    product: str  # `tallyman license issue --product`
    uid_field: str  # the resource model's uid attribute
    resource: type
    body: type
    list_op: ModuleType
    list_model: type
    get_op: ModuleType
    get_model: type
    install_op: ModuleType
    install_model: type
    patch_op: ModuleType
    patch_model: type
    update_op: ModuleType
    update_model: type
    claims: dict  # extra `license issue` flags, each checked on the resource by `check_claims`


KINDS = [
    Kind(
        "site", "cloud-connect-site", "CloudConnectSite", "cloud-connect", "site_uid",
        SiteLicense, InstallSiteLicenseBody,
        get_site_licenses, GetSiteLicensesResponse200,
        get_site_license, GetSiteLicenseResponse200,
        install_site_license, InstallSiteLicenseResponse200,
        patch_site_license, PatchSiteLicenseResponse200,
        update_site_license, UpdateSiteLicenseResponse200,
        {"units": 250},
    ),
    Kind(
        "backupServer", "backup-server", "BackupServer", "backup-and-replication",
        "backup_server_uid", BackupServerLicense, InstallBackupServerLicenseBody,
        get_backup_servers_licenses, GetBackupServersLicensesResponse200,
        get_backup_server_license, GetBackupServerLicenseResponse200,
        install_backup_server_license, InstallBackupServerLicenseResponse200,
        patch_backup_server_license, PatchBackupServerLicenseResponse200,
        update_backup_server_license, UpdateBackupServerLicenseResponse200,
        {"units": 250},
    ),
    Kind(
        "voneServer", "vone-server", "VOneServer", "vone", "v_one_server_uid",
        VOneServerLicense, InstallVOneServerLicenseBody,
        get_v_one_servers_licenses, GetVOneServersLicensesResponse200,
        get_v_one_server_license, GetVOneServerLicenseResponse200,
        install_v_one_server_license, InstallVOneServerLicenseResponse200,
        patch_v_one_server_license, PatchVOneServerLicenseResponse200,
        update_v_one_server_license, UpdateVOneServerLicenseResponse200,
        {"units": 250},
    ),
    Kind(
        "vb365Server", "vb365-server", "Vb365Server", "vb365", "vb_365_server_uid",
        Vb365ServerLicense, InstallVb365ServerLicenseBody,
        get_vb_365_servers_licenses, GetVb365ServersLicensesResponse200,
        get_vb_365_server_license, GetVb365ServerLicenseResponse200,
        install_vb_365_server_license, InstallVb365ServerLicenseResponse200,
        patch_vb_365_server_license, PatchVb365ServerLicenseResponse200,
        update_vb_365_server_license, UpdateVb365ServerLicenseResponse200,
        {"licensed_users": 150},
    ),
]
KIND_IDS = [k.id for k in KINDS]
BY_ID = {k.id: k for k in KINDS}

# A file for a product that fits none of the other kinds' servers (RULES.md, install fit table).
MISFIT = {"site": "vb365", "backupServer": "vb365", "voneServer": "vb365", "vb365Server": "vone"}


@pytest.fixture(params=KINDS, ids=KIND_IDS)
def kind(request) -> Kind:
    return request.param


# ---- helpers --------------------------------------------------------------------------------


def company() -> str:
    return f"Conformance {secrets.token_hex(3)}"


def new_server(server: Tallyman, kind: Kind) -> uuid.UUID:
    return server.add_managed_server(f"{kind.id}-{secrets.token_hex(3)}", kind.cli_kind)


def mint(server: Tallyman, kind: Kind, license_type: str = "Subscription", **claims) -> MintedLicense:
    flags = {"company": company(), **kind.claims, **claims}
    if license_type != "Perpetual" and "expires" not in flags:
        flags["expires"] = in_days(120)
    return server.issuer.mint(kind.product, license_type, **flags)


def license_ids(data: Any) -> list[uuid.UUID]:
    """The license ids a resource shows (sites and B&R: a list; Veeam ONE and VB365: one)."""
    if hasattr(data, "license_ids"):
        return list(data.license_ids)
    return [] if data.license_id is None else [data.license_id]


def check_claims(kind: Kind, data: Any, minted: MintedLicense) -> None:
    """The resource shows what the installed file says."""
    claims = minted.claims
    assert getattr(data, kind.uid_field) is not None
    assert license_ids(data) == [minted.license_id]
    assert data.company == claims["company"]
    assert data.email == claims["email"]
    assert data.type_.value == claims["type"]
    if claims.get("expirationDate"):
        assert data.expiration_date == wire_instant(claims["expirationDate"])
    else:
        assert data.expiration_date is None
    if "units" in kind.claims:
        assert data.units == claims["units"]
    if "licensed_users" in kind.claims:
        assert data.licensed_users == claims["licensedUsers"]


def install(server: Tallyman, kind: Kind, uid: uuid.UUID, minted: MintedLicense, sent=None) -> Any:
    return install_bytes(server, kind, uid, minted.bytes, sent=sent)


def install_bytes(server: Tallyman, kind: Kind, uid: uuid.UUID, payload: bytes, sent=None) -> Any:
    with client(server, sent=sent) as c:
        response = kind.install_op.sync_detailed(uid, client=c, body=kind.body(license_=upload(payload)))
    return expect(response, 200, kind.install_model, kind.install_op).data


def get(server: Tallyman, kind: Kind, uid: uuid.UUID) -> Any:
    with client(server) as c:
        response = kind.get_op.sync_detailed(uid, client=c)
    return expect(response, 200, kind.get_model, kind.get_op).data


def patch_auto_update(server: Tallyman, kind: Kind, uid: uuid.UUID, *ops: JsonPatch):
    with client(server) as c:
        return kind.patch_op.sync_detailed(uid, client=c, body=list(ops))


def replace(value: str) -> JsonPatch:
    return JsonPatch(op=JsonPatchOp.REPLACE, path="/autoUpdateEnabled", value=value)


# ---- install, get, list ---------------------------------------------------------------------


def test_install_shows_the_file_and_get_agrees(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    minted = mint(server, kind)
    sent: list = []

    installed = install(server, kind, uid, minted, sent=sent)

    # The generated module sent one multipart part named "license" carrying the file.
    request = sent[-1]
    assert request.method == "PUT"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = request.read()
    assert b'name="license"' in body and minted.bytes in body
    assert isinstance(installed, kind.resource)
    assert getattr(installed, kind.uid_field) == uid
    check_claims(kind, installed, minted)
    assert installed.status.value == "Valid"
    assert installed.auto_update_enabled is False
    # GET returns the same resource.
    assert get(server, kind, uid).to_dict() == installed.to_dict()


def test_install_with_a_bare_file_object(licensing_server, kind):
    """The simplest script: File(payload=open(path, "rb")) with no file name or media type."""
    from veeam_spc.v3_6_1.types import File

    server = licensing_server
    uid = new_server(server, kind)
    minted = mint(server, kind)
    with open(minted.path, "rb") as payload, client(server) as c:
        response = kind.install_op.sync_detailed(
            uid, client=c, body=kind.body(license_=File(payload=payload))
        )
    check_claims(kind, expect(response, 200, kind.install_model, kind.install_op).data, minted)


def test_list_shows_every_server_of_the_kind(licensing_server, kind):
    server = licensing_server
    licensed, bare = new_server(server, kind), new_server(server, kind)
    minted = mint(server, kind)
    installed = install(server, kind, licensed, minted)

    with client(server) as c:
        page = expect(kind.list_op.sync_detailed(client=c), 200, kind.list_model, kind.list_op)

    by_uid = {getattr(item, kind.uid_field): item for item in page.data}
    assert by_uid[licensed].to_dict() == installed.to_dict()
    unlicensed = by_uid[bare]
    assert license_ids(unlicensed) == []
    assert unlicensed.status.value in ("Unknown", "Unlicensed")
    paging = page.meta.paging_info
    assert paging.total == len(page.data) == paging.count
    assert paging.offset == 0


def test_server_without_a_license_parses(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    data = get(server, kind, uid)
    assert getattr(data, kind.uid_field) == uid
    assert license_ids(data) == []
    assert data.status.value in ("Unknown", "Unlicensed")
    assert data.auto_update_enabled is False


def test_unknown_server_is_404_for_every_operation(licensing_server, kind):
    server = licensing_server
    nobody = uuid.uuid4()
    minted = mint(server, kind)
    with client(server) as c:
        calls = [
            (kind.get_op, lambda: kind.get_op.sync_detailed(nobody, client=c)),
            (kind.install_op, lambda: kind.install_op.sync_detailed(
                nobody, client=c, body=kind.body(license_=upload(minted)))),
            (kind.patch_op, lambda: kind.patch_op.sync_detailed(
                nobody, client=c, body=[replace("true")])),
            (kind.update_op, lambda: kind.update_op.sync_detailed(nobody, client=c)),
        ]
        for op, call in calls:
            expect_error(call(), 404, 404, op)


def test_a_file_for_another_product_is_refused_and_nothing_changes(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    before = install(server, kind, uid, mint(server, kind)).to_dict()
    other = server.issuer.mint(MISFIT[kind.id], "Subscription", expires=in_days(120))
    with client(server) as c:
        response = kind.install_op.sync_detailed(uid, client=c, body=kind.body(license_=upload(other)))
    expect_error(response, 400, 1300, kind.install_op)
    assert get(server, kind, uid).to_dict() == before


def test_a_tampered_file_is_refused_with_1300_and_nothing_changes(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    genuine = mint(server, kind)
    # Control: the genuine token, taken apart and re-armoured by `tamper`, installs fine.
    before = install_bytes(server, kind, uid, tamper(genuine))
    check_claims(kind, before, genuine)
    # The same file with its claims edited after signing: more units (or users), another
    # licensee.
    more = {"licensedUsers": 300} if "licensed_users" in kind.claims else {"units": 500}
    tampered = tamper(genuine, company="Somebody Else", **more)
    with client(server) as c:
        response = kind.install_op.sync_detailed(
            uid, client=c, body=kind.body(license_=upload(tampered))
        )
    expect_error(response, 400, 1300, kind.install_op)
    assert get(server, kind, uid).to_dict() == before.to_dict()


def test_a_read_only_token_cannot_install(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    before = get(server, kind, uid).to_dict()
    with client(server, token=read_only_token(server)) as c:
        # Reading works with the token ...
        expect(kind.get_op.sync_detailed(uid, client=c), 200, kind.get_model, kind.get_op)
        # ... writing does not.
        response = kind.install_op.sync_detailed(
            uid, client=c, body=kind.body(license_=upload(mint(server, kind)))
        )
    error = expect_error(response, 403, 403, kind.install_op)
    assert error.errors[0].type_.value == "security"
    assert get(server, kind, uid).to_dict() == before


# ---- patch ------------------------------------------------------------------------------------


def test_patch_turns_auto_update_on_and_off(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    install(server, kind, uid, mint(server, kind))

    on = expect(patch_auto_update(server, kind, uid, replace("true")), 200, kind.patch_model, kind.patch_op)
    assert on.data.auto_update_enabled is True
    assert get(server, kind, uid).auto_update_enabled is True

    off = expect(patch_auto_update(server, kind, uid, replace("false")), 200, kind.patch_model, kind.patch_op)
    assert off.data.auto_update_enabled is False
    assert get(server, kind, uid).auto_update_enabled is False


def test_patch_failed_test_operation_is_1001_and_changes_nothing(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    before = install(server, kind, uid, mint(server, kind)).to_dict()
    test_true = JsonPatch(op=JsonPatchOp.TEST, path="/autoUpdateEnabled", value="true")
    response = patch_auto_update(server, kind, uid, test_true, replace("true"))
    error = expect_error(response, 400, 1001, kind.patch_op)
    assert error.errors[0].type_.value == "logical"
    assert get(server, kind, uid).to_dict() == before


def test_patch_of_a_read_only_property_is_1001(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    before = install(server, kind, uid, mint(server, kind)).to_dict()
    status = JsonPatch(op=JsonPatchOp.REPLACE, path="/status", value="Valid")
    expect_error(patch_auto_update(server, kind, uid, status), 400, 1001, kind.patch_op)
    assert get(server, kind, uid).to_dict() == before


# ---- update through the license portal ------------------------------------------------------


def test_update_installs_the_renewal_from_the_portal(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    # A Rental file in its last days: the portal renews it when asked.
    minted = mint(server, kind, "Rental", expires=in_days(3))
    server.portal.publish(minted)
    installed = install(server, kind, uid, minted)
    assert installed.status.value == "Warning"  # inside Rental's 7-day warning window

    with client(server) as c:
        response = kind.update_op.sync_detailed(uid, client=c)
    updated = expect(response, 200, kind.update_model, kind.update_op).data

    old_expiry = wire_instant(minted.claims["expirationDate"])
    assert updated.expiration_date == end_of_next_month(old_expiry)
    assert license_ids(updated) == [minted.license_id]
    assert updated.company == minted.claims["company"]
    assert updated.status.value == "Valid"
    assert get(server, kind, uid).to_dict() == updated.to_dict()


def test_update_with_nothing_newer_keeps_the_license(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    minted = mint(server, kind, "Perpetual")
    server.portal.publish(minted)
    installed = install(server, kind, uid, minted)
    with client(server) as c:
        response = kind.update_op.sync_detailed(uid, client=c)
    updated = expect(response, 200, kind.update_model, kind.update_op).data
    assert updated.to_dict() == installed.to_dict()


def test_update_of_a_license_the_portal_does_not_know_is_1300(licensing_server, kind):
    server = licensing_server
    uid = new_server(server, kind)
    before = install(server, kind, uid, mint(server, kind)).to_dict()  # never published
    with client(server) as c:
        response = kind.update_op.sync_detailed(uid, client=c)
    expect_error(response, 400, 1300, kind.update_op)
    assert get(server, kind, uid).to_dict() == before


# ---- what agents report shows up in the resources -------------------------------------------

REPORTED = {
    "site": ({"usedUnits": 40}, lambda d: d.used_units == 40),
    "backupServer": ({"usedUnits": 40, "usedSockets": 2, "usedCapacity": 1.5},
                     lambda d: (d.used_units, d.used_sockets, d.used_capacity) == (40, 2, 1.5)),
    "voneServer": ({"usedUnits": 40}, lambda d: d.used_units == 40),
    "vb365Server": ({"protectedUsers": 40}, lambda d: d.protected_users == 40),
}


def test_agent_reported_usage_shows_in_the_resource(licensing_server, kind):
    server = licensing_server
    agent = server.enroll_agent(server.provider_uid())
    uid = agent.register(kind.agent_kind, f"{kind.id}-agent-{secrets.token_hex(3)}")
    minted = mint(server, kind)
    install(server, kind, uid, minted)
    report, check = REPORTED[kind.id]
    answer = agent.heartbeat(uid, licenseIds=[str(minted.license_id)], **report)
    assert answer["pendingLicense"] is True  # the install is waiting for the agent

    data = get(server, kind, uid)
    assert check(data), data.to_dict()
    assert data.status.value == "Valid"


# ---- delete -----------------------------------------------------------------------------------


def _delete_backup_server(server: Tallyman, uid: uuid.UUID, section: Optional[Section] = None):
    sent: list = []
    with client(server, sent=sent) as c:
        if section is None:
            response = delete_backup_server_license.sync_detailed(uid, client=c)
        else:
            response = delete_backup_server_license.sync_detailed(
                uid, client=c, section_for_delete=section
            )
    return response, sent[-1]


def test_delete_backup_server_license_section_by_section(licensing_server):
    server = licensing_server
    kind = BY_ID["backupServer"]
    uid = new_server(server, kind)
    owner = company()
    # A perpetual socket license, then a subscription instance license of the same licensee:
    # the two merge (RULES.md, "Merge or replace").
    sockets = server.issuer.mint(
        kind.product, "Perpetual", company=owner, section="Socket", sockets=4, package="Backup"
    )
    instances = server.issuer.mint(
        kind.product, "Subscription", company=owner, section="Instance", units=50,
        package="Backup", expires=in_days(120),
    )
    install(server, kind, uid, sockets)
    merged = install(server, kind, uid, instances)
    assert sorted(s.value for s in merged.section_types) == ["Instance", "Socket"]
    assert set(merged.license_ids) == {sockets.license_id, instances.license_id}
    assert merged.sockets == 4 and merged.units == 50

    response, request = _delete_backup_server(server, uid, Section.INSTANCE)
    assert request.url.params["sectionForDelete"] == "Instance"
    expect(response, 200, EmptyResponse, delete_backup_server_license)
    assert response.parsed.errors == []
    left = get(server, kind, uid)
    assert [s.value for s in left.section_types] == ["Socket"]
    assert left.license_ids == [sockets.license_id]
    assert left.sockets == 4

    # The client's default section is All: the server falls back to Community Edition.
    response, request = _delete_backup_server(server, uid)
    assert request.url.params["sectionForDelete"] == "All"
    expect(response, 200, EmptyResponse, delete_backup_server_license)
    community = get(server, kind, uid)
    assert community.type_.value == "Community"
    assert community.license_ids == []
    assert community.status.value == "Unlicensed"


def test_delete_of_a_section_the_license_lacks_is_1300(licensing_server):
    server = licensing_server
    kind = BY_ID["backupServer"]
    uid = new_server(server, kind)
    before = install(server, kind, uid, mint(server, kind)).to_dict()  # instance only
    response, _ = _delete_backup_server(server, uid, Section.SOCKET)
    expect_error(response, 400, 1300, delete_backup_server_license)
    assert get(server, kind, uid).to_dict() == before


def test_delete_v_one_server_license(licensing_server):
    server = licensing_server
    kind = BY_ID["voneServer"]
    uid = new_server(server, kind)
    install(server, kind, uid, mint(server, kind))
    with client(server) as c:
        response = delete_v_one_server_license.sync_detailed(uid, client=c)
    expect(response, 200, EmptyResponse, delete_v_one_server_license)
    assert response.parsed.errors == []
    gone = get(server, kind, uid)
    assert gone.license_id is None
    assert gone.status.value == "Unlicensed"
    assert gone.auto_update_enabled is False


def test_delete_of_an_unknown_server_is_404(licensing_server):
    server = licensing_server
    with client(server) as c:
        expect_error(
            delete_backup_server_license.sync_detailed(uuid.uuid4(), client=c),
            404, 404, delete_backup_server_license,
        )
        expect_error(
            delete_v_one_server_license.sync_detailed(uuid.uuid4(), client=c),
            404, 404, delete_v_one_server_license,
        )


# ---- idempotency and the VeeamClient wrapper ------------------------------------------------


def test_install_with_a_request_id_is_replayed_not_repeated(licensing_server):
    """conventions.md test cases 43-44, on an install: the same X-Request-id within 5 minutes
    answers the first result again; with another file it is a 409 on X-Request-id."""
    server = licensing_server
    kind = BY_ID["backupServer"]
    uid = new_server(server, kind)
    first_file, second_file = mint(server, kind), mint(server, kind)
    request_id = str(uuid.uuid4())
    with client(server) as c:
        def put(minted):
            return kind.install_op.sync_detailed(
                uid, client=c, body=kind.body(license_=upload(minted)), x_request_id=request_id
            )

        first = put(first_file)
        again = put(first_file)
        clash = put(second_file)
    expect(first, 200, kind.install_model, kind.install_op)
    assert again.status_code == 200 and again.content == first.content
    error = expect_error(clash, 409, 409, kind.install_op)
    # The client's ResponseError has no parameterName attribute; it keeps it as an extra.
    assert error.errors[0].additional_properties["parameterName"] == "X-Request-id"
    assert license_ids(get(server, kind, uid)) == [first_file.license_id]


def test_a_provider_script_through_veeam_client(licensing_server):
    """The `VeeamClient` wrapper (password login, X-Client-Version 3.6.1 on every call) drives a
    whole life cycle: list, install, patch, update, delete."""
    import asyncio

    server = licensing_server
    kind = BY_ID["backupServer"]
    uid = new_server(server, kind)
    minted = mint(server, kind, "Rental", expires=in_days(2))
    server.portal.publish(minted)

    async def scenario():
        async with server.session() as vc:
            listed = await vc.call(get_backup_servers_licenses.asyncio_detailed)
            installed = await vc.call(
                install_backup_server_license.asyncio_detailed, uid,
                body=InstallBackupServerLicenseBody(license_=upload(minted)),
            )
            patched = await vc.call(
                patch_backup_server_license.asyncio_detailed, uid, body=[replace("true")]
            )
            updated = await vc.call(update_backup_server_license.asyncio_detailed, uid)
            deleted = await vc.call(delete_backup_server_license.asyncio_detailed, uid)
            # The namespace accessor returns the parsed model directly.
            single = await vc.call(vc.api("licensing").get_backup_server_license, uid)
            return listed, installed, patched, updated, deleted, single

    listed, installed, patched, updated, deleted, single = asyncio.run(scenario())
    assert uid in {i.backup_server_uid for i in expect(
        listed, 200, GetBackupServersLicensesResponse200, get_backup_servers_licenses).data}
    check_claims(kind, expect(installed, 200, InstallBackupServerLicenseResponse200,
                              install_backup_server_license).data, minted)
    assert expect(patched, 200, PatchBackupServerLicenseResponse200,
                  patch_backup_server_license).data.auto_update_enabled is True
    renewed = expect(updated, 200, UpdateBackupServerLicenseResponse200, update_backup_server_license).data
    assert renewed.expiration_date == end_of_next_month(wire_instant(minted.claims["expirationDate"]))
    expect(deleted, 200, EmptyResponse, delete_backup_server_license)
    assert isinstance(single, GetBackupServerLicenseResponse200)
    assert single.data.type_.value == "Community"
