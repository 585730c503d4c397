//! `refsync demo`: the whole product on one machine. The Partner Center emulator
//! (with its Entra ID) and a CRM emulator start on free ports; refsync signs in
//! by device code, registers its webhook and serves — the same `Service` as
//! `refsync serve`, configured like a deployment. Then Microsoft sends referrals,
//! sellers accept, edit and close some on either side, and the demo shows each
//! change arriving and ends with a summary of what refsync did.

mod crm;
mod emulator_runtime;
mod report;

use crate::config::{Config, CrmKind};
use crate::service::Service;
use crate::signin::run_login;
use crate::webhooks::{RegisterArgs, WebhooksCommand, run_webhooks};
use anyhow::{Context, bail};
use base64::Engine;
use clap::Args;
pub use crm::DemoCrm;
pub use emulator_runtime::EMULATOR_THREAD_NAME;
use emulator_runtime::EmulatorRuntime;
use refsync_core::{CrmEntity, ReferralId};
use refsync_emulators::entra::{
    DEMO_ADMIN_USER, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID,
};
use refsync_emulators::partner_center::{
    DeliveryFaultKind, DeliveryFaultRule, MicrosoftChange, MicrosoftUpdate, PartnerCenterConfig,
    PartnerCenterEmulator, PartnerCenterServer,
};
use refsync_outbound::entra::DeviceCodeOptions;
pub use report::DemoReport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// `refsync demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The CRM to sync with.
    #[arg(long, value_enum, default_value_t = CrmKind::Dynamics)]
    pub crm: CrmKind,
    /// Referrals Microsoft sends.
    #[arg(long, default_value_t = 30)]
    pub referrals: usize,
    /// Keep everything running afterwards, to explore with the CLI (Ctrl-C stops).
    #[arg(long)]
    pub keep_running: bool,
    /// Where refsync listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Store URL (default: SQLite in a temporary directory).
    #[arg(long)]
    pub store: Option<String>,
    /// Longest wait for any one step before the demo gives up and says what is missing.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub step_timeout: Duration,
    /// Measure refsync, not the CRM's limits: the emulator's service protection /
    /// daily allocation lifted and the connector's pacing opened up to match
    /// (`refsync bench sync`).
    #[arg(skip)]
    pub lift_crm_limits: bool,
}

impl DemoArgs {
    /// The defaults with `crm` and `referrals` set (tests).
    pub fn new(crm: CrmKind, referrals: usize) -> Self {
        Self {
            crm,
            referrals,
            keep_running: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: None,
            step_timeout: Duration::from_secs(60),
            lift_crm_limits: false,
        }
    }
}

/// Everything the demo runs.
pub struct Demo {
    /// Partner Center and its Entra ID.
    pub pc: PartnerCenterServer,
    /// The CRM.
    pub crm: DemoCrm,
    /// refsync.
    pub service: Service,
    /// refsync's configuration (also written to `dir/refsync.toml`).
    pub config: Config,
    /// The working directory: config, secrets, root CA, SQLite store.
    pub dir: tempfile::TempDir,
    step_timeout: Duration,
    /// Last, so it outlives the emulators running on it.
    _emulators: EmulatorRuntime,
}

/// Runs the demo; prints progress and the summary.
pub async fn run_demo(args: DemoArgs) -> anyhow::Result<DemoReport> {
    let demo = Demo::start(&args).await?;
    let report = demo.run_scenario(args.referrals).await?;
    println!("{}", report.render());
    if args.keep_running {
        demo.print_how_to_explore(report.example.as_ref());
        crate::service::wait_for_shutdown_signal().await;
    }
    demo.shutdown().await;
    Ok(report)
}

impl Demo {
    /// Starts the emulators, signs in, starts refsync and registers its webhook.
    pub async fn start(args: &DemoArgs) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating the demo directory")?;
        let mut pc_config = PartnerCenterConfig::default();
        pc_config.entra.device_code_interval = Duration::from_secs(1);
        let emulators = EmulatorRuntime::start()?;
        let (crm_kind, lift_limits) = (args.crm, args.lift_crm_limits);
        let (pc, crm) = emulators
            .run(async move {
                let pc = PartnerCenterEmulator::start(pc_config, bind_any().await?)
                    .context("starting the Partner Center emulator")?;
                let crm = DemoCrm::start(crm_kind, bind_any().await?, pc.authority(), lift_limits)
                    .await?;
                Ok((pc, crm))
            })
            .await?;
        println!("Partner Center emulator  {}", pc.base_url());
        println!(
            "{:<24} {}",
            format!("{} emulator", args.crm),
            crm.base_url()
        );

        let config = demo_config(&pc, &crm, dir.path(), args)?;
        sign_in(&pc, &config).await?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let service = Service::start(&config, listener).await?;
        let webhook_url = url::Url::parse(&format!(
            "http://{}{}",
            service.local_addr(),
            config.webhook.path
        ))?;
        run_webhooks(
            &config,
            WebhooksCommand::Register(RegisterArgs {
                url: webhook_url.clone(),
                events: Vec::new(),
                ms_signature_header: false,
            }),
        )
        .await
        .context("registering the webhook")?;
        println!("refsync                  {webhook_url} (webhook registered)");
        Ok(Self {
            pc,
            crm,
            service,
            config,
            dir,
            step_timeout: args.step_timeout,
            _emulators: emulators,
        })
    }

    /// Microsoft sends `n` referrals (a few delivered twice); a third are accepted,
    /// some updated by Microsoft, some edited by a seller in the CRM, some won or lost.
    pub async fn run_scenario(&self, n: usize) -> anyhow::Result<DemoReport> {
        if n < 6 {
            bail!("the demo needs at least 6 referrals to show every step");
        }
        let started = Instant::now();
        let calls_before = self.crm.api_calls();
        // Partner Center delivers some webhooks twice, as it does; refsync stores one.
        self.pc
            .install_delivery_fault(DeliveryFaultRule::next(DeliveryFaultKind::Duplicate, 5))
            .context("installing duplicate deliveries")?;

        println!("\n1. Microsoft sends {n} referrals");
        let sent = Instant::now();
        let ids: Vec<ReferralId> = self
            .pc
            .send_generated_referrals(n)
            .iter()
            .filter_map(|r| r["id"].as_str())
            .filter_map(|id| ReferralId::parse(id).ok())
            .collect();
        let arrival = self.wait_for_crm_records(&ids, sent).await?;

        let accepted = &ids[..n / 3];
        println!("\n2. The partner accepts {} of them", accepted.len());
        for id in accepted {
            self.pc
                .microsoft_change(id.as_str(), MicrosoftChange::Accept)?;
        }
        self.wait_until("accepted referrals become opportunities", || async {
            let mut done = 0;
            for id in accepted {
                if self.linked_entity(id).await? == Some(CrmEntity::Opportunity) {
                    done += 1;
                }
            }
            Ok((done == accepted.len(), format!("{done}/{}", accepted.len())))
        })
        .await?;

        let updated = &ids[n / 3..n / 3 + 3];
        println!(
            "\n3. Microsoft updates {} referrals (notes, deal value)",
            updated.len()
        );
        for (i, id) in updated.iter().enumerate() {
            self.pc.microsoft_change(
                id.as_str(),
                MicrosoftChange::Update(MicrosoftUpdate {
                    notes: Some(format!("Customer asked for a pilot ({})", i + 1)),
                    deal_value: Some((75_000 + 1_000 * i as i64).into()),
                    ..MicrosoftUpdate::default()
                }),
            )?;
        }
        self.wait_for_convergence(&ids).await?;

        let edited = &accepted[..2];
        println!(
            "\n4. A seller changes the deal value of {} opportunities in the CRM",
            edited.len()
        );
        let mut expected_values = BTreeMap::new();
        for (i, id) in edited.iter().enumerate() {
            let value = 125_000 + 5_000 * i as i64;
            self.edit_deal_value_in_crm(id, value).await?;
            expected_values.insert(id.clone(), value);
        }
        self.wait_until("CRM edits reach Partner Center", || async {
            let mut done = 0;
            for (id, value) in &expected_values {
                let referral = self.pc.referral(id.as_str()).unwrap_or_default();
                let pc_value = referral["details"]["dealValue"].as_f64().or_else(|| {
                    referral["details"]["dealValue"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                });
                if pc_value == Some(*value as f64) {
                    done += 1;
                }
            }
            Ok((
                done == expected_values.len(),
                format!("{done}/{}", expected_values.len()),
            ))
        })
        .await?;

        println!("\n5. Three referrals close: two won, one declined");
        // Two distinct accepted ones (there are at least two when n >= 6).
        for won in [&accepted[accepted.len() - 1], &accepted[0]] {
            self.pc
                .microsoft_change(won.as_str(), MicrosoftChange::Win)?;
        }
        self.pc.microsoft_change(
            ids[n - 1].as_str(),
            MicrosoftChange::Decline(Some("Not a fit".into())),
        )?;
        self.wait_for_convergence(&ids).await?;

        let example = accepted.first().cloned();
        report::collect(
            self,
            &ids,
            arrival,
            started.elapsed(),
            calls_before,
            example,
        )
        .await
    }

    /// Waits until every referral has a CRM record; returns each one's time from
    /// being sent to its record being linked.
    async fn wait_for_crm_records(
        &self,
        ids: &[ReferralId],
        sent: Instant,
    ) -> anyhow::Result<Vec<Duration>> {
        let mut arrival: BTreeMap<ReferralId, Duration> = BTreeMap::new();
        let deadline = Instant::now() + self.step_timeout;
        let mut last_shown = 0;
        while arrival.len() < ids.len() {
            for id in ids {
                if !arrival.contains_key(id) && self.linked_entity(id).await?.is_some() {
                    arrival.insert(id.clone(), sent.elapsed());
                }
            }
            if arrival.len() >= last_shown + 10 || arrival.len() == ids.len() {
                last_shown = arrival.len();
                println!("   {}/{} in the CRM", arrival.len(), ids.len());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {} referrals reached the CRM within {:?}; see `refsync status` and the log",
                    arrival.len(),
                    ids.len(),
                    self.step_timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(arrival.into_values().collect())
    }

    /// The record type a referral is linked to, if any.
    async fn linked_entity(&self, id: &ReferralId) -> anyhow::Result<Option<CrmEntity>> {
        Ok(self
            .service
            .store()
            .link_by_referral(id)
            .await?
            .and_then(|l| l.crm_record)
            .map(|r| r.entity))
    }

    /// Waits until the queue is empty and every link has seen its referral's
    /// current eTag: both sides agree.
    async fn wait_for_convergence(&self, ids: &[ReferralId]) -> anyhow::Result<()> {
        self.wait_until("both sides agree", || async {
            let status = self
                .service
                .store()
                .status_summary(chrono::Utc::now())
                .await?;
            let queued = status.queue.pending();
            let mut current = 0;
            for id in ids {
                let etag = self.pc.referral(id.as_str()).map(|r| r["eTag"].clone());
                let link = self.service.store().link_by_referral(id).await?;
                let seen = link.and_then(|l| l.referral_etag).map(|e| e.to_string());
                if etag.as_ref().and_then(|e| e.as_str()) == seen.as_deref() {
                    current += 1;
                }
            }
            Ok((
                queued == 0 && current == ids.len(),
                format!("{current}/{} current, {queued} queued", ids.len()),
            ))
        })
        .await
    }

    /// Polls `check` until it says done, showing its progress line when it changes.
    async fn wait_until<F, Fut>(&self, what: &str, check: F) -> anyhow::Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(bool, String)>>,
    {
        let deadline = Instant::now() + self.step_timeout;
        let mut shown = String::new();
        loop {
            let (done, progress) = check().await?;
            if progress != shown {
                println!("   {what}: {progress}");
                shown = progress.clone();
            }
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "gave up waiting for \"{what}\" after {:?} ({progress}); see `refsync status` and the log",
                    self.step_timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A seller changes the opportunity's deal value in the CRM's own UI.
    async fn edit_deal_value_in_crm(&self, id: &ReferralId, value: i64) -> anyhow::Result<()> {
        let engine = self
            .service
            .engine()
            .context("the demo's service runs an engine")?;
        let link = self
            .service
            .store()
            .link_by_referral(id)
            .await?
            .and_then(|l| l.crm_record)
            .context("the referral is linked")?;
        let entity = engine.mapping().entity(&link.entity)?;
        let column = entity
            .field("deal_value")
            .and_then(|f| f.crm.first())
            .context("the mapping maps deal_value")?;
        self.crm.edit_as_seller(
            &entity.collection,
            &link,
            &serde_json::json!({ column: value }),
        )
    }

    fn print_how_to_explore(&self, example: Option<&ReferralId>) {
        let config = self.dir.path().join("refsync.toml");
        println!("\nStill running. In another shell:");
        println!("  export REFSYNC_CONFIG={}", config.display());
        println!("  refsync status");
        match example {
            Some(id) => println!("  refsync audit {id}      # accepted, edited in the CRM, won"),
            None => println!("  refsync audit <referral-id>"),
        }
        println!("  refsync dead-letters list");
        println!(
            "  curl -s {}/_emulator/partner-center/referrals -H 'content-type: application/json' -d '{{\"count\":1}}'",
            self.pc.base_url()
        );
        println!(
            "Metrics: http://{}/metrics   Press Ctrl-C to stop.",
            self.service.local_addr()
        );
    }

    /// Stops refsync, then the emulators.
    pub async fn shutdown(self) {
        self.service.shutdown().await;
        self.crm.shutdown().await;
        let _ = self.pc.shutdown().await;
    }
}

async fn bind_any() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a free port")
}

/// A deployment's configuration pointed at the emulators, secrets in files, written
/// to `dir/refsync.toml` so the CLI can be used against the running demo.
fn demo_config(
    pc: &PartnerCenterServer,
    crm: &DemoCrm,
    dir: &Path,
    args: &DemoArgs,
) -> anyhow::Result<Config> {
    let base = pc.base_url();
    let root = dir.join("partner-center-root.pem");
    std::fs::write(&root, pc.root_ca_pem()).context("writing the emulator's root CA")?;
    let mut config = Config::default();
    config.server.listen = args.listen;
    config.store.url = match &args.store {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.join("refsync.db").display()),
    };
    config.webhook.trust_emulator(base, root)?;
    let pcc = &mut config.partner_center;
    pcc.api_url = base.to_owned();
    pcc.registration_api_url = base.to_owned();
    pcc.authority_url = base.to_owned();
    pcc.tenant = DEMO_TENANT_ID.to_string();
    pcc.client_id = DEMO_CLIENT_ID.to_string();
    config.crm = crm.crm_config(base);
    // Demo pace: retries in milliseconds, CRM edits noticed within a second.
    config.sync.retry_initial = Duration::from_millis(100);
    config.sync.retry_max = Duration::from_secs(2);
    config.poller.interval = Duration::from_millis(500);
    config.poller.overlap = Duration::from_secs(5);
    if args.lift_crm_limits {
        config.crm.dynamics.requests_per_second = 100_000.0;
        config.crm.dynamics.burst = 100_000;
        config.crm.salesforce.requests_per_second = 100_000.0;
        config.crm.salesforce.burst = 100_000;
        config.sync.workers = 16;
    }

    // Secrets go to files beside the config, as a deployment keeps them.
    let key = base64::engine::general_purpose::STANDARD.encode(rand_key()?);
    let secret_files = [
        ("encryption-key", key.as_str()),
        ("partner-center-client-secret", DEMO_CLIENT_SECRET),
        (
            "crm-client-secret",
            match args.crm {
                CrmKind::Dynamics => DEMO_CLIENT_SECRET,
                CrmKind::Salesforce => refsync_emulators::salesforce::config::DEMO_CONSUMER_SECRET,
            },
        ),
    ];
    for (name, value) in secret_files {
        std::fs::write(dir.join(name), value).with_context(|| format!("writing {name}"))?;
    }
    config.store.encryption_key_file = Some(dir.join("encryption-key"));
    config.partner_center.client_secret_file = Some(dir.join("partner-center-client-secret"));
    let crm_secret = Some(dir.join("crm-client-secret"));
    match args.crm {
        CrmKind::Dynamics => config.crm.dynamics_secret_file = crm_secret,
        CrmKind::Salesforce => config.crm.salesforce_secret_file = crm_secret,
    }
    let file = dir.join("refsync.toml");
    let text = toml::to_string(&config).context("rendering refsync.toml")?;
    std::fs::write(&file, text).context("writing refsync.toml")?;
    // What the service runs with is exactly what the file says.
    Config::load(Some(&file)).context("reloading the demo's refsync.toml")
}

fn rand_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow::anyhow!("no random numbers"))?;
    Ok(key)
}

/// `refsync login` as a person would do it, the person being the demo's admin.
async fn sign_in(pc: &PartnerCenterServer, config: &Config) -> anyhow::Result<()> {
    let store = refsync_store::open_store(&config.store.url).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let authority = pc.authority().clone();
    let approver = tokio::spawn(async move {
        if let Ok(code) = rx.await {
            let _ = authority.approve_device_code(&code, DEMO_ADMIN_USER);
        }
    });
    let options = DeviceCodeOptions {
        min_interval: Duration::from_millis(100),
        max_wait: Duration::from_secs(30),
        ..DeviceCodeOptions::default()
    };
    run_login(config, store.clone(), &options, move |prompt| {
        println!("Sign-in: {}", prompt.message);
        println!("         (the demo approves it as {DEMO_ADMIN_USER})");
        let _ = tx.send(prompt.user_code.clone());
    })
    .await?;
    approver.await.context("approving the sign-in")?;
    store.close().await;
    Ok(())
}
