//! Bringing one linked pair to agreement: merge against the base, write the CRM
//! (mapped columns plus an Audit line), then write Partner Center with `If-Match`;
//! a 412 means the referral changed since it was read, so both sides are read
//! again and merged again, a bounded number of times (DESIGN.md "Three-way merge").
//!
//! Between the two writes the base moves by what the CRM now holds: a pass that
//! wrote the CRM and then lost the race for Partner Center starts the next pass
//! from a base that already has those values, so they do not read as conflicts.

use crate::audit::{Origin, SyncReport};
use crate::decide::{self, Decorations};
use crate::engine::SyncEngine;
use crate::error::SyncError;
use crate::metrics as m;
use refsync_core::mapping::{EntityMapping, FieldValues};
use refsync_core::merge::{CrmSide, PcSide, merge};
use refsync_core::{CrmRecord, Referral, ReferralId};
use refsync_partner_center::ReferralsError;

/// Both sides of a linked pair as last read (or written).
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    /// The referral.
    pub referral: Referral,
    /// The CRM record.
    pub record: CrmRecord,
}

/// A pair brought to agreement.
#[derive(Debug, Clone)]
pub(crate) struct Converged {
    /// Both sides as they are now.
    pub pair: Pair,
    /// The base to save.
    pub base: FieldValues,
    /// What was done, for the audit trail.
    pub report: SyncReport,
}

impl SyncEngine {
    /// Merges and writes until both sides agree. `origin` says how the record came
    /// to be linked in this sync; when set, its Audit line was already written with
    /// the record, so a pass that writes only Partner Center adds no CRM call.
    pub(crate) async fn converge(
        &self,
        em: &EntityMapping,
        referral_id: &ReferralId,
        pair: Pair,
        base: FieldValues,
        origin: Option<Origin>,
    ) -> Result<Converged, SyncError> {
        let Pair {
            mut referral,
            mut record,
        } = pair;
        let mut base = base;
        let line_written = origin.is_some();
        let mut report = SyncReport {
            origin,
            ..SyncReport::default()
        };
        let max = self.settings.max_precondition_retries;
        for attempt in 0..=max {
            let plan = merge(
                em,
                &PcSide::read(em, &referral),
                &CrmSide::read(em, &record),
                &base,
            );
            let (fresh_refusals, fingerprints) = decide::new_refusals(&base, &plan.refusals);
            let pass = SyncReport {
                origin: None,
                crm_writes: plan.crm_writes.clone(),
                pc_writes: plan.pc_writes.clone(),
                conflicts: plan.conflicts.clone(),
                new_refusals: fresh_refusals,
            };
            let mut body = plan.crm_update();
            let only_pc_news = pass.crm_writes.is_empty()
                && pass.conflicts.is_empty()
                && pass.new_refusals.is_empty();
            let line = if self.settings.audit_column && !(line_written && only_pc_news) {
                pass.column_line(self.now())
            } else {
                None
            };
            let mark = (self.settings.checkmark_suffix
                && (!body.is_empty() || line.is_some() || decide::has_failure_mark(em, &record)))
            .then_some(true);
            decide::decorate(
                &mut body,
                em,
                &record,
                Decorations {
                    audit_line: line.as_deref(),
                    audit_max_chars: self.settings.audit_column_max_chars,
                    mark,
                },
            );
            if !body.is_empty() {
                record = self.update_record(em, &record, body).await?;
            }
            m::merge_observed(&plan);
            // The CRM holds its side of the plan now, whatever happens to Partner Center's.
            let mut held = base.clone();
            for w in &plan.crm_writes {
                held.insert(w.field.clone(), w.to.clone());
            }
            for a in &plan.agreed {
                held.insert(a.field.clone(), a.value.clone());
            }
            decide::remember_refusals(&mut held, fingerprints.clone());
            report.crm_writes.extend(pass.crm_writes);
            report.conflicts.extend(pass.conflicts);
            report.new_refusals.extend(pass.new_refusals);
            if plan.pc_writes.is_empty() {
                return Ok(self.converged(referral, record, held, report));
            }
            match self
                .patch_referral(referral_id, &referral, &plan.pc_patch())
                .await
            {
                Ok(updated) => {
                    let mut new_base = plan.new_base.clone();
                    decide::remember_refusals(&mut new_base, fingerprints);
                    report.pc_writes.extend(pass.pc_writes);
                    return Ok(self.converged(updated, record, new_base, report));
                }
                Err(SyncError::PartnerCenter(ReferralsError::PreconditionFailed { .. }))
                    if attempt < max =>
                {
                    m::precondition_failed();
                    tracing::info!(
                        attempt = attempt + 1,
                        "referral changed since it was read (412); reading both sides again"
                    );
                    referral = self.read_referral(referral_id).await?.ok_or_else(|| {
                        ReferralsError::NotFound {
                            id: referral_id.clone(),
                        }
                    })?;
                    if let Some(id) = record.id.clone()
                        && let Some(now) = self.read_record(em, &id).await?
                    {
                        record = now;
                    }
                    base = held;
                }
                Err(e) => return Err(e),
            }
        }
        Err(SyncError::Contention { attempts: max + 1 })
    }

    fn converged(
        &self,
        referral: Referral,
        record: CrmRecord,
        base: FieldValues,
        mut report: SyncReport,
    ) -> Converged {
        // A field merged in several passes (after a 412) is reported once, as last decided.
        dedupe_by_field(&mut report.conflicts, |c| c.field.clone());
        dedupe_by_field(&mut report.new_refusals, |r| {
            format!("{}: {}", r.field, r.reason)
        });
        Converged {
            pair: Pair { referral, record },
            base,
            report,
        }
    }
}

/// Keeps the last item for each key, in the order the kept items came.
fn dedupe_by_field<T>(items: &mut Vec<T>, key: impl Fn(&T) -> String) {
    let keys: Vec<String> = items.iter().map(&key).collect();
    let mut index = 0;
    items.retain(|_| {
        let keep = !keys[index + 1..].contains(&keys[index]);
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::dedupe_by_field;

    #[test]
    fn the_last_decision_per_field_is_kept() {
        let mut v = vec![("a", 1), ("b", 1), ("a", 2)];
        dedupe_by_field(&mut v, |(k, _)| (*k).to_owned());
        assert_eq!(v, vec![("b", 1), ("a", 2)]);
    }
}
