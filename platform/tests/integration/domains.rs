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
use platform::sites;
use platform::sites::domains;
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
    let site_id = test_support::site(&platform, &owner, "shop").await;

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
    let site_id = test_support::site(&platform, &owner, "first").await;
    let added = domains::add(&platform, &owner, site_id, "www.example.com")
        .await
        .unwrap();

    // Another organization may claim it too while it is unverified (its own claim, its
    // own token), but cannot see, verify or remove this one.
    let other = test_support::owner_on_plan(&platform, "business").await;
    let other_site = test_support::site(&platform, &other, "second").await;
    let claim = domains::add(&platform, &other, other_site, "WWW.example.com")
        .await
        .expect("an unverified domain is not exclusive");
    assert_ne!(claim.txt_value, added.txt_value);
    match domains::add(&platform, &owner, site_id, "www.example.com").await {
        Err(Error::Invalid { field, message }) if field == "domain" => {
            assert!(message.contains("already added to this site"), "{message}")
        }
        other => panic!("a domain was added twice to one site: {other:?}"),
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
            Err(Error::Invalid { field, message }) if field == "domain" => {
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
    let starter_site = test_support::site(&platform, &starter, "small").await;
    match domains::add(&platform, &starter, starter_site, "small.example.com").await {
        Err(Error::LimitReached(message)) => {
            assert!(message.contains("Pro or Business"), "{message}")
        }
        other => panic!("starter added a domain: {other:?}"),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn an_unverified_claim_blocks_nobody_and_the_first_proof_wins_even_at_once(pool: PgPool) {
    let dns = Dns::start().await;
    let platform = platform(pool.clone(), &dns);
    let rightful = test_support::owner_on_plan(&platform, "pro").await;
    let squatter = test_support::owner_on_plan(&platform, "pro").await;
    let rightful_site = test_support::site(&platform, &rightful, "rightful").await;
    let squatter_site = test_support::site(&platform, &squatter, "squatter").await;
    let mut wins = [0; 2];
    for round in 0..20 {
        let name = format!("shop{round}.example.com");
        // The squatter claims first; the owner can still add the domain.
        let squatted = domains::add(&platform, &squatter, squatter_site, &name)
            .await
            .unwrap();
        let claimed = domains::add(&platform, &rightful, rightful_site, &name)
            .await
            .expect("an unverified claim does not keep the owner out");
        // Both proofs are published (the worst case): both verifications run at once.
        dns.publish_txt(&claimed.txt_name, &claimed.txt_value).await;
        dns.publish_txt(&squatted.txt_name, &squatted.txt_value)
            .await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let verify = |by: Membership, id: Uuid| {
            let (platform, barrier) = (platform.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                domains::verify(&platform, &by, id, &platform.dns).await
            })
        };
        let a = verify(rightful, claimed.id);
        let b = verify(squatter, squatted.id);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let verified: Vec<bool> = [&a, &b]
            .iter()
            .map(|r| r.as_ref().is_ok_and(|d| d.verified_at.is_some()))
            .collect();
        assert_eq!(
            verified.iter().filter(|v| **v).count(),
            1,
            "round {round}: exactly one owner: {a:?} {b:?}"
        );
        let loser = if verified[0] { &b } else { &a };
        match loser {
            Err(Error::Conflict(message)) => {
                assert!(message.contains("proved this domain first"), "{message}")
            }
            other => panic!("round {round}: the second proof was not refused: {other:?}"),
        }
        wins[usize::from(verified[1])] += 1;
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM site_domains WHERE domain = $1 AND verified_at IS NOT NULL",
        )
        .bind(&name)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(owners, 1);
        // Once verified, the domain is exclusive: nobody else can even add it.
        let third = test_support::owner_on_plan(&platform, "pro").await;
        let third_site = test_support::site(&platform, &third, &format!("third{round}")).await;
        match domains::add(&platform, &third, third_site, &name).await {
            Err(Error::Invalid { message, .. }) => {
                assert!(message.contains("already verified"), "{message}")
            }
            other => panic!("a verified domain was added elsewhere: {other:?}"),
        }
    }
    println!(
        "first proof won: rightful {}, squatter {}",
        wins[0], wins[1]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_deleted_sites_domains_are_released(pool: PgPool) {
    let dns = Dns::start().await;
    let platform = platform(pool.clone(), &dns);
    let first = test_support::owner_on_plan(&platform, "pro").await;
    let first_site = test_support::site(&platform, &first, "leaving").await;
    let domain = domains::add(&platform, &first, first_site, "moving.example.com")
        .await
        .unwrap();
    dns.publish_txt(&domain.txt_name, &domain.txt_value).await;
    assert!(
        domains::verify(&platform, &first, domain.id, &platform.dns)
            .await
            .unwrap()
            .verified_at
            .is_some()
    );
    sites::delete(&platform, &first, first_site, "leaving")
        .await
        .unwrap();
    // Released at once, before the reconciler has removed anything.
    let next = test_support::owner_on_plan(&platform, "pro").await;
    let next_site = test_support::site(&platform, &next, "arriving").await;
    let moved = domains::add(&platform, &next, next_site, "moving.example.com")
        .await
        .expect("the deleted site's domain is free");
    dns.publish_txt(&moved.txt_name, &moved.txt_value).await;
    assert!(
        domains::verify(&platform, &next, moved.id, &platform.dns)
            .await
            .unwrap()
            .verified_at
            .is_some()
    );
    assert!(
        routes(&platform)
            .await
            .lookup("moving.example.com")
            .is_some()
    );
}
