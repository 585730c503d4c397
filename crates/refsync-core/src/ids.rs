//! Identifiers, parsed once where they enter the system. A `ReferralId` or a
//! `CrmRecordId` that exists has already been checked to be safe to place in a
//! URL path or an OData key literal, so adapters never re-validate or escape blindly.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use thiserror::Error;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// The value was empty.
    #[error("{kind} is empty")]
    Empty {
        /// What kind of identifier.
        kind: &'static str,
    },
    /// The value was longer than the limit.
    #[error("{kind} is longer than {max} characters")]
    TooLong {
        /// What kind of identifier.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// The value held a character outside the allowed set.
    #[error("{kind} contains a character that is not allowed: {ch:?}")]
    BadChar {
        /// What kind of identifier.
        kind: &'static str,
        /// The offending character.
        ch: char,
    },
    /// A sync key did not have a known prefix.
    #[error("not a sync key: {0:?} (expected referral:<id> or <crm entity>:<id>)")]
    BadKey(String),
}

/// Letters, digits and `-_.`: what Partner Center ids (GUIDs), Dataverse GUIDs and
/// Salesforce ids use, and nothing that needs escaping in a URL or an OData literal.
fn check_token(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.chars().count() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(IdError::BadChar { kind, ch });
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the identifier.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_token($kind, &s, $max)?;
                Ok(Self(s))
            }

            /// The identifier as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

token_id!(
    /// A Partner Center referral id (a GUID in practice; not required to be one).
    ReferralId,
    "referral id",
    128
);
token_id!(
    /// A Partner Center engagement id: the referrals of one co-sell share it.
    EngagementId,
    "engagement id",
    128
);
token_id!(
    /// A CRM record's primary key: a Dataverse GUID or an 18-character Salesforce id.
    CrmRecordId,
    "CRM record id",
    64
);

/// An opaque entity tag exactly as the server sent it, quotes and `W/` included.
/// Compared byte for byte; never parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Etag(String);

impl Etag {
    /// Wraps a tag as received.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The tag exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when two tags name the same version, ignoring the quoting differences
    /// Partner Center's clients show (`"x"` in the body vs `x` or `"x"` in `If-Match`).
    pub fn matches(&self, header_value: &str) -> bool {
        let strip = |s: &str| {
            s.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned()
        };
        header_value.trim() == "*" || strip(&self.0) == strip(header_value)
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::open_enum! {
    /// The CRM record types refsync reads and writes.
    pub enum CrmEntity {
        /// A lead (unaccepted referral).
        Lead = "lead",
        /// An opportunity (accepted referral).
        Opportunity = "opportunity",
        /// The customer's account.
        Account = "account",
        /// A customer contact.
        Contact = "contact",
    }
}

/// One CRM record: its type and primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrmRecordRef {
    /// The record type.
    pub entity: CrmEntity,
    /// The primary key.
    pub id: CrmRecordId,
}

impl CrmRecordRef {
    /// Builds a reference.
    pub fn new(entity: CrmEntity, id: CrmRecordId) -> Self {
        Self { entity, id }
    }
}

impl fmt::Display for CrmRecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.entity, self.id)
    }
}

/// What the work queue is keyed by: a referral, or a CRM record that has no referral yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncKey {
    /// Look at this referral (and whatever CRM record it is linked to).
    Referral(ReferralId),
    /// Look at this CRM record (flagged "Sync with Partner Center", not yet linked).
    Crm(CrmRecordRef),
}

impl SyncKey {
    /// Parses the text form written by `Display`: `referral:<id>` or `<entity>:<id>`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let (prefix, rest) = s.split_once(':').ok_or_else(|| IdError::BadKey(s.into()))?;
        if prefix == "referral" {
            return Ok(SyncKey::Referral(ReferralId::parse(rest)?));
        }
        let entity = CrmEntity::parse(prefix);
        if !entity.is_known() {
            return Err(IdError::BadKey(s.into()));
        }
        Ok(SyncKey::Crm(CrmRecordRef::new(
            entity,
            CrmRecordId::parse(rest)?,
        )))
    }

    /// The referral id, when the key is one.
    pub fn referral_id(&self) -> Option<&ReferralId> {
        match self {
            SyncKey::Referral(id) => Some(id),
            SyncKey::Crm(_) => None,
        }
    }
}

impl fmt::Display for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncKey::Referral(id) => write!(f, "referral:{id}"),
            SyncKey::Crm(r) => write!(f, "{r}"),
        }
    }
}

impl std::str::FromStr for SyncKey {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl Serialize for SyncKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SyncKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_ids_refuse_url_metacharacters() {
        assert!(ReferralId::parse("c5fbb3b6-be74-4795-9fb5-4324c73fed37").is_ok());
        for bad in ["", "a/b", "a'b", "a b", "a?b", "..%2f", "x\u{0}"] {
            assert!(ReferralId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(
            ReferralId::parse("a".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn sync_keys_round_trip() {
        for s in [
            "referral:abc-1",
            "lead:0f1e",
            "opportunity:006xx0000012345AAA",
        ] {
            assert_eq!(SyncKey::parse(s).unwrap().to_string(), s);
        }
        assert!(SyncKey::parse("widget:1").is_err());
        assert!(SyncKey::parse("referral").is_err());
        let k: SyncKey = serde_json::from_str("\"referral:r1\"").unwrap();
        assert_eq!(k.referral_id().unwrap().as_str(), "r1");
    }

    #[test]
    fn etags_compare_through_quoting() {
        let e = Etag::new("\"2500ec5a-0000\"");
        assert!(e.matches("\"2500ec5a-0000\""));
        assert!(e.matches("2500ec5a-0000"));
        assert!(e.matches("*"));
        assert!(!e.matches("\"other\""));
        assert!(Etag::new("W/\"5\"").matches("W/\"5\""));
    }
}
