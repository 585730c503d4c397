//! Salesforce record ids: 15-character case-sensitive ids and their
//! 18-character case-insensitive form.
//!
//! An id is a 3-character key prefix naming the object (`00Q` Lead, `006`
//! Opportunity, …), a 2-character instance ("pod") code, one reserved
//! character and a 9-character base-62 number. The 18-character form appends a
//! 3-character checksum that encodes which of the first 15 characters are upper
//! case, so the id survives case-insensitive systems. The API always returns the
//! 18-character form and accepts either.
//!
//! The emulator numbers records with a counter, so ids are realistic in shape
//! and identical from run to run.

use std::fmt;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// The instance code and reserved character every emulated id carries.
const POD: &str = "5g0";

/// An 18-character Salesforce id in its canonical case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SfId(String);

impl SfId {
    /// Builds the id with key prefix `prefix` (3 characters) and sequence number `n`.
    pub fn generate(prefix: &str, n: u64) -> Self {
        let mut digits = [b'0'; 9];
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            *slot = BASE62[(rest % 62) as usize];
            rest /= 62;
        }
        let mut short = String::with_capacity(18);
        short.push_str(prefix);
        short.push_str(POD);
        short.extend(digits.iter().map(|&b| char::from(b)));
        Self::from_short(&short)
    }

    /// Parses a 15- or 18-character id; an 18-character id in any case is
    /// restored to its canonical case from its checksum. `None` when it is not an id.
    pub fn parse(s: &str) -> Option<Self> {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        match s.len() {
            15 => Some(Self::from_short(s)),
            18 => {
                let (body, suffix) = s.split_at(15);
                let mut restored: Vec<u8> = body.bytes().collect();
                for (chunk, check) in suffix.bytes().enumerate() {
                    let flags = CHECKSUM
                        .iter()
                        .position(|&c| c == check.to_ascii_uppercase())?;
                    for bit in 0..5 {
                        let byte = &mut restored[chunk * 5 + bit];
                        if flags & (1 << bit) != 0 {
                            if !byte.is_ascii_alphabetic() {
                                return None;
                            }
                            *byte = byte.to_ascii_uppercase();
                        } else {
                            *byte = byte.to_ascii_lowercase();
                        }
                    }
                }
                let body = String::from_utf8(restored).ok()?;
                Some(Self::from_short(&body))
            }
            _ => None,
        }
    }

    fn from_short(short: &str) -> Self {
        let mut id = String::with_capacity(18);
        id.push_str(short);
        for chunk in short.as_bytes().chunks(5) {
            let flags = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            id.push(char::from(CHECKSUM[flags]));
        }
        Self(id)
    }

    /// The 3-character key prefix naming the object.
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }

    /// The 18-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_a_known_salesforce_id() {
        // The example in Salesforce's own documentation of the 18-character form.
        let id = SfId::parse("00300000003T2PG").unwrap();
        assert_eq!(id.as_str(), "00300000003T2PGAA0");
    }

    #[test]
    fn eighteen_character_ids_are_case_insensitive() {
        let id = SfId::parse("00300000003T2PGAA0").unwrap();
        assert_eq!(
            SfId::parse("00300000003t2pgaa0").unwrap(),
            id,
            "case restored from the checksum"
        );
        assert_eq!(SfId::parse(&id.as_str()[..15]).unwrap(), id);
    }

    #[test]
    fn generated_ids_are_ordered_and_prefixed() {
        let a = SfId::generate("00Q", 1);
        let b = SfId::generate("00Q", 62);
        assert_eq!(a.as_str().len(), 18);
        assert_eq!(a.key_prefix(), "00Q");
        assert!(a < b);
        assert_eq!(SfId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn rejects_non_ids() {
        for bad in [
            "",
            "abc",
            "00Q5g000000000!",
            "00Q5g0000000001ZZZZ",
            "01234567890123456_",
        ] {
            assert_eq!(SfId::parse(bad), None, "{bad}");
        }
    }
}
