//! `refsync mapping check` on the shipped mappings (built in and as files), with a
//! referral rendered into the record it becomes, and on broken input, whose errors
//! must name the file and the field.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use refsync::config::{Config, CrmKind};
use refsync::operator::mapping::{MappingSource, new_record, resolve_mapping};
use refsync::operator::{MappingCheckArgs, MappingCommand, OperatorCommand, run_operator};
use refsync_core::CrmEntity;
use serde_json::json;
use std::path::PathBuf;

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../mappings/{name}.toml"))
}

fn check(
    crm: Option<CrmKind>,
    mapping: Option<PathBuf>,
    referral: Option<PathBuf>,
) -> OperatorCommand {
    OperatorCommand::Mapping(MappingCommand::Check(MappingCheckArgs {
        crm,
        mapping,
        referral,
    }))
}

fn referral_file(status: &str, substatus: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let body = json!({
        "id": "0e4f9a52-6d7b-4c1a-9e39-5b7f0c2d8a11",
        "engagementId": "a3c1b2d4-0000-4000-8000-00000000e001",
        "name": "Fabrikam data platform",
        "status": status,
        "substatus": substatus,
        "type": "Shared",
        "qualification": "SalesQualified",
        "details": {"dealValue": 125000, "currency": "EUR", "closingDateTime": "2027-02-28T00:00:00Z", "notes": "Wants a pilot in Q1"},
        "customerProfile": {
            "name": "Fabrikam GmbH",
            "address": {"addressLine1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "country": "DE"},
            "team": [{"firstName": "Grace", "lastName": "Hopper", "email": "grace@fabrikam.example", "phoneNumber": "+49 30 123"}]
        }
    });
    std::fs::write(file.path(), body.to_string()).unwrap();
    file
}

#[tokio::test]
async fn the_shipped_mappings_are_valid_built_in_and_as_files() {
    let config = Config::default();
    for kind in [CrmKind::Dynamics, CrmKind::Salesforce] {
        let out = run_operator(&config, check(Some(kind), None, None))
            .await
            .unwrap();
        assert!(
            out.text
                .starts_with(&format!("the built-in {kind} mapping: valid")),
            "{}",
            out.text
        );
        for needle in [
            "[lead]",
            "[opportunity]",
            "referral path",
            "status",
            "pc_to_crm",
            "newest",
        ] {
            assert!(
                out.text.contains(needle),
                "{needle:?} missing from\n{}",
                out.text
            );
        }
        let file = shipped(&kind.to_string());
        let from_file = run_operator(&config, check(None, Some(file.clone()), None))
            .await
            .unwrap();
        // The compiled-in mapping is the shipped file: same fields, same report.
        assert_eq!(
            from_file.text.lines().skip(1).collect::<Vec<_>>(),
            out.text.lines().skip(1).collect::<Vec<_>>()
        );
        assert!(
            from_file.text.contains("salesforce.toml") || from_file.text.contains("dynamics.toml")
        );
    }
}

#[tokio::test]
async fn a_referral_becomes_a_lead_before_acceptance_and_an_opportunity_after() {
    let config = Config::default();
    let new = referral_file("New", "Pending");
    let out = run_operator(
        &config,
        check(Some(CrmKind::Salesforce), None, Some(new.path().into())),
    )
    .await
    .unwrap();
    for needle in [
        "becomes a new lead (Lead)",
        "upsert key: Referral_Identifier__c = 0e4f9a52-6d7b-4c1a-9e39-5b7f0c2d8a11",
        "Wants a pilot in Q1",
        "Fabrikam GmbH",
    ] {
        assert!(
            out.text.contains(needle),
            "{needle:?} missing from\n{}",
            out.text
        );
    }

    let accepted = referral_file("Active", "Accepted");
    let out = run_operator(
        &config,
        check(Some(CrmKind::Dynamics), None, Some(accepted.path().into())),
    )
    .await
    .unwrap();
    assert!(
        out.text
            .contains("becomes a new opportunity (opportunities)"),
        "{}",
        out.text
    );
    assert!(out.text.contains("account: matched on"), "{}", out.text);
    assert!(out.text.contains("10115"), "{}", out.text);
    assert!(out.text.contains("contact: matched on"), "{}", out.text);
    assert!(out.text.contains("grace@fabrikam.example"), "{}", out.text);

    // The same values the engine creates the record with.
    let (_, mapping) = resolve_mapping(&config, Some(CrmKind::Dynamics), None).unwrap();
    let referral = refsync::operator::mapping::read_referral_file(accepted.path()).unwrap();
    let record = new_record(&mapping, &referral).unwrap();
    assert_eq!(record.entity, CrmEntity::Opportunity);
    let engine_body = refsync_engine::decide::new_record_fields(
        mapping.entity(&CrmEntity::Opportunity).unwrap(),
        &referral,
    )
    .unwrap();
    assert_eq!(record.fields, engine_body);
}

#[tokio::test]
async fn the_configured_mapping_file_is_the_default() {
    let mut config = Config::default();
    config.crm.kind = Some(CrmKind::Dynamics);
    config.crm.mapping = Some(shipped("salesforce"));
    let (source, mapping) = resolve_mapping(&config, None, None).unwrap();
    assert_eq!(source, MappingSource::File(shipped("salesforce")));
    assert_eq!(mapping.entity(&CrmEntity::Lead).unwrap().collection, "Lead");
}

#[tokio::test]
async fn a_broken_mapping_or_referral_is_a_clear_error() {
    let config = Config::default();
    let text = std::fs::read_to_string(shipped("salesforce")).unwrap();
    // The lead's notes flow both ways; without an owner nobody can win a conflict.
    let notes = text.find("name = \"notes\"").unwrap();
    let owner = notes + text[notes..].find("owner = \"newest\"\n").unwrap();
    let broken = format!(
        "{}{}",
        &text[..owner],
        &text[owner + "owner = \"newest\"\n".len()..]
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), broken).unwrap();
    let err = run_operator(&config, check(None, Some(file.path().into()), None))
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
    assert!(err.contains(r#"[lead] field "notes""#), "{err}");
    assert!(err.contains("owner"), "{err}");

    let not_a_referral = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_referral.path(), "[1, 2]").unwrap();
    let err = run_operator(
        &config,
        check(
            Some(CrmKind::Salesforce),
            None,
            Some(not_a_referral.path().into()),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not a referral's JSON"),
        "{err:#}"
    );

    let err = run_operator(&config, check(None, None, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--crm"), "{err}");
}
