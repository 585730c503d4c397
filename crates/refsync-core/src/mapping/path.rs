//! Paths into the referral's JSON (`details.dealValue`, `customerProfile.team[0].email`):
//! parsed once when the mapping is loaded, then used to read a value and to write one
//! as JSON Patch operations (RFC 6902) in Partner Center's form (`/details/dealValue`).

use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// One step of a path: an object member or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A validated path into the referral resource, camelCase as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralPath {
    text: String,
    segments: Vec<Segment>,
}

impl ReferralPath {
    /// Parses `a.b[0].c`; member names are ASCII letters, digits and `_`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| Err(format!("referral path {text:?} {why}"));
        if text.is_empty() {
            return bad("is empty");
        }
        let mut segments = Vec::new();
        for part in text.split('.') {
            let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
            if name.is_empty() {
                return bad("has an empty member name");
            }
            if let Some(c) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            {
                return bad(&format!("has a character that is not allowed: {c:?}"));
            }
            segments.push(Segment::Key(name.to_owned()));
            while !rest.is_empty() {
                let Some((index, after)) = rest.strip_prefix('[').and_then(|r| r.split_once(']'))
                else {
                    return bad("has an unclosed or stray bracket");
                };
                let Ok(index) = index.parse::<usize>() else {
                    return bad(&format!("has an index that is not a number: [{index}]"));
                };
                segments.push(Segment::Index(index));
                rest = after;
            }
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path as written in the mapping file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The path as a JSON Pointer (`/customerProfile/team/0/email`).
    pub fn pointer(&self) -> String {
        pointer(&self.segments)
    }

    /// The value at the path; `Null` when any step is missing.
    pub fn get<'a>(&self, doc: &'a Value) -> &'a Value {
        let mut node = doc;
        for seg in &self.segments {
            let next = match (seg, node) {
                (Segment::Key(k), Value::Object(o)) => o.get(k),
                (Segment::Index(i), Value::Array(a)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(v) => node = v,
                None => return &Value::Null,
            }
        }
        node
    }

    /// True when one path is the other or lies inside it: writing one changes what
    /// the other reads.
    pub fn overlaps(&self, other: &ReferralPath) -> bool {
        let n = self.segments.len().min(other.segments.len());
        self.segments[..n] == other.segments[..n]
    }

    /// The operation that sets this path to `value` in `doc`, applied to `doc` as well
    /// so the next operation is computed against the result. `replace` where the member
    /// exists, `add` where it does not, creating missing parents as one `add` of a
    /// nested value. `None` when nothing needs doing (null written where nothing is).
    pub(crate) fn write(&self, doc: &mut Value, value: Value) -> Result<Option<PatchOp>, String> {
        let mut node = doc;
        for (depth, seg) in self.segments.iter().enumerate() {
            let last = depth + 1 == self.segments.len();
            let child = match (seg, &*node) {
                (Segment::Key(k), Value::Object(o)) => o.get(k),
                (Segment::Index(i), Value::Array(a)) => a.get(*i),
                _ => None,
            };
            let present = child.is_some();
            // Descend through members that exist and can hold the rest of the path.
            if !last && child.is_some_and(|c| c.is_object() || c.is_array()) {
                node = child_mut(node, seg)?;
                continue;
            }
            if !present && value.is_null() {
                return Ok(None);
            }
            let inner = nest(&self.segments[depth + 1..], value)?;
            let op = if present {
                PatchOpKind::Replace
            } else {
                PatchOpKind::Add
            };
            let target = pointer(&self.segments[..=depth]);
            match (seg, &mut *node) {
                (Segment::Key(k), Value::Object(o)) => {
                    o.insert(k.clone(), inner.clone());
                }
                (Segment::Index(i), Value::Array(a)) if *i < a.len() => a[*i] = inner.clone(),
                (Segment::Index(i), Value::Array(a)) if *i == a.len() => a.push(inner.clone()),
                _ => {
                    return Err(format!(
                        "cannot write {}: {} is not there to hold it",
                        self.text,
                        pointer(&self.segments[..depth])
                    ));
                }
            }
            return Ok(Some(PatchOp {
                op,
                path: target,
                value: inner,
            }));
        }
        Err(format!("cannot write the empty path {}", self.text))
    }
}

impl fmt::Display for ReferralPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn child_mut<'a>(node: &'a mut Value, seg: &Segment) -> Result<&'a mut Value, String> {
    match (seg, node) {
        (Segment::Key(k), Value::Object(o)) => o.get_mut(k),
        (Segment::Index(i), Value::Array(a)) => a.get_mut(*i),
        _ => None,
    }
    .ok_or_else(|| "path step vanished while writing".to_owned())
}

/// Builds the value that, placed at a missing member, holds `value` at `rest`.
fn nest(rest: &[Segment], value: Value) -> Result<Value, String> {
    rest.iter().rev().try_fold(value, |inner, seg| match seg {
        Segment::Key(k) => {
            let mut o = Map::new();
            o.insert(k.clone(), inner);
            Ok(Value::Object(o))
        }
        Segment::Index(0) => Ok(Value::Array(vec![inner])),
        Segment::Index(i) => Err(format!(
            "cannot create array element [{i}] where the array is missing"
        )),
    })
}

fn pointer(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Segment::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// A JSON Patch operation kind; refsync only ever adds or replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Sets a member that is not there yet.
    Add,
    /// Overwrites a member that is there.
    Replace,
}

/// One JSON Patch operation for Partner Center's `PATCH …/referrals/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    /// `add` or `replace`.
    pub op: PatchOpKind,
    /// JSON Pointer, e.g. `/details/dealValue`.
    pub path: String,
    /// The value in Partner Center's wire form.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> ReferralPath {
        ReferralPath::parse(s).unwrap()
    }

    #[test]
    fn paths_parse_and_point() {
        assert_eq!(p("details.dealValue").pointer(), "/details/dealValue");
        assert_eq!(
            p("customerProfile.team[0].email").pointer(),
            "/customerProfile/team/0/email"
        );
        for bad in ["", "a..b", "a[", "a[x]", "a]", "a b", "a.[0]", "a-b"] {
            assert!(ReferralPath::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn reads_missing_steps_as_null() {
        let doc = json!({"customerProfile": {"team": [{"email": "a@b"}]}});
        assert_eq!(p("customerProfile.team[0].email").get(&doc), &json!("a@b"));
        assert_eq!(p("customerProfile.team[1].email").get(&doc), &Value::Null);
        assert_eq!(p("details.dealValue").get(&doc), &Value::Null);
    }

    #[test]
    fn overlap_is_prefix_either_way() {
        assert!(p("details").overlaps(&p("details.notes")));
        assert!(p("details.notes").overlaps(&p("details")));
        assert!(!p("details.notes").overlaps(&p("details.currency")));
        assert!(!p("team[0]").overlaps(&p("team[1]")));
    }

    #[test]
    fn writes_replace_add_and_build_parents() {
        let mut doc = json!({"status": "New", "details": {"notes": "x"}, "customerProfile": null});
        let op = p("status")
            .write(&mut doc, json!("Active"))
            .unwrap()
            .unwrap();
        assert_eq!((op.op, op.path.as_str()), (PatchOpKind::Replace, "/status"));
        let op = p("details.currency")
            .write(&mut doc, json!("USD"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (op.op, op.path.as_str()),
            (PatchOpKind::Add, "/details/currency")
        );
        let op = p("inviteContext.assistanceRequestCode")
            .write(&mut doc, json!("GeneralOrOther"))
            .unwrap()
            .unwrap();
        assert_eq!(op.path, "/inviteContext");
        assert_eq!(op.value, json!({"assistanceRequestCode": "GeneralOrOther"}));
        // A null parent is replaced by the nested value.
        let op = p("customerProfile.team[0].email")
            .write(&mut doc, json!("a@b"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (op.op, op.path.as_str()),
            (PatchOpKind::Replace, "/customerProfile")
        );
        assert_eq!(op.value, json!({"team": [{"email": "a@b"}]}));
        // The next write sees the previous one.
        let op = p("customerProfile.team[0].firstName")
            .write(&mut doc, json!("Sue"))
            .unwrap()
            .unwrap();
        assert_eq!(op.path, "/customerProfile/team/0/firstName");
        assert_eq!(doc["customerProfile"]["team"][0]["firstName"], "Sue");
        // Null where nothing is needs no operation; a sparse array cannot be made.
        assert_eq!(
            p("details.closingDateTime").write(&mut doc, Value::Null),
            Ok(None)
        );
        assert!(p("team[2].email").write(&mut doc, json!("x")).is_err());
    }
}
