//! Custom domains against a real DNS server on loopback (hickory-server, authoritative for
//! `example.com` with records the test adds as a customer would at their DNS provider) and
//! the real database: a domain routes only once its TXT proof is published.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use platform::catalog::plans::{Catalog as Plans, default_plans};
use platform::infra::dns::DnsSettings;
use platform::kernel::secrets::MasterKey;
use platform::sites::domains;
use platform::sites::{self, NewSite};
use platform::tenancy::{Membership, Role};
use platform::traffic::routes::RouteTable;
use platform::traffic::usage::Meters;
use platform::{Error, Platform};
use sqlx::PgPool;
use uuid::Uuid;

/// An authoritative DNS server for `example.com.` on a loopback UDP port.
struct Dns {
    address: SocketAddr,
    zone: Arc<InMemoryZoneHandler>,
    serial: std::sync::atomic::AtomicU32,
    _server: Server<Catalog>,
}

impl Dns {
    async fn start() -> Self {
        let origin = Name::from_str("example.com.").unwrap();
        let zone = Arc::new(InMemoryZoneHandler::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        ));
        zone.upsert(
            Record::from_rdata(
                origin.clone(),
                60,
                RData::SOA(SOA::new(
                    Name::from_str("ns.example.com.").unwrap(),
                    Name::from_str("hostmaster.example.com.").unwrap(),
                    1,
                    3600,
                    600,
                    86400,
                    60,
                )),
            ),
            1,
        )
        .await;
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&origin),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );
        let mut server = Server::new(catalog);
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        server.register_socket(socket);
        Self {
            address,
            zone,
            serial: std::sync::atomic::AtomicU32::new(2),
            _server: server,
        }
    }

    /// Publishes a TXT record, as the customer does at their DNS provider.
    async fn publish_txt(&self, name: &str, value: &str) {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.zone
            .upsert(
                Record::from_rdata(
                    Name::from_str(&format!("{name}.")).unwrap(),
                    60,
                    RData::TXT(TXT::new(vec![value.to_owned()])),
                ),
                serial,
            )
            .await;
    }

    fn settings(&self) -> DnsSettings {
        DnsSettings {
            resolver: Some(self.address),
            timeout: Some(std::time::Duration::from_secs(2)),
        }
    }
}

fn platform(pool: PgPool, dns: &Dns) -> Platform {
    Platform::new(
        pool,
        Plans::new(default_plans()).unwrap(),
        "https://hosting.test/".parse().unwrap(),
    )
    .with_master_key(MasterKey::parse(&MasterKey::generate()).unwrap())
    .with_dns(dns.settings())
}

async fn site(platform: &Platform, by: &Membership, slug: &str) -> Uuid {
    sites::create(
        platform,
        by,
        &NewSite {
            name: slug.to_owned(),
            slug: slug.to_owned(),
            template: String::new(),
        },
    )
    .await
    .unwrap()
    .id
}

async fn routes(platform: &Platform) -> RouteTable {
    let table = RouteTable::new("localhost", Arc::new(Meters::default()));
    table.reload(platform).await.unwrap();
    table
}

#[sqlx::test(migrations = "../migrations")]
async fn a_domain_routes_only_after_its_txt_record_proves_control(pool: PgPool) {
    let dns = Dns::start().await;
    let platform = platform(pool, &dns);
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site_id = site(&platform, &owner, "shop").await;

    let added = domains::add(&platform, &owner, site_id, " Shop.Example.COM. ")
        .await
        .unwrap();
    assert_eq!(added.domain, "shop.example.com");
    assert_eq!(added.txt_name, "_slipway-challenge.shop.example.com");
    assert_eq!(added.cname_target, "shop.localhost");
    assert!(added.verified_at.is_none());
    assert!(routes(&platform).await.lookup("shop.example.com").is_none());

    // Nothing published yet.
    let checked = domains::verify(&platform, &owner, added.id, &platform.dns)
        .await
        .unwrap();
    assert!(checked.verified_at.is_none());
    assert!(
        checked
            .last_error
            .as_deref()
            .unwrap()
            .contains("No TXT record found"),
        "{checked:?}"
    );
    // Someone else's value (or a typo).
    dns.publish_txt(
        "_slipway-challenge.shop.example.com",
        "slipway-verify=wrong",
    )
    .await;
    let checked = domains::verify(&platform, &owner, added.id, &platform.dns)
        .await
        .unwrap();
    assert!(checked.verified_at.is_none());
    assert!(
        checked
            .last_error
            .as_deref()
            .unwrap()
            .contains("does not have the expected value"),
        "{checked:?}"
    );
    assert!(routes(&platform).await.lookup("shop.example.com").is_none());

    // The right value: verified, and it routes to the site.
    dns.publish_txt("_slipway-challenge.shop.example.com", &added.txt_value)
        .await;
    let checked = domains::verify(&platform, &owner, added.id, &platform.dns)
        .await
        .unwrap();
    assert!(checked.verified_at.is_some(), "{checked:?}");
    assert_eq!(checked.last_error, None);
    let route = routes(&platform).await.lookup("shop.example.com").unwrap();
    assert_eq!(route.site_id, site_id);

    // Removed: it no longer routes.
    domains::remove(&platform, &owner, added.id).await.unwrap();
    assert!(routes(&platform).await.lookup("shop.example.com").is_none());
    assert!(
        domains::list(&platform, &owner, site_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn domains_are_unique_scoped_and_need_the_plan_and_the_role(pool: PgPool) {
    let dns = Dns::start().await;
    let platform = platform(pool, &dns);
    let owner = test_support::owner_on_plan(&platform, "pro").await;
    let site_id = site(&platform, &owner, "first").await;
    let added = domains::add(&platform, &owner, site_id, "www.example.com")
        .await
        .unwrap();

    // Another organization cannot claim it, see it, verify it or remove it.
    let other = test_support::owner_on_plan(&platform, "business").await;
    let other_site = site(&platform, &other, "second").await;
    match domains::add(&platform, &other, other_site, "WWW.example.com").await {
        Err(Error::Invalid {
            field: "domain",
            message,
        }) => {
            assert!(message.contains("already added"), "{message}")
        }
        other => panic!("a taken domain was accepted: {other:?}"),
    }
    assert!(matches!(
        domains::verify(&platform, &other, added.id, &platform.dns).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        domains::remove(&platform, &other, added.id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        domains::list(&platform, &other, site_id).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        domains::add(&platform, &other, site_id, "other.example.com").await,
        Err(Error::NotFound)
    ));

    // Slipway's own names, wildcards and nonsense are refused with a reason.
    for (raw, why) in [
        ("blog.localhost", "belong to Slipway"),
        ("*.example.com", "Wildcard"),
        ("http://example.com/", "without http://"),
        ("not a domain", "not a valid"),
    ] {
        match domains::add(&platform, &owner, site_id, raw).await {
            Err(Error::Invalid {
                field: "domain",
                message,
            }) => {
                assert!(message.contains(why), "{raw}: {message}")
            }
            other => panic!("{raw} was accepted: {other:?}"),
        }
    }

    // A viewer may look, not add.
    let viewer = Membership {
        role: Role::Viewer,
        ..owner
    };
    assert_eq!(
        domains::list(&platform, &viewer, site_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        domains::add(&platform, &viewer, site_id, "shop2.example.com").await,
        Err(Error::Forbidden)
    ));

    // A plan without custom domains says which plans have them.
    let starter = test_support::owner_on_plan(&platform, "starter").await;
    let starter_site = site(&platform, &starter, "small").await;
    match domains::add(&platform, &starter, starter_site, "small.example.com").await {
        Err(Error::LimitReached(message)) => {
            assert!(message.contains("Pro or Business"), "{message}")
        }
        other => panic!("starter added a domain: {other:?}"),
    }
}
