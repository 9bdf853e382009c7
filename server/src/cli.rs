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
    }
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
    let catalog = config.catalog()?;
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("setting `listen`: cannot listen on {}", config.listen))?;
    let platform = Platform::new(pool.clone(), catalog, config.public_url()?);
    match platform::mail::Smtp::from_config(&config.mail)? {
        Some(smtp) => {
            let every = std::time::Duration::from_secs(config.mail.poll_interval_secs.max(1));
            tokio::spawn(crate::deliver_mail(pool.clone(), smtp, every));
        }
        None => tracing::info!("mail.smtp_url is not set: mail stays in the mail_outbox table"),
    }
    crate::serve(&config, platform, listener, crate::shutdown_signal()).await?;
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
