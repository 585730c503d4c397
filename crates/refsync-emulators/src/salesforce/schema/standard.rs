//! The standard objects: Account, Contact, Lead, Opportunity (with the
//! fields of crm.md §2.8 and the usual Salesforce lengths where it gives none),
//! and the read-only User, LeadStatus and OpportunityStage tables.

use super::super::config::SalesforceConfig;
use super::super::value::Value;
use super::{FieldDef, FieldType, ObjectDef, ObjectKind, SchemaError, stage_names};

fn text(name: &str, label: &str, len: u32) -> FieldDef {
    FieldDef::new(name, label, FieldType::Text(len))
}

fn area(name: &str, label: &str, len: u32) -> FieldDef {
    FieldDef::new(name, label, FieldType::TextArea(len))
}

fn picklist(name: &str, label: &str, values: &[&str], restricted: bool) -> FieldDef {
    FieldDef::new(
        name,
        label,
        FieldType::Picklist {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            restricted,
        },
    )
}

fn reference(name: &str, label: &str, target: &str, relationship: &str) -> FieldDef {
    FieldDef::new(
        name,
        label,
        FieldType::Reference {
            target: target.to_owned(),
            relationship: relationship.to_owned(),
        },
    )
}

/// Owner and audit fields every writable object has, appended after its own fields.
fn system_fields(object: &mut ObjectDef) {
    object.push(reference("OwnerId", "Owner ID", "User", "Owner"));
    object.push(FieldDef::new("IsDeleted", "Deleted", FieldType::Boolean).read_only());
    object.push(FieldDef::new("CreatedDate", "Created Date", FieldType::DateTime).read_only());
    object.push(reference("CreatedById", "Created By ID", "User", "CreatedBy").read_only());
    object.push(
        FieldDef::new(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::DateTime,
        )
        .read_only(),
    );
    object.push(
        reference(
            "LastModifiedById",
            "Last Modified By ID",
            "User",
            "LastModifiedBy",
        )
        .read_only(),
    );
    object
        .push(FieldDef::new("SystemModstamp", "System Modstamp", FieldType::DateTime).read_only());
}

fn address(object: &mut ObjectDef, prefix: &str, label: &str) {
    object.push(area(
        &format!("{prefix}Street"),
        &format!("{label} Street"),
        255,
    ));
    object.push(text(&format!("{prefix}City"), &format!("{label} City"), 40));
    object.push(text(
        &format!("{prefix}State"),
        &format!("{label} State/Province"),
        80,
    ));
    object.push(text(
        &format!("{prefix}PostalCode"),
        &format!("{label} Zip/Postal Code"),
        20,
    ));
    object.push(text(
        &format!("{prefix}Country"),
        &format!("{label} Country"),
        80,
    ));
}

const LEAD_SOURCES: [&str; 5] = [
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];
const INDUSTRIES: [&str; 8] = [
    "Agriculture",
    "Banking",
    "Consulting",
    "Education",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Technology",
];

pub(super) fn standard_objects(config: &SalesforceConfig) -> Result<Vec<ObjectDef>, SchemaError> {
    let statuses: Vec<&str> = config
        .lead
        .statuses
        .iter()
        .map(|s| s.api_name.as_str())
        .collect();
    if statuses.is_empty() || config.lead.statuses.iter().filter(|s| s.is_default).count() != 1 {
        return Err(SchemaError::Tables(
            "lead.statuses needs values and exactly one is_default".to_owned(),
        ));
    }
    let stages = stage_names(config);
    if stages.is_empty() {
        return Err(SchemaError::Tables(
            "opportunity_stages is empty".to_owned(),
        ));
    }
    let stage_refs: Vec<&str> = stages.iter().map(String::as_str).collect();

    let mut account = ObjectDef::new("Account", "Account", "Accounts", "001", ObjectKind::Account);
    account.push(text("Name", "Account Name", 255).required());
    account.push(picklist(
        "Type",
        "Account Type",
        &[
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Partner",
            "Other",
        ],
        false,
    ));
    account.push(reference(
        "ParentId",
        "Parent Account ID",
        "Account",
        "Parent",
    ));
    address(&mut account, "Billing", "Billing");
    address(&mut account, "Shipping", "Shipping");
    account.push(FieldDef::new(
        "Phone",
        "Account Phone",
        FieldType::Phone(40),
    ));
    account.push(FieldDef::new("Website", "Website", FieldType::Url(255)));
    account.push(picklist("Industry", "Industry", &INDUSTRIES, false));
    account.push(FieldDef::new(
        "AnnualRevenue",
        "Annual Revenue",
        FieldType::Currency(18, 0),
    ));
    account.push(FieldDef::new(
        "NumberOfEmployees",
        "Employees",
        FieldType::Int,
    ));
    account.push(area("Description", "Account Description", 32_000));
    system_fields(&mut account);

    let mut contact = ObjectDef::new("Contact", "Contact", "Contacts", "003", ObjectKind::Contact);
    contact.push(reference("AccountId", "Account ID", "Account", "Account"));
    contact.push(text("LastName", "Last Name", 80).required());
    contact.push(text("FirstName", "First Name", 40));
    contact.push(text("Name", "Full Name", 121).read_only());
    contact.push(text("Title", "Title", 128));
    address(&mut contact, "Mailing", "Mailing");
    contact.push(FieldDef::new(
        "Phone",
        "Business Phone",
        FieldType::Phone(40),
    ));
    contact.push(FieldDef::new(
        "MobilePhone",
        "Mobile Phone",
        FieldType::Phone(40),
    ));
    contact.push(FieldDef::new("Email", "Email", FieldType::Email));
    contact.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    contact.push(area("Description", "Contact Description", 32_000));
    system_fields(&mut contact);

    let mut lead = ObjectDef::new("Lead", "Lead", "Leads", "00Q", ObjectKind::Lead);
    lead.push(text("LastName", "Last Name", 80).required());
    lead.push(text("FirstName", "First Name", 40));
    lead.push(text("Name", "Full Name", 121).read_only());
    lead.push(text("Title", "Title", 128));
    lead.push(text("Company", "Company", 255).required());
    address(&mut lead, "", "");
    for f in lead.fields.iter_mut() {
        f.label = f.label.trim().to_owned();
    }
    lead.push(FieldDef::new("Phone", "Phone", FieldType::Phone(40)));
    lead.push(FieldDef::new(
        "MobilePhone",
        "Mobile Phone",
        FieldType::Phone(40),
    ));
    lead.push(FieldDef::new("Email", "Email", FieldType::Email));
    lead.push(FieldDef::new("Website", "Website", FieldType::Url(255)));
    lead.push(area("Description", "Description", 32_000));
    lead.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    let mut status = picklist("Status", "Status", &statuses, true).required();
    if config.lead.default_status_on_create {
        status.default = config
            .lead
            .statuses
            .iter()
            .find(|s| s.is_default)
            .map(|s| Value::Text(s.api_name.clone()));
    }
    lead.push(status);
    lead.push(picklist("Industry", "Industry", &INDUSTRIES, false));
    lead.push(picklist(
        "Rating",
        "Rating",
        &["Hot", "Warm", "Cold"],
        false,
    ));
    lead.push(FieldDef::new(
        "AnnualRevenue",
        "Annual Revenue",
        FieldType::Currency(18, 0),
    ));
    lead.push(FieldDef::new(
        "NumberOfEmployees",
        "Employees",
        FieldType::Int,
    ));
    lead.push(FieldDef::new("IsConverted", "Converted", FieldType::Boolean).read_only());
    lead.push(FieldDef::new("ConvertedDate", "Converted Date", FieldType::Date).read_only());
    lead.push(
        reference(
            "ConvertedAccountId",
            "Converted Account ID",
            "Account",
            "ConvertedAccount",
        )
        .read_only(),
    );
    lead.push(
        reference(
            "ConvertedContactId",
            "Converted Contact ID",
            "Contact",
            "ConvertedContact",
        )
        .read_only(),
    );
    lead.push(
        reference(
            "ConvertedOpportunityId",
            "Converted Opportunity ID",
            "Opportunity",
            "ConvertedOpportunity",
        )
        .read_only(),
    );
    system_fields(&mut lead);

    let mut opp = ObjectDef::new(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        ObjectKind::Opportunity,
    );
    opp.push(reference("AccountId", "Account ID", "Account", "Account"));
    opp.push(reference("ContactId", "Contact ID", "Contact", "Contact"));
    opp.push(text("Name", "Name", 120).required());
    opp.push(area("Description", "Description", 32_000));
    opp.push(picklist("StageName", "Stage", &stage_refs, true).required());
    opp.push(FieldDef::new(
        "Amount",
        "Amount",
        FieldType::Currency(18, 2),
    ));
    opp.push(FieldDef::new(
        "Probability",
        "Probability (%)",
        FieldType::Percent(3, 0),
    ));
    opp.push(
        FieldDef::new(
            "ExpectedRevenue",
            "Expected Amount",
            FieldType::Currency(18, 2),
        )
        .read_only(),
    );
    opp.push(FieldDef::new("CloseDate", "Close Date", FieldType::Date).required());
    opp.push(picklist(
        "Type",
        "Opportunity Type",
        &[
            "Existing Customer - Upgrade",
            "Existing Customer - Replacement",
            "Existing Customer - Downgrade",
            "New Customer",
        ],
        false,
    ));
    opp.push(text("NextStep", "Next Step", 255));
    opp.push(picklist("LeadSource", "Lead Source", &LEAD_SOURCES, false));
    opp.push(FieldDef::new("IsClosed", "Closed", FieldType::Boolean).read_only());
    opp.push(FieldDef::new("IsWon", "Won", FieldType::Boolean).read_only());
    opp.push(
        picklist(
            "ForecastCategory",
            "Forecast Category",
            &["Omitted", "Pipeline", "BestCase", "Forecast", "Closed"],
            true,
        )
        .read_only(),
    );
    opp.push(picklist(
        "ForecastCategoryName",
        "Forecast Category",
        &["Omitted", "Pipeline", "Best Case", "Commit", "Closed"],
        true,
    ));
    opp.push(FieldDef::new("FiscalQuarter", "Fiscal Quarter", FieldType::Int).read_only());
    opp.push(FieldDef::new("FiscalYear", "Fiscal Year", FieldType::Int).read_only());
    system_fields(&mut opp);

    let mut user = ObjectDef::new("User", "User", "Users", "005", ObjectKind::User);
    user.writable = false;
    user.push(text("Username", "Username", 80).read_only());
    user.push(text("FirstName", "First Name", 40).read_only());
    user.push(text("LastName", "Last Name", 80).read_only());
    user.push(text("Name", "Full Name", 121).read_only());
    user.push(FieldDef::new("Email", "Email", FieldType::Email).read_only());
    user.push(FieldDef::new("IsActive", "Active", FieldType::Boolean).read_only());

    let mut lead_status = ObjectDef::new(
        "LeadStatus",
        "Lead Status Value",
        "Lead Status Values",
        "01J",
        ObjectKind::LeadStatus,
    );
    lead_status.writable = false;
    lead_status.push(text("ApiName", "Api Name", 255).read_only());
    lead_status.push(text("MasterLabel", "Master Label", 255).read_only());
    lead_status.push(FieldDef::new("SortOrder", "Sort Order", FieldType::Int).read_only());
    lead_status.push(FieldDef::new("IsDefault", "Is Default", FieldType::Boolean).read_only());
    lead_status.push(FieldDef::new("IsConverted", "Is Converted", FieldType::Boolean).read_only());

    let mut stage = ObjectDef::new(
        "OpportunityStage",
        "Opportunity Stage",
        "Opportunity Stages",
        "01J",
        ObjectKind::OpportunityStage,
    );
    stage.writable = false;
    stage.push(text("ApiName", "Api Name", 255).read_only());
    stage.push(text("MasterLabel", "Master Label", 255).read_only());
    stage.push(FieldDef::new("IsActive", "Is Active", FieldType::Boolean).read_only());
    stage.push(FieldDef::new("SortOrder", "Sort Order", FieldType::Int).read_only());
    stage.push(FieldDef::new("IsClosed", "Is Closed", FieldType::Boolean).read_only());
    stage.push(FieldDef::new("IsWon", "Is Won", FieldType::Boolean).read_only());
    stage.push(
        FieldDef::new(
            "DefaultProbability",
            "Default Probability",
            FieldType::Percent(3, 0),
        )
        .read_only(),
    );
    stage.push(text("ForecastCategory", "Forecast Category", 40).read_only());
    stage.push(text("ForecastCategoryName", "Forecast Category Name", 40).read_only());

    Ok(vec![account, contact, lead, opp, user, lead_status, stage])
}
