//! Sharing a CRM record with Partner Center: creating the referral a seller asked
//! for by flagging the record "Sync with Partner Center" (crm.md §3.4).
//!
//! The referral body is every mapped field of the record written at its referral
//! path (whatever the field's direction: directions govern updates, and a new
//! referral has nothing of its own yet), plus the customer from the record's account
//! and contact, plus the required properties the mapping cannot give (`type`,
//! `consent`; partner-center.md §1.5 "Required fields on create"). It is POSTed with
//! an `MS-RequestId` derived from the record, so a retry after a crash gets the
//! referral the first attempt made instead of a second one (§1.3). Then the referral
//! id is written into the record's referral-identifier column, and the pair is
//! merged and linked like any other: from then on the referral's key does the work.
//!
//! Not done: a *co-sell* with Microsoft (type `Shared` plus a second referral for
//! Microsoft with a solution id, §1.5 "Creating a shared (co-sell) referral"). The
//! referral is created `Independent` (see [`SHARED_REFERRAL_TYPE`]).

use crate::audit::{self, Creation, Origin};
use crate::converge::Pair;
use crate::decide::{self, Decorations};
use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use crate::outcome::SyncOutcome;
use refsync_core::mapping::{Direction, EntityMapping, FieldValues};
use refsync_core::merge::{CrmSide, PcSide, merge};
use refsync_core::{CrmEntity, CrmRecord, CrmRecordId, CrmRecordRef, Referral, SyncKey};
use refsync_store::SyncLink;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The `type` of a referral created from a CRM record. `Independent` is visible to
/// our organization only; sharing with Microsoft needs a solution id the mapping
/// does not carry (partner-center.md §4.1).
pub const SHARED_REFERRAL_TYPE: &str = "Independent";

/// Columns that hold a record's account, per CRM: Salesforce `AccountId`, Dataverse
/// lookups as the Web API returns them (crm.md §1, §2.8).
const ACCOUNT_COLUMNS: [&str; 3] = ["AccountId", "_parentaccountid_value", "_customerid_value"];
/// Columns that hold a record's contact.
const CONTACT_COLUMNS: [&str; 2] = ["ContactId", "_parentcontactid_value"];

/// Properties Partner Center sets itself; a create body never carries them.
const SERVER_PROPERTIES: [&str; 6] = [
    "id",
    "engagementId",
    "eTag",
    "createdDateTime",
    "updatedDateTime",
    "organizationId",
];

impl SyncEngine {
    /// Creates the referral for a flagged record and links the two.
    pub(crate) async fn share_record(
        &self,
        em: &EntityMapping,
        record_ref: &CrmRecordRef,
        record: CrmRecord,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(id_column) = em.referral_id_field.clone() else {
            return Err(SyncError::Unsyncable(format!(
                "the {} mapping has no referral-identifier column to write the new referral's id to",
                em.entity
            )));
        };
        let mut body = referral_fields(em, &record);
        for (entity, columns) in [
            (CrmEntity::Account, &ACCOUNT_COLUMNS[..]),
            (CrmEntity::Contact, &CONTACT_COLUMNS[..]),
        ] {
            let Ok(related_em) = self.mapping.entity(&entity) else {
                continue;
            };
            let Some(related_id) = related_id(&record, columns) else {
                continue;
            };
            if let Some(related) = self.read_record(related_em, &related_id).await? {
                merge_into(&mut body, referral_fields(related_em, &related));
            }
        }
        let referral = create_body(body)?;
        let created = self
            .referrals
            .create_with_request_id(&referral, request_id_for(record_ref))
            .await?;
        m::pc_write("create");
        let referral_id = created.id.clone().ok_or_else(|| {
            SyncError::Unsyncable("Partner Center created a referral without an id".to_owned())
        })?;

        // The record learns its referral (and says so in its Audit column).
        let mut fields = Map::new();
        fields.insert(id_column, json!(referral_id.as_str()));
        let line = audit::created_line(self.now(), Creation::Shared(&referral_id));
        decide::decorate(
            &mut fields,
            em,
            &record,
            Decorations {
                audit_line: Some(line.as_str()).filter(|_| self.settings.audit_column),
                audit_max_chars: self.settings.audit_column_max_chars,
                mark: self.settings.checkmark_suffix.then_some(true),
            },
        );
        let record = self.update_record(em, &record, fields).await?;

        let origin = Origin::SharedToPartnerCenter {
            referral: referral_id.clone(),
        };
        let pair = Pair {
            referral: created,
            record,
        };
        let converged = self
            .converge(em, &referral_id, pair, FieldValues::new(), Some(origin))
            .await?;
        let link = SyncLink::for_referral(referral_id.clone(), self.now());
        self.finish(&SyncKey::Crm(record_ref.clone()), link, converged)
            .await?;
        Ok(SyncOutcome::Shared {
            referral: referral_id,
            record: record_ref.clone(),
        })
    }
}

/// The referral properties a record's mapped columns give, as a JSON object:
/// every field with both a column and a referral path, whatever its direction.
pub(crate) fn referral_fields(em: &EntityMapping, record: &CrmRecord) -> Map<String, Value> {
    // The merge already knows how to turn CRM values into Partner Center's wire
    // form at the field's paths: ask it, with every field writable to Partner Center,
    // against an empty referral and an empty base (the CRM side is the only news).
    let mut all_ways = em.clone();
    for field in &mut all_ways.fields {
        field.direction = Direction::Both;
    }
    let plan = merge(
        &all_ways,
        &PcSide::read(&all_ways, &Referral::default()),
        &CrmSide::read(&all_ways, record),
        &FieldValues::new(),
    );
    let mut doc = Value::Object(Map::new());
    for op in plan.pc_patch() {
        set_pointer(&mut doc, &op.path, op.value);
    }
    match doc {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The create body: the record's fields plus the required properties.
fn create_body(mut body: Map<String, Value>) -> Result<Referral, SyncError> {
    for p in SERVER_PROPERTIES {
        body.remove(p);
    }
    let has_customer = body
        .get("customerProfile")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.trim().is_empty());
    if !has_customer {
        return Err(SyncError::Unsyncable(
            "the record has no customer name (an account, or a company on the lead) to create the referral with"
                .to_owned(),
        ));
    }
    body.insert("type".into(), json!(SHARED_REFERRAL_TYPE));
    // Not shared with Microsoft sellers: see SHARED_REFERRAL_TYPE.
    body.entry("consent").or_insert_with(|| {
        json!({
            "consentToShareReferralWithMicrosoftSellers": false,
            "consentToContact": true,
        })
    });
    body.entry("details").or_insert_with(|| json!({}));
    serde_json::from_value(Value::Object(body)).map_err(|e| {
        SyncError::Unsyncable(format!("the record's values do not make a referral: {e}"))
    })
}

/// The id in the first of `columns` the record has.
fn related_id(record: &CrmRecord, columns: &[&str]) -> Option<CrmRecordId> {
    columns
        .iter()
        .filter_map(|c| record.field(c).as_str())
        .find_map(|s| CrmRecordId::parse(s.trim()).ok())
}

/// Adds `extra`'s properties to `body`, objects merged, `body`'s values kept.
fn merge_into(body: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (k, v) in extra {
        match (body.get_mut(&k), v) {
            (Some(Value::Object(mine)), Value::Object(theirs)) => merge_into(mine, theirs),
            (Some(Value::Array(mine)), Value::Array(theirs)) => {
                for (i, item) in theirs.into_iter().enumerate() {
                    match (mine.get_mut(i), item) {
                        (Some(Value::Object(m)), Value::Object(t)) => merge_into(m, t),
                        (Some(_), _) => {}
                        (None, item) => mine.push(item),
                    }
                }
            }
            (Some(_), _) => {}
            (None, v) => {
                body.insert(k, v);
            }
        }
    }
}

/// Sets the value at a JSON Pointer, creating objects (and arrays, for numeric
/// steps) on the way.
fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let steps: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut at = doc;
    for (i, step) in parents.iter().enumerate() {
        let next_is_index = parents.get(i + 1).unwrap_or(last).parse::<usize>().is_ok();
        let fresh = || {
            if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        at = match at {
            Value::Object(map) => map.entry(step.clone()).or_insert_with(fresh),
            Value::Array(items) => {
                let Ok(index) = step.parse::<usize>() else {
                    return;
                };
                while items.len() <= index {
                    items.push(fresh());
                }
                match items.get_mut(index) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
        if at.is_null() {
            *at = fresh();
        }
    }
    match at {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Ok(index) = last.parse::<usize>() {
                while items.len() <= index {
                    items.push(Value::Null);
                }
                if let Some(slot) = items.get_mut(index) {
                    *slot = value;
                }
            }
        }
        _ => {}
    }
}

/// The `MS-RequestId` of the create for one record: the same on every attempt, so
/// the service answers a retry with the referral the first attempt made.
fn request_id_for(record: &CrmRecordRef) -> Uuid {
    let text = format!("refsync-share:{record}");
    // FNV-1a, twice with different offsets: stable across builds and processes,
    // unlike the standard library's hasher.
    let fnv = |offset: u64| {
        text.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let high = fnv(0xcbf2_9ce4_8422_2325);
    let low = fnv(0x6c62_272e_07bb_0142);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use refsync_core::Mapping;

    fn opportunity() -> CrmRecord {
        let mut r = CrmRecord::new(CrmEntity::Opportunity);
        r.id = Some(CrmRecordId::parse("006A").unwrap());
        r.fields = json!({
            "Id": "006A",
            "Name": "Contoso - Data platform",
            "Amount": 50000,
            "CurrencyIsoCode": "EUR",
            "Description": "From the seller",
            "StageName": "Qualification",
            "CloseDate": "2027-01-31",
            "Sync_with_Partner_Center__c": true,
        })
        .as_object()
        .unwrap()
        .clone();
        r
    }

    #[test]
    fn a_record_gives_its_mapped_fields_at_their_referral_paths() {
        let mapping = Mapping::salesforce().unwrap();
        let em = mapping.entity(&CrmEntity::Opportunity).unwrap();
        let fields = referral_fields(em, &opportunity());
        assert_eq!(fields["name"], json!("Contoso - Data platform"));
        assert_eq!(fields["details"]["currency"], json!("EUR"));
        assert_eq!(fields["details"]["notes"], json!("From the seller"));
        assert_eq!(fields["externalReferenceId"], json!("006A"));
        assert!(
            fields["details"]["dealValue"].is_number()
                || fields["details"]["dealValue"].is_string()
        );

        let mut account = CrmRecord::new(CrmEntity::Account);
        account.fields =
            json!({"Name": "Contoso", "BillingPostalCode": "98052", "BillingCountry": "US"})
                .as_object()
                .unwrap()
                .clone();
        let mut body = fields;
        merge_into(
            &mut body,
            referral_fields(mapping.entity(&CrmEntity::Account).unwrap(), &account),
        );
        assert_eq!(body["customerProfile"]["name"], json!("Contoso"));
        assert_eq!(
            body["customerProfile"]["address"]["postalCode"],
            json!("98052")
        );
        let referral = create_body(body).unwrap();
        assert_eq!(
            referral.details.unwrap().notes.as_deref(),
            Some("From the seller")
        );
    }

    #[test]
    fn no_customer_no_referral() {
        let mapping = Mapping::salesforce().unwrap();
        let em = mapping.entity(&CrmEntity::Opportunity).unwrap();
        let err = create_body(referral_fields(em, &opportunity())).unwrap_err();
        assert!(!err.is_transient(), "{err}");
    }

    #[test]
    fn pointers_build_objects_and_arrays() {
        let mut doc = json!({});
        set_pointer(&mut doc, "/customerProfile/team/0/email", json!("a@b"));
        set_pointer(&mut doc, "/customerProfile/name", json!("C"));
        assert_eq!(
            doc,
            json!({"customerProfile": {"team": [{"email": "a@b"}], "name": "C"}})
        );
    }

    #[test]
    fn a_record_always_gets_the_same_request_id() {
        let a = CrmRecordRef::new(CrmEntity::Opportunity, CrmRecordId::parse("006A").unwrap());
        let b = CrmRecordRef::new(CrmEntity::Opportunity, CrmRecordId::parse("006B").unwrap());
        assert_eq!(request_id_for(&a), request_id_for(&a));
        assert_ne!(request_id_for(&a), request_id_for(&b));
    }
}
