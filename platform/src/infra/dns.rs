//! DNS lookups (custom domains prove control with a TXT record), through hickory.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::kernel::{Error, Result};

/// How domains are checked: which DNS server answers (unset: the system's resolvers).
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    pub resolver: Option<SocketAddr>,
    pub timeout: Option<Duration>,
}

fn resolver(settings: &DnsSettings) -> Result<TokioResolver> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("DNS resolver: {e}"));
    let mut builder = match settings.resolver {
        Some(address) => {
            let mut server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut server.connections {
                connection.port = address.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio().map_err(|e| internal(&e))?,
    };
    let mut options = ResolverOpts::default();
    // Someone is waiting on the page: a healthy resolver answers in milliseconds, so give
    // up after two tries of two seconds.
    options.timeout = settings.timeout.unwrap_or(Duration::from_secs(2));
    options.attempts = 2;
    // A record the customer just created must be seen now, not after a cached "no".
    options.cache_size = 0;
    *builder.options_mut() = options;
    builder.build().map_err(|e| internal(&e))
}

/// The TXT strings published at `name` (each record's strings joined, as RFC 7208 does).
pub async fn txt_records(settings: &DnsSettings, name: &str) -> Result<Vec<String>> {
    let resolver = resolver(settings)?;
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()),
        Err(error) if error.is_no_records_found() || error.is_nx_domain() => Ok(Vec::new()),
        Err(error) => Err(Error::Conflict(format!(
            "DNS could not be queried for {name} ({error}). Try again in a minute."
        ))),
    }
}
