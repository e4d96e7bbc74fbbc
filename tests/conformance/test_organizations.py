"""The Organizations read endpoints provider scripts call before the licensing operations:
``GET /organizations``, ``/organizations/companies`` and ``/organizations/resellers`` (each by
UID too), driven with the generated ``veeam_spc.v3_6_1.api.organizations``, ``.companies`` and
``.resellers`` modules; ``filter``, ``sort`` and ``select`` (which those modules cannot send)
with plain httpx, every page still parsed with the client's list model.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

import pytest
from veeam_spc.v3_6_1.api.companies import get_companies, get_company
from veeam_spc.v3_6_1.api.organizations import get_organization, get_organizations
from veeam_spc.v3_6_1.api.resellers import get_reseller, get_resellers
from veeam_spc.v3_6_1.models.company_expand import CompanyExpand
from veeam_spc.v3_6_1.models.company_status import CompanyStatus
from veeam_spc.v3_6_1.models.error_response import ErrorResponse
from veeam_spc.v3_6_1.models.get_companies_response_200 import GetCompaniesResponse200
from veeam_spc.v3_6_1.models.get_company_response_200 import GetCompanyResponse200
from veeam_spc.v3_6_1.models.get_organization_response_200 import GetOrganizationResponse200
from veeam_spc.v3_6_1.models.get_organizations_response_200 import GetOrganizationsResponse200
from veeam_spc.v3_6_1.models.get_reseller_response_200 import GetResellerResponse200
from veeam_spc.v3_6_1.models.get_resellers_response_200 import GetResellersResponse200
from veeam_spc.v3_6_1.models.organization_type import OrganizationType
from veeam_spc.v3_6_1.models.reseller_expand import ResellerExpand

from conftest import Tallyman
from licensing_support import client, unknown_properties

PASSWORD = "Tenant-" + secrets.token_urlsafe(10)


@dataclass
class Tree:
    server: Tallyman
    provider: uuid.UUID
    reseller: uuid.UUID
    acme: uuid.UUID
    zeta: uuid.UUID
    beta: uuid.UUID


def add_user(server: Tallyman, name: str, role: str, organization: uuid.UUID) -> None:
    server.cli("user", "add", name, "--role", role, "--organization", str(organization),
               "--password-stdin", stdin=PASSWORD + "\n")


@pytest.fixture(scope="module")
def tree(server) -> Tree:
    reseller = server.add_org("Northwind", "Reseller")
    acme = server.add_org("Acme Ltd", "Company", parent=reseller)
    zeta = server.add_org("Zeta GmbH", "Company", parent=reseller)
    beta = server.add_org("beta cloud", "Company")
    add_user(server, "acme-owner", "CompanyOwner", acme)
    add_user(server, "northwind-admin", "ServiceProviderAdministrator", reseller)
    return Tree(server, server.provider_uid(), reseller, acme, zeta, beta)


def parsed(response, model):
    """The client's model of a 200, with no property the client does not know."""
    assert response.status_code == 200, response.content
    assert isinstance(response.parsed, model), type(response.parsed).__name__
    unknown = unknown_properties(response.parsed)
    assert not unknown, unknown
    return response.parsed


def token_of(server: Tallyman, name: str) -> str:
    return server.login(name, PASSWORD)["access_token"]


def test_get_organizations_lists_the_tree(tree):
    with client(tree.server) as c:
        page = parsed(get_organizations.sync_detailed(client=c, limit=500), GetOrganizationsResponse200)
    by_uid = {o.instance_uid: o for o in page.data}
    assert set(by_uid) == {tree.provider, tree.reseller, tree.acme, tree.zeta, tree.beta}
    assert by_uid[tree.provider].type_ == OrganizationType.PROVIDER
    assert by_uid[tree.reseller].type_ == OrganizationType.RESELLER
    assert by_uid[tree.acme].type_ == OrganizationType.COMPANY
    assert by_uid[tree.acme].name == "Acme Ltd"
    assert by_uid[tree.acme].country is None
    assert page.meta.paging_info.total == 5


def test_get_organization_by_uid(tree):
    with client(tree.server) as c:
        one = parsed(get_organization.sync_detailed(tree.zeta, client=c), GetOrganizationResponse200)
        assert one.data.name == "Zeta GmbH"
        missing = get_organization.sync_detailed(uuid.uuid4(), client=c)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, ErrorResponse)
    assert missing.parsed.errors[0].code == 404


def test_get_companies_and_company(tree):
    with client(tree.server) as c:
        page = parsed(get_companies.sync_detailed(client=c), GetCompaniesResponse200)
        by_uid = {co.instance_uid: co for co in page.data}
        assert set(by_uid) == {tree.acme, tree.zeta, tree.beta}
        assert by_uid[tree.acme].reseller_uid == tree.reseller
        assert by_uid[tree.beta].reseller_uid is None
        assert by_uid[tree.acme].status == CompanyStatus.ACTIVE
        assert by_uid[tree.acme].owner_credentials.user_name == "acme-owner"

        one = parsed(get_company.sync_detailed(tree.acme, client=c), GetCompanyResponse200)
        assert one.data.name == "Acme Ltd"

        expanded = parsed(get_companies.sync_detailed(client=c, expand=[CompanyExpand.ORGANIZATION]),
                          GetCompaniesResponse200)
        for company in expanded.data:
            embedded = company.field_embedded.organization
            assert embedded.instance_uid == company.instance_uid
            assert embedded.type_ == OrganizationType.COMPANY

        wrong = get_company.sync_detailed(tree.reseller, client=c)
    assert wrong.status_code == 404


def test_get_resellers_and_reseller(tree):
    with client(tree.server) as c:
        page = parsed(get_resellers.sync_detailed(client=c, expand=[ResellerExpand.ORGANIZATION]),
                      GetResellersResponse200)
        assert [r.instance_uid for r in page.data] == [tree.reseller]
        assert page.data[0].field_embedded.organization.type_ == OrganizationType.RESELLER
        one = parsed(get_reseller.sync_detailed(tree.reseller, client=c), GetResellerResponse200)
        assert one.data.name == "Northwind"
        assert one.data.is_rest_access_enabled is True


def test_paging_with_limit_and_offset(tree):
    with client(tree.server) as c:
        first = parsed(get_organizations.sync_detailed(client=c, limit=2, offset=0), GetOrganizationsResponse200)
        rest = parsed(get_organizations.sync_detailed(client=c, limit=2, offset=2), GetOrganizationsResponse200)
        last = parsed(get_organizations.sync_detailed(client=c, limit=2, offset=4), GetOrganizationsResponse200)
    uids = [o.instance_uid for o in first.data + rest.data + last.data]
    assert len(uids) == len(set(uids)) == 5
    assert (last.meta.paging_info.count, last.meta.paging_info.offset) == (1, 4)


def query(tree: Tree, path: str, token=None, **params):
    encoded = {k: (v if isinstance(v, (str, int)) else json.dumps(v)) for k, v in params.items()}
    with tree.server.http(token or tree.server.admin_token) as http:
        return http.get(path, params=encoded)


def test_filter_sort_and_select_as_scripts_send_them(tree):
    r = query(tree, "/organizations", limit=500,
              filter=[{"property": "type", "operation": "equals", "value": "Company"}],
              sort=[{"property": "name", "direction": "descending", "collation": "ignorecase"}])
    assert r.status_code == 200, r.text
    page = GetOrganizationsResponse200.from_dict(r.json())
    assert [o.name for o in page.data] == ["Zeta GmbH", "beta cloud", "Acme Ltd"]

    r = query(tree, "/organizations/companies",
              filter=[{"property": "name", "operation": "contains", "value": "ACME", "collation": "ignorecase"}])
    assert [co["name"] for co in r.json()["data"]] == ["Acme Ltd"]

    r = query(tree, "/organizations/companies",
              select=[{"propertyPath": "instanceUid"}, {"propertyPath": "name"}])
    assert r.status_code == 200, r.text
    assert all(set(item) == {"instanceUid", "name"} for item in r.json()["data"])

    r = query(tree, "/organizations", filter=[{"property": "noSuchField", "operation": "equals", "value": 1}])
    assert r.status_code == 400
    assert r.json()["errors"][0]["parameterName"] == "filter"


def test_a_reseller_sees_its_own_tree_and_nothing_else(tree):
    token = token_of(tree.server, "northwind-admin")
    with client(tree.server, token) as c:
        page = parsed(get_organizations.sync_detailed(client=c), GetOrganizationsResponse200)
        assert {o.instance_uid for o in page.data} == {tree.reseller, tree.acme, tree.zeta}
        companies = parsed(get_companies.sync_detailed(client=c), GetCompaniesResponse200)
        assert {co.instance_uid for co in companies.data} == {tree.acme, tree.zeta}
        assert get_company.sync_detailed(tree.beta, client=c).status_code == 404
        assert get_organization.sync_detailed(tree.provider, client=c).status_code == 404


def test_a_company_sees_only_itself(tree):
    token = token_of(tree.server, "acme-owner")
    with client(tree.server, token) as c:
        page = parsed(get_organizations.sync_detailed(client=c), GetOrganizationsResponse200)
        assert [o.instance_uid for o in page.data] == [tree.acme]
        assert get_company.sync_detailed(tree.zeta, client=c).status_code == 404
        forbidden = get_resellers.sync_detailed(client=c)
    assert forbidden.status_code == 403
    assert forbidden.parsed.errors[0].type_.value == "security"
