//! `refsync emulate …`: run one of the bundled emulators on its own, to try a
//! configuration by hand or to point another tool at. Each prints how to reach it
//! (base URL, demo credentials, control API) and runs until Ctrl-C.

use anyhow::Context;
use clap::{Args, Subcommand};
use refsync_emulators::dataverse::{DataverseConfig, DataverseEmulator};
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_PASSWORD,
};
use refsync_emulators::partner_center::{PartnerCenterConfig, PartnerCenterEmulator};
use refsync_emulators::salesforce::config::{DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET};
use refsync_emulators::salesforce::{Clock, SalesforceConfig, SalesforceEmulator};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;

/// `refsync emulate …`.
#[derive(Debug, Subcommand)]
pub enum EmulateCommand {
    /// Partner Center: Entra ID token endpoint, Referrals API, webhook registration, signed webhooks.
    PartnerCenter(PartnerCenterArgs),
    /// Salesforce REST API: OAuth, sObjects, upsert by external ID, SOQL, composite, limits.
    Salesforce(SalesforceArgs),
    /// Dataverse (Dynamics 365) Web API: Entra tokens, entity sets, alternate keys, actions, service protection.
    Dataverse(DataverseArgs),
}

/// `refsync emulate dataverse`.
#[derive(Debug, Args)]
pub struct DataverseArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7071")]
    pub listen: SocketAddr,
}

/// `refsync emulate partner-center`.
#[derive(Debug, Args)]
pub struct PartnerCenterArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Write the webhook signing chain's root CA (PEM) here, for receivers to trust.
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Seed for the generated customers and deals.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Put the emulator's own address in webhook `ResourceUri`s instead of the documented
    /// `https://api.partnercenter.microsoft.com/engagements/v1/referrals/{id}`.
    #[arg(long)]
    pub local_resource_uris: bool,
}

/// `refsync emulate salesforce`.
#[derive(Debug, Args)]
pub struct SalesforceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7072")]
    pub listen: SocketAddr,
}

/// Runs the chosen emulator until Ctrl-C.
pub async fn run_emulator(command: EmulateCommand) -> anyhow::Result<()> {
    match command {
        EmulateCommand::PartnerCenter(args) => run_partner_center(args).await,
        EmulateCommand::Salesforce(args) => run_salesforce(args).await,
        EmulateCommand::Dataverse(args) => run_dataverse(args).await,
    }
}

async fn run_partner_center(args: PartnerCenterArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let mut config = PartnerCenterConfig {
        seed: args.seed,
        ..PartnerCenterConfig::default()
    };
    if args.local_resource_uris {
        config.resource_uri_template = "{base}/v1.0/engagements/referrals/{id}".into();
    }
    let server = PartnerCenterEmulator::start(config, listener)
        .context("starting the Partner Center emulator")?;
    if let Some(path) = &args.ca_out {
        std::fs::write(path, server.root_ca_pem())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let base = server.base_url().to_owned();
    println!("Partner Center emulator on {base}");
    println!("  Referrals API        {base}/v1.0/engagements/referrals");
    println!("  Webhook registration {base}/webhooks/v1/registration");
    println!(
        "  Entra ID tokens      {base}/{DEMO_TENANT_ID}/oauth2/token  (and /oauth2/v2.0/token, /oauth2/v2.0/devicecode)"
    );
    println!("  Signing certificate  {}", server.certificate_url());
    if let Some(path) = &args.ca_out {
        println!("  Root CA written to   {}", path.display());
    }
    println!(
        "  Control API          {base}/_emulator/partner-center/  (referrals, deliveries, offline-queue, delivery-faults)"
    );
    println!("  HTTP faults          {base}/_emulator/faults");
    println!(
        "Demo tenant {DEMO_TENANT_ID}; app {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}; user {DEMO_ADMIN_USER} / {DEMO_USER_PASSWORD}"
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await.context("stopping")?;
    Ok(())
}

async fn run_salesforce(args: SalesforceArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let emulator = SalesforceEmulator::new(SalesforceConfig::default(), Clock::System)
        .context("starting the Salesforce emulator")?;
    let handle = emulator.serve(listener).context("serving")?;
    let base = handle.base_url().as_str().trim_end_matches('/').to_owned();
    println!("Salesforce emulator on {base}");
    println!(
        "  OAuth token          {base}/services/oauth2/token  (client_credentials, JWT bearer)"
    );
    println!("  REST API             {base}/services/data/v66.0/");
    println!("  Control API          {base}/_emulator/salesforce/");
    println!(
        "Demo connected app: consumer key {} / secret {}",
        DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.shutdown().await.context("stopping")?;
    Ok(())
}

async fn run_dataverse(args: DataverseArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let emulator = DataverseEmulator::start(DataverseConfig::default(), listener)
        .context("starting the Dataverse emulator")?;
    let base = emulator
        .base_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    println!("Dataverse emulator on {base}");
    println!("  Web API              {}", emulator.api_url());
    if let Some(token_url) = emulator.token_url() {
        println!(
            "  Entra ID tokens      {token_url}  (client_credentials, scope {})",
            emulator.dataverse().scope()
        );
    }
    println!("  Environment URL      {}", emulator.org_url());
    println!("  Control API          {base}/_emulator/dataverse/");
    println!("  HTTP faults          {base}/_emulator/faults");
    println!("Demo tenant {DEMO_TENANT_ID}; app {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}");
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emulator.shutdown().await.context("stopping")?;
    Ok(())
}
