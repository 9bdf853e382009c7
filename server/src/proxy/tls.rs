//! TLS on the proxy: certificates chosen by SNI from a [`CertificateStore`].
//!
//! The store holds one certificate for `*.<base domain>` (every site's own name) and one
//! per custom domain. Today they come from PEM files (`proxy.tls.*`), rescanned every
//! minute; automatic issuance (ACME) will only need to call [`CertificateStore::insert`]
//! with what it obtained.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Certificates by host name, plus the wildcard for sites' own names.
#[derive(Debug)]
pub struct CertificateStore {
    base_domain: String,
    provider: Arc<CryptoProvider>,
    wildcard: ArcSwap<Option<Arc<CertifiedKey>>>,
    domains: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertificateStore {
    pub fn new(base_domain: &str) -> Self {
        Self {
            base_domain: base_domain.to_owned(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            wildcard: ArcSwap::from_pointee(None),
            domains: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// A certificate chain and key from PEM files.
    pub fn load(&self, chain: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
            .with_context(|| format!("reading {}", chain.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing {}", chain.display()))?;
        if certs.is_empty() {
            anyhow::bail!("{} holds no certificate", chain.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key {}", key.display()))?;
        let certified = CertifiedKey::from_der(certs, key, &self.provider)
            .with_context(|| format!("{} does not match its key", chain.display()))?;
        Ok(Arc::new(certified))
    }

    pub fn set_wildcard(&self, certified: Arc<CertifiedKey>) {
        self.wildcard.store(Arc::new(Some(certified)));
    }

    /// Adds or replaces the certificate served for `domain` (the seam for ACME).
    pub fn insert(&self, domain: &str, certified: Arc<CertifiedKey>) {
        self.domains.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(domain.to_ascii_lowercase(), certified.clone());
            next
        });
    }

    /// Loads `<dir>/<domain>/fullchain.pem` + `privkey.pem` for every folder in `dir`;
    /// replaces the per-domain set. A broken pair is logged and skipped.
    pub fn load_dir(&self, dir: &Path) -> anyhow::Result<usize> {
        let mut next = HashMap::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let Some(domain) = entry.file_name().to_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            match self.load(&path.join("fullchain.pem"), &path.join("privkey.pem")) {
                Ok(certified) => {
                    next.insert(domain, certified);
                }
                Err(error) => {
                    tracing::warn!(%domain, error = %format!("{error:#}"), "skipping certificate")
                }
            }
        }
        let count = next.len();
        self.domains.store(Arc::new(next));
        Ok(count)
    }

    /// The certificate for `server_name`: its own, else the wildcard if it is a site's name.
    pub fn certificate_for(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(certified) = self.domains.load().get(&name) {
            return Some(certified.clone());
        }
        let label = name.strip_suffix(&format!(".{}", self.base_domain))?;
        if label.is_empty() || label.contains('.') {
            return None;
        }
        self.wildcard.load().as_ref().clone()
    }

    /// A rustls server configuration that picks certificates from this store and offers
    /// HTTP/2 and HTTP/1.1.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertificateStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (an IP address, an old client): nothing to choose by.
        self.0.certificate_for(hello.server_name()?)
    }
}
