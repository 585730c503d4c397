//! `refsync`: parse the command line, set up logging, run the command.

use anyhow::{Context, bail};
use clap::Parser;
use refsync::bench::run_bench;
use refsync::cli::{Cli, Command, ConfigCommand};
use refsync::config::{CONFIG_TEMPLATE, Config};
use refsync::demo::run_demo;
use refsync::emulate::run_emulator;
use refsync::operator::run_operator;
use refsync::service::run_service;
use refsync::signin::{read_sign_in_status, run_login};
use refsync::status::{read_status, status_json, status_table};
use refsync::telemetry::init_logging;
use refsync::webhooks::run_webhooks;
use refsync_outbound::entra::DeviceCodeOptions;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Benchmarks, the demo and the operator's commands print their own progress,
    // tables or JSON on stdout; the service's per-sync logs would bury or spoil
    // them (RUST_LOG=info brings them back).
    let default_filter = match cli.command {
        Command::Bench(_) | Command::Demo(_) | Command::Operator(_) | Command::Status(_) => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_filter);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config(ConfigCommand::Init(args)) => {
            if args.path.exists() && !args.force {
                bail!(
                    "{} exists; pass --force to overwrite it",
                    args.path.display()
                );
            }
            std::fs::write(&args.path, CONFIG_TEMPLATE)
                .with_context(|| format!("writing {}", args.path.display()))?;
            println!("wrote {}", args.path.display());
        }
        Command::Emulate(command) => run_emulator(command).await?,
        Command::Bench(command) => run_bench(command).await?,
        Command::Demo(args) => {
            run_demo(args).await?;
        }
        Command::Serve => {
            let config = Config::load(cli.config.as_deref())?;
            run_service(&config).await?;
        }
        Command::Webhooks(command) => {
            let config = Config::load(cli.config.as_deref())?;
            print!("{}", run_webhooks(&config, command).await?);
        }
        Command::Status(args) => {
            let config = Config::load(cli.config.as_deref())?;
            let store = refsync_store::open_store(&config.store.url).await?;
            let summary = read_status(store.as_ref()).await?;
            let sign_in = read_sign_in_status(&config, store.as_ref()).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status_json(&summary, &sign_in))?
                );
            } else {
                println!("{}", status_table(&summary, &sign_in));
            }
        }
        Command::Login(args) => {
            let config = Config::load(cli.config.as_deref())?;
            let store = refsync_store::open_store(&config.store.url).await?;
            let options = DeviceCodeOptions {
                max_wait: args.timeout,
                ..DeviceCodeOptions::default()
            };
            let outcome = run_login(&config, store, &options, |prompt| {
                eprintln!("{}", prompt.message);
            })
            .await?;
            match outcome.refresh_token_expires_at {
                Some(at) => println!(
                    "signed in; the refresh token is stored, encrypted, and expires {at} unless used"
                ),
                None => println!("signed in; the refresh token is stored, encrypted"),
            }
        }
        Command::Operator(command) => {
            let config = Config::load(cli.config.as_deref())?;
            let output = run_operator(&config, command).await?;
            print!("{}", output.text);
            if let Some(why) = output.failure {
                bail!(why);
            }
        }
        Command::Config(ConfigCommand::Check) => {
            let config = Config::load(cli.config.as_deref())?;
            print!(
                "{}",
                toml::to_string_pretty(&config).context("rendering the configuration")?
            );
        }
    }
    Ok(())
}
