//! Helpers for the end-to-end scenarios: fresh databases (a SQLite directory,
//! or a new PostgreSQL database when `TEST_DATABASE_URL` is set), the real
//! server on a real port, and devices that sign like real clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::auth::{
    Challenge, LinkToken, Login, LoginTokens, RegisterDevice, RegisteredDevice, login_message,
    register_message,
};
use hearth_protocol::{AccountId, DeviceId, ErrorBody, ErrorCode};
use hearth_server::config::{Bucket, Config};
use hearth_server::startup::Application;
use hearth_server::storage::Storage;
use secrecy::SecretString;
use sqlx::Row as _;
use std::sync::Arc;
use std::time::Duration;

pub mod clients;
pub mod loopback;
pub mod mls;
pub mod pg_link;
pub mod process;
pub mod push;
pub mod recorder;
pub mod sfu;
pub mod slow_link;

/// The variable that points the tests at a PostgreSQL server (a role that may
/// create databases). Each test makes its own database there.
pub const PG_ENV: &str = "TEST_DATABASE_URL";

/// Which database a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in a fresh temporary directory.
    Sqlite,
    /// A fresh database on the server named by `TEST_DATABASE_URL`.
    Postgres,
}

/// Runs each named scenario as two tests, `name::sqlite` and
/// `name::postgres`. A scenario is `async fn name(app: TestApp)` — it gets the
/// real server on a fresh database — or `async fn name(db: Db)` when it sets
/// up its own (a configured server, two nodes, the storage alone). Whether
/// the PostgreSQL half runs is decided here, once (see [`postgres_wanted`]).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            $crate::scenario_test!($name, sqlite, Sqlite);
            $crate::scenario_test!($name, postgres, Postgres);
        }
    )+};
}

/// Runs each named scenario on PostgreSQL only, as `name::postgres`: what
/// only PostgreSQL does (several nodes on one database, losing the server).
#[macro_export]
macro_rules! on_postgres {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            $crate::scenario_test!($name, postgres, Postgres);
        }
    )+};
}

/// One test running a scenario on one database (used by the macros above).
#[doc(hidden)]
#[macro_export]
macro_rules! scenario_test {
    ($name:ident, $test:ident, $db:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() -> anyhow::Result<()> {
            $crate::run_scenario(super::$name, $crate::Db::$db).await
        }
    };
}

/// Runs a scenario on `db`, unless it is PostgreSQL and that half is
/// skipped (see [`postgres_wanted`]).
pub async fn run_scenario<Takes>(scenario: impl Scenario<Takes>, db: Db) -> Result<()> {
    if db == Db::Postgres && !postgres_wanted()? {
        return Ok(());
    }
    let outcome = scenario.run(db).await;
    drop_created_databases().await;
    outcome
}

/// The PostgreSQL databases this process created (nextest runs each test in
/// a process of its own).
static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn created() -> std::sync::MutexGuard<'static, Vec<String>> {
    // A list of names is never left half-changed.
    CREATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Drops the databases this process created, so that a long-lived
/// PostgreSQL does not collect one per test run (a few MiB each; hundreds
/// filled this machine's disk). Best effort: a failure leaves them.
pub async fn drop_created_databases() {
    let names: Vec<String> = std::mem::take(&mut *created());
    let Ok(admin) = std::env::var(PG_ENV) else {
        return;
    };
    if names.is_empty() {
        return;
    }
    let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await else {
        return;
    };
    for name in names {
        // FORCE: a server the scenario left running may still hold
        // connections.
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// What a scenario takes: `TestApp` (a running server on a fresh database of
/// the kind) or `Db` (just the kind).
pub trait Scenario<Takes> {
    /// Runs the scenario on `db`.
    fn run(self, db: Db) -> impl std::future::Future<Output = Result<()>>;
}

impl<F, Fut> Scenario<TestApp> for F
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    async fn run(self, db: Db) -> Result<()> {
        self(TestApp::spawn(db).await?).await
    }
}

impl<F, Fut> Scenario<Db> for F
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    async fn run(self, db: Db) -> Result<()> {
        self(db).await
    }
}

/// Whether the PostgreSQL half runs: yes when `TEST_DATABASE_URL` is set; no
/// (with a note on stderr) when it is not; a failure under `CI=true`, where
/// the PostgreSQL half must run.
pub fn postgres_wanted() -> Result<bool> {
    if std::env::var(PG_ENV).is_ok() {
        return Ok(true);
    }
    if postgres_required() {
        bail!("CI=true but {PG_ENV} is not set: the PostgreSQL half must run");
    }
    eprintln!(
        "SKIPPED on PostgreSQL: set {PG_ENV}=postgres://user:pass@host/db \
         (a role that can create databases) or run scripts/test, which starts one"
    );
    Ok(false)
}

/// A fresh, empty database.
#[derive(Debug)]
pub enum TestDb {
    /// A temporary data directory for SQLite.
    Sqlite(tempfile::TempDir),
    /// The URL of a new PostgreSQL database.
    Postgres(String),
}

/// Whether PostgreSQL tests must run (under CI a skip is a failure).
fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn database_url_named(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let root = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}

impl TestDb {
    /// A fresh, empty database. PostgreSQL needs `TEST_DATABASE_URL` (the
    /// test macros check [`postgres_wanted`] before getting here).
    pub async fn create(db: Db) -> Result<Self> {
        match db {
            Db::Sqlite => Ok(Self::Sqlite(tempfile::tempdir()?)),
            Db::Postgres => {
                let admin = std::env::var(PG_ENV)
                    .with_context(|| format!("{PG_ENV} is not set: no PostgreSQL to test on"))?;
                let name = format!("hearth_t_{}", hex(&rand_bytes::<8>()));
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .context("connecting to TEST_DATABASE_URL")?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                created().push(name.clone());
                Ok(Self::Postgres(database_url_named(&admin, &name)))
            }
        }
    }

    /// The PostgreSQL database's name (`None` for SQLite).
    pub fn postgres_name(&self) -> Option<&str> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(url) => url.split('?').next()?.rsplit('/').next(),
        }
    }

    /// A server configuration on this database, listening on a free port.
    pub fn config(&self) -> Config {
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            workers: Some(1),
            database_max_connections: 5,
            ..Config::default()
        };
        match self {
            Self::Sqlite(dir) => config.data_dir = dir.path().to_path_buf(),
            Self::Postgres(url) => config.database_url = Some(SecretString::from(url.clone())),
        }
        // Scenarios register many devices from one address; the rate-limit
        // scenario sets its own buckets.
        let generous = Bucket {
            burst: 100_000,
            per_minute: 100_000,
        };
        config.rate_limits.per_ip = generous;
        config.rate_limits.per_device = generous;
        config.delivery.send_rate = generous;
        config.delivery.claim_rate = generous;
        config
    }

    /// Opens the storage directly, as the server would.
    pub async fn storage(&self) -> Result<Arc<dyn Storage>> {
        Ok(match self {
            Self::Sqlite(dir) => {
                Arc::new(hearth_server::storage::sqlite::SqliteStorage::open(dir.path()).await?)
            }
            Self::Postgres(url) => {
                Arc::new(hearth_server::storage::postgres::PgStorage::connect(url, 5).await?)
            }
        })
    }

    /// Every row of every table, as text (blobs in hex), prefixed by its
    /// table name. For proving what is and is not stored.
    pub async fn dump(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match self {
            Self::Sqlite(dir) => {
                let path = dir
                    .path()
                    .join(hearth_server::storage::sqlite::DATABASE_FILE);
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .read_only(true);
                let pool = sqlx::SqlitePool::connect_with(options).await?;
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .fetch_all(&pool)
                .await?;
                for table in tables {
                    let columns: Vec<String> =
                        sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                            .bind(&table)
                            .fetch_all(&pool)
                            .await?;
                    let select = columns
                        .iter()
                        .map(|c| format!("quote(\"{c}\")"))
                        .collect::<Vec<_>>()
                        .join(" || ',' || ");
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT {select} FROM \"{table}\""
                    )))
                    .fetch_all(&pool)
                    .await?;
                    out.extend(
                        rows.into_iter()
                            .map(|r| format!("{table}: {}", r.to_lowercase())),
                    );
                }
                pool.close().await;
            }
            Self::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url).await?;
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                )
                .fetch_all(&pool)
                .await?;
                for table in tables {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT t::text AS row FROM \"{table}\" t"
                    )))
                    .fetch_all(&pool)
                    .await?;
                    for row in rows {
                        let text: String = row.try_get("row")?;
                        out.push(format!("{table}: {}", text.to_lowercase()));
                    }
                }
                pool.close().await;
            }
        }
        Ok(out)
    }
}

/// Random bytes for test fixtures.
pub fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("OS randomness");
    bytes
}

/// An application message nobody will decrypt, framed as the server checks
/// it: a padded `PrivateMessage` for `circle` at `epoch`, whose ciphertext
/// begins with `marker` (the rest random).
pub fn opaque_message(circle: &hearth_protocol::CircleId, epoch: u64, marker: &[u8]) -> Vec<u8> {
    use hearth_protocol::framing::{self, ContentType};
    let mut ciphertext = vec![0u8; framing::padded_len(marker.len())];
    getrandom::fill(&mut ciphertext).expect("OS randomness");
    ciphertext[..marker.len()].copy_from_slice(marker);
    framing::private_message(
        circle.as_bytes(),
        epoch,
        ContentType::Application,
        &rand_bytes::<28>(),
        &ciphertext,
    )
}

/// A commit nobody will process: a `PrivateMessage` commit for `circle` at
/// `epoch`.
pub fn opaque_commit(circle: &hearth_protocol::CircleId, epoch: u64) -> Vec<u8> {
    use hearth_protocol::framing::{self, ContentType};
    framing::private_message(
        circle.as_bytes(),
        epoch,
        ContentType::Commit,
        &rand_bytes::<28>(),
        &rand_bytes::<256>(),
    )
}

/// A Welcome nobody will process: an `MLSMessage` framing a Welcome with no
/// group secrets and random encrypted group info.
pub fn opaque_welcome() -> Vec<u8> {
    let mut bytes = vec![0, 1, 0, 3, 0, 1, 0];
    // encrypted_group_info<V>: 1024 bytes, a two-byte length.
    bytes.extend_from_slice(&(0x4000u16 | 1024).to_be_bytes());
    bytes.extend_from_slice(&rand_bytes::<1024>());
    bytes
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The real server, running on a real port, on its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The database the server uses.
    pub db: TestDb,
    /// The Ed25519 seed the server signs access tokens with (tests forge
    /// tokens with it to probe validation).
    pub signing_seed: [u8; 32],
    /// The configuration the server started with.
    pub config: Config,
    stopper: hearth_server::startup::Stopper,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    /// Starts the server on a fresh database of the given kind.
    pub async fn spawn(db: Db) -> Result<Self> {
        Self::spawn_with(db, |_| {}).await
    }

    /// Like [`TestApp::spawn`], adjusting the configuration first.
    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        Self::start(TestDb::create(db).await?, adjust).await
    }

    /// Two server nodes on one fresh PostgreSQL database (several nodes need
    /// PostgreSQL: `db` must be it), each configured by `adjust`.
    pub async fn two_nodes(db: Db, adjust: impl Fn(&mut Config)) -> Result<(Self, Self)> {
        let test_db = TestDb::create(db).await?;
        let TestDb::Postgres(url) = &test_db else {
            bail!("several nodes need PostgreSQL");
        };
        let second_db = TestDb::Postgres(url.clone());
        let first = Self::start(test_db, &adjust).await?;
        let second = Self::start(second_db, &adjust).await?;
        Ok((first, second))
    }

    /// Starts a server on an existing database.
    pub async fn start(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        let signing_seed = rand_bytes::<32>();
        let mut config = db.config();
        config.auth.signing_key = Some(SecretString::from(b64(&signing_seed)));
        adjust(&mut config);
        let app = Application::build(config.clone()).await?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let stopper = app.stopper();
        let task = tokio::spawn(app.run_until_stopped(Duration::from_secs(3600)));
        Ok(Self {
            address,
            // Idle connections are dropped well before the server's
            // keep-alive (5 s) closes them: reusing one the server is
            // closing fails with "connection closed before message
            // completed" (seen in CI on a `/metrics` read).
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()?,
            db,
            signing_seed,
            config,
            stopper,
            task,
        })
    }

    /// Stops the server gracefully and waits until it has closed its pool.
    pub async fn stop(self) -> Result<TestDb> {
        self.stopper.stop().await;
        self.task.await??;
        Ok(self.db)
    }

    /// The absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A fresh challenge.
    pub async fn challenge(&self) -> Result<Vec<u8>> {
        let response = self.http.post(self.url("/v1/challenges")).send().await?;
        if response.status() != 201 {
            bail!("challenge: {}", response.status());
        }
        let challenge: Challenge = response.json().await?;
        Ok(challenge.challenge.into_inner())
    }

    /// Sends a registration for `key`, optionally with a link token.
    pub async fn register_raw(
        &self,
        key: &SigningKey,
        link_token: Option<&str>,
    ) -> Result<reqwest::Response> {
        let challenge = self.challenge().await?;
        let public_key = key.verifying_key().to_bytes();
        let signature = key.sign(&register_message(&challenge, &public_key));
        Ok(self
            .http
            .post(self.url("/v1/devices"))
            .json(&RegisterDevice {
                public_key: public_key.as_slice().into(),
                challenge: challenge.into(),
                signature: signature.to_bytes().as_slice().into(),
                link_token: link_token.map(str::to_owned),
            })
            .send()
            .await?)
    }

    /// Registers a new device on a new account.
    pub async fn register(&self) -> Result<TestDevice> {
        let key = SigningKey::from_bytes(&rand_bytes());
        self.register_key(key, None).await
    }

    /// Registers `key`, on a new account or by link token.
    pub async fn register_key(
        &self,
        key: SigningKey,
        link_token: Option<&str>,
    ) -> Result<TestDevice> {
        let response = self.register_raw(&key, link_token).await?;
        if response.status() != 201 {
            bail!("register: {} {}", response.status(), response.text().await?);
        }
        let registered: RegisteredDevice = response.json().await?;
        Ok(TestDevice {
            key,
            device_id: registered.device_id,
            account_id: registered.account_id,
        })
    }

    /// Sends a login for `device_id` signed by `key`.
    pub async fn login_raw(
        &self,
        key: &SigningKey,
        device_id: DeviceId,
    ) -> Result<reqwest::Response> {
        let challenge = self.challenge().await?;
        let signature = key.sign(&login_message(&challenge, &device_id));
        Ok(self
            .http
            .post(self.url("/v1/logins"))
            .json(&Login {
                device_id,
                challenge: challenge.into(),
                signature: signature.to_bytes().as_slice().into(),
            })
            .send()
            .await?)
    }

    /// Logs a device in.
    pub async fn login(&self, device: &TestDevice) -> Result<LoginTokens> {
        let response = self.login_raw(&device.key, device.device_id).await?;
        if response.status() != 201 {
            bail!("login: {} {}", response.status(), response.text().await?);
        }
        Ok(response.json().await?)
    }

    /// Registers a new device on the account of `access_token` with a
    /// one-time link token that account mints (not logged in).
    pub async fn link_device(&self, access_token: &str) -> Result<TestDevice> {
        let response = self.post("/v1/link-tokens", access_token).await?;
        if response.status() != 201 {
            bail!(
                "link token: {} {}",
                response.status(),
                response.text().await?
            );
        }
        let link: LinkToken = response.json().await?;
        self.register_key(
            SigningKey::from_bytes(&rand_bytes()),
            Some(&link.link_token),
        )
        .await
    }

    /// Registers a new device and logs it in.
    pub async fn signed_in(&self) -> Result<(TestDevice, LoginTokens)> {
        let device = self.register().await?;
        let tokens = self.login(&device).await?;
        Ok((device, tokens))
    }

    /// A circle of a signed-in facilitator and `members` signed-in members,
    /// added by one commit of opaque bytes (the server never reads them):
    /// for load and crash scenarios that need senders, not MLS. Returns the
    /// circle and the access tokens, the facilitator's first.
    pub async fn opaque_circle(
        &self,
        members: usize,
    ) -> Result<(hearth_protocol::CircleId, Vec<String>)> {
        let mut people = Vec::with_capacity(members + 1);
        for _ in 0..=members {
            people.push(self.signed_in().await?);
        }
        let circle = self.opaque_circle_of(&people).await?;
        Ok((
            circle,
            people.into_iter().map(|(_, t)| t.access_token).collect(),
        ))
    }

    /// Like [`TestApp::opaque_circle`], for devices the caller signed in
    /// (the first facilitates).
    pub async fn opaque_circle_of(
        &self,
        people: &[(TestDevice, LoginTokens)],
    ) -> Result<hearth_protocol::CircleId> {
        use hearth_protocol::Base64Bytes;
        use hearth_protocol::circles::CommitBundle;
        let Some(((_, facilitator), members)) = people.split_first() else {
            bail!("a circle needs a facilitator");
        };
        let circle = hearth_protocol::CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
        let created = self
            .post_json(
                "/v1/circles",
                &facilitator.access_token,
                &serde_json::json!({ "circle_id": circle }),
            )
            .await?;
        if created.status() != 201 {
            bail!("creating a circle: {}", created.status());
        }
        let bundle = CommitBundle {
            epoch: 0,
            commit: Base64Bytes::from(opaque_commit(&circle, 0)),
            welcome: Some(Base64Bytes::from(opaque_welcome())),
            group_info: None,
            added: members.iter().map(|(d, _)| d.device_id).collect(),
            removed: Vec::new(),
            join_request_id: None,
        };
        let path = format!("/v1/circles/{circle}/commits");
        let answer = self
            .post_json(&path, &facilitator.access_token, &bundle)
            .await?;
        if answer.status() != 201 {
            bail!("adding members: {}", answer.status());
        }
        Ok(circle)
    }

    /// Presents a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<reqwest::Response> {
        Ok(self
            .http
            .post(self.url("/v1/logins/refresh"))
            .json(&serde_json::json!({ "refresh_token": refresh_token }))
            .send()
            .await?)
    }

    /// A request with a bearer token.
    fn authorized(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// `GET` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Result<reqwest::Response> {
        Ok(self
            .authorized(reqwest::Method::GET, path, token)
            .send()
            .await?)
    }

    /// `POST` with a bearer token and no body.
    pub async fn post(&self, path: &str, token: &str) -> Result<reqwest::Response> {
        Ok(self
            .authorized(reqwest::Method::POST, path, token)
            .send()
            .await?)
    }

    /// `POST` JSON with a bearer token.
    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response> {
        let request = self.authorized(reqwest::Method::POST, path, token);
        Ok(request.json(body).send().await?)
    }

    /// The server's `/metrics`, as text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// The sum of a counter's series on `/metrics` (0 when absent).
    pub async fn counter(&self, name: &str) -> Result<f64> {
        Ok(self
            .metrics()
            .await?
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// `POST` a body as it is, labelled JSON, with a bearer token: for
    /// bodies a serializer would not write.
    pub async fn post_raw_json(
        &self,
        path: &str,
        token: &str,
        body: &str,
    ) -> Result<reqwest::Response> {
        let request = self.authorized(reqwest::Method::POST, path, token);
        Ok(request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await?)
    }

    /// Opens `/v1/stream` with a bearer token.
    pub async fn stream(&self, token: &str) -> Result<Stream> {
        Stream::open(&self.address, token).await
    }

    /// `PUT` JSON with a bearer token.
    pub async fn put_json(
        &self,
        path: &str,
        token: &str,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::Response> {
        let request = self.authorized(reqwest::Method::PUT, path, token);
        Ok(request.json(body).send().await?)
    }

    /// `DELETE` with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> Result<reqwest::Response> {
        Ok(self
            .authorized(reqwest::Method::DELETE, path, token)
            .send()
            .await?)
    }
}

/// A registered device and its key.
#[derive(Debug)]
pub struct TestDevice {
    /// Its Ed25519 key.
    pub key: SigningKey,
    /// Its id.
    pub device_id: DeviceId,
    /// Its account.
    pub account_id: AccountId,
}

/// Reads an error answer and checks its status and code.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: ErrorCode,
) -> Result<ErrorBody> {
    let actual = response.status().as_u16();
    let text = response.text().await?;
    if actual != status {
        bail!("expected {status} {code}, got {actual}: {text}");
    }
    let body: ErrorBody =
        serde_json::from_str(&text).with_context(|| format!("error body: {text}"))?;
    if body.code != code {
        bail!("expected code {code}, got {}: {}", body.code, body.message);
    }
    Ok(body)
}

/// A client's end of `/v1/stream`.
pub struct Stream {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Stream {
    /// Opens `/v1/stream` on the server at `address` (`http://host:port`)
    /// with a bearer token, on the runtime that calls it.
    pub async fn open(address: &str, token: &str) -> Result<Self> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let url = format!("{}/v1/stream", address.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket })
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &hearth_protocol::stream::ClientFrame) -> Result<()> {
        use futures_util::SinkExt as _;
        let text = serde_json::to_string(frame)?;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await?;
        Ok(())
    }

    /// Sends `resume` with these cursors and waits for `ready`.
    pub async fn resume(&mut self, cursors: &[(&hearth_protocol::CircleId, u64)]) -> Result<()> {
        let cursors = cursors
            .iter()
            .map(|(circle_id, after)| hearth_protocol::stream::Cursor {
                circle_id: (*circle_id).clone(),
                after: *after,
            })
            .collect();
        self.send(&hearth_protocol::stream::ClientFrame::Resume { cursors })
            .await?;
        match self.next(Duration::from_secs(5)).await? {
            Some(hearth_protocol::stream::ServerFrame::Ready { .. }) => Ok(()),
            other => bail!("expected ready, got {other:?}"),
        }
    }

    /// The next server frame within `wait`; `None` on timeout. An error when
    /// the server closed the socket.
    pub async fn next(
        &mut self,
        wait: Duration,
    ) -> Result<Option<hearth_protocol::stream::ServerFrame>> {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("the server closed the stream"),
                Ok(Some(message)) => message?,
            };
            match message {
                Message::Text(text) => return Ok(Some(serde_json::from_str(text.as_str())?)),
                Message::Close(frame) => bail!("the server closed the stream: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Closes the socket from the client's side.
    pub async fn close(mut self) -> Result<()> {
        self.socket.close(None).await?;
        Ok(())
    }
}

/// Everything the test process logs through `tracing`, at debug level, as
/// JSON lines. Installed once per process; every test that inspects logs
/// shares it (searching it is what matters, not who wrote it).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// A copy of everything logged so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("log buffer").clone()
    }
}

/// Starts (once) capturing the process's logs and returns the capture.
pub fn captured_logs() -> &'static CapturedLogs {
    static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}
