//! `POST /composite` (crm.md §2.5): several subrequests in one API call, later ones
//! using earlier results through `@{ref.field}`. The whole request counts as **one**
//! call against the allocation, which is why the connector writes and reads back in
//! one composite, and matches a customer and upserts the opportunity in another.
//!
//! The outer response is always HTTP 200; each subrequest answers with its own
//! `httpStatusCode` and body, read here as a [`Reply`] so it fails exactly like a
//! direct call would.

use super::errors::{PROCESSING_HALTED, Reply};
use crate::connector::CrmError;
use http::StatusCode;
use serde_json::{Value, json};

/// A composite request being built.
#[derive(Debug, Clone)]
pub(crate) struct CompositeRequest {
    all_or_none: bool,
    subrequests: Vec<Value>,
}

impl CompositeRequest {
    /// An empty request. With `all_or_none`, one failing subrequest rolls back all.
    pub(crate) fn new(all_or_none: bool) -> Self {
        Self {
            all_or_none,
            subrequests: Vec::new(),
        }
    }

    /// Adds a subrequest; `url` is the full `/services/data/vNN.0/…` path.
    pub(crate) fn add(
        &mut self,
        reference_id: &str,
        method: &str,
        url: String,
        body: Option<Value>,
    ) {
        let mut sub = json!({ "method": method, "url": url, "referenceId": reference_id });
        if let (Some(body), Some(obj)) = (body, sub.as_object_mut()) {
            obj.insert("body".to_owned(), body);
        }
        self.subrequests.push(sub);
    }

    /// The request body.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "allOrNone": self.all_or_none, "compositeRequest": self.subrequests })
    }
}

/// The subresponses of a composite call, by reference id.
#[derive(Debug, Clone)]
pub(crate) struct CompositeReply {
    entries: Vec<(String, Reply)>,
}

impl CompositeReply {
    /// Reads `{"compositeResponse":[{body, httpStatusCode, referenceId}]}`.
    pub(crate) fn parse(body: &Value) -> Result<Self, CrmError> {
        let bad = || {
            CrmError::Unavailable(
                "Salesforce answered /composite without compositeResponse".to_owned(),
            )
        };
        let items = body
            .get("compositeResponse")
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        let entries = items
            .iter()
            .map(|item| {
                let reference = item
                    .get("referenceId")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?;
                let status = item
                    .get("httpStatusCode")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or_else(bad)?;
                let body = item.get("body").cloned().unwrap_or(Value::Null);
                Ok((reference.to_owned(), Reply { status, body }))
            })
            .collect::<Result<Vec<_>, CrmError>>()?;
        Ok(Self { entries })
    }

    /// The subresponse for `reference_id`.
    pub(crate) fn get(&self, reference_id: &str) -> Result<&Reply, CrmError> {
        self.entries
            .iter()
            .find(|(r, _)| r == reference_id)
            .map(|(_, reply)| reply)
            .ok_or_else(|| {
                CrmError::Unavailable(format!(
                    "Salesforce's /composite answer has no subresponse {reference_id:?}"
                ))
            })
    }

    /// The failure that caused the others: the first failed subresponse that is not
    /// just "halted because another one failed".
    pub(crate) fn first_failure(&self) -> Option<(&str, &Reply)> {
        let failed = || {
            self.entries
                .iter()
                .map(|(reference, r)| (reference.as_str(), r))
                .filter(|(_, r)| !r.ok())
        };
        failed()
            .find(|(_, r)| r.error_code().as_deref() != Some(PROCESSING_HALTED))
            .or_else(|| failed().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_salesforce_shape() {
        let mut c = CompositeRequest::new(true);
        c.add(
            "acc",
            "POST",
            "/services/data/v62.0/sobjects/Account".into(),
            Some(json!({"Name": "Contoso"})),
        );
        c.add(
            "read",
            "GET",
            "/services/data/v62.0/sobjects/Account/@{acc.id}".into(),
            None,
        );
        assert_eq!(
            c.to_json(),
            json!({"allOrNone": true, "compositeRequest": [
                {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "acc", "body": {"Name": "Contoso"}},
                {"method": "GET", "url": "/services/data/v62.0/sobjects/Account/@{acc.id}", "referenceId": "read"}
            ]})
        );
        let reply = CompositeReply::parse(&json!({"compositeResponse": [
            {"body": [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "acc"},
            {"body": [{"errorCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]"}], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "read"}
        ]}))
        .unwrap();
        assert_eq!(reply.get("acc").unwrap().status, StatusCode::BAD_REQUEST);
        let (reference, failed) = reply.first_failure().unwrap();
        assert_eq!(reference, "read");
        assert_eq!(
            failed.error_code().as_deref(),
            Some("REQUIRED_FIELD_MISSING")
        );
        assert!(reply.get("nope").is_err());
        assert!(CompositeReply::parse(&json!([])).is_err());
    }
}
