//! What Slipway's integration tests start from, once: a platform on the test's own
//! database, signed-up owners, a real server on port 0 (`spawn_app`), the URL of the
//! test's database for the binary, free ports and a TCP relay that can be cut.
//!
//! Test code only; every helper panics with a message when something it needs is missing.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use platform::catalog::plans::{Catalog, default_plans};
use platform::identity::sessions;
use platform::identity::signup::{self, SignUp};
use platform::identity::users::{NewPassword, PersonName};
use platform::infra::tasks::Background;
use platform::kernel::Email;
use platform::kernel::secrets::MasterKey;
use platform::tenancy::organizations::OrganizationName;
use platform::tenancy::{Membership, Role};
use platform::{Config, Platform};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The password every test account has.
pub const PASSWORD: &str = "correct horse battery";

/// A platform on `pool` with the default catalog and a fresh master key, its links under
/// `public_url`.
pub fn platform_at(pool: PgPool, public_url: &str) -> Platform {
    Platform::new(
        pool,
        Catalog::new(default_plans()).expect("the default catalog is valid"),
        public_url.parse().expect("a valid public URL"),
    )
    .with_master_key(MasterKey::parse(&MasterKey::generate()).expect("a fresh key"))
}

/// [`platform_at`] with an address nobody serves (for tests without a server).
pub fn test_platform(pool: PgPool) -> Platform {
    platform_at(pool, "https://hosting.test/")
}

/// A signed-up owner (a unique address) of a fresh organization.
pub async fn owner(platform: &Platform) -> Membership {
    owner_with_email(
        platform,
        &format!("{}@example.com", Uuid::new_v4().simple()),
    )
    .await
}

pub async fn owner_with_email(platform: &Platform, email: &str) -> Membership {
    let signed_up = signup::sign_up(
        platform,
        SignUp {
            email: Email::parse(email).expect("a valid address"),
            name: PersonName::parse("Owner").expect("a valid name"),
            password: NewPassword::parse(PASSWORD).expect("a valid password"),
            organization: OrganizationName::parse("Acme").expect("a valid name"),
        },
        None,
    )
    .await
    .expect("sign-up");
    Membership {
        organization_id: signed_up.organization_id,
        user_id: signed_up.user_id,
        role: Role::Owner,
    }
}

/// A signed-up owner whose organization is on `plan`.
pub async fn owner_on_plan(platform: &Platform, plan: &str) -> Membership {
    let owner = owner(platform).await;
    set_plan(platform, &owner, plan).await;
    owner
}

/// Makes the user a platform operator directly (as `slipway admin create` does).
pub async fn make_operator(platform: &Platform, user_id: Uuid) {
    sqlx::query("UPDATE users SET is_operator = true WHERE id = $1")
        .bind(user_id)
        .execute(&platform.db)
        .await
        .expect("operator flag set");
}

/// Puts the member's organization on `plan` directly (no billing involved).
/// Someone with an account of their own, added to `to`'s organization as `role`.
pub async fn member(platform: &Platform, to: &Membership, role: Role) -> Membership {
    let them = owner(platform).await;
    sqlx::query(
        "INSERT INTO organization_members (organization_id, user_id, role) VALUES ($1, $2, $3)",
    )
    .bind(to.organization_id)
    .bind(them.user_id)
    .bind(role.as_str())
    .execute(&platform.db)
    .await
    .expect("a member");
    platform::tenancy::membership(platform, to.organization_id, them.user_id)
        .await
        .expect("their membership")
}

/// The owner of another organization, on the Pro plan: the stranger of tenancy checks.
pub async fn owner_of_another(platform: &Platform) -> Membership {
    owner_on_plan(platform, "pro").await
}

pub async fn set_plan(platform: &Platform, member: &Membership, plan: &str) {
    sqlx::query("UPDATE organizations SET plan_id = $2 WHERE id = $1")
        .bind(member.organization_id)
        .bind(plan)
        .execute(&platform.db)
        .await
        .expect("plan set");
}

/// A site of the member's organization named and slugged `slug` (the default template),
/// recorded as `platform::sites::create` records it; no reconciler runs here.
pub async fn site(platform: &Platform, by: &Membership, slug: &str) -> Uuid {
    platform::sites::create(
        platform,
        by,
        &platform::sites::NewSite {
            name: slug.to_owned(),
            slug: slug.to_owned(),
            template: String::new(),
        },
    )
    .await
    .expect("a site")
    .id
}

/// A `Cookie` header value signing `user_id` in.
pub async fn session_cookie(platform: &Platform, user_id: Uuid) -> String {
    let token = sessions::create_session(platform, user_id, None, None)
        .await
        .expect("session");
    format!("slipway_session={token}")
}

/// The URL of the database a `#[sqlx::test]` created (for the binary under test).
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for tests");
    let (server, _) = base.rsplit_once('/').expect("DATABASE_URL has a path");
    let name = pool
        .connect_options()
        .get_database()
        .expect("a named database")
        .to_owned();
    format!("{server}/{name}")
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local address")
        .port()
}

/// A real Slipway server (router, pages, server functions, webhooks) on a loopback port,
/// serving `platform`. Stops (and its background tasks with it) when dropped.
pub struct TestApp {
    pub base: String,
    pub platform: Platform,
    pub client: reqwest::Client,
    pub background: Background,
    _turn: Turn,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.background.token().cancel();
    }
}

/// How long a test waits for any answer from a test server: a page renders in well under a
/// second, so a request still unanswered after this is a hang, reported with its path
/// instead of stalling the whole run until CI's deadline.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// A client for a test server: no answer within [`ANSWER_WITHIN`] is an error.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().timeout(ANSWER_WITHIN)
}

/// The servers of one test binary take turns: a test holds its turn from its first
/// `spawn_app` until its last server is dropped (a test may run several servers, one after
/// another or at once; they all share its turn).
///
/// Why: each `#[sqlx::test]` runs on its own thread with its own Tokio runtime, and two
/// Leptos renderers in one process on two runtimes at once sometimes lose a Suspense
/// wake-up: the page never finishes rendering and its request hangs (a Leptos SSR issue of
/// the kind of leptos-rs/leptos#4851, still present in 0.8.23). Measured on this project's
/// `server --test http`, 2 test threads: 5 of about 50 runs hung; one server at a time:
/// 0 of 38, 18 of them with both cores saturated by other processes. `slipway serve` runs
/// one multi-threaded runtime, and its renders are bounded by the page deadline anyway.
/// Tests without a server still run in parallel.
pub struct Turn {
    thread: ThreadId,
}

struct Turns {
    /// The thread whose test has the turn, and how many of its servers are alive.
    holder: std::sync::Mutex<Option<(ThreadId, usize)>>,
    released: Condvar,
}

/// How long a test waits for its turn before failing with who holds it. The slowest test
/// with a server takes about a minute.
const TURN_WAIT: Duration = Duration::from_secs(600);

static TURNS: Turns = Turns {
    holder: std::sync::Mutex::new(None),
    released: Condvar::new(),
};

impl Turn {
    /// Waits (blocking this test's thread: the test holding the turn runs on another) until
    /// this test has the turn. `spawn_app` takes it; a test serving the router itself takes
    /// it first.
    pub fn take() -> Self {
        let thread = std::thread::current().id();
        let mut holder = TURNS.holder.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match holder.as_mut() {
                None => {
                    *holder = Some((thread, 1));
                    break;
                }
                Some((owner, servers)) if *owner == thread => {
                    *servers += 1;
                    break;
                }
                Some((owner, _)) => {
                    let owner = *owner;
                    let (next, waited) = TURNS
                        .released
                        .wait_timeout(holder, TURN_WAIT)
                        .unwrap_or_else(PoisonError::into_inner);
                    assert!(
                        !waited.timed_out() || next.is_none_or(|(o, _)| o != owner),
                        "no turn for a test server after {TURN_WAIT:?}: the test on thread \
                         {owner:?} still has it (a server started from another thread than \
                         its test's waits for that test's own turn)"
                    );
                    holder = next;
                }
            }
        }
        Turn { thread }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut holder = TURNS.holder.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((owner, servers)) = holder.as_mut()
            && *owner == self.thread
        {
            *servers -= 1;
            if *servers == 0 {
                *holder = None;
                TURNS.released.notify_all();
            }
        }
    }
}

/// A listener on port 0 and its `http://` address: build the platform with this address as
/// its public URL (links and the CSRF origin check use it), then [`spawn_app_on`].
pub async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    (listener, base)
}

/// Serves a default platform on the test's database, on port 0.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    let (listener, base) = listen().await;
    let platform = platform_at(pool, &base);
    spawn_app_on(listener, base, platform)
}

/// Serves `platform` on `listener` (whose address is `base`), once this test has its turn
/// (see [`Turn`]).
pub fn spawn_app_on(listener: TcpListener, base: String, platform: Platform) -> TestApp {
    let turn = Turn::take();
    let background = Background::new();
    // The process's notification listener, as `slipway serve` starts it: one of the
    // server's tasks, so it stops (and gives its connection back) when the test ends.
    // Started lazily by a live page instead, it would outlive the test and keep the test's
    // pool from closing.
    platform.notifications.start(&background);
    let served = platform.clone();
    let stop = background.token();
    background.spawn("test server", async move {
        server::serve(
            &Config::default(),
            served,
            None,
            listener,
            stop.cancelled_owned(),
        )
        .await
        .expect("the test server runs");
    });
    TestApp {
        base,
        platform,
        client: client().build().expect("a client"),
        background,
        _turn: turn,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A page as a browser asks for it (`Accept: text/html`), optionally signed in.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut request = self
            .client
            .get(self.url(path))
            .header("accept", "text/html");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: no answer ({error})"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    /// A page as `member` sees it.
    pub async fn page_as(&self, member: &Membership, path: &str) -> (u16, String) {
        let cookie = session_cookie(&self.platform, member.user_id).await;
        self.page(path, Some(&cookie)).await
    }
}

/// A TCP relay to a port on loopback that a test can cut (close every connection and stop
/// listening: clients see resets, then refusals) and restore on the same port.
pub struct TcpRelay {
    address: SocketAddr,
    upstream: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl TcpRelay {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let address = listener.local_addr().expect("relay address");
        let relay = Self {
            address,
            upstream,
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        relay.serve(listener).await;
        relay
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    async fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        self.tasks.lock().await.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                tasks.lock().await.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    pub async fn cut(&self) {
        self.tasks.lock().await.abort_all();
        // Aborted tasks drop their sockets (and the listener) when they are next polled.
        while self.tasks.lock().await.join_next().await.is_some() {}
    }

    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind relay");
        self.serve(listener).await;
    }
}

/// Runs `n` copies of `attempt` at once (each on its own task, all released together by one
/// barrier, as competing clients would arrive) and returns their results in order.
pub async fn at_once<T, F, Fut>(n: usize, attempt: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, attempt) = (barrier.clone(), attempt(i));
            tokio::spawn(async move {
                barrier.wait().await;
                attempt.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("the attempt did not panic"));
    }
    results
}
