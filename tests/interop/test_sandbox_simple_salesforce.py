"""Interop: the real simple-salesforce library (PyPI, unchanged) against crmsync-sandbox.

simple-salesforce builds every URL as https://<instance host>; its own login flows post to
https://<domain>.salesforce.com and cannot be pointed at another host. So the token comes from
the sandbox's /services/oauth2/token through requests, and Salesforce() gets it as a session
(instance_url + session_id, its documented "direct" mode) plus a requests.Session that rewrites
https:// to http:// for the sandbox's loopback address, the one thing a plain-HTTP test server
cannot otherwise offer. Nothing in the library is patched.

The fixture starts $CRMSYNC_BIN_DIR/crmsync-sandbox --port 0 itself and stops it with SIGTERM.
"""

import base64
import datetime
import hashlib
import hmac
import os
import select
import subprocess
import time

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

CLIENT_ID = "crmsync-sandbox-client"
CLIENT_SECRET = "sandbox-secret"
BU_ID = "0Uv5g000000SBOXCA4"
VERSION = "60.0"


def _binary():
    bin_dir = os.environ.get("CRMSYNC_BIN_DIR")
    if not bin_dir:
        here = os.path.dirname(os.path.abspath(__file__))
        bin_dir = os.path.join(here, "..", "..", "build", "bin")
    return os.path.join(bin_dir, "crmsync-sandbox")


@pytest.fixture(scope="module")
def sandbox():
    proc = subprocess.Popen(
        [_binary(), "--port", "0", "--log.level", "warn"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "the sandbox did not print its address"
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


class LoopbackHttpSession(requests.Session):
    """A requests.Session for simple-salesforce that sends its https://127.0.0.1:PORT URLs as
    plain http:// to the sandbox."""

    def request(self, method, url, *args, **kwargs):
        if url.startswith("https://127.0.0.1:"):
            url = "http://" + url[len("https://"):]
        return super().request(method, url, *args, **kwargs)


def get_token(url, **extra):
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    data.update(extra)
    return requests.post(url + "/services/oauth2/token", data=data, timeout=10)


def admin(url, method, what, body=None):
    r = requests.request(method, url + "/sandbox/" + what, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def token(sandbox):
    r = get_token(sandbox)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def sf(token):
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version=VERSION,
        session=LoopbackHttpSession(),
    )


def test_token_shape_and_signature(sandbox, token):
    for key in ("access_token", "instance_url", "id", "token_type", "issued_at", "signature"):
        assert key in token
    assert token["token_type"] == "Bearer"
    assert token["instance_url"] == sandbox
    assert "expires_in" not in token
    mac = hmac.new(
        CLIENT_SECRET.encode(),
        (token["id"] + token["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert base64.b64encode(mac).decode() == token["signature"]

    bad = get_token(sandbox, client_secret="wrong")
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }
    bad = get_token(
        sandbox, grant_type="password", username="sam@acme.example", password="nope"
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"


def test_describe(sf):
    desc = sf.Lead.describe()
    assert desc["keyPrefix"] == "00Q"
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["Email_Domain__c"]["calculated"] is True
    assert fields["Email_Domain__c"]["createable"] is False
    assert fields["Crmsync_Prospect_Id__c"]["externalId"] is True
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert {"Lead", "Contact", "User"} <= set(names)
    assert sf.limits()["DailyApiRequests"]["Max"] == 100000


def test_create_query_update_upsert_delete(sf):
    created = sf.Lead.create(
        {"LastName": "Lovelace", "Company": "Analytical", "Email": "ada@analytical.example"}
    )
    assert created["success"] is True and created["errors"] == []
    lead_id = created["id"]
    assert lead_id.startswith("00Q") and len(lead_id) == 18

    res = sf.query(
        "SELECT Id, Name, Email, Email_Domain__c FROM Lead "
        "WHERE Email = 'ADA@analytical.example'"
    )
    assert res["totalSize"] == 1 and res["done"] is True
    rec = res["records"][0]
    assert rec["Id"] == lead_id
    assert rec["attributes"]["type"] == "Lead"
    assert rec["Email_Domain__c"] == "analytical.example"
    usage = sf.api_usage["api-usage"]
    assert usage.total == 100000 and usage.used >= 1

    assert sf.Lead.update(lead_id, {"Title": "Countess"}) == 204
    got = sf.Lead.get(lead_id)
    assert got["Title"] == "Countess"
    assert got["LastModifiedDate"].endswith(".000+0000")

    assert sf.Lead.upsert(
        "Crmsync_Prospect_Id__c/P-900", {"LastName": "Byron", "Company": "Poets"}
    ) == 201
    assert sf.Lead.upsert("Crmsync_Prospect_Id__c/P-900", {"Title": "Lord"}) in (200, 204)
    by_key = sf.Lead.get_by_custom_id("Crmsync_Prospect_Id__c", "P-900")
    assert by_key["Title"] == "Lord" and by_key["Company"] == "Poets"

    assert sf.Lead.delete(by_key["Id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(by_key["Id"])

    now = datetime.datetime.now(datetime.timezone.utc)
    updated = sf.Lead.updated(now - datetime.timedelta(minutes=10), now)
    assert "ids" in updated and "latestDateCovered" in updated
    deleted = sf.Lead.deleted(now - datetime.timedelta(minutes=10), now)
    assert "deletedRecords" in deleted and "earliestDateAvailable" in deleted


def test_collections_and_paging(sf):
    records = [
        {
            "attributes": {"type": "Lead"},
            "LastName": f"Bulk{i}",
            "Company": "Many",
            "Email": f"bulk{i}@many.example",
            "Crmsync_Prospect_Id__c": f"B-{i}",
        }
        for i in range(200)
    ]
    res = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    assert len(res) == 200 and all(r["success"] for r in res)
    ids = [r["id"] for r in res]

    res = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "id": ids[0], "Title": "First"},
                {"attributes": {"type": "Lead"}, "id": "00Qbogus", "Title": "x"},
            ],
        },
    )
    assert res[0]["success"] is True
    assert res[1]["success"] is False
    assert res[1]["errors"][0]["statusCode"] == "MALFORMED_ID"

    res = sf.restful(
        "composite/sobjects/Lead/Crmsync_Prospect_Id__c",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "Crmsync_Prospect_Id__c": "B-1", "Title": "T"},
                {
                    "attributes": {"type": "Lead"},
                    "Crmsync_Prospect_Id__c": "B-new",
                    "LastName": "New",
                    "Company": "N",
                },
            ],
        },
    )
    assert res[0]["created"] is False and res[0]["id"] == ids[1]
    assert res[1]["created"] is True

    got = sf.restful(
        "composite/sobjects/Lead", params={"ids": ",".join(ids[:3]), "fields": "Id,Title"}
    )
    assert [g["Id"] for g in got] == ids[:3]
    assert got[0]["Title"] == "First" and got[1]["Title"] == "T"

    too_many = {"records": records + records[:1]}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json=too_many)
    assert exc.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"

    # query_all follows nextRecordsUrl page by page
    result = sf.query_all(
        "SELECT Id, Email FROM Lead WHERE Company = 'Many' ORDER BY Email",
        headers={"Sforce-Query-Options": "batchSize=70"},
    )
    assert result["totalSize"] == 200
    assert len(result["records"]) == 200
    assert len({r["Id"] for r in result["records"]}) == 200


def test_errors_map_to_exceptions(sandbox, sf, token):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FRM Lead")
    assert exc.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id, Nope__c FROM Lead")
    assert exc.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Lead.create({"LastName": "NoCompany"})
    assert exc.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"

    admin(sandbox, "POST", "knobs", {"crm.burst_limit_errors": 1})
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert exc.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"

    expired = Salesforce(
        instance_url=token["instance_url"],
        session_id=get_token(sandbox).json()["access_token"],
        version=VERSION,
        session=LoopbackHttpSession(),
    )
    expired.query("SELECT Id FROM Lead LIMIT 1")
    admin(sandbox, "POST", "knobs", {"auth.token_ttl_s": 1})
    time.sleep(1.2)
    with pytest.raises(SalesforceExpiredSession) as exc:
        expired.query("SELECT Id FROM Lead LIMIT 1")
    assert exc.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    admin(sandbox, "POST", "knobs", {"auth.token_ttl_s": 7200})


def test_marketing_v5_with_requests(sandbox):
    tok = get_token(sandbox).json()["access_token"]
    headers = {"Authorization": "Bearer " + tok, "Pardot-Business-Unit-Id": BU_ID}
    base = sandbox + "/api/v5/objects"

    r = requests.get(base + "/prospects", params={"fields": "id"}, headers={
        "Authorization": "Bearer " + tok}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == 181

    users = requests.get(base + "/users", params={"fields": "id,email,salesforceId"},
                         headers=headers, timeout=10).json()["values"]
    sam = next(u for u in users if u["email"] == "sam@acme.example")
    assert sam["salesforceId"].startswith("005")

    r = requests.post(base + "/prospects/do/upsertLatestByEmail", headers=headers, json={
        "matchEmail": "grace@navy.example",
        "prospect": {"firstName": "Grace", "lastName": "Hopper", "assignedToId": sam["id"],
                     "crmsyncDoNotSync__c": True},
        "fields": ["id", "email", "assignedToId", "crmsyncDoNotSync__c", "updatedAt"],
        "secondaryDeletedSearch": True,
    }, timeout=10)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["email"] == "grace@navy.example" and p["crmsyncDoNotSync__c"] is True
    updated_at = datetime.datetime.fromisoformat(p["updatedAt"])
    assert updated_at.utcoffset() is not None

    after = (updated_at - datetime.timedelta(seconds=1)).isoformat()
    page = requests.get(base + "/prospects", headers=headers, params={
        "fields": "id,email,updatedAt", "updatedAtAfterOrEqualTo": after,
        "orderBy": "updatedAt,id", "limit": 1000}, timeout=10).json()
    assert any(v["id"] == p["id"] for v in page["values"])
    assert page["nextPageToken"] is None
