//! The standard tables: lead, opportunity, account, contact, transactioncurrency,
//! systemuser and opportunityclose, with the columns, limits and state tables of
//! crm.md §1.4. Columns the reference does not list (addresses, `accountnumber`,
//! `websiteurl`, …) use the lengths of a stock Dynamics 365 Sales org and are
//! marked so; they are there because the default mapping writes them.

use super::schema::{
    Choice, Column, ColumnKind, LookupTarget, Requirement, StateDef, StateModel, Table, TableRole,
};
use serde_json::json;

fn text(name: &str, label: &str, max: usize) -> Column {
    Column::new(name, label, ColumnKind::Text { max_len: Some(max) })
}

fn memo(name: &str, label: &str, max: usize) -> Column {
    Column::new(name, label, ColumnKind::Memo { max_len: max })
}

fn money(name: &str, label: &str, min: f64, max: f64) -> Column {
    Column::new(name, label, ColumnKind::Money { min, max })
}

fn lookup(name: &str, label: &str, target: &str) -> Column {
    Column::new(
        name,
        label,
        ColumnKind::Lookup {
            targets: vec![LookupTarget {
                table: target.to_owned(),
                navigation: name.to_owned(),
            }],
        },
    )
}

/// A Customer column (account or contact) with its two navigation properties.
fn customer(name: &str, label: &str) -> Column {
    Column::new(
        name,
        label,
        ColumnKind::Lookup {
            targets: vec![
                LookupTarget {
                    table: "account".to_owned(),
                    navigation: format!("{name}_account"),
                },
                LookupTarget {
                    table: "contact".to_owned(),
                    navigation: format!("{name}_contact"),
                },
            ],
        },
    )
}

fn choice(name: &str, label: &str, options: &[(i32, &str)]) -> Column {
    Column::new(
        name,
        label,
        ColumnKind::Choice {
            options: options
                .iter()
                .map(|(value, label)| Choice {
                    value: *value,
                    label: (*label).to_owned(),
                })
                .collect(),
        },
    )
}

fn choices(list: &[(i32, &str)]) -> Vec<Choice> {
    list.iter()
        .map(|(value, label)| Choice {
            value: *value,
            label: (*label).to_owned(),
        })
        .collect()
}

/// `statecode`, `statuscode`, and the system columns every user-owned table has.
fn system_columns(pk: &str, label: &str, money: bool) -> (Column, Vec<Column>) {
    let id = Column::new(pk, label, ColumnKind::PrimaryKey).required(Requirement::System);
    let mut tail = vec![
        Column::new("statecode", "Status", ColumnKind::State),
        Column::new("statuscode", "Status Reason", ColumnKind::Status),
        lookup("ownerid", "Owner", "systemuser"),
        lookup("createdby", "Created By", "systemuser").read_only(),
        lookup("modifiedby", "Modified By", "systemuser").read_only(),
        Column::new("createdon", "Created On", ColumnKind::DateTime).read_only(),
        Column::new("modifiedon", "Modified On", ColumnKind::DateTime).read_only(),
        Column::new("versionnumber", "Version Number", ColumnKind::Version).read_only(),
    ];
    if money {
        tail.push(lookup(
            "transactioncurrencyid",
            "Currency",
            "transactioncurrency",
        ));
        tail.push(
            Column::new(
                "exchangerate",
                "Exchange Rate",
                ColumnKind::Decimal { precision: 10 },
            )
            .read_only(),
        );
    }
    (id, tail)
}

fn address_columns() -> Vec<Column> {
    // Not in crm.md: stock Dynamics 365 lengths.
    vec![
        text("address1_line1", "Street 1", 250),
        text("address1_city", "City", 80),
        text("address1_stateorprovince", "State/Province", 50),
        text("address1_postalcode", "ZIP/Postal Code", 20),
        text("address1_country", "Country/Region", 80),
    ]
}

fn assemble(id: Column, mut business: Vec<Column>, tail: Vec<Column>) -> Vec<Column> {
    let mut columns = vec![id];
    columns.append(&mut business);
    columns.extend(tail);
    columns
}

fn state(
    code: i32,
    label: &str,
    statuses: &[(i32, &str)],
    read_only: bool,
    on_create: bool,
) -> StateDef {
    StateDef {
        code,
        label: label.to_owned(),
        default_status: statuses.first().map(|s| s.0).unwrap_or(code + 1),
        statuses: choices(statuses),
        read_only,
        on_create,
        requires_action: None,
    }
}

fn active_inactive(enum_name: &str) -> StateModel {
    StateModel {
        enum_name: enum_name.to_owned(),
        states: vec![
            state(0, "Active", &[(1, "Active")], false, true),
            state(1, "Inactive", &[(2, "Inactive")], false, true),
        ],
    }
}

/// lead (crm.md §1.4).
fn lead() -> Table {
    let (id, tail) = system_columns("leadid", "Lead", true);
    let mut business = vec![
        text("subject", "Topic", 300).required(Requirement::Application),
        text("firstname", "First Name", 50),
        text("lastname", "Last Name", 50).required(Requirement::Application),
        text("fullname", "Name", 160).read_only(),
        text("companyname", "Company Name", 100),
        text("emailaddress1", "Email", 100),
        // crm.md §1.4: telephone1's length is not checked (unconfirmed).
        Column::new(
            "telephone1",
            "Business Phone",
            ColumnKind::Text { max_len: None },
        ),
        text("mobilephone", "Mobile Phone", 20),
        text("jobtitle", "Job Title", 100),
        text("websiteurl", "Website", 200),
        memo("description", "Description", 2000),
        money("estimatedamount", "Est. Value", 0.0, 1_000_000_000_000.0),
        money(
            "estimatedamount_base",
            "Est. Value (Base)",
            0.0,
            1_000_000_000_000.0,
        )
        .read_only(),
        Column::new(
            "estimatedvalue",
            "Est. Value (deprecated)",
            ColumnKind::Double {
                min: -1_000_000_000_000.0,
                max: 1_000_000_000_000.0,
            },
        ),
        Column::new(
            "estimatedclosedate",
            "Est. Close Date",
            ColumnKind::DateOnly,
        ),
        choice(
            "leadsourcecode",
            "Lead Source",
            &[
                (1, "Advertisement"),
                (2, "Employee Referral"),
                (3, "External Referral"),
                (4, "Partner"),
                (5, "Public Relations"),
                (6, "Seminar"),
                (7, "Trade Show"),
                (8, "Web"),
                (9, "Word of Mouth"),
                (10, "Other"),
            ],
        ),
        choice(
            "leadqualitycode",
            "Rating",
            &[(1, "Hot"), (2, "Warm"), (3, "Cold")],
        )
        .default_value(json!(2)),
        lookup("parentaccountid", "Existing Account", "account"),
        lookup("parentcontactid", "Existing Contact", "contact"),
        customer("customerid", "Customer"),
        lookup(
            "qualifyingopportunityid",
            "Qualifying Opportunity",
            "opportunity",
        ),
    ];
    business.splice(10..10, address_columns());
    let mut table = Table::new(
        "lead",
        "leads",
        "leadid",
        "fullname",
        assemble(id, business, tail),
    );
    table.states = Some(StateModel {
        enum_name: "LeadState".to_owned(),
        states: vec![
            state(0, "Open", &[(1, "New"), (2, "Contacted")], false, true),
            state(1, "Qualified", &[(3, "Qualified")], true, false),
            state(
                2,
                "Disqualified",
                &[
                    (4, "Lost"),
                    (5, "Cannot Contact"),
                    (6, "No Longer Interested"),
                    (7, "Canceled"),
                ],
                true,
                false,
            ),
        ],
    });
    table.full_name_from = Some(("firstname".to_owned(), "lastname".to_owned()));
    table.role = TableRole::Lead;
    table
}

/// opportunity (crm.md §1.4). `close_by_action`: a PATCH to Won/Lost is refused.
fn opportunity(close_by_action: bool) -> Table {
    let (id, tail) = system_columns("opportunityid", "Opportunity", true);
    let range = 1_000_000_000_000.0;
    let business = vec![
        text("name", "Topic", 300).required(Requirement::Application),
        customer("customerid", "Potential Customer").required(Requirement::Application),
        money("estimatedvalue", "Est. Revenue", -range, range),
        money("estimatedvalue_base", "Est. Revenue (Base)", -range, range).read_only(),
        Column::new(
            "isrevenuesystemcalculated",
            "Revenue",
            ColumnKind::Boolean {
                no: "User Provided".to_owned(),
                yes: "System Calculated".to_owned(),
            },
        )
        .default_value(json!(false)),
        Column::new(
            "estimatedclosedate",
            "Est. Close Date",
            ColumnKind::DateOnly,
        ),
        Column::new("actualclosedate", "Actual Close Date", ColumnKind::DateOnly),
        money("actualvalue", "Actual Revenue", -range, range),
        money("actualvalue_base", "Actual Revenue (Base)", -range, range).read_only(),
        money("budgetamount", "Budget Amount", -range, range),
        money("budgetamount_base", "Budget Amount (Base)", -range, range).read_only(),
        memo("description", "Description", 2000),
        Column::new(
            "closeprobability",
            "Probability",
            ColumnKind::Integer { min: 0, max: 100 },
        ),
        choice(
            "msdyn_forecastcategory",
            "Forecast Category",
            &[
                (100000001, "Pipeline"),
                (100000002, "Best case"),
                (100000003, "Committed"),
                (100000004, "Omitted"),
                (100000005, "Won"),
                (100000006, "Lost"),
            ],
        )
        .default_value(json!(100000001)),
        text("stepname", "Pipeline Phase", 200),
        choice(
            "salesstage",
            "Sales Stage",
            &[(0, "Qualify"), (1, "Develop"), (2, "Propose"), (3, "Close")],
        ),
        lookup("parentaccountid", "Account", "account"),
        lookup("parentcontactid", "Contact", "contact"),
        lookup("originatingleadid", "Originating Lead", "lead"),
    ];
    let mut table = Table::new(
        "opportunity",
        "opportunities",
        "opportunityid",
        "name",
        assemble(id, business, tail),
    );
    let mut won = state(1, "Won", &[(3, "Won")], true, false);
    let mut lost = state(2, "Lost", &[(4, "Canceled"), (5, "Out-Sold")], true, false);
    if close_by_action {
        won.requires_action = Some("WinOpportunity");
        lost.requires_action = Some("LoseOpportunity");
    }
    table.states = Some(StateModel {
        enum_name: "OpportunityState".to_owned(),
        states: vec![
            state(
                0,
                "Open",
                &[(1, "In Progress"), (2, "On Hold")],
                false,
                true,
            ),
            won,
            lost,
        ],
    });
    table.role = TableRole::Opportunity;
    table
}

/// account (not detailed in crm.md; stock lengths, `name` required).
fn account() -> Table {
    let (id, tail) = system_columns("accountid", "Account", true);
    let mut business = vec![
        text("name", "Account Name", 160).required(Requirement::Application),
        text("accountnumber", "Account Number", 20),
        text("telephone1", "Main Phone", 50),
        text("emailaddress1", "Email", 100),
        text("websiteurl", "Website", 200),
        memo("description", "Description", 2000),
        money("revenue", "Annual Revenue", 0.0, 100_000_000_000_000.0),
        money(
            "revenue_base",
            "Annual Revenue (Base)",
            0.0,
            100_000_000_000_000.0,
        )
        .read_only(),
        Column::new(
            "numberofemployees",
            "Number of Employees",
            ColumnKind::Integer {
                min: 0,
                max: 1_000_000_000,
            },
        ),
        lookup("primarycontactid", "Primary Contact", "contact"),
        lookup("parentaccountid", "Parent Account", "account"),
        lookup("originatingleadid", "Originating Lead", "lead"),
    ];
    business.extend(address_columns());
    let mut table = Table::new(
        "account",
        "accounts",
        "accountid",
        "name",
        assemble(id, business, tail),
    );
    table.states = Some(active_inactive("AccountState"));
    table
}

/// contact (not detailed in crm.md; stock lengths, `lastname` required).
fn contact() -> Table {
    let (id, tail) = system_columns("contactid", "Contact", true);
    let mut business = vec![
        text("firstname", "First Name", 50),
        text("lastname", "Last Name", 50).required(Requirement::Application),
        text("fullname", "Full Name", 160).read_only(),
        text("emailaddress1", "Email", 100),
        text("telephone1", "Business Phone", 50),
        text("mobilephone", "Mobile Phone", 50),
        text("jobtitle", "Job Title", 100),
        memo("description", "Description", 2000),
        customer("parentcustomerid", "Company Name"),
        lookup("originatingleadid", "Originating Lead", "lead"),
    ];
    business.extend(address_columns());
    let mut table = Table::new(
        "contact",
        "contacts",
        "contactid",
        "fullname",
        assemble(id, business, tail),
    );
    table.states = Some(active_inactive("ContactState"));
    table.full_name_from = Some(("firstname".to_owned(), "lastname".to_owned()));
    table
}

/// transactioncurrency: organization-owned, seeded from the configuration.
fn transaction_currency() -> Table {
    let columns = vec![
        Column::new("transactioncurrencyid", "Currency", ColumnKind::PrimaryKey)
            .required(Requirement::System),
        text("currencyname", "Currency Name", 100).required(Requirement::System),
        text("isocurrencycode", "Currency Code", 5).required(Requirement::System),
        text("currencysymbol", "Currency Symbol", 10).required(Requirement::System),
        Column::new(
            "exchangerate",
            "Exchange Rate",
            ColumnKind::Decimal { precision: 10 },
        )
        .required(Requirement::System),
        Column::new(
            "currencyprecision",
            "Currency Precision",
            ColumnKind::Integer { min: 0, max: 4 },
        )
        .default_value(json!(2)),
        Column::new("statecode", "Status", ColumnKind::State),
        Column::new("statuscode", "Status Reason", ColumnKind::Status),
        Column::new("createdon", "Created On", ColumnKind::DateTime).read_only(),
        Column::new("modifiedon", "Modified On", ColumnKind::DateTime).read_only(),
        Column::new("versionnumber", "Version Number", ColumnKind::Version).read_only(),
    ];
    let mut table = Table::new(
        "transactioncurrency",
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        columns,
    );
    table.states = Some(active_inactive("TransactionCurrencyState"));
    table.user_owned = false;
    table
}

/// systemuser: read-only here; rows are the application users seen and the human user.
fn system_user() -> Table {
    let columns = vec![
        Column::new("systemuserid", "User", ColumnKind::PrimaryKey).required(Requirement::System),
        text("fullname", "Full Name", 200).read_only(),
        text("internalemailaddress", "Primary Email", 100).read_only(),
        Column::new(
            "applicationid",
            "Application ID",
            ColumnKind::Text { max_len: None },
        )
        .read_only(),
        text("azureactivedirectoryobjectid", "Azure AD Object ID", 36).read_only(),
        Column::new(
            "isdisabled",
            "Status",
            ColumnKind::Boolean {
                no: "Enabled".to_owned(),
                yes: "Disabled".to_owned(),
            },
        )
        .read_only(),
        Column::new("createdon", "Created On", ColumnKind::DateTime).read_only(),
        Column::new("modifiedon", "Modified On", ColumnKind::DateTime).read_only(),
        Column::new("versionnumber", "Version Number", ColumnKind::Version).read_only(),
    ];
    let mut table = Table::new(
        "systemuser",
        "systemusers",
        "systemuserid",
        "fullname",
        columns,
    );
    table.writable = false;
    table.user_owned = false;
    table
}

/// opportunityclose: the activity `WinOpportunity`/`LoseOpportunity` record; read-only here.
fn opportunity_close() -> Table {
    let (id, tail) = system_columns("activityid", "Opportunity Close", true);
    let business = vec![
        text("subject", "Subject", 200),
        lookup("opportunityid", "Opportunity", "opportunity"),
        money(
            "actualrevenue",
            "Actual Revenue",
            -1_000_000_000_000.0,
            1_000_000_000_000.0,
        ),
        Column::new("actualend", "Close Date", ColumnKind::DateOnly),
        memo("description", "Description", 2000),
    ];
    let mut table = Table::new(
        "opportunityclose",
        "opportunitycloses",
        "activityid",
        "subject",
        assemble(id, business, tail),
    );
    table.states = Some(StateModel {
        enum_name: "OpportunityCloseState".to_owned(),
        states: vec![
            state(0, "Open", &[(1, "Open")], false, true),
            state(1, "Completed", &[(2, "Completed")], false, true),
            state(2, "Canceled", &[(3, "Canceled")], false, true),
        ],
    });
    table.writable = false;
    table
}

/// Every standard table.
pub(crate) fn standard(opportunity_close_by_action: bool) -> Vec<Table> {
    vec![
        lead(),
        opportunity(opportunity_close_by_action),
        account(),
        contact(),
        transaction_currency(),
        system_user(),
        opportunity_close(),
    ]
}
