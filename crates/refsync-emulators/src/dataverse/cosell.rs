//! The co-sell connector's custom columns on lead and opportunity
//! (partner-center.md §4.2, crm.md §3.3): Referral Identifier (an alternate key,
//! crm.md §1.13), Sync with Partner Center, Referral Link, Audit, "How can
//! Microsoft help?" and Microsoft CRM Identifier. The `msft_*` logical names come
//! from a third-party export and their pairing with the labels is **unconfirmed**,
//! so every name, the tables, the key name and the choice numbering are settings.

use super::config::{AlternateKeyConfig, ChoiceOption, CustomColumn, CustomColumnKind};
use serde::{Deserialize, Serialize};

/// The option-value prefix of the co-sell solution's publisher: choice values
/// 299600000… (the observed `msft_coselltype` value 299600000, partner-center.md §4.2;
/// **unconfirmed** for "How can Microsoft help?").
pub const COSELL_OPTION_VALUE_PREFIX: u32 = 29960;

/// The labels of "How can Microsoft help?" in option order (partner-center.md §4.2).
pub const HELP_LABELS: [&str; 6] = [
    "Workload specific value proposition",
    "Customer technical architecture",
    "Proof of concept or demo",
    "Quotes or licensing",
    "Post sales customer success",
    "General or other",
];

/// Logical names of the co-sell connector's columns (partner-center.md §4.2; the
/// label→name pairing is **unconfirmed** there, and so configurable here).
pub mod cosell_columns {
    /// Referral Identifier (text, the alternate key).
    pub const REFERRAL_IDENTIFIER: &str = "msft_microsoftpartnercenterreferralidentifier";
    /// Sync with Partner Center (boolean, default No).
    pub const SYNC: &str = "msft_microsoftpartnercenterreferralsync";
    /// Referral Link (text/URL).
    pub const REFERRAL_LINK: &str = "msft_microsoftpartnercenterreferrallink";
    /// Audit (memo).
    pub const AUDIT: &str = "msft_microsoftpartnercenterreferralsyncaudit";
    /// How can Microsoft help? (choice).
    pub const HELP: &str = "msft_microsoftpartnercenterhelp";
    /// Microsoft CRM Identifier (text).
    pub const CRM_IDENTIFIER: &str = "msft_microsoftcrmidentifier";
}

/// The co-sell columns as an admin (or the connector's solution) adds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CosellColumns {
    /// Off: the tables have none of these columns (nor the key).
    pub enabled: bool,
    /// Tables that get the columns (`lead`, `opportunity`).
    pub tables: Vec<String>,
    /// Referral Identifier (text, 100; the alternate key).
    pub referral_identifier: String,
    /// Sync with Partner Center (Yes/No, default No).
    pub sync: String,
    /// Referral Link (text, 500).
    pub referral_link: String,
    /// Audit (multiple lines of text, 100,000).
    pub audit: String,
    /// How can Microsoft help? (choice, six values).
    pub help: String,
    /// Microsoft CRM Identifier (text, 100).
    pub crm_identifier: String,
    /// The publisher's option-value prefix: "How can Microsoft help?" is numbered
    /// from `prefix * 10000` (29960 → 299600000…).
    pub option_value_prefix: u32,
    /// Name of the alternate key on the referral identifier.
    pub key_name: String,
}

impl Default for CosellColumns {
    fn default() -> Self {
        use cosell_columns::*;
        Self {
            enabled: true,
            tables: vec!["lead".to_owned(), "opportunity".to_owned()],
            referral_identifier: REFERRAL_IDENTIFIER.to_owned(),
            sync: SYNC.to_owned(),
            referral_link: REFERRAL_LINK.to_owned(),
            audit: AUDIT.to_owned(),
            help: HELP.to_owned(),
            crm_identifier: CRM_IDENTIFIER.to_owned(),
            option_value_prefix: COSELL_OPTION_VALUE_PREFIX,
            key_name: "msft_referralidentifierkey".to_owned(),
        }
    }
}

impl CosellColumns {
    /// The "How can Microsoft help?" values, numbered from the option-value prefix.
    pub fn help_options(&self) -> Vec<ChoiceOption> {
        let base = i64::from(self.option_value_prefix) * 10_000;
        HELP_LABELS
            .iter()
            .enumerate()
            .filter_map(|(i, label)| {
                let value = i32::try_from(base + i64::try_from(i).ok()?).ok()?;
                Some(ChoiceOption {
                    value,
                    label: (*label).to_owned(),
                })
            })
            .collect()
    }

    /// The columns, on every configured table (none when disabled).
    pub fn columns(&self) -> Vec<CustomColumn> {
        if !self.enabled {
            return Vec::new();
        }
        let options = self.help_options();
        self.tables
            .iter()
            .flat_map(|table| {
                [
                    CustomColumn::new(
                        table,
                        &self.referral_identifier,
                        "Referral Identifier",
                        CustomColumnKind::Text { max_length: 100 },
                    ),
                    CustomColumn::new(
                        table,
                        &self.sync,
                        "Sync with Partner Center",
                        CustomColumnKind::Boolean { default: false },
                    ),
                    CustomColumn::new(
                        table,
                        &self.referral_link,
                        "Referral Link",
                        CustomColumnKind::Text { max_length: 500 },
                    ),
                    CustomColumn::new(
                        table,
                        &self.audit,
                        "Audit",
                        CustomColumnKind::Memo {
                            max_length: 100_000,
                        },
                    ),
                    CustomColumn::new(
                        table,
                        &self.help,
                        "How can Microsoft help?",
                        CustomColumnKind::Choice {
                            options: options.clone(),
                        },
                    ),
                    CustomColumn::new(
                        table,
                        &self.crm_identifier,
                        "Microsoft CRM Identifier",
                        CustomColumnKind::Text { max_length: 100 },
                    ),
                ]
            })
            .collect()
    }

    /// The referral identifier as an alternate key on every configured table.
    pub fn keys(&self) -> Vec<AlternateKeyConfig> {
        if !self.enabled {
            return Vec::new();
        }
        self.tables
            .iter()
            .map(|table| AlternateKeyConfig {
                table: table.clone(),
                name: self.key_name.clone(),
                columns: vec![self.referral_identifier.clone()],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_choice_values_follow_the_option_value_prefix() {
        let cosell = CosellColumns::default();
        let columns = cosell.columns();
        let help = columns
            .iter()
            .find(|c| c.table == "lead" && c.name == cosell_columns::HELP)
            .unwrap();
        let CustomColumnKind::Choice { options } = &help.kind else {
            panic!("help is a choice");
        };
        let values: Vec<i32> = options.iter().map(|o| o.value).collect();
        assert_eq!(
            values,
            vec![
                299600000, 299600001, 299600002, 299600003, 299600004, 299600005
            ]
        );
        assert_eq!(options[5].label, "General or other");
        assert_eq!(columns.len(), 12);
        assert_eq!(cosell.keys().len(), 2);
        let off = CosellColumns {
            enabled: false,
            ..CosellColumns::default()
        };
        assert!(off.columns().is_empty() && off.keys().is_empty());
    }
}
