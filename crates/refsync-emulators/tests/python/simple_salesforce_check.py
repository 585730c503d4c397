"""Drive the refsync Salesforce emulator with simple-salesforce, a client nobody
on this project wrote, to check the emulator behaves like a real org for it.

Run by crates/refsync-emulators/tests/salesforce_simple_salesforce.rs with:
  SF_EMULATOR_URL        base URL of a running emulator (http://127.0.0.1:PORT)
  SF_CONSUMER_KEY/SECRET credentials of a connected app with client credentials
  SF_EXPECTED_PAGE_SIZE  the emulator's default query batch size

How the library is connected, and why:
- simple-salesforce logs in with username/password/security token over SOAP, or
  with OAuth against https://<domain>.salesforce.com, neither of which can point
  at a local server. It also accepts an existing session: instance_url +
  session_id. So the script obtains a token with the client-credentials grant
  (as refsync does) and hands it to Salesforce(instance_url=..., session_id=...).
- The library builds every URL as "https://<instance>/..." (api.py hard-codes
  the scheme), while the emulator serves plain HTTP on loopback. The script
  passes the library a requests.Session whose transport adapter rewrites the
  scheme for the emulator's host:port only. Paths, query strings, headers and
  bodies are exactly what the library produced; nothing in the library is patched.

What the library sends (read from its source, version 1.12.x):
- API version 59.0 unless told otherwise: /services/data/v59.0/...
- "Authorization: Bearer <session id>", "Content-Type: application/json",
  "X-PrettyPrint: 1" on every call.
- query() -> GET .../query/?q=...  (note the trailing slash), query_all() ->
  the same, then GET https://<instance><nextRecordsUrl> until done is true.
- SFType.upsert('Field/value', data) -> PATCH .../sobjects/Lead/Field/value and
  returns the bare HTTP status code (201 created, 200 or 204 updated).
- create() returns the JSON body; update()/delete() return the status code.
- updated()/deleted() send start/end as ISO 8601 with %3A and %2B escaped.
- Every response's Sforce-Limit-Info header is parsed into sf.api_usage.
"""

import datetime
import json
import os
import sys
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)


class PlainHttpForEmulator(HTTPAdapter):
    """Sends the library's https://host:port requests to http://host:port."""

    def send(self, request, **kwargs):
        request.url = "http://" + request.url[len("https://"):]
        return super().send(request, **kwargs)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    base = os.environ["SF_EMULATOR_URL"].rstrip("/")
    page_size = int(os.environ["SF_EXPECTED_PAGE_SIZE"])
    token = requests.post(
        base + "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": os.environ["SF_CONSUMER_KEY"],
            "client_secret": os.environ["SF_CONSUMER_SECRET"],
        },
        timeout=10,
    )
    check(token.status_code == 200, f"token: {token.status_code} {token.text}")
    auth = token.json()
    instance_url = auth["instance_url"]
    check(instance_url == base, f"instance_url {instance_url} != {base}")

    host = urlparse(instance_url)
    session = requests.Session()
    session.mount(f"https://{host.hostname}:{host.port}/", PlainHttpForEmulator())
    sf = Salesforce(instance_url=instance_url, session_id=auth["access_token"], session=session)

    # Create.
    created = sf.Lead.create(
        {"FirstName": "Grace", "LastName": "Hopper", "Company": "Contoso", "Status": "Open - Not Contacted"}
    )
    check(created["success"] is True and created["errors"] == [], f"create: {created}")
    lead_id = created["id"]
    check(len(lead_id) == 18 and lead_id.startswith("00Q"), f"lead id {lead_id}")

    # Read.
    lead = sf.Lead.get(lead_id)
    check(lead["Name"] == "Grace Hopper", f"get: {lead['Name']}")
    check(lead["attributes"]["type"] == "Lead", f"attributes: {lead['attributes']}")

    # Update.
    status = sf.Lead.update(lead_id, {"Title": "Rear Admiral", "Sync_with_Partner_Center__c": True})
    check(status == 204, f"update status {status}")
    check(sf.Lead.get(lead_id)["Title"] == "Rear Admiral", "update not applied")

    # Upsert by external id: create, then update.
    referral = "5e1f0a4c-6a7b-4a8e-9c3d-000000000001"
    status = sf.Opportunity.upsert(
        f"Referral_Identifier__c/{referral}",
        {"Name": "Co-sell deal", "StageName": "On Hold", "CloseDate": "2026-06-30", "Amount": 125000},
    )
    check(status == 201, f"upsert create status {status}")
    status = sf.Opportunity.upsert(f"Referral_Identifier__c/{referral}", {"StageName": "Qualification"})
    check(status in (200, 204), f"upsert update status {status}")
    opp = sf.Opportunity.get_by_custom_id("Referral_Identifier__c", referral)
    check(opp["StageName"] == "Qualification" and opp["Amount"] == 125000.0, f"upserted: {opp}")
    raw = sf.Opportunity.upsert(f"Referral_Identifier__c/{referral}", {"Description": "x"}, raw_response=True)
    if raw.status_code == 200:
        check(raw.json()["created"] is False and raw.json()["id"] == opp["Id"], f"upsert body {raw.text}")

    # Validation errors surface as the library's exceptions with Salesforce's body.
    try:
        sf.Lead.create({"LastName": "No company"})
        check(False, "create without Company succeeded")
    except SalesforceMalformedRequest as e:
        check(e.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING", f"error content {e.content}")

    # Query, and query_all across several pages.
    rows = [
        {"attributes": {"type": "Account"}, "Name": f"Paged {i:03}", "BillingPostalCode": "98052"}
        for i in range(page_size * 2 + 5)
    ]
    results = sf.restful("composite/sobjects", method="POST", data=json.dumps({"allOrNone": True, "records": rows}))
    check(all(r["success"] for r in results), f"collection create: {results[:2]}")
    soql = "SELECT Id, Name FROM Account WHERE BillingPostalCode = '98052' ORDER BY Name"
    first = sf.query(soql)
    check(first["done"] is False and len(first["records"]) == page_size, f"first page: {first['totalSize']} {first['done']}")
    check(first["totalSize"] == len(rows), f"totalSize {first['totalSize']}")
    everything = sf.query_all(soql)
    names = [r["Name"] for r in everything["records"]]
    check(names == sorted(r["Name"] for r in rows), f"query_all returned {len(names)} rows")
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    check(more["records"][0]["Name"] == rows[page_size]["Name"], "query_more continues where the first page ended")
    iterated = list(sf.query_all_iter(soql))
    check(len(iterated) == len(rows), "query_all_iter")
    count = sf.query("SELECT COUNT() FROM Lead")
    check(count["totalSize"] == 1 and count["records"] == [], f"count: {count}")
    # Salesforce-level calls parse Sforce-Limit-Info into sf.api_usage.
    usage = sf.api_usage["api-usage"]
    check(0 < usage.used < usage.total, f"api usage {sf.api_usage}")

    # Change detection helpers.
    now = datetime.datetime.now(datetime.timezone.utc)
    updated = sf.Lead.updated(now - datetime.timedelta(days=1), now + datetime.timedelta(minutes=5))
    check("latestDateCovered" in updated and isinstance(updated["ids"], list), f"updated: {updated}")

    # Delete, then the record is gone for the library too.
    check(sf.Lead.delete(lead_id) == 204, "delete status")
    try:
        sf.Lead.get(lead_id)
        check(False, "deleted lead still readable")
    except SalesforceResourceNotFound as e:
        check(e.content[0]["errorCode"] == "ENTITY_IS_DELETED", f"deleted content {e.content}")
    deleted = sf.query_all("SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True)
    check([r["Id"] for r in deleted["records"]] == [lead_id], f"queryAll deleted: {deleted}")

    limits = sf.limits()
    check(limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"], f"limits: {limits}")

    print(json.dumps({"ok": True, "lead": lead_id, "opportunity": opp["Id"], "paged_rows": len(names)}))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report any failure as a non-zero exit with the reason
        print(f"simple-salesforce check failed: {exc!r}", file=sys.stderr)
        raise
