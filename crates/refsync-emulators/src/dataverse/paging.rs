//! The `$skiptoken` paging cookie of `@odata.nextLink` (crm.md §1.8).
//!
//! Shaped like Dataverse's: `<cookie pagenumber="2" pagingcookie="…" istracking="False" />`
//! where `pagingcookie` is a percent-encoded `<cookie page="1">` element holding the
//! last row's sort values and primary key. Paging is keyset-based, as Dataverse's
//! cookie is: the next page starts after that row, so records created or deleted
//! between pages neither repeat nor go missing. Clients must treat the link as
//! opaque and follow it as given; the double encoding punishes re-encoding it.
//! Also the delta token of change tracking (crm.md §1.9): `<version>!<MM/dd/yyyy HH:mm:ss>`.

use chrono::{DateTime, NaiveDateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

/// Characters kept as they are in values written into links.
pub(crate) const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b',');

/// What a paging cookie remembers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PagingCookie {
    /// The page the cookie leads to (2 for the first nextLink).
    pub page_number: usize,
    /// The last row's values: the `$orderby` columns, then the primary key, by wire name.
    pub last: Vec<(String, Value)>,
    /// For change tracking: the org version when the initial request began.
    pub tracking_version: Option<u64>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `name="…"` in `text`.
fn attribute<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

impl PagingCookie {
    /// The `$skiptoken` value (not yet URL-encoded for the link).
    pub fn encode(&self) -> String {
        let mut inner = format!("<cookie page=\"{}\"", self.page_number.saturating_sub(1));
        if let Some(v) = self.tracking_version {
            inner.push_str(&format!(" version=\"{v}\""));
        }
        inner.push('>');
        for (name, value) in &self.last {
            let text = xml_escape(&value.to_string());
            inner.push_str(&format!("<{name} last=\"{text}\" first=\"{text}\" />"));
        }
        inner.push_str("</cookie>");
        // Encoded twice, as Dataverse's is, so one decoding leaves it encoded once.
        let once = utf8_percent_encode(&inner, NON_ALPHANUMERIC).to_string();
        let twice = utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string();
        format!(
            "<cookie pagenumber=\"{}\" pagingcookie=\"{twice}\" istracking=\"{}\" />",
            self.page_number,
            if self.tracking_version.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }

    /// Reads a `$skiptoken` as received (URL-decoded once by the query parser).
    pub fn decode(token: &str) -> Option<Self> {
        let page_number = attribute(token, "pagenumber")?.parse().ok()?;
        let paging = attribute(token, "pagingcookie")?;
        let once = percent_decode_str(paging).decode_utf8().ok()?;
        let inner = percent_decode_str(&once).decode_utf8().ok()?.into_owned();
        let tracking_version = attribute(&inner, "version").and_then(|v| v.parse().ok());
        let mut last = Vec::new();
        let body = inner.split_once('>')?.1;
        for element in body.split("/>") {
            let element = element.trim();
            let Some(rest) = element.strip_prefix('<') else {
                continue;
            };
            let name = rest.split_whitespace().next()?;
            if name.starts_with('/') {
                continue;
            }
            let value = attribute(element, "last")?;
            last.push((
                name.to_owned(),
                serde_json::from_str(&xml_unescape(value)).ok()?,
            ));
        }
        Some(Self {
            page_number,
            last,
            tracking_version,
        })
    }
}

/// A change-tracking token: `<version>!<MM/dd/yyyy HH:mm:ss>` (crm.md §1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeltaToken {
    /// Changes after this org version are returned.
    pub version: u64,
    /// When the token was issued.
    pub issued: DateTime<Utc>,
}

impl DeltaToken {
    /// The token text.
    pub fn encode(&self) -> String {
        format!(
            "{}!{}",
            self.version,
            self.issued.format("%m/%d/%Y %H:%M:%S")
        )
    }

    /// Reads a token.
    pub fn decode(text: &str) -> Option<Self> {
        let (version, date) = text.split_once('!')?;
        let issued = NaiveDateTime::parse_from_str(date.trim(), "%m/%d/%Y %H:%M:%S")
            .ok()?
            .and_utc();
        Some(Self {
            version: version.trim().parse().ok()?,
            issued,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cookies_round_trip_through_one_url_decoding() {
        let cookie = PagingCookie {
            page_number: 3,
            last: vec![
                ("name".to_owned(), json!("Contoso \"East\" & <Co>")),
                ("estimatedvalue".to_owned(), json!(12.5)),
                ("_customerid_value".to_owned(), Value::Null),
                (
                    "opportunityid".to_owned(),
                    json!("8f0a2b1c-0000-4000-8000-000000000001"),
                ),
            ],
            tracking_version: None,
        };
        let token = cookie.encode();
        assert!(token.starts_with("<cookie pagenumber=\"3\" pagingcookie=\"%25"));
        assert!(token.ends_with("istracking=\"False\" />"));
        // What a client puts in the link, and what the server's query parser gives back.
        let in_link = utf8_percent_encode(&token, QUERY_VALUE).to_string();
        let received = percent_decode_str(&in_link).decode_utf8().unwrap();
        assert_eq!(PagingCookie::decode(&received), Some(cookie));
    }

    #[test]
    fn tracking_cookies_remember_the_version() {
        let cookie = PagingCookie {
            page_number: 2,
            last: vec![("leadid".to_owned(), json!("x"))],
            tracking_version: Some(42),
        };
        let token = cookie.encode();
        assert!(token.contains("istracking=\"True\""));
        assert_eq!(PagingCookie::decode(&token), Some(cookie));
        assert_eq!(PagingCookie::decode("<cookie />"), None);
        assert_eq!(PagingCookie::decode("garbage"), None);
    }

    #[test]
    fn delta_tokens_look_like_dataverse_ones() {
        let t = DeltaToken::decode("919042!08/22/2017 08:10:44").unwrap();
        assert_eq!(t.version, 919042);
        assert_eq!(t.encode(), "919042!08/22/2017 08:10:44");
        assert!(DeltaToken::decode("919042").is_none());
    }
}
