//! JSON Patch (RFC 6902) as the referral PATCH accepts it: "Only `replace` and
//! `add` ops are supported" (partner-center.md §1.5, `patch-a-referral.md`), and
//! server-owned properties cannot be touched.
//!
//! One leniency: the real service returns unset properties as `null`, so a
//! `replace` of, say, `/externalReferenceId` finds a member there. The emulator
//! stores unset properties as absent, so a `replace` whose target is missing but
//! whose parent object exists acts as an `add`.

use super::error::ApiError;
use super::lifecycle::SERVER_OWNED;
use serde_json::{Value, json};

/// A supported operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Replace,
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operation {
    pub op: Op,
    /// The path as sent, for messages.
    pub path: String,
    /// The unescaped reference tokens.
    pub tokens: Vec<String>,
    pub value: Value,
}

/// Parses and checks a PATCH body.
pub(crate) fn parse_patch(body: &Value) -> Result<Vec<Operation>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON Patch document (an array of operations).",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "The JSON Patch document has no operations.",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_operation(i, item))
        .collect()
}

fn parse_operation(index: usize, item: &Value) -> Result<Operation, ApiError> {
    let bad = |why: String| ApiError::bad_request(why).with_data([json!({ "operation": index })]);
    let object = item
        .as_object()
        .ok_or_else(|| bad(format!("Operation {index} is not an object.")))?;
    let op_name = object
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("Operation {index} has no 'op'.")))?;
    let op = match op_name {
        "add" => Op::Add,
        "replace" => Op::Replace,
        other => {
            return Err(bad(format!(
                "Operation {index}: '{other}' is not supported; only 'replace' and 'add' are."
            )));
        }
    };
    let path = object
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("Operation {index} has no 'path'.")))?;
    let tokens = parse_pointer(path).ok_or_else(|| {
        bad(format!(
            "Operation {index}: '{path}' is not a JSON Pointer."
        ))
    })?;
    let Some(first) = tokens.first() else {
        return Err(bad(format!(
            "Operation {index}: the whole referral cannot be replaced; use a property path."
        )));
    };
    if let Some(owned) = SERVER_OWNED.iter().find(|p| *p == first) {
        return Err(ApiError::bad_request(format!(
            "Operation {index}: '{path}' is read-only; /{owned} is set by the service."
        ))
        .with_data([json!(path)]));
    }
    let value = object.get("value").cloned().ok_or_else(|| {
        bad(format!(
            "Operation {index} ({op_name} {path}) has no 'value'."
        ))
    })?;
    Ok(Operation {
        op,
        path: path.to_owned(),
        tokens,
        value,
    })
}

/// RFC 6901: `/a/b~1c` → `["a", "b/c"]`; `""` → `[]`.
fn parse_pointer(path: &str) -> Option<Vec<String>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    let rest = path.strip_prefix('/')?;
    rest.split('/')
        .map(|t| {
            if t.contains('~') && !valid_escapes(t) {
                return None;
            }
            Some(t.replace("~1", "/").replace("~0", "~"))
        })
        .collect()
}

fn valid_escapes(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b != b'~' || matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// Applies the operations in order to `document`.
pub(crate) fn apply_patch(document: &mut Value, operations: &[Operation]) -> Result<(), ApiError> {
    for (index, operation) in operations.iter().enumerate() {
        apply_one(document, operation).map_err(|why| {
            ApiError::bad_request(format!(
                "Operation {index} ({} {}) cannot be applied: {why}.",
                match operation.op {
                    Op::Add => "add",
                    Op::Replace => "replace",
                },
                operation.path
            ))
            .with_data([json!(operation.path)])
        })?;
    }
    Ok(())
}

fn apply_one(document: &mut Value, operation: &Operation) -> Result<(), String> {
    let Some((last, parents)) = operation.tokens.split_last() else {
        return Err("the path is empty".to_owned());
    };
    let mut parent = document;
    for token in parents {
        parent = match parent {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("'{token}' does not exist"))?,
            Value::Array(items) => {
                let i = array_index(token, items.len())?;
                items
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} is out of range"))?
            }
            _ => return Err(format!("'{token}' is not inside an object or array")),
        };
    }
    let value = operation.value.clone();
    match parent {
        // Replacing a missing member of an existing object adds it (see the module docs).
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => match operation.op {
            Op::Add if last == "-" => {
                items.push(value);
                Ok(())
            }
            Op::Add => {
                let i = array_index(last, items.len() + 1)?;
                items.insert(i, value);
                Ok(())
            }
            Op::Replace => {
                let i = array_index(last, items.len())?;
                let slot = items
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} is out of range"))?;
                *slot = value;
                Ok(())
            }
        },
        Value::Null => Err("its parent is null".to_owned()),
        _ => Err("its parent is not an object or array".to_owned()),
    }
}

/// An array index token below `len` (RFC 6901: digits, no leading zeros).
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let i = valid
        .then(|| token.parse::<usize>().ok())
        .flatten()
        .ok_or_else(|| format!("'{token}' is not an array index"))?;
    if i < len {
        Ok(i)
    } else {
        Err(format!("index {i} is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"status": "New", "details": {"dealValue": 5, "notes": "n"}, "team": [{"email": "a"}]})
    }

    fn patched(ops: Value) -> Result<Value, ApiError> {
        let ops = parse_patch(&ops)?;
        let mut d = doc();
        apply_patch(&mut d, &ops)?;
        Ok(d)
    }

    #[test]
    fn the_documented_sample_applies() {
        let d = patched(json!([
            {"op": "replace", "path": "/status", "value": "Closed"},
            {"op": "replace", "path": "/details/dealValue", "value": "10000"},
            {"op": "add", "path": "/team/-", "value": {"email": "jane"}},
            {"op": "add", "path": "/team/0", "value": {"email": "first"}},
            {"op": "replace", "path": "/externalReferenceId", "value": "lead-1"}
        ]))
        .unwrap();
        assert_eq!(d["status"], "Closed");
        assert_eq!(d["details"]["dealValue"], "10000");
        assert_eq!(d["team"][0]["email"], "first");
        assert_eq!(d["team"][2]["email"], "jane");
        assert_eq!(d["externalReferenceId"], "lead-1");
    }

    #[test]
    fn only_add_and_replace_are_supported() {
        for op in ["remove", "move", "copy", "test", "Replace"] {
            let e = patched(json!([{"op": op, "path": "/status", "value": 1, "from": "/x"}]))
                .unwrap_err();
            assert!(
                e.description.contains("only 'replace' and 'add'"),
                "{op}: {}",
                e.description
            );
        }
    }

    #[test]
    fn server_owned_paths_are_read_only() {
        for path in [
            "/id",
            "/engagementId",
            "/eTag",
            "/createdDateTime",
            "/organizationId",
            "/direction",
            "/links/self/uri",
        ] {
            let e = patched(json!([{"op": "replace", "path": path, "value": "x"}])).unwrap_err();
            assert!(
                e.description.contains("read-only"),
                "{path}: {}",
                e.description
            );
        }
    }

    #[test]
    fn malformed_documents_and_paths_are_refused() {
        assert!(patched(json!({"op": "replace"})).is_err());
        assert!(patched(json!([])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "status", "value": 1}])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "/status"}])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "", "value": {}}])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "/a~2b", "value": 1}])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "/team/5", "value": 1}])).is_err());
        assert!(patched(json!([{"op": "replace", "path": "/team/01", "value": 1}])).is_err());
        assert!(patched(json!([{"op": "add", "path": "/nope/deeper", "value": 1}])).is_err());
        assert!(patched(json!([{"op": "add", "path": "/status/x", "value": 1}])).is_err());
    }

    #[test]
    fn pointer_escapes() {
        assert_eq!(
            parse_pointer("/a~1b/c~0d"),
            Some(vec!["a/b".into(), "c~d".into()])
        );
    }
}
