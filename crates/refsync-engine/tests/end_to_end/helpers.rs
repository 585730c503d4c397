//! What every scenario reads through: the mapping's view of both sides (so no
//! scenario depends on one CRM's column names), and bed options.

use refsync_core::{CrmEntity, CrmRecord, CrmRecordRef, ReferralId};
use refsync_emulators::partner_center::{MicrosoftChange, MicrosoftUpdate};
use refsync_engine::testbed::{CrmUnderTest, StoreKind, TestBed, TestBedOptions};
use serde_json::{Value, json};

/// A field of a record as the mapping reads it (canonical value), so scenarios do
/// not depend on one CRM's column names.
pub fn crm_value<C: CrmUnderTest>(bed: &TestBed<C>, record: &CrmRecord, field: &str) -> Value {
    let em = bed.engine.mapping().entity(&record.entity).unwrap();
    em.read_crm(record)
        .values
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A field of the referral as the mapping reads it for `entity`.
pub fn pc_value<C: CrmUnderTest>(
    bed: &TestBed<C>,
    entity: &CrmEntity,
    id: &ReferralId,
    field: &str,
) -> Value {
    let em = bed.engine.mapping().entity(entity).unwrap();
    em.read_referral(&bed.referral(id))
        .values
        .get(field)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The CRM column a mapped field lives in.
pub fn column<C: CrmUnderTest>(bed: &TestBed<C>, entity: &CrmEntity, field: &str) -> String {
    let em = bed.engine.mapping().entity(entity).unwrap();
    em.field(field).unwrap().crm[0].clone()
}

/// The live records of a type whose referral id is `id`.
pub fn records_of<C: CrmUnderTest>(
    bed: &TestBed<C>,
    entity: &CrmEntity,
    id: &ReferralId,
) -> Vec<CrmRecord> {
    bed.records(entity)
        .into_iter()
        .filter(|r| crm_value(bed, r, "referral_id") == json!(id.as_str()))
        .collect()
}

/// The one live record of a type for a referral.
pub fn the_record<C: CrmUnderTest>(
    bed: &TestBed<C>,
    entity: &CrmEntity,
    id: &ReferralId,
) -> CrmRecord {
    let mut found = records_of(bed, entity, id);
    assert_eq!(
        found.len(),
        1,
        "{}: one {entity} for {id}: {found:?}",
        bed.crm.name()
    );
    found.remove(0)
}

/// The record a referral is linked to.
pub async fn linked<C: CrmUnderTest>(bed: &TestBed<C>, id: &ReferralId) -> CrmRecordRef {
    bed.link(id)
        .await
        .expect("linked")
        .crm_record
        .expect("linked to a record")
}

pub fn update(notes: Option<&str>, deal_value: Option<i64>) -> MicrosoftChange {
    MicrosoftChange::Update(MicrosoftUpdate {
        notes: notes.map(str::to_owned),
        deal_value: deal_value.map(Into::into),
        ..MicrosoftUpdate::default()
    })
}

/// A bed with no workers and no webhooks: the test runs keys itself.
pub fn inline(store: StoreKind) -> TestBedOptions {
    TestBedOptions {
        workers: None,
        webhooks: false,
        ..TestBedOptions::new(store)
    }
}
