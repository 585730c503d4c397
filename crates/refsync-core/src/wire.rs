//! Wire-format helpers shared by the models: open string enums that keep values
//! Microsoft adds later, date-times in the several shapes the APIs emit, and
//! decimals that arrive either as JSON numbers or as strings.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer};
use std::str::FromStr;

/// Declares a string enum whose unknown wire values parse into `Other(String)`
/// and serialize back unchanged, so a value Microsoft adds tomorrow never fails a read.
#[macro_export]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of refsync does not know, kept verbatim.
            Other(String),
        }

        #[allow(dead_code)]
        impl $name {
            /// Every known variant, in declaration order.
            pub const KNOWN: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The value exactly as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Parses a wire value; matching is case-insensitive, unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                $( if s.eq_ignore_ascii_case($wire) { return $name::$variant; } )+
                $name::Other(s.to_owned())
            }

            /// True when the value is one this version of refsync knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

/// Parses the date-time shapes Partner Center and the CRMs emit: RFC 3339 with any
/// number of fractional digits and any offset, or a naive timestamp taken as UTC.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    // Salesforce writes `+0000` without a colon.
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

/// Formats a date-time the way Partner Center writes it (seven fractional digits, `Z`).
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    let nanos = dt.timestamp_subsec_nanos();
    format!("{}.{:07}Z", dt.format("%Y-%m-%dT%H:%M:%S"), nanos / 100)
}

/// Serde adapter for optional date-times: lenient on input, Partner Center's format on output.
pub mod opt_datetime {
    use super::*;

    /// Serializes `Some` in Partner Center's format and `None` as null.
    pub fn serialize<S: Serializer>(v: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(dt) => s.serialize_str(&format_datetime(dt)),
            None => s.serialize_none(),
        }
    }

    /// Accepts null, an empty string, or any shape [`parse_datetime`] understands.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        match raw.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => parse_datetime(s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a date-time: {s:?}"))),
        }
    }
}

/// Serde adapter for optional decimals that arrive as a JSON number or a numeric string
/// (the documented PATCH sample sends `"10000"`); always written back as a number.
pub mod opt_decimal {
    use super::*;
    use serde::Serialize;

    /// Writes the decimal as a JSON number (or null).
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => {
                let n = serde_json::Number::from_str(&d.normalize().to_string())
                    .map_err(serde::ser::Error::custom)?;
                n.serialize(s)
            }
            None => s.serialize_none(),
        }
    }

    /// Reads a number, a numeric string, an empty string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => decimal_from_json(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {v}"))),
        }
    }
}

/// Reads a decimal from a JSON number or numeric string; `None` for anything else.
pub fn decimal_from_json(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .ok()
        }
        serde_json::Value::String(s) if !s.trim().is_empty() => Decimal::from_str(s.trim())
            .or_else(|_| Decimal::from_scientific(s.trim()))
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    open_enum! {
        /// Test enum.
        enum Colour { Red = "Red", DarkBlue = "DarkBlue" }
    }

    #[test]
    fn open_enum_keeps_unknown_values() {
        let c: Colour = serde_json::from_str("\"Chartreuse\"").unwrap();
        assert_eq!(c, Colour::Other("Chartreuse".into()));
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"Chartreuse\"");
        let c: Colour = serde_json::from_str("\"darkblue\"").unwrap();
        assert_eq!(c, Colour::DarkBlue);
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"DarkBlue\"");
    }

    #[test]
    fn datetimes_in_every_shape_parse() {
        let want = parse_datetime("2020-10-30T21:03:00Z").unwrap();
        assert_eq!(parse_datetime("2020-10-30T21:03:00.0000000Z"), Some(want));
        assert_eq!(parse_datetime("2020-10-30T21:03:00.000+0000"), Some(want));
        assert_eq!(parse_datetime("2020-10-30T23:03:00+02:00"), Some(want));
        assert_eq!(parse_datetime("2020-10-30T21:03:00"), Some(want));
        assert!(parse_datetime("2020-10-30").is_some());
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn format_matches_partner_center() {
        let dt = parse_datetime("2018-11-06T18:40:42.6178337Z").unwrap();
        assert_eq!(format_datetime(&dt), "2018-11-06T18:40:42.6178337Z");
    }

    #[test]
    fn decimals_from_numbers_and_strings() {
        assert_eq!(
            decimal_from_json(&serde_json::json!(50000)),
            Some(Decimal::from(50000))
        );
        assert_eq!(
            decimal_from_json(&serde_json::json!("10000")),
            Some(Decimal::from(10000))
        );
        assert_eq!(
            decimal_from_json(&serde_json::json!(1234.5)),
            Some(Decimal::from_str("1234.5").unwrap())
        );
        assert_eq!(decimal_from_json(&serde_json::json!("abc")), None);
        assert_eq!(decimal_from_json(&serde_json::json!(true)), None);
    }
}
