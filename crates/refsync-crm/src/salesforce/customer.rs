//! `upsert_with_customer` through `/composite` (crm.md §2.5), counting calls:
//!
//! 1. One composite (`allOrNone: false`) queries the account (and contact) by the
//!    match columns — company name + postal code (crm.md §3.4) — and upserts the
//!    record with `AccountId: "@{account.records[0].Id}"`, then reads it back. When
//!    every query found a record, that is the whole job: **1 call**.
//! 2. When a query found nothing, the reference fails and Salesforce writes nothing.
//!    A second composite (`allOrNone: true`) creates what is missing, the contact
//!    pointing at the account with `@{newAccount.id}`, upserts the record pointing at
//!    both, and reads it back: **2 calls**. Were the upsert refused, `allOrNone` rolls
//!    the new account and contact back, so a retry cannot leave orphans or duplicates.
//!    (A record with no link to the missing one — a lead has no `AccountId` — was
//!    upserted by the first call; the second only creates.)
//!
//! The first composite is not `allOrNone`: there its only write is the upsert, and with
//! `allOrNone` a failed reference would replace the queries' answers with "rolled back",
//! hiding which record was missing. The portable default takes 2–3 calls for an
//! existing customer (a find per record, then the upsert) and up to 5 for a new one
//! (a find and a create per record, then the upsert).

use super::SalesforceConnector;
use super::composite::{CompositeReply, CompositeRequest};
use super::errors::{failure, read_failure};
use super::records;
use super::rest::{query_value, segment};
use super::soql;
use super::writes::upsert_result;
use crate::connector::{
    CrmConnector, CrmError, Customer, CustomerUpsert, MatchOrCreate, RecordWrite,
};
use refsync_core::ids::{CrmRecordId, ReferralId};
use refsync_core::mapping::EntityMapping;
use refsync_outbound::call::Idempotency;
use serde_json::{Map, Value};

/// A related record to match, and the body that creates it.
struct Wanted<'a> {
    mapping: &'a EntityMapping,
    object: &'a str,
    /// `SELECT Id FROM … WHERE <match> … LIMIT 1`.
    soql: String,
    /// The create body (without the link to the account, added per call).
    create: Map<String, Value>,
}

impl<'a> Wanted<'a> {
    fn new(mapping: &'a EntityMapping, wanted: &MatchOrCreate) -> Result<Self, CrmError> {
        let object = records::object(mapping)?;
        if wanted.match_on.is_empty() {
            return Err(CrmError::Mapping(format!(
                "matching {object} records needs at least one column"
            )));
        }
        let criteria: Vec<(&str, &Value)> = wanted
            .match_on
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let soql = soql::select(
            &["Id".to_owned()],
            object,
            Some(&soql::all_equal(&criteria)?),
            Some("CreatedDate ASC, Id ASC"),
            Some(1),
        )?;
        let create =
            records::write_body(mapping, &RecordWrite::fields(wanted.create.clone()), None)?;
        Ok(Self {
            mapping,
            object,
            soql,
            create,
        })
    }
}

/// The id a match query found, if any.
fn found_id(
    reply: &CompositeReply,
    reference: &str,
    object: &str,
) -> Result<Option<CrmRecordId>, CrmError> {
    let r = reply.get(reference)?;
    if !r.ok() {
        return Err(read_failure(r, object));
    }
    r.body
        .get("records")
        .and_then(|records| records.get(0))
        .and_then(|first| first.get("Id"))
        .and_then(Value::as_str)
        .map(CrmRecordId::parse)
        .transpose()
        .map_err(|e| CrmError::Unavailable(format!("Salesforce returned a bad {object} id: {e}")))
}

/// The id a create subrequest returned.
fn created_id(reply: &CompositeReply, reference: &str) -> Result<CrmRecordId, CrmError> {
    let r = reply.get(reference)?;
    r.body
        .get("id")
        .and_then(Value::as_str)
        .map(CrmRecordId::parse)
        .transpose()
        .map_err(|e| CrmError::Unavailable(format!("Salesforce returned a bad id: {e}")))?
        .ok_or_else(|| {
            CrmError::Unavailable("Salesforce created a record without an id".to_owned())
        })
}

fn holds_marker(bodies: &[&Map<String, Value>]) -> bool {
    bodies.iter().any(|b| records::has_reference_marker(b))
}

impl SalesforceConnector {
    /// See the module documentation.
    pub(super) async fn upsert_with_customer_composite(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
        customer: Customer<'_>,
    ) -> Result<CustomerUpsert, CrmError> {
        let object = records::object(entity)?;
        let key = records::external_id_field(entity)?;
        let rel = records::relationships(&entity.entity);
        let account = customer
            .account
            .map(|(m, w)| Wanted::new(m, w))
            .transpose()?;
        let contact = customer
            .contact
            .map(|(m, w)| Wanted::new(m, w))
            .transpose()?;
        let base = records::write_body(entity, write, Some(key))?;
        let mut bodies = vec![&base];
        bodies.extend(account.iter().map(|a| &a.create));
        bodies.extend(contact.iter().map(|c| &c.create));
        if holds_marker(&bodies) {
            return self
                .upsert_with_customer_in_steps(entity, referral, write, customer)
                .await;
        }
        let upsert_path = self.rest.data_path(&format!(
            "sobjects/{object}/{key}/{}",
            segment(referral.as_str())
        ));
        let read_path = format!(
            "{upsert_path}?fields={}",
            query_value(&records::read_fields(entity)?.join(","))
        );
        let query_path =
            |soql: &str| format!("{}?q={}", self.rest.data_path("query"), query_value(soql));

        // Call 1: match, and upsert pointing at what matched.
        let mut first = CompositeRequest::new(false);
        let mut body = base.clone();
        if let Some(a) = &account {
            first.add("account", "GET", query_path(&a.soql), None);
            if let Some(field) = rel.account {
                body.insert(field.to_owned(), "@{account.records[0].Id}".into());
            }
        }
        if let Some(c) = &contact {
            first.add("contact", "GET", query_path(&c.soql), None);
            if let Some(field) = rel.contact {
                body.insert(field.to_owned(), "@{contact.records[0].Id}".into());
            }
        }
        first.add(
            "record",
            "PATCH",
            upsert_path.clone(),
            Some(Value::Object(body)),
        );
        first.add("read", "GET", read_path.clone(), None);
        let reply = self.rest.composite(&first, Idempotency::Idempotent).await?;
        let found_account = match &account {
            Some(a) => Some(found_id(&reply, "account", a.object)?),
            None => None,
        };
        let found_contact = match &contact {
            Some(c) => Some(found_id(&reply, "contact", c.object)?),
            None => None,
        };
        let account_missing = matches!(found_account, Some(None));
        let contact_missing = matches!(found_contact, Some(None));
        // The upsert only failed for want of a match if its body referred to the
        // missing record; a lead, say, links to no account and was upserted already.
        let waited_for_account = account_missing && account.is_some() && rel.account.is_some();
        let waited_for_contact = contact_missing && contact.is_some() && rel.contact.is_some();
        let upserted_first = !(waited_for_account || waited_for_contact);
        let first_upsert = if upserted_first {
            Some(upsert_result(
                entity,
                object,
                key,
                reply.get("record")?,
                Some(reply.get("read")?),
            )?)
        } else {
            None
        };
        if let (Some(upsert), false, false) = (&first_upsert, account_missing, contact_missing) {
            return Ok(CustomerUpsert {
                upsert: upsert.clone(),
                account: found_account.flatten().map(|id| (id, false)),
                contact: found_contact.flatten().map(|id| (id, false)),
            });
        }

        // Call 2: create what is missing, all or none, and (unless done) upsert
        // pointing at it.
        let mut second = CompositeRequest::new(true);
        let account_ref = match (&account, &found_account) {
            (Some(_), Some(Some(id))) => Some(id.to_string()),
            (Some(a), _) => {
                second.add(
                    "newAccount",
                    "POST",
                    self.rest.data_path(&format!("sobjects/{}", a.object)),
                    Some(Value::Object(a.create.clone())),
                );
                Some("@{newAccount.id}".to_owned())
            }
            (None, _) => write.account.as_ref().map(ToString::to_string),
        };
        let contact_ref = match (&contact, &found_contact) {
            (Some(_), Some(Some(id))) => Some(id.to_string()),
            (Some(c), _) => {
                let mut create = c.create.clone();
                if let (Some(field), Some(account)) = (
                    records::relationships(&c.mapping.entity).account,
                    &account_ref,
                ) {
                    create.insert(field.to_owned(), Value::String(account.clone()));
                }
                second.add(
                    "newContact",
                    "POST",
                    self.rest.data_path(&format!("sobjects/{}", c.object)),
                    Some(Value::Object(create)),
                );
                Some("@{newContact.id}".to_owned())
            }
            (None, _) => write.contact.as_ref().map(ToString::to_string),
        };
        let mut body = base;
        for (field, value) in [(rel.account, &account_ref), (rel.contact, &contact_ref)] {
            if let (Some(field), Some(value)) = (field, value) {
                body.insert(field.to_owned(), Value::String(value.clone()));
            }
        }
        if first_upsert.is_none() {
            second.add("record", "PATCH", upsert_path, Some(Value::Object(body)));
            second.add("read", "GET", read_path, None);
        }
        // It creates records: never repeated once it may have reached Salesforce.
        let reply = self
            .rest
            .composite(&second, Idempotency::NotIdempotent)
            .await?;
        if let Some((reference, failed)) = reply.first_failure() {
            return Err(match reference {
                "record" => upsert_result(entity, object, key, failed, None)
                    .err()
                    .unwrap_or_else(|| failure(failed)),
                _ => failure(failed),
            });
        }
        let account = match (&account, found_account) {
            (Some(_), Some(Some(id))) => Some((id, false)),
            (Some(_), _) => Some((created_id(&reply, "newAccount")?, true)),
            (None, _) => None,
        };
        let contact = match (&contact, found_contact) {
            (Some(_), Some(Some(id))) => Some((id, false)),
            (Some(_), _) => Some((created_id(&reply, "newContact")?, true)),
            (None, _) => None,
        };
        let upsert = match first_upsert {
            Some(upsert) => upsert,
            None => upsert_result(
                entity,
                object,
                key,
                reply.get("record")?,
                Some(reply.get("read")?),
            )?,
        };
        Ok(CustomerUpsert {
            upsert,
            account,
            contact,
        })
    }

    /// The portable sequence (match or create each, then upsert), for values that
    /// `/composite` would misread.
    async fn upsert_with_customer_in_steps(
        &self,
        entity: &EntityMapping,
        referral: &ReferralId,
        write: &RecordWrite,
        customer: Customer<'_>,
    ) -> Result<CustomerUpsert, CrmError> {
        let account = match customer.account {
            Some((mapping, wanted)) => Some(self.match_or_create(mapping, wanted, None).await?),
            None => None,
        };
        let account_id = account.as_ref().map(|(id, _)| id.clone());
        let contact = match customer.contact {
            Some((mapping, wanted)) => Some(
                self.match_or_create(mapping, wanted, account_id.clone())
                    .await?,
            ),
            None => None,
        };
        let mut write = write.clone();
        write.account = account_id.or(write.account);
        write.contact = contact.as_ref().map(|(id, _)| id.clone()).or(write.contact);
        let upsert = self.upsert_by_external_id(entity, referral, &write).await?;
        Ok(CustomerUpsert {
            upsert,
            account,
            contact,
        })
    }
}
