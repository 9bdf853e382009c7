//! Command-line interface of the `slipway` binary.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::sync::Arc;

use platform::infra::db;
use platform::infra::docker::Runtime;
use platform::infra::tasks::Background;
use platform::{Config, Platform};

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
    /// Background jobs: lists those queued, retrying, running or dead (with their last
    /// error); `retry ID --reason R --operator EMAIL` queues a dead one again.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
        /// Which to list: queued, running, dead, succeeded or all (default: all but succeeded).
        #[arg(long)]
        state: Option<String>,
        /// How many to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Suspend a site of any organization: visitors get the "suspended" page, its data is
    /// kept, its members see the reason. Recorded in the audit log with the operator as actor.
    SuspendSite(SiteAction),
    /// Lift an operator's suspension of a site.
    ResumeSite(SiteAction),
    /// Retry a site whose provisioning failed, now instead of after its backoff.
    RetrySite(SiteAction),
    /// Run a site's whole reconcile pass again now (schema and role, image, volume,
    /// container and its limits).
    ReconcileSite(SiteAction),
    /// Delete a site of any organization with its data; its owners are mailed the reason.
    DeleteSite {
        #[command(flatten)]
        action: SiteAction,
        /// The site's slug again: a deletion cannot be undone.
        #[arg(long)]
        confirm: String,
    },
    /// Suspend a whole organization: every site of it is suspended with the reason and it
    /// can create no new one until it is resumed.
    SuspendOrg(OrgAction),
    /// Lift an operator's suspension of an organization (and of the sites it suspended).
    ResumeOrg(OrgAction),
    /// Keep a canceled organization's sites longer: its grace period ends after `--until`.
    ExtendGrace {
        #[command(flatten)]
        action: OrgAction,
        /// The last day its sites are kept (YYYY-MM-DD, UTC).
        #[arg(long)]
        until: String,
    },
    /// Disable an account: every session of it ends, its sign-ins are refused with the
    /// reason. Recorded in the audit log with the operator as actor.
    DisableUser(UserAction),
    /// Enable a disabled account again.
    EnableUser(UserAction),
    /// Mail a fresh verification link to an account whose address is not verified.
    ResendVerification(UserAction),
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

/// An operator's action on one site.
#[derive(Debug, clap::Args)]
pub struct SiteAction {
    /// The site's slug.
    #[arg(long)]
    site: String,
    /// Why (shown to the site's members, kept in the audit log).
    #[arg(long)]
    reason: String,
    /// The email of the operator acting.
    #[arg(long)]
    operator: String,
}

/// An operator's action on one organization.
#[derive(Debug, clap::Args)]
pub struct OrgAction {
    /// The organization's slug.
    #[arg(long)]
    org: String,
    /// Why (shown to its members on their sites' pages, kept in the audit log).
    #[arg(long)]
    reason: String,
    /// The email of the operator acting.
    #[arg(long)]
    operator: String,
}

/// An operator's action on one account.
#[derive(Debug, clap::Args)]
pub struct UserAction {
    /// The account's email.
    #[arg(long)]
    user: String,
    /// Why (kept in the audit log; a disabled account is told it when signing in).
    #[arg(long)]
    reason: String,
    /// The email of the operator acting.
    #[arg(long)]
    operator: String,
}

#[derive(Debug, Clone, Copy)]
enum OrgVerb<'a> {
    Suspend,
    Resume,
    /// Through this day (`YYYY-MM-DD`).
    ExtendGrace(&'a str),
}

#[derive(Debug, Clone, Copy)]
enum SiteVerb<'a> {
    Suspend,
    Resume,
    Retry,
    Reconcile,
    /// With the slug typed again.
    Delete(&'a str),
}

#[derive(Debug, Clone, Copy)]
enum UserVerb {
    Disable,
    Enable,
    ResendVerification,
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// Queue a dead job again, now, with a fresh retry window. Recorded in the audit log
    /// with the operator as actor.
    Retry {
        id: i64,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
        /// The email of the operator acting.
        #[arg(long)]
        operator: String,
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
        Command::Admin(AdminCommand::SuspendSite(action)) => {
            site_action(&config, &action, SiteVerb::Suspend).await
        }
        Command::Admin(AdminCommand::RetrySite(action)) => {
            site_action(&config, &action, SiteVerb::Retry).await
        }
        Command::Admin(AdminCommand::ReconcileSite(action)) => {
            site_action(&config, &action, SiteVerb::Reconcile).await
        }
        Command::Admin(AdminCommand::DeleteSite { action, confirm }) => {
            site_action(&config, &action, SiteVerb::Delete(&confirm)).await
        }
        Command::Admin(AdminCommand::SuspendOrg(action)) => {
            org_action(&config, &action, OrgVerb::Suspend).await
        }
        Command::Admin(AdminCommand::ResumeOrg(action)) => {
            org_action(&config, &action, OrgVerb::Resume).await
        }
        Command::Admin(AdminCommand::ExtendGrace { action, until }) => {
            org_action(&config, &action, OrgVerb::ExtendGrace(&until)).await
        }
        Command::Admin(AdminCommand::DisableUser(action)) => {
            user_action(&config, &action, UserVerb::Disable).await
        }
        Command::Admin(AdminCommand::EnableUser(action)) => {
            user_action(&config, &action, UserVerb::Enable).await
        }
        Command::Admin(AdminCommand::ResendVerification(action)) => {
            user_action(&config, &action, UserVerb::ResendVerification).await
        }
        Command::Admin(AdminCommand::ResumeSite(action)) => {
            site_action(&config, &action, SiteVerb::Resume).await
        }
        Command::Admin(AdminCommand::Jobs {
            action:
                Some(JobsAction::Retry {
                    id,
                    reason,
                    operator,
                }),
            ..
        }) => retry_job(&config, id, &reason, &operator).await,
        Command::Admin(AdminCommand::Jobs {
            action: None,
            state,
            limit,
        }) => list_jobs(&config, state.as_deref(), limit).await,
        Command::Stripe(StripeCommand::Sync) => stripe_sync(&config).await,
        Command::Keygen => {
            println!("{}", platform::kernel::secrets::MasterKey::generate());
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
    let runtime = platform::infra::docker::Runtime::new(&config.provision.docker_socket);
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
    use platform::identity::users;
    use platform::identity::users::{NewPassword, OperatorCreated, PersonName};
    use platform::kernel::Email;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let name = PersonName::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let password = read_password().context("reading the password")?;
    let password = NewPassword::parse(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let platform = Platform::new(pool.clone(), config.catalog()?, config.public_url()?);
    match users::create_operator(&platform, &email, &name, &password).await? {
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
    config.check_production()?;
    for setting in config.ignored_settings() {
        tracing::warn!(
            setting,
            "this setting no longer does anything (background work is a job now); remove it"
        );
    }
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("setting `listen`: cannot listen on {}", config.listen))?;
    let platform = Platform::from_config(pool.clone(), &config)?;
    let background = Background::new();
    // First: every loop below subscribes to it.
    platform.notifications.start(&background);
    let runtime = start_provisioning(&config, &platform, &background).await?;
    platform::workers::start(&platform, &background, config.jobs.workers);
    match &*platform.mailer {
        platform::infra::mail::Mailer::Smtp(_) => tracing::info!("mail: delivered through SMTP"),
        platform::infra::mail::Mailer::Local => {
            tracing::info!(
                "mail.smtp_url is not set: mail stays in the outbox (the local mail page in development)"
            )
        }
    }
    if platform.billing.is_local() {
        tracing::info!(
            "billing: local mode (no billing.stripe_secret_key); plans are set with `slipway admin set-plan`"
        );
    } else {
        tracing::info!("billing: Stripe webhooks at /api/webhooks/stripe");
    }
    let proxy = if config.proxy.enabled {
        Some(crate::start_proxy(&config, platform.clone(), &background).await?)
    } else {
        tracing::info!("proxy.enabled is false: this process does not serve sites' visitors");
        None
    };
    crate::start_metrics(&config, platform.clone(), &background).await?;
    let welcome = match config.mode {
        platform::config::Mode::Development => {
            Some(crate::dev::prepare(&platform, &config, proxy.as_ref()).await?)
        }
        platform::config::Mode::Production => None,
    };
    let token = background.token();
    tokio::spawn({
        let token = token.clone();
        async move {
            crate::shutdown_signal().await;
            token.cancel();
        }
    });
    let address = listener
        .local_addr()
        .context("reading the listener's address")?;
    if let Some(welcome) = welcome {
        // After everything else, so it is the last thing `make dev` prints.
        welcome.print(address);
    }
    crate::serve(
        &config,
        platform,
        runtime,
        listener,
        token.cancelled_owned(),
    )
    .await?;
    let within = std::time::Duration::from_secs(config.shutdown_timeout_secs);
    let late = background.shutdown(within).await;
    if late.is_empty() {
        tracing::info!("every background task stopped");
    } else {
        tracing::warn!(?late, "stopping without waiting longer for these");
    }
    // Connections a late task still holds are not waited for forever either.
    if tokio::time::timeout(within, pool.close()).await.is_err() {
        tracing::warn!("closing the database pool timed out");
    }
    Ok(())
}

/// The reconciler and the storage sampler, when this process manages sites.
async fn start_provisioning(
    config: &Config,
    platform: &Platform,
    background: &Background,
) -> anyhow::Result<Option<Arc<Runtime>>> {
    if !config.provision.enabled {
        tracing::info!("provision.enabled is false: this process does not manage sites");
        return Ok(None);
    }
    let runtime = Arc::new(Runtime::new(&config.provision.docker_socket));
    if platform.master_key.is_none() {
        tracing::warn!(
            "provision.master_key is not set: sites cannot be created (generate one with `slipway keygen`)"
        );
        return Ok(Some(runtime));
    }
    let reconciler = platform::provision::Reconciler::new(
        platform.clone(),
        runtime.clone(),
        config.provision.clone(),
    )
    .await
    .context("starting the reconciler")?;
    tracing::info!(network = %config.provision.network, "reconciler running");
    let reconciler = Arc::new(reconciler);
    background.spawn(
        "reconciler",
        reconciler.clone().run(background.token().cancelled_owned()),
    );
    if config.monitor.enabled {
        let monitor = platform::monitor::Monitor::new(
            platform.clone(),
            runtime.clone(),
            crate::proxy::Proxy::prober(crate::proxy::Settings::from_config(&config.proxy)),
            &config.provision.network,
        )
        .await
        .context("starting the health monitor")?;
        background.spawn("monitor", Arc::new(monitor).run(background.token()));
    } else {
        tracing::info!("monitor.enabled is false: this process does not watch sites' health");
    }
    let every = std::time::Duration::from_secs(config.usage.storage_interval_secs.max(10));
    background.spawn_every("storage sampling", every, move || {
        let reconciler = reconciler.clone();
        async move {
            match reconciler.sample_storage().await {
                Ok(sites) => tracing::debug!(sites, "storage sampled"),
                Err(error) => tracing::warn!(%error, "storage sampling failed"),
            }
        }
    });
    Ok(Some(runtime))
}

async fn list_jobs(config: &Config, state: Option<&str>, limit: i64) -> anyhow::Result<()> {
    use platform::infra::jobs::JobState;
    let states = match state {
        None => vec![JobState::Queued, JobState::Running, JobState::Dead],
        Some("all") => Vec::new(),
        Some(raw) => vec![JobState::parse(raw).ok_or_else(|| {
            anyhow::anyhow!("--state: use queued, running, dead, succeeded or all (got {raw:?})")
        })?],
    };
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let jobs = platform.jobs.list(&states, limit.clamp(1, 1000)).await?;
    if jobs.is_empty() {
        println!("no jobs to show");
    } else {
        println!(
            "{:>8}  {:<30} {:<9} {:>8}  {:<20}  LAST ERROR",
            "ID", "KIND", "STATE", "ATTEMPTS", "NEXT RUN (UTC)"
        );
    }
    for job in jobs {
        let state = match job.state {
            JobState::Queued if job.attempts > 0 => "retrying",
            other => other.as_str(),
        };
        let next = match job.state {
            JobState::Queued => job.run_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            _ => "-".to_owned(),
        };
        let error: String = job
            .last_error
            .unwrap_or_default()
            .replace('\n', " ")
            .chars()
            .take(120)
            .collect();
        println!(
            "{:>8}  {:<30} {:<9} {:>8}  {:<20}  {error}",
            job.id, job.kind, state, job.attempts, next
        );
    }
    pool.close().await;
    Ok(())
}

async fn retry_job(config: &Config, id: i64, reason: &str, operator: &str) -> anyhow::Result<()> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let retried = async {
        let by = as_operator(&platform, operator).await?;
        let reason = platform::admin::Reason::parse(reason)?;
        match platform::admin::jobs::retry_job(&platform, &by, id, &reason).await {
            Ok(()) => println!("job {id} is queued again"),
            Err(platform::Error::NotFound) => anyhow::bail!("there is no job {id}"),
            Err(error) => anyhow::bail!("{error}"),
        }
        Ok::<_, anyhow::Error>(())
    };
    let outcome = retried.await;
    pool.close().await;
    outcome
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

/// `admin suspend-site` / `resume-site` / `retry-site` / `reconcile-site` / `delete-site`.
async fn site_action(
    config: &Config,
    action: &SiteAction,
    verb: SiteVerb<'_>,
) -> anyhow::Result<()> {
    use platform::admin::{self, Reason};
    let (slug, reason, operator) = (&action.site, &action.reason, &action.operator);
    let pool = db::connect(&config.database).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let acted = async {
        let by = as_operator(&platform, operator).await?;
        let reason = Reason::parse(reason)?;
        let site =
            admin::site_by_slug(&platform, &by, slug)
                .await
                .map_err(|error| match error {
                    platform::Error::NotFound => anyhow::anyhow!("no site {slug:?}"),
                    other => other.into(),
                })?;
        match verb {
            SiteVerb::Suspend => {
                admin::suspend_site(&platform, &by, site, &reason).await?;
                println!("{slug} is suspended: visitors get the \"suspended\" page");
            }
            SiteVerb::Resume => {
                admin::resume_site(&platform, &by, site, &reason).await?;
                println!("{slug} is resumed");
            }
            SiteVerb::Retry => {
                admin::retry_provisioning(&platform, &by, site, &reason).await?;
                println!("{slug} is retried: the reconciler runs it again now");
            }
            SiteVerb::Reconcile => {
                admin::passes::force_reconcile(&platform, &by, site, &reason).await?;
                println!("{slug} is reconciled again: the reconciler runs its whole pass now");
            }
            SiteVerb::Delete(confirm) => {
                admin::passes::delete_site(&platform, &by, site, confirm, &reason).await?;
                println!("{slug} is being deleted with its data; its owners are mailed why");
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let outcome = acted.await;
    pool.close().await;
    outcome
}

/// The operator the command line names.
async fn as_operator(
    platform: &Platform,
    email: &str,
) -> anyhow::Result<platform::admin::Operator> {
    platform::admin::Operator::by_email(platform, email)
        .await
        .map_err(|error| match error {
            platform::Error::Forbidden => {
                anyhow::anyhow!("{email} is not a platform operator (see `slipway admin create`)")
            }
            other => other.into(),
        })
}

/// `admin suspend-org` / `resume-org` / `extend-grace`.
async fn org_action(config: &Config, action: &OrgAction, verb: OrgVerb<'_>) -> anyhow::Result<()> {
    use platform::admin::{self, Reason};
    let slug = &action.org;
    let pool = db::connect(&config.database).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let acted = async {
        let by = as_operator(&platform, &action.operator).await?;
        let reason = Reason::parse(&action.reason)?;
        let organization = admin::organization_by_slug(&platform, &by, slug)
            .await
            .map_err(|error| match error {
                platform::Error::NotFound => anyhow::anyhow!("no organization {slug:?}"),
                other => other.into(),
            })?;
        match verb {
            OrgVerb::Suspend => {
                let sites =
                    admin::suspend_organization(&platform, &by, organization, &reason).await?;
                println!("{slug} is suspended; {sites} site(s) suspended");
            }
            OrgVerb::Resume => {
                let sites =
                    admin::resume_organization(&platform, &by, organization, &reason).await?;
                println!("{slug} is resumed; {sites} site(s) resumed");
            }
            OrgVerb::ExtendGrace(until) => {
                let until = admin::grace::parse_until(until)?;
                let ends = admin::grace::extend_grace(&platform, &by, organization, until, &reason)
                    .await?;
                println!(
                    "{slug}'s sites are kept until {}",
                    ends.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let outcome = acted.await;
    pool.close().await;
    outcome
}

/// `admin disable-user` / `enable-user` / `resend-verification`.
async fn user_action(config: &Config, action: &UserAction, verb: UserVerb) -> anyhow::Result<()> {
    use platform::admin::{Reason, users};
    let email = &action.user.trim().to_lowercase();
    let pool = db::connect(&config.database).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    let acted = async {
        let by = as_operator(&platform, &action.operator).await?;
        let reason = Reason::parse(&action.reason)?;
        let user =
            users::user_by_email(&platform, &by, email)
                .await
                .map_err(|error| match error {
                    platform::Error::NotFound => anyhow::anyhow!("no account {email:?}"),
                    other => other.into(),
                })?;
        match verb {
            UserVerb::Disable => {
                let ended = users::disable_user(&platform, &by, user, &reason).await?;
                println!("{email} is disabled; {ended} session(s) ended");
            }
            UserVerb::Enable => {
                users::enable_user(&platform, &by, user, &reason).await?;
                println!("{email} is enabled: it may sign in again");
            }
            UserVerb::ResendVerification => {
                users::resend_verification(&platform, &by, user, &reason).await?;
                println!("a fresh verification link was mailed to {email}");
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    let outcome = acted.await;
    pool.close().await;
    outcome
}

async fn stripe_sync(config: &Config) -> anyhow::Result<()> {
    if config.billing.stripe_secret_key.is_none() {
        anyhow::bail!(
            "setting `billing.stripe_secret_key` is not set: this server is in local billing mode and has nothing to sync"
        );
    }
    let pool = db::connect(&config.database).await?;
    let platform = Platform::from_config(pool.clone(), config)?;
    for change in platform::billing::catalog_sync::sync(&platform).await? {
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
        |cents: platform::catalog::plans::Cents| format!("${}.{:02}", cents.0 / 100, cents.0 % 100);
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
