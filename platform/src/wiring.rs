//! The one place adapters are built from the settings: the Stripe client, the DNS resolver
//! settings, the master key, the catalog. Everything else receives them in [`Platform`].

use std::time::Duration;

use crate::Platform;
use crate::billing::BillingSettings;
use crate::config::{Config, ConfigError};
use crate::infra::dns::DnsSettings;
use crate::infra::mail::{Mailer, Smtp};
use crate::infra::stripe::StripeApi;

impl Platform {
    /// The platform `config` describes, on `db`.
    pub fn from_config(db: sqlx::PgPool, config: &Config) -> Result<Self, ConfigError> {
        let mut platform = Self::new(db, config.catalog()?, config.public_url()?)
            .with_templates(config.templates.clone())
            .with_site_url_pattern(&config.provision.site_url)
            .with_base_domain(&config.proxy.base_domain)
            .with_dns(DnsSettings {
                resolver: config.proxy.dns_resolver,
                timeout: None,
            })
            .with_billing(billing_settings(config)?)
            .with_mailer(mailer(config)?)
            .with_mode(config.mode)
            .with_monitor(config.monitor.clone())
            .with_support(support(config)?);
        if let Some(key) = config.master_key()? {
            platform = platform.with_master_key(key);
        }
        Ok(platform)
    }
}

/// Where customers get help, checked: a real address, an `http(s)` documentation URL.
pub fn support(config: &Config) -> Result<crate::Support, ConfigError> {
    let email = config
        .support
        .email
        .as_deref()
        .map(|raw| {
            crate::kernel::Email::parse(raw)
                .map_err(|e| ConfigError::Invalid(format!("setting `support.email`: {e}")))
        })
        .transpose()?;
    let docs_url = config
        .support
        .docs_url
        .as_deref()
        .map(|raw| match url::Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
            _ => Err(ConfigError::Invalid(format!(
                "setting `support.docs_url`: {raw:?} is not an http(s) URL"
            ))),
        })
        .transpose()?;
    Ok(crate::Support { email, docs_url })
}

/// Where mail goes: SMTP when `mail.smtp_url` is set, else the outbox (the local mail page).
pub fn mailer(config: &Config) -> Result<Mailer, ConfigError> {
    Ok(
        match Smtp::from_config(&config.mail).map_err(|e| ConfigError::Invalid(e.to_string()))? {
            Some(smtp) => Mailer::Smtp(Box::new(smtp)),
            None => Mailer::Local,
        },
    )
}

/// Billing as configured: the Stripe client when a key is set (local billing mode without).
pub fn billing_settings(config: &Config) -> Result<BillingSettings, ConfigError> {
    let billing = &config.billing;
    let stripe = match config.stripe()? {
        Some((key, base)) => {
            use secrecy::ExposeSecret as _;
            Some(StripeApi::new(key.expose_secret(), &base).map_err(|e| {
                ConfigError::Invalid(format!("setting `billing.stripe_secret_key`: {e}"))
            })?)
        }
        None => None,
    };
    Ok(BillingSettings {
        stripe,
        webhook_secrets: billing.stripe_webhook_secrets.clone(),
        failed_payments_before_suspend: billing.failed_payments_before_suspend,
        grace_period: Duration::from_secs(billing.grace_period_secs),
        contact_email: billing
            .contact_email
            .as_deref()
            .map(|raw| {
                crate::kernel::Email::parse(raw).map_err(|e| {
                    ConfigError::Invalid(format!("setting `billing.contact_email`: {e}"))
                })
            })
            .transpose()?,
    })
}
