//! What a merge decided, in a form an audit entry can explain line by line: every
//! write names its field with the old and new values, every conflict says who won
//! and by which rule, every refusal says why nothing was sent.

use crate::ids::CrmEntity;
use crate::mapping::{Direction, FieldValues, Owner, PatchOp};
use crate::status::StatusPair;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// One of the two systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Partner Center (the referral).
    Pc,
    /// The CRM record.
    Crm,
}

impl Side {
    /// The other system.
    pub fn other(self) -> Side {
        match self {
            Side::Pc => Side::Crm,
            Side::Crm => Side::Pc,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Pc => "Partner Center",
            Side::Crm => "CRM",
        })
    }
}

/// A field to update in the CRM record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmWrite {
    /// The field's stable name.
    pub field: String,
    /// The CRM's value before, in comparable form.
    pub from: Value,
    /// The value written, in comparable form.
    pub to: Value,
    /// The CRM columns and wire values to send.
    pub columns: Map<String, Value>,
}

/// A field to update in the referral.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PcWrite {
    /// The field's stable name.
    pub field: String,
    /// Partner Center's value before, in comparable form.
    pub from: Value,
    /// The value written, in comparable form.
    pub to: Value,
    /// The JSON Patch operations to send.
    pub ops: Vec<PatchOp>,
}

/// Both sides changed a field to the same value: only the base moves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The field's stable name.
    pub field: String,
    /// The value both sides now hold.
    pub value: Value,
}

/// The rule that picked a conflict's winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum WinRule {
    /// The field's configured owner.
    Owner {
        /// `pc` or `crm`.
        owner: Owner,
    },
    /// `owner = newest`: the side changed last (ties and missing times go to Partner Center).
    Newest {
        /// The referral's `updatedDateTime`.
        pc_modified: Option<DateTime<Utc>>,
        /// The CRM record's modified time.
        crm_modified: Option<DateTime<Utc>>,
    },
    /// The field flows one way only, so only its source can win.
    OneWay {
        /// The field's direction.
        direction: Direction,
    },
    /// CRM → Partner Center is off for this record (sync flag not set, or on hold).
    CrmToPcOff,
    /// The other side would have won, but its value was refused (see the refusals), so
    /// this side's value is kept on both: the pair converges instead of staying apart.
    ValueRefused {
        /// The side whose value was refused.
        refused: Side,
    },
}

impl fmt::Display for WinRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WinRule::Owner { owner } => write!(f, "the field's owner is {owner}"),
            WinRule::Newest {
                pc_modified,
                crm_modified,
            } => {
                let show = |t: &Option<DateTime<Utc>>| {
                    t.map_or_else(|| "unknown".to_owned(), |t| t.to_rfc3339())
                };
                write!(
                    f,
                    "newest change wins (Partner Center {}, CRM {})",
                    show(pc_modified),
                    show(crm_modified)
                )
            }
            WinRule::OneWay { direction } => {
                write!(f, "the field flows {direction} only")
            }
            WinRule::CrmToPcOff => f.write_str(
                "CRM changes do not flow to Partner Center for this record (sync flag not set, or on hold)",
            ),
            WinRule::ValueRefused { refused } => {
                write!(f, "the {refused} value was refused, so the other side's is kept")
            }
        }
    }
}

/// Both sides changed a field to different values since they last agreed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// The field's stable name.
    pub field: String,
    /// The last agreed value; `None` for a pair never synced.
    pub base: Option<Value>,
    /// Partner Center's value.
    pub pc: Value,
    /// The CRM's value.
    pub crm: Value,
    /// Whose value is kept.
    pub winner: Side,
    /// Why.
    pub rule: WinRule,
}

/// Why a change was not sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RefusalReason {
    /// A side's value could not be converted (e.g. a picklist value not in the table).
    Unreadable {
        /// Which side.
        side: Side,
        /// What is wrong.
        problem: String,
    },
    /// The status change breaks Partner Center's transition rules.
    IllegalTransition {
        /// The referral's current status.
        from: Option<StatusPair>,
        /// The status the CRM asked for.
        to: StatusPair,
        /// The rule it breaks.
        problem: String,
    },
    /// The CRM's status is empty; a referral's status cannot be cleared.
    StatusCleared,
    /// The value could not be put into the side's wire form.
    Unwritable {
        /// Which side.
        side: Side,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::Unreadable { side, problem } => {
                write!(f, "the {side} value cannot be read: {problem}")
            }
            RefusalReason::IllegalTransition { problem, .. } => {
                write!(f, "not sent to Partner Center: {problem}")
            }
            RefusalReason::StatusCleared => {
                f.write_str("the CRM status is empty; a referral's status cannot be cleared")
            }
            RefusalReason::Unwritable { side, problem } => {
                write!(f, "cannot write to {side}: {problem}")
            }
        }
    }
}

/// A change the merge would not make; reported for the audit, never written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// The field's stable name.
    pub field: String,
    /// Why.
    #[serde(flatten)]
    pub reason: RefusalReason,
}

/// The outcome of merging one referral with one CRM record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergePlan {
    /// The CRM record type merged.
    pub entity: CrmEntity,
    /// Fields to update in the CRM (sent first).
    pub crm_writes: Vec<CrmWrite>,
    /// Fields to update in Partner Center (sent second, with `If-Match`).
    pub pc_writes: Vec<PcWrite>,
    /// Fields both sides changed alike: base only.
    pub agreed: Vec<Agreement>,
    /// Fields both sides changed differently, with the winner.
    pub conflicts: Vec<Conflict>,
    /// Changes not made, with why.
    pub refusals: Vec<Refusal>,
    /// The base to save once both writes succeeded. Keys of other record types of the
    /// same link are carried over unchanged.
    pub new_base: FieldValues,
}

impl MergePlan {
    /// True when there is nothing to write: no CRM update, no Partner Center patch and
    /// no base change. Conflicts always come with a write; refusals are reported only.
    pub fn is_empty(&self) -> bool {
        self.crm_writes.is_empty() && self.pc_writes.is_empty() && self.agreed.is_empty()
    }

    /// The CRM update body: every written column.
    pub fn crm_update(&self) -> Map<String, Value> {
        self.crm_writes
            .iter()
            .flat_map(|w| w.columns.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    }

    /// The Partner Center JSON Patch document, in order.
    pub fn pc_patch(&self) -> Vec<PatchOp> {
        self.pc_writes
            .iter()
            .flat_map(|w| w.ops.iter().cloned())
            .collect()
    }
}
