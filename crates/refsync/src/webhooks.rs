//! `refsync webhooks register|show|update|test`: the Partner Center webhook
//! registration API, signed in app-only (client credentials) for
//! `https://api.partnercenter.microsoft.com`, which that API accepts (reference §2.1).

use crate::config::Config;
use crate::signin::partner_center_entra;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use refsync_outbound::Audience;
use refsync_outbound::entra::PARTNER_CENTER_RESOURCE;
use refsync_partner_center::registration::{
    REFERRAL_EVENTS, RegistrationClient, RegistrationRequest, TEST_EVENT, ValidationStatus,
    WebhookRegistration,
};
use std::fmt::Write as _;
use std::time::Duration;
use url::Url;

/// `refsync webhooks …`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register refsync's webhook URL for referral events (one registration per tenant).
    Register(RegisterArgs),
    /// Show the current registration.
    Show,
    /// Change the registered URL, events or signature header.
    Update(UpdateArgs),
    /// Send a test event and print each delivery attempt Partner Center reports.
    Test(TestArgs),
}

/// `refsync webhooks register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The public URL Partner Center posts to (this service's `webhook.path`).
    #[arg(long)]
    pub url: Url,
    /// Events to subscribe to (repeatable). Default: the four referral events.
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Ask Partner Center to put the signature in `x-ms-signature` instead of `Authorization`.
    #[arg(long)]
    pub ms_signature_header: bool,
}

/// `refsync webhooks update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A new URL (default: keep the registered one).
    #[arg(long)]
    pub url: Option<Url>,
    /// Replace the event list (repeatable; default: keep the registered events).
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Signature header: `true` for `x-ms-signature`, `false` for `Authorization` (default: keep).
    #[arg(long)]
    pub ms_signature_header: Option<bool>,
}

/// `refsync webhooks test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// How long to wait for delivery attempts.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// How often to ask for the delivery status.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// A registration client signed in with the configured app's client credentials.
pub fn registration_client(config: &Config) -> anyhow::Result<RegistrationClient> {
    if config.partner_center.client_secret.is_none() {
        bail!(
            "partner_center.client_secret is not set (REFSYNC_PARTNER_CENTER__CLIENT_SECRET or client_secret_file)"
        );
    }
    let tokens =
        partner_center_entra(config)?.client_credentials(Audience::v2(PARTNER_CENTER_RESOURCE));
    let base = Url::parse(&config.partner_center.registration_api_url)
        .context("partner_center.registration_api_url")?;
    Ok(RegistrationClient::connect(base, tokens)?)
}

/// Runs one `webhooks` subcommand; returns what to print.
pub async fn run_webhooks(config: &Config, command: WebhooksCommand) -> anyhow::Result<String> {
    let client = registration_client(config)?;
    match command {
        WebhooksCommand::Register(args) => {
            let request = RegistrationRequest {
                webhook_url: args.url.to_string(),
                webhook_events: if args.events.is_empty() {
                    REFERRAL_EVENTS.iter().map(|e| (*e).to_owned()).collect()
                } else {
                    args.events
                },
                signature_token_to_ms_signature_header: args.ms_signature_header,
            };
            let registered = client.create(&request).await.context("registering")?;
            let requested = Some(request.signature_token_to_ms_signature_header);
            Ok(format!("registered\n{}", describe(&registered, requested)))
        }
        WebhooksCommand::Show => match client.get().await.context("reading the registration")? {
            Some(r) => Ok(describe(&r, None)),
            None => Ok("no webhook is registered (refsync webhooks register --url …)".into()),
        },
        WebhooksCommand::Update(args) => {
            let current = client
                .get()
                .await?
                .context("no webhook is registered yet; use `refsync webhooks register`")?;
            let request = RegistrationRequest {
                webhook_url: args
                    .url
                    .map(|u| u.to_string())
                    .unwrap_or(current.webhook_url),
                webhook_events: if args.events.is_empty() {
                    current.webhook_events
                } else {
                    args.events
                },
                signature_token_to_ms_signature_header: args
                    .ms_signature_header
                    .or(current.signature_token_to_ms_signature_header)
                    .unwrap_or(false),
            };
            let updated = client.update(&request).await.context("updating")?;
            let requested = Some(request.signature_token_to_ms_signature_header);
            Ok(format!("updated\n{}", describe(&updated, requested)))
        }
        WebhooksCommand::Test(args) => send_test_event(&client, &args).await,
    }
}

/// Sends a validation event (subscribing to `test-created` first if needed: Partner
/// Center only sends test events to registrations that include it) and reports each
/// delivery attempt as it appears.
async fn send_test_event(client: &RegistrationClient, args: &TestArgs) -> anyhow::Result<String> {
    let mut out = String::new();
    let current = client
        .get()
        .await?
        .context("no webhook is registered yet; use `refsync webhooks register`")?;
    if !current.subscribes_to(TEST_EVENT) {
        let mut events = current.webhook_events.clone();
        events.push(TEST_EVENT.to_owned());
        client
            .update(&RegistrationRequest {
                webhook_url: current.webhook_url.clone(),
                webhook_events: events,
                signature_token_to_ms_signature_header: current
                    .signature_token_to_ms_signature_header
                    .unwrap_or(false),
            })
            .await
            .context("adding test-created to the registration")?;
        writeln!(
            out,
            "added {TEST_EVENT} to the registration (test events need it)"
        )?;
    }
    let correlation = client
        .send_validation_event()
        .await
        .context("sending a test event (Partner Center allows two a minute)")?;
    writeln!(out, "test event sent, correlation id {correlation}")?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut seen = 0;
    loop {
        let status = client.validation_status(&correlation).await?;
        for attempt in status.results.iter().skip(seen) {
            writeln!(
                out,
                "  attempt {}: {} {}{}{}",
                seen + 1,
                attempt.response_code,
                attempt.response_message,
                if attempt.system_error {
                    " (system error: callback unreachable)"
                } else {
                    ""
                },
                attempt
                    .date_time_utc
                    .as_deref()
                    .map(|d| format!(" at {d}"))
                    .unwrap_or_default(),
            )?;
            seen += 1;
        }
        if delivered(&status) {
            writeln!(out, "delivered: status {}", status.status)?;
            return Ok(out);
        }
        if tokio::time::Instant::now() >= deadline {
            writeln!(
                out,
                "no successful delivery within {}; status {}",
                humantime::format_duration(args.timeout),
                status.status
            )?;
            bail!(out);
        }
        tokio::time::sleep(args.interval).await;
    }
}

fn delivered(status: &ValidationStatus) -> bool {
    status
        .results
        .iter()
        .any(|r| r.response_code.eq_ignore_ascii_case("OK") || r.response_code == "200")
}

/// The registration for people. Partner Center's create/update answers do not echo
/// the signature-header flag (reference §2.1), so what was requested is shown then.
fn describe(r: &WebhookRegistration, requested_ms_header: Option<bool>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "url:    {}", r.webhook_url);
    let _ = writeln!(s, "events: {}", r.webhook_events.join(", "));
    let header = match (
        r.signature_token_to_ms_signature_header,
        requested_ms_header,
    ) {
        (Some(true), _) => "x-ms-signature",
        (Some(false), _) => "Authorization",
        (None, Some(true)) => "x-ms-signature (as requested)",
        (None, Some(false)) => "Authorization (as requested)",
        (None, None) => "not reported by Partner Center",
    };
    let _ = writeln!(s, "signature header: {header}");
    if let Some(id) = &r.subscriber_id {
        let _ = writeln!(s, "subscriber: {id}");
    }
    if let Some(t) = &r.last_modified_timestamp {
        let _ = writeln!(s, "last modified: {t}");
    }
    s
}
