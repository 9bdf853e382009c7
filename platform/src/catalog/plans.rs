//! The plan catalog: what an organization can buy, at what price, with which limits.
//!
//! Plans come from configuration (`[[plans]]` in `slipway.toml`); the defaults below are the
//! seed tiers. Field types parse on the way in, so a `Plan` that exists is well-formed;
//! [`Catalog::new`] adds the rules that span plans (at least one, ids unique).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::kernel::money::{CURRENCY, Cents};

/// A plan identifier: 2-32 chars of `a-z 0-9 -`, starting with a letter. It ends up in
/// URLs, Stripe metadata and lookup keys, so it stays boring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlanId(String);

impl PlanId {
    pub fn parse(raw: &str) -> Result<Self, CatalogError> {
        let valid_len = (2..=32).contains(&raw.len());
        let starts_with_letter = raw.starts_with(|c: char| c.is_ascii_lowercase());
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid_len && starts_with_letter && valid_chars && !raw.ends_with('-') {
            Ok(Self(raw.to_owned()))
        } else {
            Err(CatalogError::InvalidId(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PlanId {
    type Error = CatalogError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<PlanId> for String {
    fn from(id: PlanId) -> Self {
        id.0
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment (`{:<12}`), for tables.
        f.pad(&self.0)
    }
}

/// A countable limit that a plan may also leave open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u32),
    Unlimited,
}

impl Limit {
    /// Whether `used + 1` still fits.
    pub fn allows_one_more(self, used: u32) -> bool {
        match self {
            Limit::Count(max) => used < max,
            Limit::Unlimited => true,
        }
    }
}

/// In TOML a limit is a number or the string `"unlimited"`.
impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Count(n) => Ok(Limit::Count(n)),
            Raw::Word(w) if w == "unlimited" => Ok(Limit::Unlimited),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expected a number or \"unlimited\", found \"{w}\""
            ))),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => serializer.serialize_u32(*n),
            Limit::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

/// Resources and quotas a plan grants an organization and each of its sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Hosted sites per organization.
    pub sites: Limit,
    /// Members per organization.
    pub members: Limit,
    /// Database plus volume storage per site, in MiB.
    pub storage_mb: u32,
    /// Container memory per site, in MiB.
    pub memory_mb: u32,
    /// Container CPU per site, in thousandths of a core.
    pub cpu_millis: u32,
    /// How long automatic backups are kept; 0 means no automatic backups.
    pub backup_retention_days: u32,
    /// Processes (and threads) per site's container.
    #[serde(default = "default_pids")]
    pub pids: u32,
    /// The site's database role's `CONNECTION LIMIT`: what one site may hold of the
    /// cluster's `max_connections`.
    #[serde(default = "default_db_connections")]
    pub db_connections: u32,
    /// The site's database role's `statement_timeout`, in milliseconds.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u32,
    /// Traffic (request plus response bodies) per site and calendar month, in GiB.
    #[serde(default = "default_bandwidth_gb")]
    pub bandwidth_gb: u32,
    /// Requests per site and calendar month.
    #[serde(default = "default_monthly_requests")]
    pub monthly_requests: u64,
    /// The largest request body the proxy passes to a site, in MiB.
    #[serde(default = "default_request_body_mb")]
    pub request_body_mb: u32,
    /// Requests one site may have in flight at once; more get a 503 so one tenant cannot
    /// starve the others.
    #[serde(default = "default_concurrent_requests")]
    pub concurrent_requests: u32,
    /// Sites created (each one a build of the app) per organization and month before
    /// overages, on plans that bill them.
    #[serde(default = "default_monthly_builds")]
    pub monthly_builds: u32,
}

fn default_monthly_builds() -> u32 {
    100
}

fn default_bandwidth_gb() -> u32 {
    50
}

fn default_monthly_requests() -> u64 {
    1_000_000
}

fn default_request_body_mb() -> u32 {
    10
}

fn default_concurrent_requests() -> u32 {
    64
}

fn default_pids() -> u32 {
    128
}

fn default_db_connections() -> u32 {
    5
}

fn default_statement_timeout_ms() -> u32 {
    30_000
}

/// What a plan switches on, beyond its numeric limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Run the open-source app on your own server (no hosted sites).
    SelfHosted,
    CommunitySupport,
    AutomaticBackups,
    Ssl,
    CustomDomains,
    ApiAccess,
    WhiteLabel,
    Sla,
    /// Usage above the included amounts is billed instead of refused.
    MeteredOverages,
}

impl Feature {
    /// Whether the label is a plural ("Custom domains are ...").
    pub fn is_plural(self) -> bool {
        matches!(
            self,
            Feature::AutomaticBackups
                | Feature::Ssl
                | Feature::CustomDomains
                | Feature::MeteredOverages
        )
    }

    /// Whether Slipway delivers the feature today. The public pages promise only what is
    /// delivered: a plan may list a feature in the catalog before it exists (backups and
    /// certificates arrive with their own issues), but no customer is told so.
    pub fn delivered(self) -> bool {
        !matches!(
            self,
            Feature::AutomaticBackups | Feature::Ssl | Feature::WhiteLabel
        )
    }

    /// How the feature reads on the pricing page.
    pub fn label(self) -> &'static str {
        match self {
            Feature::SelfHosted => "Self-hosted on your own server",
            Feature::CommunitySupport => "Community support",
            Feature::AutomaticBackups => "Automatic backups",
            Feature::Ssl => "SSL certificates",
            Feature::CustomDomains => "Custom domains",
            Feature::ApiAccess => "API access",
            Feature::WhiteLabel => "White-label",
            Feature::Sla => "99.9% uptime SLA",
            Feature::MeteredOverages => "Pay-as-you-go overages",
        }
    }
}

/// One plan of the catalog, as written in `[[plans]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub description: String,
    /// Price of one month on monthly billing.
    pub monthly_cents: Cents,
    /// Price of one year on yearly billing.
    pub yearly_cents: Cents,
    pub limits: Limits,
    #[serde(default)]
    pub features: BTreeSet<Feature>,
    /// Shown as the recommended plan on the pricing page.
    #[serde(default)]
    pub featured: bool,
    /// What usage above the included amounts costs, on plans with `metered_overages`.
    #[serde(default)]
    pub overage: Option<Overage>,
}

/// Prices of usage beyond a plan's included amounts (billed through Stripe Billing Meters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overage {
    /// Per GiB of traffic above `bandwidth_gb` per site, in a month.
    pub bandwidth_gb_cents: u64,
    /// Per GiB stored above `storage_mb` per site (the month's peak).
    pub storage_gb_cents: u64,
    /// Per build (site creation) above `monthly_builds`.
    pub build_cents: u64,
}

impl Plan {
    /// The plan's limits and features as short lines for the pricing page.
    pub fn highlights(&self) -> Vec<String> {
        let limits = &self.limits;
        let mut lines = Vec::new();
        match limits.sites {
            Limit::Unlimited => lines.push("Unlimited sites".to_owned()),
            Limit::Count(0) => {}
            Limit::Count(n) => lines.push(plural(n, "hosted site", "hosted sites")),
        }
        lines.push(match limits.members {
            Limit::Unlimited => "Unlimited team members".to_owned(),
            Limit::Count(n) => plural(n, "team member", "team members"),
        });
        if limits.memory_mb > 0 && limits.cpu_millis > 0 {
            lines.push(format!(
                "{} memory and {} per site",
                mebibytes(limits.memory_mb),
                vcpus(limits.cpu_millis)
            ));
        }
        if limits.storage_mb > 0 {
            lines.push(format!("{} storage per site", mebibytes(limits.storage_mb)));
        }
        if limits.bandwidth_gb > 0 {
            lines.push(format!(
                "{} GB bandwidth per site a month",
                limits.bandwidth_gb
            ));
        }
        for feature in self.features.iter().filter(|f| f.delivered()) {
            match feature {
                Feature::AutomaticBackups if limits.backup_retention_days > 0 => {
                    lines.push(format!(
                        "Automatic backups, kept {}",
                        plural(limits.backup_retention_days, "day", "days")
                    ));
                }
                other => lines.push(other.label().to_owned()),
            }
        }
        lines
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `512` -> `512 MB`, `5120` -> `5 GB`, `1536` -> `1.5 GB` (binary units, as Docker counts).
fn mebibytes(mb: u32) -> String {
    if mb >= 1024 && mb.is_multiple_of(512) {
        let gb = f64::from(mb) / 1024.0;
        format!("{gb} GB")
    } else {
        format!("{mb} MB")
    }
}

/// `500` -> `0.5 vCPU`, `1000` -> `1 vCPU`, `2000` -> `2 vCPUs`.
fn vcpus(millis: u32) -> String {
    let cores = f64::from(millis) / 1000.0;
    if millis <= 1000 {
        format!("{cores} vCPU")
    } else {
        format!("{cores} vCPUs")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "plan id \"{0}\" is invalid: use 2-32 characters of a-z, 0-9 and -, starting with a letter"
    )]
    InvalidId(String),
    #[error("the catalog has no plans")]
    Empty,
    #[error("plan id \"{0}\" appears more than once")]
    DuplicateId(PlanId),
    #[error("plan \"{0}\" has an empty name")]
    EmptyName(PlanId),
}

/// The validated plan catalog, in display order.
#[derive(Debug, Clone)]
pub struct Catalog {
    plans: Vec<Plan>,
}

impl Catalog {
    pub fn new(plans: Vec<Plan>) -> Result<Self, CatalogError> {
        if plans.is_empty() {
            return Err(CatalogError::Empty);
        }
        let mut seen = BTreeSet::new();
        for plan in &plans {
            if !seen.insert(&plan.id) {
                return Err(CatalogError::DuplicateId(plan.id.clone()));
            }
            if plan.name.trim().is_empty() {
                return Err(CatalogError::EmptyName(plan.id.clone()));
            }
        }
        Ok(Self { plans })
    }

    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    pub fn get(&self, id: &PlanId) -> Option<&Plan> {
        self.plans.iter().find(|p| &p.id == id)
    }
}

/// The seed tiers. Yearly prices are ten months' worth: two months free.
pub fn default_plans() -> Vec<Plan> {
    use Feature::*;
    let plan = |id: &str,
                name: &str,
                description: &str,
                monthly_dollars: u64,
                limits: Limits,
                features: &[Feature],
                featured: bool| Plan {
        id: PlanId(id.to_owned()),
        name: name.to_owned(),
        description: description.to_owned(),
        monthly_cents: Cents(monthly_dollars * 100),
        yearly_cents: Cents(monthly_dollars * 100 * 10),
        limits,
        features: features.iter().copied().collect(),
        featured,
        overage: features.contains(&MeteredOverages).then_some(Overage {
            bandwidth_gb_cents: 8,
            storage_gb_cents: 20,
            build_cents: 10,
        }),
    };
    vec![
        plan(
            "free",
            "Free",
            "Run the open-source app on your own server.",
            0,
            Limits {
                sites: Limit::Count(0),
                members: Limit::Count(1),
                storage_mb: 0,
                memory_mb: 0,
                cpu_millis: 0,
                pids: 64,
                db_connections: 0,
                statement_timeout_ms: 30_000,
                backup_retention_days: 0,
                bandwidth_gb: 0,
                monthly_requests: 0,
                request_body_mb: 1,
                concurrent_requests: 1,
                monthly_builds: 0,
            },
            &[SelfHosted, CommunitySupport],
            false,
        ),
        plan(
            "starter",
            "Starter",
            "One hosted site with its own database.",
            15,
            Limits {
                sites: Limit::Count(1),
                members: Limit::Count(1),
                storage_mb: 5 * 1024,
                memory_mb: 256,
                cpu_millis: 500,
                pids: 128,
                db_connections: 3,
                statement_timeout_ms: 30_000,
                backup_retention_days: 7,
                bandwidth_gb: 50,
                monthly_requests: 500_000,
                request_body_mb: 10,
                concurrent_requests: 32,
                monthly_builds: 20,
            },
            &[AutomaticBackups, Ssl],
            false,
        ),
        plan(
            "pro",
            "Pro",
            "For small teams with several sites and their own domains.",
            49,
            Limits {
                sites: Limit::Count(5),
                members: Limit::Count(3),
                storage_mb: 25 * 1024,
                memory_mb: 512,
                cpu_millis: 1000,
                pids: 256,
                db_connections: 5,
                statement_timeout_ms: 30_000,
                backup_retention_days: 30,
                bandwidth_gb: 250,
                monthly_requests: 2_500_000,
                request_body_mb: 25,
                concurrent_requests: 128,
                monthly_builds: 100,
            },
            &[AutomaticBackups, Ssl, CustomDomains, ApiAccess],
            true,
        ),
        plan(
            "business",
            "Business",
            "Unlimited sites and members, with an SLA.",
            149,
            Limits {
                sites: Limit::Unlimited,
                members: Limit::Unlimited,
                storage_mb: 100 * 1024,
                memory_mb: 1024,
                cpu_millis: 2000,
                pids: 512,
                db_connections: 10,
                statement_timeout_ms: 30_000,
                backup_retention_days: 90,
                bandwidth_gb: 1000,
                monthly_requests: 10_000_000,
                request_body_mb: 100,
                concurrent_requests: 512,
                monthly_builds: 500,
            },
            &[
                AutomaticBackups,
                Ssl,
                CustomDomains,
                ApiAccess,
                WhiteLabel,
                Sla,
                MeteredOverages,
            ],
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_catalog() -> Catalog {
        Catalog::new(default_plans()).expect("default catalog is valid")
    }

    fn id(raw: &str) -> PlanId {
        PlanId::parse(raw).expect("valid id")
    }

    #[test]
    fn defaults_are_the_seed_tiers() {
        let catalog = default_catalog();
        let summary: Vec<(&str, u64, Limit, Limit, u32)> = catalog
            .plans()
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    p.monthly_cents.0,
                    p.limits.sites,
                    p.limits.members,
                    p.limits.backup_retention_days,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("free", 0, Limit::Count(0), Limit::Count(1), 0),
                ("starter", 1500, Limit::Count(1), Limit::Count(1), 7),
                ("pro", 4900, Limit::Count(5), Limit::Count(3), 30),
                ("business", 14900, Limit::Unlimited, Limit::Unlimited, 90),
            ]
        );
        let pro = catalog.get(&id("pro")).expect("pro exists");
        assert!(pro.features.contains(&Feature::CustomDomains));
        assert!(pro.features.contains(&Feature::ApiAccess));
        assert!(!pro.features.contains(&Feature::WhiteLabel));
        let business = catalog.get(&id("business")).expect("business exists");
        assert!(business.features.contains(&Feature::WhiteLabel));
        assert!(business.features.contains(&Feature::Sla));
        assert_eq!(
            business.overage,
            Some(Overage {
                bandwidth_gb_cents: 8,
                storage_gb_cents: 20,
                build_cents: 10
            }),
            "Business bills overages"
        );
        assert_eq!(pro.overage, None);
        let starter = catalog.get(&id("starter")).expect("starter exists");
        assert!(starter.features.contains(&Feature::AutomaticBackups));
        assert!(starter.features.contains(&Feature::Ssl));
    }

    #[test]
    fn yearly_price_is_ten_months() {
        for plan in default_catalog().plans() {
            assert_eq!(
                plan.yearly_cents.0,
                plan.monthly_cents.0 * 10,
                "{}",
                plan.id
            );
        }
    }

    #[test]
    fn plan_ids_are_parsed() {
        for good in ["pro", "team-2", "b2"] {
            assert!(PlanId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "p",
            "Pro",
            "2pro",
            "pro-",
            "pro plan",
            "prö",
            &"x".repeat(33),
        ] {
            assert_eq!(
                PlanId::parse(bad),
                Err(CatalogError::InvalidId(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn catalog_rules() {
        assert_eq!(Catalog::new(vec![]).unwrap_err(), CatalogError::Empty);
        let mut twice = default_plans();
        twice.push(twice[1].clone());
        assert_eq!(
            Catalog::new(twice).unwrap_err(),
            CatalogError::DuplicateId(id("starter"))
        );
        let mut unnamed = default_plans();
        unnamed[0].name = "  ".into();
        assert_eq!(
            Catalog::new(unnamed).unwrap_err(),
            CatalogError::EmptyName(id("free"))
        );
    }

    #[test]
    fn limits_parse_numbers_and_unlimited() {
        #[derive(Deserialize)]
        struct Wrapper {
            limit: Limit,
        }
        let parse = |json: &str| serde_json::from_str::<Wrapper>(json).map(|w| w.limit);
        assert_eq!(parse(r#"{"limit": 3}"#).unwrap(), Limit::Count(3));
        assert_eq!(
            parse(r#"{"limit": "unlimited"}"#).unwrap(),
            Limit::Unlimited
        );
        assert!(parse(r#"{"limit": "lots"}"#).is_err());
        assert!(parse(r#"{"limit": -1}"#).is_err());
    }

    #[test]
    fn limit_allows_one_more() {
        assert!(Limit::Count(1).allows_one_more(0));
        assert!(!Limit::Count(1).allows_one_more(1));
        assert!(!Limit::Count(0).allows_one_more(0));
        assert!(Limit::Unlimited.allows_one_more(u32::MAX));
    }

    #[test]
    fn highlights_describe_limits_and_features() {
        let catalog = default_catalog();
        let pro = catalog.get(&id("pro")).expect("pro exists");
        assert_eq!(
            pro.highlights(),
            [
                "5 hosted sites",
                "3 team members",
                "512 MB memory and 1 vCPU per site",
                "25 GB storage per site",
                "250 GB bandwidth per site a month",
                "Custom domains",
                "API access",
            ]
        );
        let free = catalog.get(&id("free")).expect("free exists");
        assert_eq!(
            free.highlights(),
            [
                "1 team member",
                "Self-hosted on your own server",
                "Community support"
            ]
        );
        let business = catalog.get(&id("business")).expect("business exists");
        assert!(
            business
                .highlights()
                .contains(&"Unlimited sites".to_owned())
        );
        assert!(
            business
                .highlights()
                .contains(&"1 GB memory and 2 vCPUs per site".to_owned())
        );
        let starter = catalog.get(&id("starter")).expect("starter exists");
        assert!(
            starter
                .highlights()
                .contains(&"256 MB memory and 0.5 vCPU per site".to_owned())
        );
        // Features in the catalog that Slipway does not deliver yet are promised nowhere.
        for plan in catalog.plans() {
            for line in plan.highlights() {
                for undelivered in ["backup", "SSL", "White-label"] {
                    assert!(!line.contains(undelivered), "{}: {line}", plan.name);
                }
            }
        }
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(mebibytes(256), "256 MB");
        assert_eq!(mebibytes(1536), "1.5 GB");
        assert_eq!(mebibytes(102_400), "100 GB");
        assert_eq!(mebibytes(1000), "1000 MB");
        assert_eq!(vcpus(250), "0.25 vCPU");
        assert_eq!(vcpus(1500), "1.5 vCPUs");
    }
}
