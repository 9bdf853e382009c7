//! The browser-test harness: a real `slipway` server on a fresh database, a chromedriver,
//! and a headless Chromium session, all started and stopped by [`Harness`].
//!
//! The server binary and the WASM/CSS bundle come from `cargo leptos build`
//! (`target/debug/slipway`, `target/site`); `make test` builds them before these tests.
//! Screenshots of every page a test visits land in `target/screenshots/`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

/// The master key of the servers under test (32 bytes of base64; tests only).
/// WebDriver's codes of the keys the keyboard tests press.
pub const TAB: char = '\u{e004}';
pub const ENTER: char = '\u{e007}';
pub const ESCAPE: char = '\u{e00c}';

const TEST_MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

/// Whether the browser runs page scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JavaScript {
    Enabled,
    Disabled,
}

pub struct Harness {
    pub browser: Client,
    pub base_url: String,
    /// The tenant proxy's port: a site is at `http://<slug>.localhost:<proxy_port>`.
    pub proxy_port: u16,
    name: String,
    shots: u32,
    server: Child,
    driver: Child,
    driver_url: String,
    capabilities: serde_json::Map<String, Value>,
    database: String,
    admin_url: String,
    database_url: String,
    instance: uuid::Uuid,
    /// The `SLIPWAY_*` settings the server runs with (the CLI gets the same).
    settings: Vec<(String, String)>,
    /// Where the server's standard output goes.
    output: PathBuf,
    /// Every console error read so far (Chromium hands each out once).
    console: std::sync::Mutex<Vec<String>>,
    /// Whether pages run scripts in `browser`.
    javascript: JavaScript,
    /// A browser with scripts on, opened when a page of a script-less test is audited.
    auditor: tokio::sync::OnceCell<Client>,
    /// The accessibility findings of each page screenshotted, by screenshot file name.
    audits: Vec<(String, Vec<String>)>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("end2end sits in the workspace")
        .to_path_buf()
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_http(url: &str, what: &str, child: &mut Child) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited early with {status}");
        }
        if Instant::now() > deadline {
            bail!("{what} did not answer at {url} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Harness {
    /// Starts everything for the test `name` (which also names its screenshots).
    pub async fn start(name: &str, javascript: JavaScript) -> Result<Self> {
        Self::start_with(name, javascript, &[]).await
    }

    /// The same, with `extra` settings (`SLIPWAY_*` environment variables) for the server.
    pub async fn start_with(
        name: &str,
        javascript: JavaScript,
        extra: &[(&str, String)],
    ) -> Result<Self> {
        // The name becomes part of a database name and of file names.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("test name {name:?} must be snake_case");
        }
        let root = workspace_root();
        let binary = root.join("target/debug/slipway");
        let site_root = root.join("target/site");
        if !binary.exists() || !site_root.join("pkg/slipway.wasm").exists() {
            bail!(
                "run `cargo leptos build` first (`make test` does): the server and the WASM bundle are missing"
            );
        }

        // A database of its own, dropped when the harness is.
        let admin_url = std::env::var("DATABASE_URL")
            .context("DATABASE_URL must point at the test PostgreSQL (`make test` sets it)")?;
        let database = format!("slipway_e2e_{}_{}", std::process::id(), name);
        let mut admin = PgConnection::connect(&admin_url).await?;
        admin
            .execute(format!(r#"DROP DATABASE IF EXISTS "{database}""#).as_str())
            .await?;
        admin
            .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
            .await?;
        admin.close().await?;
        let (server_part, _) = admin_url
            .rsplit_once('/')
            .context("DATABASE_URL has a path")?;

        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let proxy_port = free_port()?;
        // Nothing answers DNS here: domain checks fail fast instead of asking the system.
        let dns_port = free_port()?;
        let mut server = Command::new(&binary);
        // Only the settings below: none inherited from the caller's SLIPWAY_* environment.
        for (key, _) in std::env::vars() {
            if key.starts_with("SLIPWAY_") {
                server.env_remove(key);
            }
        }
        let mut settings: Vec<(String, String)> = vec![
            ("SLIPWAY_LISTEN".into(), format!("127.0.0.1:{port}")),
            (
                "SLIPWAY_DATABASE__URL".into(),
                format!("{server_part}/{database}"),
            ),
            (
                "SLIPWAY_WEB__SITE_ROOT".into(),
                site_root.display().to_string(),
            ),
            ("SLIPWAY_PUBLIC_URL".into(), base_url.clone()),
            ("SLIPWAY_LOG__FILTER".into(), "warn".into()),
            // Sites: the test network and tenant database (shared by the tests; each
            // server labels its containers with its own instance id), a fresh key.
            (
                "SLIPWAY_PROVISION__MASTER_KEY".into(),
                TEST_MASTER_KEY.into(),
            ),
            ("SLIPWAY_PROVISION__NETWORK".into(), "slipway-test".into()),
            (
                "SLIPWAY_PROVISION__TENANT_DATABASE".into(),
                "slipway_test_tenants".into(),
            ),
            (
                "SLIPWAY_PROXY__LISTEN".into(),
                format!("127.0.0.1:{proxy_port}"),
            ),
            (
                "SLIPWAY_PROVISION__SITE_URL".into(),
                format!("http://{{slug}}.localhost:{proxy_port}"),
            ),
            (
                "SLIPWAY_PROXY__DNS_RESOLVER".into(),
                format!("127.0.0.1:{dns_port}"),
            ),
            ("SLIPWAY_USAGE__FLUSH_INTERVAL_SECS".into(), "1".into()),
            // As under `make dev`: mail stays on the local mail page, a demo operator exists.
            ("SLIPWAY_MODE".into(), "development".into()),
        ];
        settings.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        // What the server prints (the development welcome) is kept for the test to read.
        let output_dir = root.join("target/e2e");
        std::fs::create_dir_all(&output_dir)?;
        let output = output_dir.join(format!("{name}.stdout"));
        let mut server = server
            .arg("serve")
            .current_dir(&root)
            .envs(settings.iter().map(|(k, v)| (k, v)))
            .stdout(std::fs::File::create(&output)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        wait_for_http(&format!("{base_url}/healthz"), "slipway", &mut server).await?;
        // Everything the server creates in Docker carries its instance id: removed at the end
        // even when the test fails half-way.
        let mut db = PgConnection::connect(&format!("{server_part}/{database}")).await?;
        let instance: uuid::Uuid = sqlx::query_scalar("SELECT instance_id FROM instance")
            .fetch_one(&mut db)
            .await?;
        db.close().await?;

        let driver_port = free_port()?;
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian package chromium-driver)")?;
        let driver_url = format!("http://127.0.0.1:{driver_port}");
        wait_for_http(&format!("{driver_url}/status"), "chromedriver", &mut driver).await?;

        let mut chrome_options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ],
        });
        if javascript == JavaScript::Disabled {
            chrome_options["prefs"] =
                json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let browser = open_browser(&driver_url, &capabilities).await?;

        Ok(Self {
            browser,
            base_url,
            proxy_port,
            name: name.to_owned(),
            shots: 0,
            server,
            driver,
            driver_url,
            capabilities,
            database_url: format!("{server_part}/{database}"),
            database,
            instance,
            admin_url,
            settings,
            output,
            console: std::sync::Mutex::default(),
            javascript,
            auditor: tokio::sync::OnceCell::new(),
            audits: Vec::new(),
        })
    }

    /// What the server printed on its standard output so far.
    pub fn server_output(&self) -> Result<String> {
        std::fs::read_to_string(&self.output)
            .with_context(|| format!("reading {}", self.output.display()))
    }

    /// Runs `slipway <args>` with the server's settings; its standard output, or an error
    /// with its standard error.
    pub async fn cli(&self, args: &[&str]) -> Result<String> {
        let mut command =
            tokio::process::Command::new(workspace_root().join("target/debug/slipway"));
        for (key, _) in std::env::vars() {
            if key.starts_with("SLIPWAY_") {
                command.env_remove(key);
            }
        }
        let output = command
            .args(args)
            .current_dir(workspace_root())
            .envs(self.settings.iter().map(|(k, v)| (k, v)))
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "slipway {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Another browser session (its own cookies) on the same server, e.g. a second user.
    pub async fn second_browser(&self) -> Result<Client> {
        open_browser(&self.driver_url, &self.capabilities).await
    }

    /// The newest mail to `to` whose body contains `needle`: its link containing `needle`,
    /// as a path and query on this server.
    pub async fn mailed_link(&self, to: &str, needle: &str) -> Result<String> {
        let mut db = PgConnection::connect(&self.database_url).await?;
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body_text FROM mail_outbox WHERE to_address = $1 ORDER BY id DESC",
        )
        .bind(to)
        .fetch_all(&mut db)
        .await?;
        db.close().await?;
        let link = bodies
            .iter()
            .flat_map(|body| body.split_whitespace())
            .find(|word| word.contains(needle))
            .with_context(|| format!("no mail to {to} with {needle}"))?;
        let path = link
            .strip_prefix(&self.base_url)
            .with_context(|| format!("{link} is not built from the public URL"))?;
        Ok(path.to_owned())
    }

    /// Runs SQL against the server's database, as an operator with psql would.
    pub async fn sql(&self, statement: &str) -> Result<()> {
        let mut db = PgConnection::connect(&self.database_url).await?;
        sqlx::raw_sql(statement).execute(&mut db).await?;
        db.close().await?;
        Ok(())
    }

    /// The first column of `query`'s rows, as text, from the server's database.
    pub async fn query_strings(&self, query: &str) -> Result<Vec<String>> {
        let mut db = PgConnection::connect(&self.database_url).await?;
        let rows: Vec<String> = sqlx::query_scalar(query).fetch_all(&mut db).await?;
        db.close().await?;
        Ok(rows)
    }

    /// Fills the inputs of the form `data-form=<form>` (by name) and submits it.
    pub async fn submit(&self, form: &str, fields: &[(&str, &str)]) -> Result<()> {
        submit_in(&self.browser, form, fields).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Opens `path` and waits for the document to load.
    pub async fn visit(&self, path: &str) -> Result<()> {
        self.browser.goto(&self.url(path)).await?;
        Ok(())
    }

    /// Waits until the WASM bundle has hydrated the page.
    ///
    /// Allows a minute: the development build's WASM is about 200 MB, and on a busy two-core
    /// machine a page sometimes had not hydrated after the 20 s this waited before (it was
    /// there, with no console error). A page that never hydrates still fails here.
    pub async fn wait_hydrated(&self) -> Result<()> {
        self.browser
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(r#"#app[data-hydrated="true"]"#))
            .await
            .context("the page never hydrated")?;
        Ok(())
    }

    /// Where a screenshot labelled `label` goes (for shots of a second browser).
    pub fn screenshot_path(&mut self, label: &str) -> PathBuf {
        self.shots += 1;
        let dir = workspace_root().join("target/screenshots");
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{}-{:02}-{label}.png", self.name, self.shots))
    }

    /// Saves a PNG of the whole page as `target/screenshots/<test>-<n>-<label>.png`: the
    /// window grows to the page's height for the shot, then returns to its size. A page of
    /// Slipway or of a hosted site is also audited for accessibility ([`Self::finish`]
    /// fails on a serious or critical finding): every page a test looks at, in every state
    /// it looks at it, with scripts and without.
    pub async fn screenshot(&mut self, label: &str) -> Result<PathBuf> {
        let path = self.shoot(label).await?;
        let url = self.browser.current_url().await?;
        let ours = url.port() == url::Url::parse(&self.base_url)?.port()
            || url.port() == Some(self.proxy_port);
        if ours {
            let findings = self
                .accessibility_findings()
                .await
                .with_context(|| format!("auditing {}", path.display()))?;
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            self.audits.push((name.into_owned(), findings));
        }
        Ok(path)
    }

    async fn shoot(&mut self, label: &str) -> Result<PathBuf> {
        let path = self.screenshot_path(label);
        let (width, height) = self.browser.get_window_size().await?;
        // The window is taller than its viewport by the browser's own frame.
        let sizes = self
            .browser
            .execute(
                "return [document.documentElement.scrollHeight, window.innerHeight];",
                vec![],
            )
            .await?;
        let page_height = sizes[0].as_u64().unwrap_or(height);
        let frame = height.saturating_sub(sizes[1].as_u64().unwrap_or(height));
        let grow = page_height + frame > height;
        if grow {
            self.resize(width, page_height + frame).await?;
        }
        let png = self.browser.screenshot().await;
        if grow {
            self.resize(width, height).await?;
        }
        std::fs::write(&path, png?)?;
        Ok(path)
    }

    /// Resizes the browser window.
    pub async fn resize(&self, width: u64, height: u64) -> Result<()> {
        let fit = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        self.browser
            .set_window_size(fit(width), fit(height))
            .await?;
        Ok(())
    }

    /// Texts of every element matching `css`, in document order (read in one script, so a
    /// re-render cannot leave a stale element between finding and reading).
    pub async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let texts = self
            .browser
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0]))
                    .map(e => (e.innerText ?? e.textContent).trim());",
                vec![json!(css)],
            )
            .await?;
        Ok(serde_json::from_value(texts)?)
    }

    /// Waits until the texts of `css` equal `expected`; fails with what was there instead.
    pub async fn wait_for_texts(&self, css: &str, expected: &[&str]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let texts = self.texts(css).await?;
            if texts == expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{css}: expected {expected:?}, found {texts:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until some element matching `css` contains `needle`.
    pub async fn wait_for_text_containing(&self, css: &str, needle: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let texts = self.texts(css).await?;
            if texts.iter().any(|text| text.contains(needle)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{css}: no text containing {needle:?} in {texts:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the first element `css` finds. An element the page replaced between finding
    /// and clicking it (a list re-rendered as its data arrives) is found again.
    pub async fn click(&self, css: &str) -> Result<()> {
        let mut attempts = 0;
        loop {
            let clicked = async {
                self.browser
                    .find(Locator::Css(css))
                    .await
                    .with_context(|| format!("finding {css}"))?
                    .click()
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
            .await;
            match clicked {
                Err(error) if attempts < 5 && replaced(&error) => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                result => return result,
            }
        }
    }

    /// Waits until the browser is at `expected` (path and query).
    pub async fn wait_for_path(&self, expected: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await?;
            if path == expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("expected to be at {expected}, still at {path}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn path(&self) -> Result<String> {
        let url = self.browser.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Console messages of level SEVERE since the last call (Chromium's errors). The
    /// harness keeps them too, for the checks at the end.
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        let entries = self.browser.issue_cmd(BrowserLog).await?;
        let errors: Vec<String> = entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        self.console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(errors.iter().cloned());
        Ok(errors)
    }

    /// Where the console stands now: [`Self::assert_no_panics_since`] looks at what comes
    /// after.
    pub async fn console_mark(&self) -> Result<usize> {
        self.console_errors().await?;
        Ok(self
            .console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len())
    }

    /// Every console error of the test since `mark` that contains one of `needles`.
    async fn console_errors_with(&self, mark: usize, needles: &[&str]) -> Result<Vec<String>> {
        self.console_errors().await?;
        Ok(self
            .console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .skip(mark)
            .filter(|message| needles.iter().any(|needle| message.contains(needle)))
            .cloned()
            .collect())
    }

    /// Fails if the WASM app panicked (a page that no longer hydrates, say) since `mark`
    /// (from [`Self::console_mark`]): a dead app leaves the server-rendered page looking
    /// fine while every click does nothing.
    pub async fn assert_no_panics_since(&self, mark: usize) -> Result<()> {
        let fatal = self
            .console_errors_with(mark, &["panicked", "hydration error"])
            .await?;
        ensure!(fatal.is_empty(), "the app panicked: {fatal:#?}");
        Ok(())
    }

    /// Opens the confirmation of form `form` (a modal dialog with JavaScript), checks that
    /// it says `question`, that focus is inside it and Escape cancels it, then opens it again
    /// and confirms.
    pub async fn confirm_in_dialog(&self, form: &str, question: &str) -> Result<()> {
        let form_css = format!(r#"form[data-form="{form}"]"#);
        let open = format!("{form_css} [data-open-confirm]");
        let dialog = format!("{form_css} dialog[open]");
        self.click(&open).await?;
        self.wait_for_text_containing(&format!("{dialog} [data-question]"), question)
            .await?;
        let focus = self
            .browser
            .execute(
                "return document.activeElement?.closest('dialog[open]') !== null
                    && document.activeElement.matches('[data-cancel]');",
                vec![],
            )
            .await?;
        ensure!(
            focus == json!(true),
            "focus starts on Cancel, inside the dialog"
        );
        let centred = self
            .browser
            .execute(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect();
                 return Math.abs((r.left + r.right) / 2 - window.innerWidth / 2) < 24;",
                vec![json!(dialog)],
            )
            .await?;
        ensure!(
            centred == json!(true),
            "the dialog is in the middle of the window"
        );
        self.browser
            .active_element()
            .await?
            .send_keys("\u{e00c}")
            .await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.texts(&dialog).await?.is_empty() {
            ensure!(Instant::now() < deadline, "Escape closes the dialog");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.click(&open).await?;
        self.wait_for_text_containing(&format!("{dialog} [data-question]"), question)
            .await?;
        self.click(&format!(r#"{dialog} button[type="submit"]"#))
            .await
    }

    /// Presses `key` (a character, or a WebDriver key code such as [`TAB`]) on whatever has
    /// focus, as a person at the keyboard would.
    pub async fn press(&self, key: char) -> Result<()> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.browser.perform_actions(keys).await?;
        Ok(())
    }

    /// Drives the page by keyboard alone, from the top: Tab reaches every control a mouse
    /// could use (links, buttons, fields and summaries that can be seen, those taken out of
    /// the tab order included), each stop shows a visible focus indicator, and focus never
    /// lands on something that cannot be seen.
    /// Returns the number of controls.
    pub async fn assert_keyboard_usable(&self, page: &str) -> Result<usize> {
        let controls = self
            .browser
            .execute(
                "document.activeElement?.blur();
                 window.scrollTo(0, 0);
                 // A control with tabindex=-1 is still one a mouse can use: it counts.
                 const focusable = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex=\"-1\"])';
                 let n = 0;
                 for (const el of document.querySelectorAll(focusable)) {
                     delete el.dataset.kbd;
                     const hidden = !el.checkVisibility({ visibilityProperty: true })
                         || el.closest('[inert], dialog:not([open])') || el.disabled;
                     if (!hidden) el.dataset.kbd = String(n++);
                 }
                 return n;",
                vec![],
            )
            .await?
            .as_u64()
            .unwrap_or_default() as usize;
        let mut reached = vec![false; controls];
        for _ in 0..controls + 8 {
            self.press(TAB).await?;
            let stop = self
                .browser
                .execute(
                    "const a = document.activeElement;
                     if (!a || a === document.body || a === document.documentElement) return null;
                     const s = getComputedStyle(a);
                     const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                         || s.boxShadow !== 'none';
                     const label = a.getAttribute('aria-label') || a.textContent.trim() || a.name || a.id;
                     return { index: a.dataset.kbd === undefined ? -1 : Number(a.dataset.kbd), ring,
                              seen: a.checkVisibility({ visibilityProperty: true }),
                              name: a.tagName.toLowerCase() + ' \"' + label.slice(0, 40) + '\"' };",
                    vec![],
                )
                .await?;
            if stop.is_null() {
                // Past the last control: focus left the page for the browser's own.
                break;
            }
            let name = stop["name"].as_str().unwrap_or_default();
            ensure!(
                stop["seen"] == json!(true),
                "{page}: Tab moved focus to {name}, which cannot be seen"
            );
            ensure!(
                stop["ring"] == json!(true),
                "{page}: {name} shows no focus indicator when reached by Tab"
            );
            match stop["index"].as_i64() {
                Some(i) if i >= 0 && reached[i as usize] => break,
                Some(i) if i >= 0 => reached[i as usize] = true,
                _ => {}
            }
        }
        let unreached: Vec<usize> = (0..controls).filter(|i| !reached[*i]).collect();
        let missed = self
            .browser
            .execute(
                "return [...document.querySelectorAll('[data-kbd]')]
                     .filter(el => arguments[0].includes(Number(el.dataset.kbd)))
                     .map(el => el.tagName.toLowerCase() + ' ' + (el.getAttribute('aria-label') || el.textContent.trim().slice(0, 40) || el.name));",
                vec![json!(unreached)],
            )
            .await?;
        ensure!(
            missed.as_array().is_some_and(Vec::is_empty),
            "{page}: Tab never reaches {missed}"
        );
        Ok(controls)
    }

    /// Opens the confirmation of form `form` from the keyboard (Enter on its button):
    /// focus starts inside the dialog and Tab keeps it there, and Escape closes it and gives
    /// focus back to the button that opened it.
    pub async fn assert_dialog_by_keyboard(&self, form: &str) -> Result<()> {
        let form_css = format!(r#"form[data-form="{form}"]"#);
        let open = format!("{form_css} [data-open-confirm]");
        let dialog = format!("{form_css} dialog[open]");
        self.browser
            .execute(
                "document.querySelector(arguments[0]).focus();",
                vec![json!(open)],
            )
            .await?;
        self.press(ENTER).await?;
        self.wait_for_text_containing(&format!("{dialog} [data-question]"), "")
            .await?;
        for _ in 0..6 {
            let inside = self
                .browser
                .execute(
                    "const a = document.activeElement;
                     return a === document.body || a.closest('dialog[open]') !== null;",
                    vec![],
                )
                .await?;
            ensure!(
                inside == json!(true),
                "{form}: Tab left the open dialog for the page behind it"
            );
            self.press(TAB).await?;
        }
        self.press(ESCAPE).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.texts(&dialog).await?.is_empty() {
            ensure!(
                Instant::now() < deadline,
                "{form}: Escape closes the dialog"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let back = self
            .browser
            .execute(
                "return document.activeElement === document.querySelector(arguments[0]);",
                vec![json!(open)],
            )
            .await?;
        ensure!(
            back == json!(true),
            "{form}: focus goes back to the button that opened the dialog"
        );
        Ok(())
    }

    /// Fails unless the field `name` of form `form` is marked invalid and its message, found
    /// through `aria-describedby`, says `message` (what a screen reader reads with it).
    pub async fn assert_field_error(&self, form: &str, name: &str, message: &str) -> Result<()> {
        let found = self
            .browser
            .execute(
                "const input = document.querySelector(`form[data-form=\"${arguments[0]}\"] [name=\"${arguments[1]}\"]`);
                 if (!input) return null;
                 const texts = (input.getAttribute('aria-describedby') || '').split(' ')
                     .filter(Boolean).map(id => document.getElementById(id)?.innerText);
                 return [input.getAttribute('aria-invalid'),
                         texts.find(text => text === arguments[2]) ?? texts.join(' | ')];",
                vec![json!(form), json!(name), json!(message)],
            )
            .await?;
        ensure!(
            found == json!(["true", message]),
            "field {name} of {form}: aria-invalid and described-by message are {found}, not \"true\" and {message:?}"
        );
        Ok(())
    }

    /// Fails unless a refused form came back as it was sent: at `path`, an address with no
    /// encoded error in it, and each of `typed`'s fields of form `form` holding its value
    /// (give a password as `""`: it is never shown again).
    pub async fn assert_form_kept(
        &self,
        path: &str,
        form: &str,
        typed: &[(&str, &str)],
    ) -> Result<()> {
        let address = self.browser.current_url().await?;
        ensure!(
            !address.as_str().contains("__err") && !address.as_str().contains("__path"),
            "a refused form leaves no encoded error in the address: {address}"
        );
        let here = match address.query() {
            Some(query) => format!("{}?{query}", address.path()),
            None => address.path().to_owned(),
        };
        ensure!(here == path, "back on {path}, not {here}");
        for (name, value) in typed {
            let found = self
                .browser
                .execute(
                    "return document.querySelector(`form[data-form=\"${arguments[0]}\"] [name=\"${arguments[1]}\"]`)?.value;",
                    vec![json!(form), json!(name)],
                )
                .await?;
            ensure!(
                found == json!(value),
                "field {name} of {form} holds {found} after the refusal, not {value:?}"
            );
        }
        Ok(())
    }

    /// What axe-core finds on the current page against WCAG 2.1 A and AA, one line per
    /// element: `impact rule: element: what to fix`. axe-core is the copy PyPI's
    /// `axe-playwright-python` ships (`scripts/setup.sh` puts it in `.tools/axe/`); it is
    /// injected by WebDriver, so it runs with the page's own scripts disabled too.
    ///
    /// axe-core needs scripts (it waits on timers). Without them, the page as the server
    /// sent it (its `<noscript>` content shown, no scripts) is copied into a page of the
    /// same address in a second browser with scripts on, and audited there.
    pub async fn accessibility_findings(&self) -> Result<Vec<String>> {
        let browser = match self.javascript {
            JavaScript::Enabled => &self.browser,
            JavaScript::Disabled => self.audit_copy().await?,
        };
        let path = workspace_root().join(".tools/axe/axe.min.js");
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("{} is missing: run scripts/setup.sh", path.display()))?;
        browser
            .execute(&format!("{source}\nwindow.axe = axe;"), vec![])
            .await
            .context("injecting axe-core")?;
        let found = browser
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {
                     runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
                     resultTypes: ['violations'],
                 }).then(r => done(r.violations.flatMap(v => v.nodes.map(n =>
                     `${v.impact} ${v.id}: ${n.target.join(' ')}: ${(n.failureSummary || '').split('\\n').slice(1).join(' ').trim()}`))))
                   .catch(e => done([`critical axe-error: ${e}`]));",
                vec![],
            )
            .await
            .context("running axe-core")?;
        Ok(serde_json::from_value(found)?)
    }

    /// The current page of this script-less browser, copied into the auditing browser.
    async fn audit_copy(&self) -> Result<&Client> {
        let mut capabilities = self.capabilities.clone();
        if let Some(options) = capabilities
            .get_mut("goog:chromeOptions")
            .and_then(Value::as_object_mut)
        {
            options.remove("prefs");
        }
        let auditor = self
            .auditor
            .get_or_try_init(|| open_browser(&self.driver_url, &capabilities))
            .await?;
        let copy = self
            .browser
            .execute(
                "const d = document.documentElement.cloneNode(true);
                 d.querySelectorAll('script').forEach(s => s.remove());
                 d.querySelectorAll('noscript').forEach(n => n.replaceWith(...n.childNodes));
                 return '<!doctype html>' + d.outerHTML;",
                vec![],
            )
            .await?;
        let url = self.browser.current_url().await?;
        // A page of the same origin that answers without signing in, for the styles' paths.
        auditor
            .goto(url.join("/__accessibility-audit")?.as_str())
            .await?;
        auditor
            .execute(
                "document.open(); document.write(arguments[0]); document.close();",
                vec![copy],
            )
            .await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = auditor
                .execute(
                    "return document.readyState === 'complete'
                       && [...document.querySelectorAll('link[rel=stylesheet]')].every(l => l.sheet);",
                    vec![],
                )
                .await?;
            if ready.as_bool() == Some(true) {
                return Ok(auditor);
            }
            ensure!(
                Instant::now() < deadline,
                "the copied page's styles never loaded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Prints the audit's counts for every page screenshotted, and fails if any of them
    /// had a serious or critical finding.
    fn assert_screenshots_accessible(&self) -> Result<()> {
        let mut grave = Vec::new();
        for (page, findings) in &self.audits {
            let serious = findings
                .iter()
                .filter(|f| f.starts_with("serious ") || f.starts_with("critical "))
                .collect::<Vec<_>>();
            println!(
                "axe-core {page}: {} serious or critical, {} lesser",
                serious.len(),
                findings.len() - serious.len()
            );
            grave.extend(serious.into_iter().map(|f| format!("{page}: {f}")));
        }
        ensure!(
            grave.is_empty(),
            "{} serious or critical accessibility findings on the pages screenshotted:\n{}",
            grave.len(),
            grave.join("\n")
        );
        Ok(())
    }

    /// Fails on any serious or critical WCAG 2.1 AA finding of axe-core on the current page;
    /// returns the count of lesser ones (moderate, minor) for the record.
    pub async fn assert_accessible(&self, page: &str) -> Result<usize> {
        let findings = self.accessibility_findings().await?;
        let (grave, lesser): (Vec<_>, Vec<_>) = findings
            .iter()
            .partition(|f| f.starts_with("serious ") || f.starts_with("critical "));
        ensure!(
            grave.is_empty(),
            "{page}: {} serious or critical accessibility findings:\n{}",
            grave.len(),
            grave
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!(
            "axe-core {page}: 0 serious or critical, {} lesser",
            lesser.len()
        );
        Ok(lesser.len())
    }

    /// Fails if the page is wider than the window (a layout that does not fit a phone).
    pub async fn assert_no_horizontal_overflow(&self) -> Result<()> {
        let widths: Value = self
            .browser
            .execute(
                // The width the page can show, without the vertical scrollbar (the window's
                // inner width counts it, and would let 15 px overflow unseen).
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await?;
        let (scroll, inner) = (widths[0].as_u64(), widths[1].as_u64());
        if scroll > inner {
            // The innermost elements past the edge, to say what to fix.
            let culprits = self
                .browser
                .execute(
                    "const w = document.documentElement.clientWidth;
                     return Array.from(document.querySelectorAll('body *'))
                       .filter(e => e.getBoundingClientRect().right > w + 0.5
                                 && !Array.from(e.children).some(c => c.getBoundingClientRect().right > w + 0.5))
                       .slice(0, 5)
                       .map(e => e.tagName.toLowerCase() + '.' + (e.className || '') + ': '
                                 + (e.textContent || '').trim().slice(0, 40));",
                    vec![],
                )
                .await?;
            bail!("page is {scroll:?}px wide in a {inner:?}px window: {culprits}");
        }
        Ok(())
    }

    /// Fails unless every element matching `css` lies wholly inside the window's width
    /// (on a phone: reachable without scrolling sideways).
    pub async fn assert_within_width(&self, css: &str) -> Result<()> {
        let outside: Value = self
            .browser
            .execute(
                "return Array.from(document.querySelectorAll(arguments[0]))
                    .filter(e => { const r = e.getBoundingClientRect();
                                   return r.left < 0 || r.right > window.innerWidth; })
                    .map(e => e.textContent.trim());",
                vec![json!(css)],
            )
            .await?;
        if outside.as_array().is_some_and(|a| !a.is_empty()) {
            bail!("{css}: {outside} do not fit the window's width");
        }
        Ok(())
    }

    /// Fails if the browser refused anything under the pages' Content-Security-Policy
    /// in the whole test (Chromium logs each violation as an error).
    pub async fn assert_no_policy_violations(&self) -> Result<()> {
        let violations = self
            .console_errors_with(0, &["Content Security Policy"])
            .await?;
        if !violations.is_empty() {
            bail!("the pages broke their Content-Security-Policy: {violations:#?}");
        }
        Ok(())
    }

    /// Checks that no page broke its Content-Security-Policy, closes the browser, stops
    /// the processes and drops the test database.
    pub async fn finish(mut self) -> Result<()> {
        self.assert_no_policy_violations().await?;
        self.assert_screenshots_accessible()?;
        if let Some(auditor) = self.auditor.take() {
            auditor.close().await?;
        }
        self.browser.clone().close().await?;
        self.stop_processes();
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(
                format!(
                    r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                    self.database
                )
                .as_str(),
            )
            .await?;
        Ok(())
    }

    fn stop_processes(&mut self) {
        for child in [&mut self.server, &mut self.driver] {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The test's sites' containers and volumes (none when it deleted its sites).
        let label = format!("label=slipway.instance={}", self.instance);
        for (list, remove) in [
            (vec!["ps", "-aq", "--filter", &label], vec!["rm", "-f"]),
            (
                vec!["volume", "ls", "-q", "--filter", &label],
                vec!["volume", "rm", "-f"],
            ),
        ] {
            let Ok(listed) = Command::new("docker").args(&list).output() else {
                continue;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(&remove).args(&ids).output();
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed test never reaches `finish`: still leave no processes behind.
        self.stop_processes();
    }
}

async fn open_browser(
    driver_url: &str,
    capabilities: &serde_json::Map<String, Value>,
) -> Result<Client> {
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities.clone())
        .connect(driver_url)
        .await
        .context("opening a Chromium session")
}

/// Fills and submits the form `data-form=<form>` in `browser`. A page that re-renders
/// while it is being filled (a resource reloading) makes elements stale: start over then.
/// A form that is not there yet is waited for, up to 10 s: after a link followed in the
/// browser, the address changes at once and the page's forms come with its data.
pub async fn submit_in(browser: &Client, form: &str, fields: &[(&str, &str)]) -> Result<()> {
    let mut attempts = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match fill_and_submit(browser, form, fields).await {
            Err(error) if attempts < 5 && replaced(&error) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) if Instant::now() < deadline && not_there_yet(&error, form) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result,
        }
    }
}

/// Whether the form itself was not found (nothing of it was filled in).
fn not_there_yet(error: &anyhow::Error, form: &str) -> bool {
    let message = format!("{error:#}");
    message.starts_with(&format!(r#"finding form[data-form="{form}"]"#))
        && message.contains("no such element")
}

/// Whether WebDriver refused an element because the page replaced it after it was found.
fn replaced(error: &anyhow::Error) -> bool {
    let message = format!("{error:#}");
    message.contains("stale element") || message.contains("does not belong to the document")
}

async fn fill_and_submit(browser: &Client, form: &str, fields: &[(&str, &str)]) -> Result<()> {
    let form_css = format!(r#"form[data-form="{form}"]"#);
    let element = browser
        .find(Locator::Css(&form_css))
        .await
        .with_context(|| format!("finding {form_css}"))?;
    for (name, value) in fields {
        let input = element
            .find(Locator::Css(&format!(r#"[name="{name}"]"#)))
            .await
            .with_context(|| format!("finding field {name} in {form_css}"))?;
        if input.tag_name().await? == "select" {
            input.select_by_value(value).await?;
        } else {
            input.clear().await?;
            input.send_keys(value).await?;
        }
    }
    element
        .find(Locator::Css(r#"button[type="submit"]"#))
        .await?
        .click()
        .await?;
    Ok(())
}

/// chromedriver's log endpoint (not part of W3C WebDriver, so not in fantoccini).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}
