//! Command-line interface of the `slipway` binary.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use platform::{Config, Platform, db};

#[derive(Debug, Parser)]
#[command(name = "slipway", version, about = "Run a managed-hosting business")]
pub struct Cli {
    /// Configuration file (default: ./slipway.toml when present).
    #[arg(long, global = true, env = platform::config::ENV_CONFIG_FILE)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, then serve the dashboard (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the plan catalog as configured.
    Plans,
    /// Platform-operator administration.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a new random master key (for `provision.master_key` / SLIPWAY_PROVISION__MASTER_KEY).
    Keygen,
    /// Stripe: `sync` publishes the plan catalog as products and prices.
    #[command(subcommand)]
    Stripe(StripeCommand),
    /// Build the built-in site image from the static `site` binary (`provision.site_binary`).
    SiteImage {
        /// The binary to package (default: `provision.site_binary`).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make an account a platform operator (created if missing). The password is read from
    /// standard input, or prompted for on a terminal.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Operator")]
        name: String,
    },
    /// Local billing mode: put an organization on a plan (limits apply at once).
    SetPlan {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// A plan id of the catalog (`slipway plans`).
        #[arg(long)]
        plan: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StripeCommand {
    /// Create or update a product per paid plan and its monthly and yearly prices (by
    /// lookup key). Safe to run again: only what changed is changed.
    Sync,
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(&config.log)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Plans => print_plans(&config),
        Command::Admin(AdminCommand::Create { email, name }) => {
            create_operator(&config, &email, &name).await
        }
        Command::Admin(AdminCommand::SetPlan { org, plan }) => set_plan(&config, &org, &plan).await,
        Command::Stripe(StripeCommand::Sync) => stripe_sync(&config).await,
        Command::Keygen => {
            println!("{}", platform::secrets::MasterKey::generate());
            Ok(())
        }
        Command::SiteImage { binary } => build_site_image(&config, binary).await,
    }
}

async fn build_site_image(config: &Config, binary: Option<PathBuf>) -> anyhow::Result<()> {
    let binary = binary.unwrap_or_else(|| config.provision.site_binary.clone());
    let template = config
        .templates
        .iter()
        .find(|t| t.builtin)
        .ok_or_else(|| anyhow::anyhow!("no built-in template is configured (`templates`)"))?;
    let runtime = platform::runtime::Runtime::new(&config.provision.docker_socket);
    let started = std::time::Instant::now();
    runtime
        .build_site_image(&binary, &template.image)
        .await
        .with_context(|| format!("building {} from {}", template.image, binary.display()))?;
    println!(
        "built {} from {} in {:.1} s",
        template.image,
        binary.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn create_operator(config: &Config, email: &str, name: &str) -> anyhow::Result<()> {
    use platform::accounts::{self, Email, NewPassword, OperatorCreated, PersonName};
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = PersonName::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let password = read_password().context("reading the password")?;
    let password = NewPassword::parse(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let platform = Platform::new(pool.clone(), config.catalog()?, config.public_url()?);
    match accounts::create_operator(&platform, &email, &name, &password).await? {
        OperatorCreated::NewUser(_) => println!("created operator {email}"),
        OperatorCreated::Promoted(_) => {
            println!("{email} already had an account: it is now an operator (password unchanged)")
        }
    }
    pool.close().await;
    Ok(())
}

/// One line from standard input; on a terminal, asked for without echo.
fn read_password() -> std::io::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password for the operator: ")
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("setting `listen`: cannot listen on {}", config.listen))?;
    let platform = Platform::from_config(pool.clone(), &config)?;
    let runtime = if config.provision.enabled {
        Some(std::sync::Arc::new(platform::runtime::Runtime::new(
            &config.provision.docker_socket,
        )))
    } else {
        None
    };
    let (stop_reconciler, reconciler_stopped) = tokio::sync::oneshot::channel::<()>();
    let reconciler = match (&runtime, &platform.master_key) {
        (Some(runtime), Some(_)) => {
            let reconciler = platform::provision::Reconciler::new(
                platform.clone(),
                runtime.clone(),
                config.provision.clone(),
            )
            .await
            .context("starting the reconciler")?;
            tracing::info!(network = %config.provision.network, "reconciler running");
            let reconciler = std::sync::Arc::new(reconciler);
            tokio::spawn(sample_storage(
                reconciler.clone(),
                std::time::Duration::from_secs(config.usage.storage_interval_secs.max(10)),
            ));
            Some(tokio::spawn(reconciler.run(async {
                let _ = reconciler_stopped.await;
            })))
        }
        (Some(_), None) => {
            tracing::warn!(
                "provision.master_key is not set: sites cannot be created (generate one with `slipway keygen`)"
            );
            None
        }
        (None, _) => {
            tracing::info!("provision.enabled is false: this process does not manage sites");
            None
        }
    };
    match platform::mail::Smtp::from_config(&config.mail)? {
        Some(smtp) => {
            let every = std::time::Duration::from_secs(config.mail.poll_interval_secs.max(1));
            tokio::spawn(crate::deliver_mail(pool.clone(), smtp, every));
        }
        None => tracing::info!("mail.smtp_url is not set: mail stays in the mail_outbox table"),
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    if platform.billing.stripe.is_some() {
        let mut stopped = stopping.clone();
        tokio::spawn(platform::billing::run_worker(
            platform.clone(),
            std::time::Duration::from_secs(config.billing.worker_interval_secs.max(1)),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ));
        tracing::info!("billing: Stripe webhooks at /api/webhooks/stripe");
    } else {
        tracing::info!(
            "billing: local mode (no billing.stripe_secret_key); plans are set with `slipway admin set-plan`"
        );
    }
    let proxy = if config.proxy.enabled {
        Some(crate::start_proxy(&config, platform.clone(), stopping.clone()).await?)
    } else {
        tracing::info!("proxy.enabled is false: this process does not serve sites' visitors");
        None
    };
    crate::serve(&config, platform, runtime, listener, async move {
        crate::shutdown_signal().await;
        let _ = stop.send(true);
    })
    .await?;
    if let Some(proxy) = proxy {
        proxy.stopped().await;
    }
    let _ = stop_reconciler.send(());
    if let Some(task) = reconciler {
        // A pass in progress is cut off here; the next start resumes it (steps are idempotent).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    pool.close().await;
    Ok(())
}

/// Measures every site's storage every `every` (for as long as the process runs).
async fn sample_storage(
    reconciler: std::sync::Arc<platform::provision::Reconciler>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match reconciler.sample_storage().await {
            Ok(sites) => tracing::debug!(sites, "storage sampled"),
            Err(error) => tracing::warn!(%error, "storage sampling failed"),
        }
    }
}

async fn set_plan(config: &Config, org: &str, plan: &str) -> anyhow::Result<()> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let done = platform::billing::set_plan(&platform, org, plan).await?;
    println!("{org} is on the {plan} plan");
    if !done.suspended.is_empty() {
        println!(
            "suspended (over the plan's site limit): {}",
            done.suspended.join(", ")
        );
    }
    if !done.resumed.is_empty() {
        println!("resumed: {}", done.resumed.join(", "));
    }
    pool.close().await;
    Ok(())
}

async fn stripe_sync(config: &Config) -> anyhow::Result<()> {
    if config.billing.stripe_secret_key.is_none() {
        anyhow::bail!(
            "setting `billing.stripe_secret_key` is not set: this server is in local billing mode and has nothing to sync"
        );
    }
    let pool = db::connect(&config.database).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    for change in platform::billing::catalog::sync(&platform).await? {
        println!("{change}");
    }
    pool.close().await;
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let applied = db::MIGRATOR.iter().count();
    println!("database is at the latest schema ({applied} migrations)");
    pool.close().await;
    Ok(())
}

fn print_plans(config: &Config) -> anyhow::Result<()> {
    let catalog = config.catalog()?;
    let dollars =
        |cents: platform::plans::Cents| format!("${}.{:02}", cents.0 / 100, cents.0 % 100);
    println!(
        "{:<12} {:>10} {:>10}  LIMITS AND FEATURES",
        "PLAN", "MONTHLY", "YEARLY"
    );
    for plan in catalog.plans() {
        println!(
            "{:<12} {:>10} {:>10}  {}",
            plan.id,
            dollars(plan.monthly_cents),
            dollars(plan.yearly_cents),
            plan.highlights().join("; ")
        );
    }
    Ok(())
}
