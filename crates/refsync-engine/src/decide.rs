//! The engine's decisions that need no I/O: which path a sync takes, what record
//! type a referral lives as, what a new CRM record contains, how a customer is
//! matched, and which refusals are news. Kept pure so each rule has a unit test.

use crate::audit::append_line;
use refsync_core::mapping::{EntityMapping, FieldValues};
use refsync_core::merge::Refusal;
use refsync_core::{
    CrmEntity, CrmRecord, CrmRecordRef, Mapping, MappingError, Referral, ReferralId,
};
use refsync_crm::MatchOrCreate;
use refsync_store::{SyncLink, Trigger};
use serde_json::{Map, Value};

/// Microsoft's organization id on its own referrals (partner-center.md §1.5).
pub const MICROSOFT_ORGANIZATION_ID: &str = "msft";

/// Where the refusals last reported for a link are remembered, inside its base
/// snapshot. Field names are identifiers, so this key can never collide with one.
pub const REFUSALS_KEY: &str = "$refusals";

/// The account fields whose values identify an existing customer (crm.md §3.4:
/// company name + postal code), by stable name in the mapping.
pub const ACCOUNT_MATCH_FIELDS: [&str; 2] = ["customer_name", "customer_postal_code"];
/// The contact field whose value identifies an existing contact, by stable name.
pub const CONTACT_MATCH_FIELDS: [&str; 1] = ["contact_email"];

/// True when the referral belongs to another organization: the other half of an
/// engagement, reached through a `related-referral-*` event.
pub fn is_foreign(referral: &Referral, own_organization_id: Option<&str>) -> bool {
    match referral.organization_id.as_deref() {
        None => false,
        Some(org) if org.eq_ignore_ascii_case(MICROSOFT_ORGANIZATION_ID) => true,
        Some(org) => own_organization_id.is_some_and(|own| !org.eq_ignore_ascii_case(own)),
    }
}

/// True when a trigger may carry news from the CRM side or from an operator, so
/// an unchanged referral is no reason to skip the CRM read.
pub fn wants_full_read(trigger: &Trigger) -> bool {
    !matches!(
        trigger,
        Trigger::Webhook | Trigger::Reconciler | Trigger::Follow
    )
}

/// The fast path: the referral is linked to a CRM record, its eTag is the one
/// stored at the last successful sync, and nothing in the claim points at the CRM:
/// nothing changed on Partner Center's side, so there is nothing to do.
pub fn is_unchanged(link: Option<&SyncLink>, referral: &Referral, triggers: &[Trigger]) -> bool {
    let Some(link) = link else {
        return false;
    };
    link.crm_record.is_some()
        && link.referral_etag.is_some()
        && link.referral_etag == referral.e_tag
        && !triggers.iter().any(wants_full_read)
}

/// The record type the referral should live as: an opportunity once accepted
/// (crm.md §3.4), a lead before. An opportunity never goes back to being a lead
/// (a referral declined after it was accepted stays an opportunity, closed).
pub fn target_entity(referral: &Referral, linked: Option<&CrmEntity>) -> CrmEntity {
    if referral.is_accepted() || linked == Some(&CrmEntity::Opportunity) {
        CrmEntity::Opportunity
    } else {
        CrmEntity::Lead
    }
}

/// What to do with a referral that is ours and changed (or must be looked at).
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// No CRM record yet: create one of this type.
    Create(CrmEntity),
    /// Linked to a lead, now accepted: qualify the lead into an opportunity.
    Qualify {
        /// The lead to retire.
        lead: CrmRecordRef,
    },
    /// Linked: merge with this record.
    Merge(CrmRecordRef),
}

/// Chooses the route for a referral given its link.
pub fn route(link: Option<&SyncLink>, referral: &Referral) -> Route {
    let linked = link.and_then(|l| l.crm_record.clone());
    let target = target_entity(referral, linked.as_ref().map(|r| &r.entity));
    match linked {
        None => Route::Create(target),
        Some(lead) if lead.entity == CrmEntity::Lead && target == CrmEntity::Opportunity => {
            Route::Qualify { lead }
        }
        Some(record) => Route::Merge(record),
    }
}

/// The body of a new record: every field the referral fills (the mapping's
/// render), the sync flag set (records created from Partner Center get Yes,
/// partner-center.md §4.2), without the referral-identifier column, which the
/// upsert's key carries (crm.md §1.6: "do not put the key columns in the body").
pub fn new_record_fields(
    em: &EntityMapping,
    referral: &Referral,
) -> Result<Map<String, Value>, MappingError> {
    let mut fields = em.render_crm_fields(referral)?;
    if let Some(column) = &em.referral_id_field {
        remove_column(&mut fields, column);
    }
    if let Some(flag) = &em.sync_flag_field
        && !has_column(&fields, flag)
    {
        fields.insert(flag.clone(), Value::Bool(true));
    }
    Ok(fields)
}

/// The record as it is after a create or update, for the merge that follows: what
/// the CRM returned, with the columns we wrote (and the referral identifier the
/// upsert key set) filled in where the CRM's answer left them out. A connector that
/// answers with only the id then still reads back exactly what was written, and the
/// merge sees no difference to write again.
pub fn as_written(
    mut returned: CrmRecord,
    written: &Map<String, Value>,
    referral_id: Option<(&str, &ReferralId)>,
) -> CrmRecord {
    for (column, value) in written {
        if !has_column(&returned.fields, column) {
            returned.fields.insert(column.clone(), value.clone());
        }
    }
    if let Some((column, id)) = referral_id
        && returned.field(column).is_null()
    {
        returned
            .fields
            .insert(column.to_owned(), Value::String(id.to_string()));
    }
    returned
}

/// The account and contact to match or create for a referral's opportunity:
/// the account by company name + postal code (crm.md §3.4), the contact by e-mail,
/// each created from every field the referral fills. `None` for a side whose
/// mapping is missing or whose identifying values the referral lacks.
pub fn customer_wanted(
    mapping: &Mapping,
    referral: &Referral,
) -> Result<(Option<MatchOrCreate>, Option<MatchOrCreate>), MappingError> {
    let wanted =
        |entity: CrmEntity, match_fields: &[&str]| -> Result<Option<MatchOrCreate>, MappingError> {
            let Ok(em) = mapping.entity(&entity) else {
                return Ok(None);
            };
            let create = em.render_crm_fields(referral)?;
            let mut match_on = Vec::new();
            for (i, name) in match_fields.iter().enumerate() {
                let Some(field) = em.field(name) else {
                    if i == 0 {
                        return Ok(None);
                    }
                    continue;
                };
                for column in &field.crm {
                    match create.get(column) {
                        Some(value) => match_on.push((column.clone(), value.clone())),
                        // The first identifying value (the name, the e-mail) is required;
                        // without a postal code the account is matched on its name alone.
                        None if match_on.is_empty() => return Ok(None),
                        None => {}
                    }
                }
            }
            if match_on.is_empty() {
                return Ok(None);
            }
            Ok(Some(MatchOrCreate { match_on, create }))
        };
    Ok((
        wanted(CrmEntity::Account, &ACCOUNT_MATCH_FIELDS)?,
        wanted(CrmEntity::Contact, &CONTACT_MATCH_FIELDS)?,
    ))
}

/// The refusal fingerprints stored in a base, and the refusals of this pass that
/// are not among them (only those are audited: an unchanged refusal is reported once).
pub fn new_refusals(base: &FieldValues, refusals: &[Refusal]) -> (Vec<Refusal>, Value) {
    let seen: Vec<String> = base
        .get(REFUSALS_KEY)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let fingerprint = |r: &Refusal| format!("{}: {}", r.field, r.reason);
    let fresh = refusals
        .iter()
        .filter(|r| !seen.contains(&fingerprint(r)))
        .cloned()
        .collect();
    let now: Vec<Value> = refusals
        .iter()
        .map(|r| Value::String(fingerprint(r)))
        .collect();
    (fresh, Value::Array(now))
}

/// Records the refusals of this pass in the base (removing the key when none).
pub fn remember_refusals(base: &mut FieldValues, fingerprints: Value) {
    if fingerprints.as_array().is_some_and(Vec::is_empty) {
        base.remove(REFUSALS_KEY);
    } else {
        base.insert(REFUSALS_KEY.to_owned(), fingerprints);
    }
}

/// Decorations a CRM write carries besides the mapped columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decorations<'a> {
    /// A line for the Audit column, when the sync changed something.
    pub audit_line: Option<&'a str>,
    /// Characters the Audit column holds.
    pub audit_max_chars: usize,
    /// Whether to mark the name: `Some(true)` ✔, `Some(false)` ✖, `None` leave it.
    pub mark: Option<bool>,
}

/// Adds the Audit line and the name mark to a CRM write body. The current values
/// come from `record` (or from the body, when the body already sets the column).
/// The mark is added only where it changes the name, so a record already marked
/// costs no write of its own.
pub fn decorate(
    body: &mut Map<String, Value>,
    em: &EntityMapping,
    record: &CrmRecord,
    d: Decorations<'_>,
) {
    if let (Some(column), Some(line)) = (&em.audit_field, d.audit_line) {
        let existing = record.field(column).as_str().unwrap_or_default().to_owned();
        body.insert(
            column.clone(),
            Value::String(append_line(&existing, line, d.audit_max_chars)),
        );
    }
    if let (Some(column), Some(ok)) = (&em.marked_name_field, d.mark) {
        let current = body
            .get(column)
            .or_else(|| Some(record.field(column)))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(name) = current.filter(|n| !n.trim().is_empty()) {
            let marked = EntityMapping::marked_name(&name, ok);
            if marked != name {
                body.insert(column.clone(), Value::String(marked));
            }
        }
    }
}

/// True when the name currently carries the failure mark, which a successful sync
/// should replace even when it has nothing else to write.
pub fn has_failure_mark(em: &EntityMapping, record: &CrmRecord) -> bool {
    em.marked_name_field
        .as_deref()
        .and_then(|c| record.field(c).as_str())
        .is_some_and(|n| n.trim_end().ends_with('✖'))
}

fn has_column(fields: &Map<String, Value>, column: &str) -> bool {
    fields.keys().any(|k| k.eq_ignore_ascii_case(column))
}

fn remove_column(fields: &mut Map<String, Value>, column: &str) {
    fields.retain(|k, _| !k.eq_ignore_ascii_case(column));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use refsync_core::merge::RefusalReason;
    use refsync_core::{CrmRecordId, Etag};
    use serde_json::json;

    fn referral(v: Value) -> Referral {
        serde_json::from_value(v).unwrap()
    }

    fn sample() -> Referral {
        referral(json!({
            "id": "r-1",
            "name": "Fabrikam co-sell",
            "organizationId": "11111111-2222",
            "status": "New", "substatus": "Pending",
            "eTag": "\"7\"",
            "customerProfile": {
                "name": "Fabrikam", "address": {"postalCode": "98052", "country": "us"},
                "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue@fabrikam.example"}]
            },
            "details": {"dealValue": 50000, "currency": "USD", "notes": "n"}
        }))
    }

    fn linked(entity: CrmEntity, etag: &str) -> SyncLink {
        let mut link = SyncLink::for_referral(ReferralId::parse("r-1").unwrap(), Utc::now());
        link.crm_record = Some(CrmRecordRef::new(
            entity,
            CrmRecordId::parse("rec-1").unwrap(),
        ));
        link.referral_etag = Some(Etag::new(etag));
        link
    }

    #[test]
    fn the_fast_path_needs_a_link_the_same_etag_and_partner_center_triggers() {
        let r = sample();
        let link = linked(CrmEntity::Lead, "\"7\"");
        assert!(is_unchanged(Some(&link), &r, &[Trigger::Webhook]));
        assert!(is_unchanged(
            Some(&link),
            &r,
            &[Trigger::Webhook, Trigger::Reconciler, Trigger::Follow]
        ));
        assert!(!is_unchanged(None, &r, &[Trigger::Webhook]));
        assert!(!is_unchanged(
            Some(&linked(CrmEntity::Lead, "\"6\"")),
            &r,
            &[Trigger::Webhook]
        ));
        assert!(!is_unchanged(
            Some(&link),
            &r,
            &[Trigger::Webhook, Trigger::CrmPoller]
        ));
        assert!(!is_unchanged(Some(&link), &r, &[Trigger::Operator]));
        // A trigger written by a newer instance might mean anything: look.
        assert!(!is_unchanged(
            Some(&link),
            &r,
            &[Trigger::Other("future".into())]
        ));
        let mut unlinked = link.clone();
        unlinked.crm_record = None;
        assert!(!is_unchanged(Some(&unlinked), &r, &[Trigger::Webhook]));
    }

    #[test]
    fn accepted_referrals_are_opportunities_and_stay_so() {
        let mut r = sample();
        assert_eq!(target_entity(&r, None), CrmEntity::Lead);
        assert_eq!(route(None, &r), Route::Create(CrmEntity::Lead));
        let lead = linked(CrmEntity::Lead, "x");
        assert!(
            matches!(route(Some(&lead), &r), Route::Merge(rec) if rec.entity == CrmEntity::Lead)
        );
        r.status = Some(refsync_core::ReferralStatus::Active);
        r.substatus = Some(refsync_core::ReferralSubstatus::Accepted);
        assert_eq!(route(None, &r), Route::Create(CrmEntity::Opportunity));
        assert!(
            matches!(route(Some(&lead), &r), Route::Qualify { lead } if lead.entity == CrmEntity::Lead)
        );
        // Declined after acceptance: closed, but still the opportunity.
        r.status = Some(refsync_core::ReferralStatus::Closed);
        r.substatus = Some(refsync_core::ReferralSubstatus::Declined);
        let opp = linked(CrmEntity::Opportunity, "x");
        assert!(
            matches!(route(Some(&opp), &r), Route::Merge(rec) if rec.entity == CrmEntity::Opportunity)
        );
        assert_eq!(
            route(Some(&lead), &r),
            Route::Merge(lead.crm_record.clone().unwrap())
        );
    }

    #[test]
    fn microsofts_half_is_foreign() {
        let mut r = sample();
        assert!(!is_foreign(&r, None));
        r.organization_id = Some("MSFT".into());
        assert!(is_foreign(&r, None));
        r.organization_id = Some("another-partner".into());
        assert!(!is_foreign(&r, None));
        assert!(is_foreign(&r, Some("11111111-2222")));
        r.organization_id = Some("11111111-2222".into());
        assert!(!is_foreign(&r, Some("11111111-2222")));
    }

    #[test]
    fn a_new_record_carries_the_flag_but_not_its_upsert_key() {
        let mapping = Mapping::salesforce().unwrap();
        let em = mapping.entity(&CrmEntity::Lead).unwrap();
        let fields = new_record_fields(em, &sample()).unwrap();
        assert!(!fields.contains_key("Referral_Identifier__c"));
        assert_eq!(fields["Sync_with_Partner_Center__c"], json!(true));
        assert_eq!(fields["Company"], json!("Fabrikam"));
        assert_eq!(fields["LastName"], json!("Smith"));
    }

    #[test]
    fn what_was_written_fills_the_gaps_in_the_answer() {
        let mut returned = CrmRecord::new(CrmEntity::Lead);
        returned.id = Some(CrmRecordId::parse("00Q1").unwrap());
        returned
            .fields
            .insert("company".into(), json!("Fabrikam Inc"));
        let mut written = Map::new();
        written.insert("Company".into(), json!("Fabrikam"));
        written.insert("LastName".into(), json!("Smith"));
        let id = ReferralId::parse("r-1").unwrap();
        let record = as_written(returned, &written, Some(("Referral_Identifier__c", &id)));
        // The CRM's own answer wins where it gave one.
        assert_eq!(record.field("Company"), &json!("Fabrikam Inc"));
        assert_eq!(record.field("LastName"), &json!("Smith"));
        assert_eq!(record.field("Referral_Identifier__c"), &json!("r-1"));
    }

    #[test]
    fn customers_are_matched_by_name_and_postal_code_and_contacts_by_email() {
        let mapping = Mapping::salesforce().unwrap();
        let (account, contact) = customer_wanted(&mapping, &sample()).unwrap();
        let account = account.unwrap();
        assert_eq!(
            account.match_on,
            vec![
                ("Name".to_owned(), json!("Fabrikam")),
                ("BillingPostalCode".to_owned(), json!("98052"))
            ]
        );
        assert_eq!(account.create["BillingCountry"], json!("US"));
        let contact = contact.unwrap();
        assert_eq!(
            contact.match_on,
            vec![("Email".to_owned(), json!("sue@fabrikam.example"))]
        );
        // No customer name: nothing to match an account on.
        let nameless =
            referral(json!({"id": "r-2", "customerProfile": {"address": {"postalCode": "1"}}}));
        let (account, contact) = customer_wanted(&mapping, &nameless).unwrap();
        assert!(account.is_none() && contact.is_none());
    }

    #[test]
    fn a_refusal_is_news_once() {
        let refusal = Refusal {
            field: "status".into(),
            reason: RefusalReason::StatusCleared,
        };
        let mut base = FieldValues::new();
        let (fresh, prints) = new_refusals(&base, std::slice::from_ref(&refusal));
        assert_eq!(fresh, vec![refusal.clone()]);
        remember_refusals(&mut base, prints);
        let (fresh, prints) = new_refusals(&base, std::slice::from_ref(&refusal));
        assert!(fresh.is_empty());
        remember_refusals(&mut base, prints);
        assert!(base.contains_key(REFUSALS_KEY));
        // Gone, then back: news again.
        let (_, prints) = new_refusals(&base, &[]);
        remember_refusals(&mut base, prints);
        assert!(!base.contains_key(REFUSALS_KEY));
        assert_eq!(
            new_refusals(&base, std::slice::from_ref(&refusal)).0.len(),
            1
        );
    }

    #[test]
    fn decorations_append_the_audit_line_and_mark_the_name_once() {
        let mapping = Mapping::salesforce().unwrap();
        let em = mapping.entity(&CrmEntity::Opportunity).unwrap();
        let mut record = CrmRecord::new(CrmEntity::Opportunity);
        record
            .fields
            .insert("Name".into(), json!("Fabrikam co-sell"));
        record.fields.insert("Audit__c".into(), json!("old line"));
        let mut body = Map::new();
        let d = Decorations {
            audit_line: Some("new line"),
            audit_max_chars: 100,
            mark: Some(true),
        };
        decorate(&mut body, em, &record, d);
        assert_eq!(body["Audit__c"], json!("old line\nnew line"));
        assert_eq!(body["Name"], json!("Fabrikam co-sell ✔"));
        // Already marked: the name is not written again.
        record
            .fields
            .insert("Name".into(), json!("Fabrikam co-sell ✔"));
        let mut body = Map::new();
        decorate(
            &mut body,
            em,
            &record,
            Decorations {
                audit_line: None,
                ..d
            },
        );
        assert!(body.is_empty());
        assert!(!has_failure_mark(em, &record));
        record
            .fields
            .insert("Name".into(), json!("Fabrikam co-sell ✖"));
        assert!(has_failure_mark(em, &record));
    }
}
