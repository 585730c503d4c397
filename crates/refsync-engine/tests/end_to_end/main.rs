//! The end-to-end suite: Partner Center emulator + a CRM (emulator + real connector,
//! or the in-memory CRM) + a store + the engine's workers, with Partner Center's real
//! webhook deliveries driving the queue. Every scenario is written once, generic over
//! the CRM ([`CrmUnderTest`]) and the store ([`StoreKind`]), and instantiated per
//! pair by `scenarios!` below: adding a CRM is one line there.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod failures;
mod from_crm;
mod from_partner_center;
mod helpers;

use failures::*;
use from_crm::*;
use from_partner_center::*;

// ---------------------------------------------------------------- instantiation

macro_rules! instantiate {
    ($module:ident, $crm:ty, $store:expr; $($scenario:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario::<$crm>($store).await;
                }
            )*
        }
    };
}

/// Every scenario against every CRM × store: one line per pair.
macro_rules! scenarios {
    ($($scenario:ident),* $(,)?) => {
        instantiate!(salesforce_sqlite, refsync_engine::testbed::Salesforce, refsync_engine::testbed::StoreKind::Sqlite; $($scenario),*);
        instantiate!(salesforce_postgres, refsync_engine::testbed::Salesforce, refsync_engine::testbed::StoreKind::Postgres; $($scenario),*);
        instantiate!(dynamics_sqlite, refsync_engine::testbed::Dynamics, refsync_engine::testbed::StoreKind::Sqlite; $($scenario),*);
        instantiate!(dynamics_postgres, refsync_engine::testbed::Dynamics, refsync_engine::testbed::StoreKind::Postgres; $($scenario),*);
        instantiate!(memory_sqlite, refsync_engine::testbed::InMemory, refsync_engine::testbed::StoreKind::Sqlite; $($scenario),*);
    };
}

scenarios!(
    new_referral_becomes_a_lead,
    a_new_lead_costs_three_calls_and_an_unchanged_referral_one,
    acceptance_makes_an_opportunity_with_one_account_per_customer,
    partner_center_changes_reach_the_crm,
    duplicate_and_reordered_webhooks_give_one_record_with_the_latest_values,
    the_reconciler_catches_a_dropped_webhook,
    storms_on_both_apis_delay_but_never_lose_or_duplicate,
    a_412_is_resolved_by_re_reading,
    a_crash_between_crm_write_and_link_commit_makes_no_second_record,
    a_crm_edit_reaches_partner_center,
    a_crm_edit_in_the_second_of_our_write_reaches_partner_center,
    echoes_of_our_own_writes_make_no_further_writes,
    a_permanent_failure_is_dead_lettered_with_its_reason,
    shutdown_releases_in_flight_keys,
    a_flagged_crm_record_becomes_a_referral,
    microsoft_half_of_a_cosell_leads_to_our_referral,
    check_marks_and_failure_lines_reach_the_record,
    a_record_deleted_in_the_crm_is_created_again,
    an_operator_sync_reports_a_failure_being_retried,
    a_partner_center_refusal_is_permanent_and_a_retry_makes_no_second_record,
);
