//! The `Prefer` request header (crm.md §1.3): `return=representation`,
//! `odata.maxpagesize`, `odata.include-annotations` and `odata.track-changes`,
//! from one or several headers, split on commas outside quotes.

use super::annotations::Annotations;
use axum::http::HeaderMap;

/// The `Prefer` header(s), split on commas outside quotes (crm.md §1.3).
#[derive(Debug, Clone, Default)]
pub(crate) struct Prefer {
    /// `return=representation`.
    pub representation: bool,
    /// `odata.maxpagesize=N`.
    pub max_page_size: Option<usize>,
    /// `odata.include-annotations=…`.
    pub annotations: Annotations,
    /// `odata.track-changes`.
    pub track_changes: bool,
}

impl Prefer {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else { continue };
            for item in split_outside_quotes(text) {
                let (name, val) = match item.split_once('=') {
                    Some((n, v)) => (n.trim(), v.trim()),
                    None => (item.trim(), ""),
                };
                match name.to_ascii_lowercase().as_str() {
                    "return" if val.eq_ignore_ascii_case("representation") => {
                        prefer.representation = true
                    }
                    "odata.maxpagesize" => {
                        prefer.max_page_size = val.parse().ok().filter(|n| *n > 0)
                    }
                    "odata.include-annotations" => {
                        prefer.annotations = Annotations::from_preference(val)
                    }
                    "odata.track-changes" => prefer.track_changes = true,
                    _ => {}
                }
            }
        }
        prefer
    }
}

fn split_outside_quotes(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn prefer_values_split_outside_quotes() {
        let mut headers = HeaderMap::new();
        headers.append(
            "Prefer",
            HeaderValue::from_static(
                "return=representation, odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\"",
            ),
        );
        headers.append(
            "Prefer",
            HeaderValue::from_static("odata.maxpagesize=25,odata.track-changes"),
        );
        let p = Prefer::parse(&headers);
        assert!(p.representation);
        assert_eq!(p.max_page_size, Some(25));
        assert!(p.track_changes);
        assert!(
            p.annotations
                .wants("Microsoft.Dynamics.CRM.lookuplogicalname")
        );
        assert!(
            !p.annotations
                .wants("Microsoft.Dynamics.CRM.associatednavigationproperty")
        );
        let mut headers = HeaderMap::new();
        headers.insert("Prefer", HeaderValue::from_static("odata.maxpagesize=0"));
        assert_eq!(Prefer::parse(&headers).max_page_size, None);
    }
}
