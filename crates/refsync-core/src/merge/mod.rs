//! The three-way merge (DESIGN.md "Three-way merge"): per mapped field, Partner
//! Center's value and the CRM's value are compared with the base, the value both last
//! agreed on, and the plan says what to write where.
//!
//! | pc vs base | crm vs base | action |
//! |---|---|---|
//! | same | same | nothing |
//! | changed | same | write the CRM, if the field flows that way |
//! | same | changed | write Partner Center, if the field flows that way and CRM → PC is on |
//! | changed | changed, equal | update the base only |
//! | changed | changed, different | conflict: the owner wins (a one-way field: its source) |
//!
//! A field never agreed on has a null base, so an empty side takes the other's value
//! and two different values are a conflict. Status changes bound for Partner Center
//! must pass `status::check_transition`, or they are refused and reported. Because
//! every value is compared in canonical form (see [`crate::mapping`]), our own writes
//! read back equal to the new base and never cause another write.

mod plan;

pub use crate::mapping::{PatchOp, PatchOpKind};
pub use plan::{
    Agreement, Conflict, CrmWrite, MergePlan, PcWrite, Refusal, RefusalReason, Side, WinRule,
};

use crate::crm_record::CrmRecord;
use crate::mapping::{EntityMapping, FieldMapping, FieldValues, Owner, Readout};
use crate::referral::Referral;
use crate::status::{ReferralStatus, ReferralSubstatus, StatusPair, check_transition};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Partner Center's side of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct PcSide {
    /// The referral's values in comparable form.
    pub values: Readout,
    /// The referral's `updatedDateTime`.
    pub modified_at: Option<DateTime<Utc>>,
    /// The referral's current status and substatus.
    pub status: Option<StatusPair>,
    /// The referral as JSON: patch operations are computed against it (`add` where a
    /// member is missing, `replace` where it is there).
    pub document: Value,
}

impl PcSide {
    /// Reads a referral through a record type's mapping.
    pub fn read(mapping: &EntityMapping, referral: &Referral) -> Self {
        let document = referral.to_value();
        Self {
            values: mapping.read_referral_json(&document),
            modified_at: referral.updated_date_time,
            status: referral.status_pair(),
            document,
        }
    }
}

/// The CRM's side of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmSide {
    /// The record's values in comparable form.
    pub values: Readout,
    /// The record's modified time.
    pub modified_at: Option<DateTime<Utc>>,
    /// Whether CRM → Partner Center writes are allowed for this record: its "Sync with
    /// Partner Center" flag is set.
    pub sync_enabled: bool,
}

impl CrmSide {
    /// Reads a CRM record through its type's mapping.
    pub fn read(mapping: &EntityMapping, record: &CrmRecord) -> Self {
        Self {
            values: mapping.read_crm(record),
            modified_at: record.modified_at,
            sync_enabled: mapping.sync_enabled(record),
        }
    }
}

/// True when the CRM record holds, in a field that can flow to Partner Center, a
/// value other than the base's: it changed since the two sides last agreed. Lets
/// the CRM poller tell a seller's edit from our own write (or an edit of unmapped
/// columns) without reading the referral; a field missing on either side counts
/// as empty.
pub fn crm_changed_since_base(mapping: &EntityMapping, crm: &CrmSide, base: &FieldValues) -> bool {
    mapping
        .synced_fields()
        .filter(|f| f.direction.to_pc())
        .any(|f| {
            let canonical = |v: Option<&Value>| v.map_or(Value::Null, |v| f.canonicalize(v));
            canonical(crm.values.values.get(&f.name)) != canonical(base.get(&f.name))
        })
}

/// Merges one referral with one CRM record against the base. Pure and deterministic.
pub fn merge(mapping: &EntityMapping, pc: &PcSide, crm: &CrmSide, base: &FieldValues) -> MergePlan {
    let mut run = Run {
        pc,
        crm,
        base,
        document: pc.document.clone(),
        crm_after: crm.values.values.clone(),
        plan: MergePlan {
            entity: mapping.entity.clone(),
            crm_writes: Vec::new(),
            pc_writes: Vec::new(),
            agreed: Vec::new(),
            conflicts: Vec::new(),
            refusals: Vec::new(),
            new_base: base.clone(),
        },
    };
    // The field that can put the record on hold goes first (moving it out of the hold
    // is how a Salesforce seller accepts), and the hold that gates the other fields is
    // the one the record will be in once this plan is written: a second pass over the
    // written state then decides exactly as this one did.
    let (holders, others): (Vec<&FieldMapping>, Vec<&FieldMapping>) =
        mapping.synced_fields().partition(|f| f.can_hold());
    for f in holders {
        run.field(f, crm.sync_enabled);
    }
    let held = mapping.is_on_hold(&run.crm_after);
    for f in others {
        run.field(f, crm.sync_enabled && !held);
    }
    run.plan
}

/// One merge in progress.
struct Run<'a> {
    pc: &'a PcSide,
    crm: &'a CrmSide,
    base: &'a FieldValues,
    /// The referral as it will be after the patch operations planned so far.
    document: Value,
    /// The CRM's comparable values as they will be after the writes planned so far.
    crm_after: FieldValues,
    plan: MergePlan,
}

impl Run<'_> {
    fn field(&mut self, f: &FieldMapping, crm_to_pc_on: bool) {
        let to_crm = f.direction.to_crm();
        let to_pc = f.direction.to_pc() && crm_to_pc_on;
        if !to_crm && !to_pc {
            return;
        }
        let (Some(pc_v), Some(crm_v)) = (self.value(f, Side::Pc), self.value(f, Side::Crm)) else {
            return;
        };
        let stored = self.base.get(&f.name).map(|b| f.canonicalize(b));
        let base_v = stored.clone().unwrap_or(Value::Null);
        match (pc_v != base_v, crm_v != base_v) {
            (false, false) => {}
            (true, false) if to_crm => {
                self.write_crm(f, crm_v, pc_v);
            }
            (false, true) if to_pc => {
                self.write_pc(f, pc_v, crm_v);
            }
            (true, false) | (false, true) => {}
            (true, true) if pc_v == crm_v => {
                self.plan.new_base.insert(f.name.clone(), pc_v.clone());
                self.plan.agreed.push(Agreement {
                    field: f.name.clone(),
                    value: pc_v,
                });
            }
            (true, true) => {
                let (winner, rule) = self.winner(f, to_crm, to_pc);
                let (winner, rule) = if self.write_side(f, winner.other(), &pc_v, &crm_v) {
                    (winner, rule)
                } else if (winner == Side::Pc && to_pc) || (winner == Side::Crm && to_crm) {
                    // The winner's value cannot be sent (an illegal status change, say).
                    // Keeping the other side's on both makes the pair agree; leaving them
                    // apart would let the next pass pick a winner by new timestamps.
                    if self.write_side(f, winner, &pc_v, &crm_v) {
                        (winner.other(), WinRule::ValueRefused { refused: winner })
                    } else {
                        (winner, rule)
                    }
                } else {
                    (winner, rule)
                };
                self.plan.conflicts.push(Conflict {
                    field: f.name.clone(),
                    base: stored,
                    pc: pc_v,
                    crm: crm_v,
                    winner,
                    rule,
                });
            }
        }
    }

    /// Writes to `target` the value the other side holds; false when it was refused.
    fn write_side(&mut self, f: &FieldMapping, target: Side, pc_v: &Value, crm_v: &Value) -> bool {
        match target {
            Side::Crm => self.write_crm(f, crm_v.clone(), pc_v.clone()),
            Side::Pc => self.write_pc(f, pc_v.clone(), crm_v.clone()),
        }
    }

    /// A side's comparable value, or a refusal when it could not be read.
    fn value(&mut self, f: &FieldMapping, side: Side) -> Option<Value> {
        let readout = match side {
            Side::Pc => &self.pc.values,
            Side::Crm => &self.crm.values,
        };
        if let Some(v) = readout.values.get(&f.name) {
            return Some(v.clone());
        }
        let problem = readout
            .unreadable
            .get(&f.name)
            .cloned()
            .unwrap_or_else(|| "the field was not read".into());
        self.refuse(f, RefusalReason::Unreadable { side, problem });
        None
    }

    fn winner(&self, f: &FieldMapping, to_crm: bool, to_pc: bool) -> (Side, WinRule) {
        if !to_pc {
            let rule = if f.direction.to_pc() {
                WinRule::CrmToPcOff
            } else {
                WinRule::OneWay {
                    direction: f.direction,
                }
            };
            return (Side::Pc, rule);
        }
        if !to_crm {
            return (
                Side::Crm,
                WinRule::OneWay {
                    direction: f.direction,
                },
            );
        }
        match f.owner {
            Owner::Pc => (Side::Pc, WinRule::Owner { owner: Owner::Pc }),
            Owner::Crm => (Side::Crm, WinRule::Owner { owner: Owner::Crm }),
            Owner::Newest => {
                let (p, c) = (self.pc.modified_at, self.crm.modified_at);
                let side = match (p, c) {
                    (Some(p), Some(c)) if c > p => Side::Crm,
                    (None, Some(_)) => Side::Crm,
                    _ => Side::Pc,
                };
                (
                    side,
                    WinRule::Newest {
                        pc_modified: p,
                        crm_modified: c,
                    },
                )
            }
        }
    }

    /// Plans a CRM write; false (and a refusal) when the value has no CRM form.
    fn write_crm(&mut self, f: &FieldMapping, from: Value, to: Value) -> bool {
        match f.crm_values(&to) {
            Ok(columns) => {
                self.crm_after.insert(f.name.clone(), to.clone());
                self.plan.new_base.insert(f.name.clone(), to.clone());
                self.plan.crm_writes.push(CrmWrite {
                    field: f.name.clone(),
                    from,
                    to,
                    columns,
                });
                true
            }
            Err(problem) => {
                self.refuse(
                    f,
                    RefusalReason::Unwritable {
                        side: Side::Crm,
                        problem,
                    },
                );
                false
            }
        }
    }

    /// Plans a Partner Center write; false (and a refusal) when it breaks the status
    /// rules or cannot be expressed as a patch.
    fn write_pc(&mut self, f: &FieldMapping, from: Value, to: Value) -> bool {
        if f.is_status()
            && let Err(reason) = self.check_status(f, &to)
        {
            self.refuse(f, reason);
            return false;
        }
        // Computed on a copy so a write that fails half-way leaves no trace.
        let mut document = self.document.clone();
        match f.write_pc(&mut document, &to) {
            Ok(ops) => {
                self.document = document;
                self.plan.new_base.insert(f.name.clone(), to.clone());
                self.plan.pc_writes.push(PcWrite {
                    field: f.name.clone(),
                    from,
                    to,
                    ops,
                });
                true
            }
            Err(problem) => {
                self.refuse(
                    f,
                    RefusalReason::Unwritable {
                        side: Side::Pc,
                        problem,
                    },
                );
                false
            }
        }
    }

    /// Partner Center status moves only along the documented transitions (§1.5).
    fn check_status(&self, f: &FieldMapping, to: &Value) -> Result<(), RefusalReason> {
        if to.is_null() {
            return Err(RefusalReason::StatusCleared);
        }
        let mut target = StatusPair::new(ReferralStatus::None, ReferralSubstatus::None);
        let mut document = Value::Object(Default::default());
        f.write_pc(&mut document, to)
            .map_err(|problem| RefusalReason::Unwritable {
                side: Side::Pc,
                problem,
            })?;
        if let Some(s) = document.get("status").and_then(Value::as_str) {
            target.status = ReferralStatus::parse(s);
        }
        if let Some(s) = document.get("substatus").and_then(Value::as_str) {
            target.substatus = ReferralSubstatus::parse(s);
        }
        let from = self.pc.status.clone();
        let current = from
            .clone()
            .unwrap_or_else(|| StatusPair::new(ReferralStatus::None, ReferralSubstatus::None));
        check_transition(&current, &target).map_err(|e| RefusalReason::IllegalTransition {
            from,
            to: target,
            problem: e.to_string(),
        })
    }

    fn refuse(&mut self, f: &FieldMapping, reason: RefusalReason) {
        self.plan.refusals.push(Refusal {
            field: f.name.clone(),
            reason,
        });
    }
}

#[cfg(test)]
mod tests;
