//! Parser, printer and evaluator tests, including every filter in the references.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn referral() -> Value {
    json!({
        "id": "c5fbb3b6-be74-4795-9fb5-4324c73fed37",
        "engagementId": "65edc0b5-3485-41b7-a17e-dfa9ef4706e2",
        "name": "Test Cosell Invite_20",
        "createdDateTime": "2020-10-30T21:03:00.0000000Z",
        "updatedDateTime": "2024-03-05T10:15:30.1234567Z",
        "status": "New", "substatus": "Pending",
        "qualification": "SalesQualified", "type": "Shared", "direction": "Incoming",
        "customerProfile": {
            "name": "Fabrikam Customer Inc",
            "address": { "city": "Redmond", "postalCode": "98052", "country": "US" }
        },
        "details": { "dealValue": 50000, "currency": "USD" },
        "team": [
            { "firstName": "John", "email": "john.doe@contoso.com" },
            { "firstName": "R2", "email": "r2d2@contoso.com" }
        ]
    })
}

fn holds(filter: &str, record: &Value) -> bool {
    let e = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    matches(&e, record, &EvalOptions::PARTNER_CENTER)
}

#[test]
fn every_partner_center_example_parses_and_evaluates() {
    // partner-center.md §1.4.
    let r = referral();
    assert!(holds(
        "engagementId eq '65edc0b5-3485-41b7-a17e-dfa9ef4706e2'",
        &r
    ));
    assert!(holds(
        "status eq 'New' and qualification eq 'SalesQualified'",
        &r
    ));
    assert!(holds(
        "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
        &r
    ));
    assert!(holds("(type eq 'Shared' and direction eq 'Incoming')", &r));
    assert!(holds(
        "(direction eq 'Incoming' and substatus eq 'Pending')",
        &r
    ));
    assert!(!holds(
        "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')",
        &r
    ));
    assert!(holds(
        "status eq 'New' and direction eq 'Incoming' and type eq 'Shared' and team/any(t:t/email eq 'r2d2@contoso.com')",
        &r
    ));
    assert!(!holds("team/any(t:t/email eq 'c3po@contoso.com')", &r));
    assert!(holds("team/all(t:endswith(t/email,'@contoso.com'))", &r));
    assert!(holds("team/any()", &r));
    assert!(!holds(
        "engagementId eq '00000000-3485-41b7-a17e-dfa9ef4706e2'",
        &r
    ));
}

#[test]
fn date_time_filters_compare_instants() {
    let r = referral();
    assert!(holds("updatedDateTime ge 2024-01-01T00:00:00Z", &r));
    assert!(holds("updatedDateTime gt 2024-03-05T10:15:30Z", &r));
    assert!(!holds("updatedDateTime gt 2024-03-05T10:15:30.2Z", &r));
    assert!(holds("updatedDateTime lt 2024-03-05T12:15:31+02:00", &r));
    assert!(!holds("updatedDateTime ge 2024-03-05T12:15:31+02:00", &r));
    // A quoted date-time still compares as one when both sides read as date-times.
    assert!(holds("createdDateTime eq '2020-10-30T21:03:00Z'", &r));
    let plain = EvalOptions {
        datetime_aware: false,
        ..EvalOptions::PARTNER_CENTER
    };
    let e = parse_filter("createdDateTime eq '2020-10-30T21:03:00Z'").unwrap();
    assert!(!matches(&e, &r, &plain));
    assert!(holds("createdDateTime le 2020-10-30", &r));
}

#[test]
fn dataverse_forms_from_the_reference() {
    // crm.md §1.7.
    let lead = json!({
        "leadid": "00000000-0000-0000-0000-000000000042",
        "new_referralid": "RF-1",
        "lastname": "O'Bryan",
        "_parentaccountid_value": "C5FBB3B6-BE74-4795-9FB5-4324C73FED37",
        "primarycontactid": { "fullname": "Sue Smith" },
        "modifiedon": "2024-02-01T08:00:00Z",
        "estimatedclosedate": "2025-06-30",
        "statecode": 0,
        "name": "A Sample deal"
    });
    let dv = |f: &str| {
        let e = parse_filter(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        matches(&e, &lead, &EvalOptions::DATAVERSE)
    };
    assert!(dv("new_referralid eq 'RF-1'"));
    assert!(dv("new_referralid eq 'rf-1'"));
    assert!(dv("lastname eq 'O''Bryan'"));
    assert!(dv(
        "_parentaccountid_value eq c5fbb3b6-be74-4795-9fb5-4324c73fed37"
    ));
    assert!(dv("primarycontactid/fullname eq 'sue smith'"));
    assert!(dv("modifiedon gt 2024-01-01T00:00:00Z"));
    assert!(dv("estimatedclosedate eq 2025-06-30"));
    assert!(dv("statecode eq 0 and statecode le 1"));
    assert!(dv("not contains(name,'other')"));
    assert!(!dv("not contains(name,'SAMPLE')"));
    assert!(dv(
        "startswith(name,'a s') and endswith(tolower(name),'deal')"
    ));
    assert!(dv("toupper(lastname) eq 'O''BRYAN'"));
    assert!(dv(
        "Microsoft.Dynamics.CRM.In(PropertyName='new_referralid',PropertyValues=['RF-0','RF-1'])"
    ));
    assert!(dv(
        r#"Microsoft.Dynamics.CRM.In(PropertyName='new_referralid',PropertyValues=["RF-1"])"#
    ));
    assert!(!dv(
        "Microsoft.Dynamics.CRM.NotIn(PropertyName='new_referralid',PropertyValues=['RF-1'])"
    ));
    assert!(dv("missing eq null and new_referralid ne null"));
    // Case-sensitive services do not fold.
    let e = parse_filter("new_referralid eq 'rf-1'").unwrap();
    assert!(!matches(&e, &lead, &EvalOptions::PARTNER_CENTER));
}

#[test]
fn numbers_compare_numerically_and_with_numeric_strings() {
    let r = referral();
    assert!(holds("details/dealValue gt 49999.5", &r));
    assert!(holds("details/dealValue eq 50000", &r));
    assert!(holds("details/dealValue eq '50000'", &r));
    assert!(!holds("details/dealValue lt -1", &r));
    assert!(!holds("details/dealValue gt 'abc'", &r));
}

#[test]
fn precedence_and_associativity() {
    let p = |s: &str| parse_filter(s).unwrap();
    let a = || Box::new(Expr::Path(vec!["a".into()]));
    let eq1 = |x: Box<Expr>| Expr::Compare {
        op: CompareOp::Eq,
        left: x,
        right: Box::new(Expr::Literal(Literal::Int(1))),
    };
    assert_eq!(
        p("a eq 1 or a eq 1 and not a eq 1"),
        Expr::Or(
            Box::new(eq1(a())),
            Box::new(Expr::And(
                Box::new(eq1(a())),
                Box::new(Expr::Not(Box::new(eq1(a()))))
            ))
        )
    );
    assert_eq!(
        p("(a eq 1 or a eq 1) and a eq 1").to_string(),
        "(a eq 1 or a eq 1) and a eq 1"
    );
    assert_eq!(
        p("not (a eq 1 and a eq 1)").to_string(),
        "not (a eq 1 and a eq 1)"
    );
    assert_eq!(
        p("a eq 1 and (a eq 1 and a eq 1)").to_string(),
        "a eq 1 and (a eq 1 and a eq 1)"
    );
}

#[test]
fn errors_name_the_option_the_position_and_the_problem() {
    let e = parse_filter("status eq").unwrap_err();
    assert_eq!(e.position, Some(9));
    assert_eq!(
        e.to_string(),
        "Syntax error at position 9 in $filter 'status eq': expected a value, found the end of the expression."
    );
    let e = parse_filter("status eq 'New' and").unwrap_err();
    assert_eq!(e.position, Some(19));
    let e = parse_filter("(status eq 'New'").unwrap_err();
    assert!(e.message.contains("expected ')'"), "{e}");
    let e = parse_filter("frobnicate(name,'x')").unwrap_err();
    assert_eq!(e.position, Some(0));
    assert!(e.message.contains("unknown function 'frobnicate'"));
    let e = parse_filter("contains(name)").unwrap_err();
    assert!(e.message.contains("takes 2 argument(s), got 1"), "{e}");
    let e = parse_filter("status EQ 'New'").unwrap_err();
    assert_eq!(e.position, Some(7));
    let e = parse_filter("").unwrap_err();
    assert!(e.message.contains("empty"));
    let e = parse_filter("team/any(t t/email eq 'x')").unwrap_err();
    assert!(e.message.contains("':'"), "{e}");
    let deep = format!("{}a eq 1{}", "(".repeat(200), ")".repeat(200));
    assert!(
        parse_filter(&deep)
            .unwrap_err()
            .message
            .contains("too deeply")
    );
    let e = parse_filter(
        "Microsoft.Dynamics.CRM.LastXHours(PropertyName='modifiedon',PropertyValue=1)",
    )
    .unwrap_err();
    assert!(e.message.contains("not supported"));
}

#[test]
fn orderby_select_and_top() {
    let rows = vec![
        json!({"id": "1", "createdDateTime": "2024-01-02T00:00:00Z", "name": "b", "x": 1}),
        json!({"id": "2", "createdDateTime": "2024-01-01T00:00:00Z", "name": "a", "x": 2}),
        json!({"id": "3", "name": "c", "x": 3}),
        json!({"id": "4", "createdDateTime": "2024-01-02T00:00:00Z", "name": "a", "x": 4}),
    ];
    let q = QueryOptions::from_query([
        ("$orderby", "createdDateTime desc, name asc"),
        ("$select", "id,name"),
        ("$top", "3"),
        ("$skip", "ignored here"),
    ])
    .unwrap();
    let out = q.apply(&rows, &EvalOptions::PARTNER_CENTER, &["x"]);
    let ids: Vec<_> = out.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["4", "1", "2"]);
    assert_eq!(out[0], json!({"id": "4", "name": "a", "x": 4}));

    let asc = OrderBy::parse("createdDateTime").unwrap();
    let mut sorted = rows.clone();
    asc.sort(&mut sorted, &EvalOptions::PARTNER_CENTER);
    assert_eq!(sorted[0]["id"], "3", "nulls sort first ascending");
    assert_eq!(asc.to_string(), "createdDateTime");

    let q = QueryOptions::from_query([("$filter", "x ge 2")]).unwrap();
    assert_eq!(
        q.filter_and_sort(&rows, &EvalOptions::PARTNER_CENTER).len(),
        3
    );

    assert!(parse_top("-1").is_err());
    assert!(Select::parse("id,,name").is_err());
    assert!(OrderBy::parse("name sideways").is_err());
    assert_eq!(
        parse_top("x").unwrap_err().to_string(),
        "Invalid value for $top 'x': expected a non-negative integer."
    );
}

// ----- property test: printing then parsing gives the same tree -----

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("not a keyword", |s| {
        ![
            "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "true", "false", "null", "any",
            "all", "asc", "desc",
        ]
        .contains(&s.as_str())
            && Function::from_name(s).is_none()
    })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i64>().prop_map(Literal::Int),
        (any::<i64>(), 0u32..8)
            .prop_map(|(m, s)| Literal::Decimal(rust_decimal::Decimal::new(m, s))),
        "[ -~]{0,12}".prop_map(Literal::String),
        (0i64..4_000_000_000i64, 0u32..1_000_000_000, -14i32..=14).prop_map(|(secs, nanos, h)| {
            let offset = chrono::FixedOffset::east_opt(h * 3600).unwrap();
            let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
            Literal::DateTime(utc.with_timezone(&offset))
        }),
        (1i32..9999, 1u32..13, 1u32..29).prop_map(|(y, m, d)| {
            Literal::Date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap())
        }),
        any::<u128>().prop_map(|n| Literal::Guid(uuid::Uuid::from_u128(n))),
    ]
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(ident(), 1..4)
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        literal().prop_map(Expr::Literal),
        path().prop_map(Expr::Path),
        (
            path(),
            prop::collection::vec(
                literal().prop_filter("no null", |l| *l != Literal::Null),
                0..3
            ),
            any::<bool>(),
            ident()
        )
            .prop_map(|(_, values, negated, property)| Expr::In {
                property,
                values,
                negated
            }),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let op = prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
        ];
        prop_oneof![
            (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Compare {
                op,
                left: Box::new(l),
                right: Box::new(r)
            }),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Call {
                function: Function::Contains,
                args: vec![a, b]
            }),
            inner.clone().prop_map(|a| Expr::Call {
                function: Function::ToLower,
                args: vec![a]
            }),
            (path(), ident(), inner.clone(), any::<bool>()).prop_map(
                |(collection, var, body, all)| Expr::Lambda {
                    collection,
                    kind: if all {
                        LambdaKind::All
                    } else {
                        LambdaKind::Any
                    },
                    body: Some((var, Box::new(body))),
                }
            ),
            path().prop_map(|collection| Expr::Lambda {
                collection,
                kind: LambdaKind::Any,
                body: None
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_reparse_to_the_same_tree(e in expr()) {
        let printed = e.to_string();
        let reparsed = parse_filter(&printed);
        prop_assert_eq!(reparsed.as_ref().ok(), Some(&e), "printed: {} -> {:?}", printed, reparsed);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in "[ -~]{0,40}") {
        let _ = parse_filter(&s);
        let _ = OrderBy::parse(&s);
    }
}
