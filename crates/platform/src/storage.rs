//! One storage API over SQLite (embedded mode) and PostgreSQL (distributed mode).
//!
//! A service writes its SQL once. [`Db`] and [`Tx`] hold a pool or transaction of either backend,
//! and the [`with_db!`](crate::with_db) and [`with_tx!`](crate::with_tx) macros expand a block of
//! sqlx code once per backend, so each expansion is type-checked against its own driver with its
//! native `Uuid` and `DateTime<Utc>` (sqlx's `Any` driver cannot carry those). SQL that differs
//! between the two (DDL, mostly) lives in one migrations folder per backend.
//!
//! Embedded: one SQLite file per service, WAL, `synchronous = NORMAL`, a busy timeout, and write
//! transactions opened with `BEGIN IMMEDIATE` so read-then-write transactions do not fail with
//! "database is locked". Distributed: one PostgreSQL schema per service, named after it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// The migrations of one service, one set per backend, embedded at compile time.
#[derive(Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

impl Migrations {
    /// For a service that keeps nothing of its own beyond the platform's tables.
    pub const NONE: Migrations = Migrations {
        sqlite: &NO_MIGRATIONS,
        postgres: &NO_MIGRATIONS,
    };
}

static PLATFORM_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static PLATFORM_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// The tables the platform keeps in every service's database (outbox, processed events,
/// dead letters).
pub const PLATFORM_MIGRATIONS: Migrations = Migrations {
    sqlite: &PLATFORM_SQLITE,
    postgres: &PLATFORM_POSTGRES,
};

/// A connection pool to a service's own database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on a service's own database.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs a block of sqlx code against whichever pool `db` holds: `with_db!(db, pool => ...)`.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body,
            $crate::storage::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs a block of sqlx code inside a transaction: `with_tx!(tx, conn => ...)`, where `conn` is a
/// `&mut` connection of the transaction's backend (reborrow it with `&mut *conn` to use it twice).
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::storage::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::storage::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

/// Whether a pooled connection may be handed out: not if the driver still counts a transaction
/// on it. That happens when a ROLLBACK fails; on a full disk SQLite rolls the transaction back by
/// itself and then refuses the driver's, and the connection would refuse every later BEGIN
/// ("begin_with at non-zero transaction depth") long after space came back. The pool closes such
/// a connection and opens a fresh one.
fn not_stuck<C: sqlx::Connection>(conn: &C) -> bool {
    let stuck = conn.is_in_transaction();
    if stuck {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    !stuck
}

/// Below this much free space on the disk holding an embedded store, the replica says it is
/// not ready: SQLite's writes fail once the disk is full (a checkout writes several pages to
/// several stores), and a replica that cannot write cannot take a checkout.
pub const DISK_FLOOR_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes an unprivileged writer may still use on the filesystem holding `path`.
#[allow(
    clippy::useless_conversion,
    reason = "the statvfs field types are u64 on Linux, narrower elsewhere"
)]
fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let stats = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("cannot read the free space of {}", path.display()))?;
    Ok(u64::from(stats.blocks_available()).saturating_mul(u64::from(stats.fragment_size())))
}

impl Db {
    /// Opens (creating if needed) `<data_dir>/<service>.db`.
    pub async fn open_sqlite(
        data_dir: &Path,
        service: &str,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let path = data_dir.join(format!("{service}.db"));
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .before_acquire(|conn, _| Box::pin(async move { Ok(not_stuck(conn)) }))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        Ok(Self::Sqlite(pool))
    }

    /// Connects to PostgreSQL with `search_path` set to the service's own schema, creating it.
    /// The pool connects lazily so a database that is down at start shows as not ready instead of
    /// stopping the process; [`Db::wait_until_reachable`] waits for it.
    pub fn connect_postgres(url: &str, schema: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .context("NUBO_DATABASE_URL is not a valid PostgreSQL URL")?
            .options([("search_path", schema)])
            .application_name(schema);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .before_acquire(|conn, _| Box::pin(async move { Ok(not_stuck(conn)) }))
            .after_connect({
                let schema = schema.to_owned();
                move |conn, _| {
                    let schema = schema.clone();
                    Box::pin(async move {
                        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                        conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                        Ok(())
                    })
                }
            })
            .connect_lazy_with(options);
        Ok(Self::Postgres(pool))
    }

    /// Waits until the database answers, logging while it does not.
    pub async fn wait_until_reachable(&self, deadline: Duration) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        loop {
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() < deadline => {
                    tracing::warn!(error = %e, "database not reachable yet, retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e).context("database not reachable"),
            }
        }
    }

    /// Runs the platform's migrations, then the service's own. Each set keeps its own history
    /// table, so the two never see each other's versions.
    pub async fn migrate(&self, service: Migrations) -> anyhow::Result<()> {
        for (set, table) in [
            (PLATFORM_MIGRATIONS, "_nubo_platform_migrations"),
            (service, "_sqlx_migrations"),
        ] {
            let run = match self {
                Self::Sqlite(pool) => with_table(set.sqlite, table).run(pool).await,
                Self::Postgres(pool) => with_table(set.postgres, table).run(pool).await,
            };
            run.with_context(|| format!("migration failed ({table})"))?;
        }
        Ok(())
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether the database answers. For SQLite, also whether its file is still where it was:
    /// a data directory unmounted or deleted under a running service must not go unnoticed.
    pub async fn ping(&self) -> anyhow::Result<()> {
        if let Self::Sqlite(pool) = self {
            let path = pool.connect_options().get_filename().to_owned();
            if !path.exists() {
                anyhow::bail!("database file {} is missing", path.display());
            }
            let free = free_bytes(&path)?;
            if free < DISK_FLOOR_BYTES {
                anyhow::bail!(
                    "the disk holding {} is full: {} KiB free, under the {} MiB a store needs \
                     to take writes",
                    path.display(),
                    free / 1024,
                    DISK_FLOOR_BYTES / (1024 * 1024)
                );
            }
        }
        with_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Connections open and idle, for the pool gauges.
    pub fn pool_usage(&self) -> (u32, u32) {
        with_db!(self, pool => (pool.size(), pool.num_idle() as u32))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

fn with_table(migrator: &Migrator, table: &'static str) -> Migrator {
    let mut m = Migrator::with_migrations(migrator.migrations.to_vec());
    m.dangerous_set_table_name(table);
    m
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(t) => t.commit().await,
            Self::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(t) => t.rollback().await,
            Self::Postgres(t) => t.rollback().await,
        }
    }
}

#[cfg(test)]
mod full_disk_tests {
    use super::{Db, Tx};

    async fn exec(tx: &mut Tx, sql: &'static str) -> Result<(), sqlx::Error> {
        crate::with_tx!(tx, conn => sqlx::query(sql).execute(conn).await.map(|_| ()))
    }

    /// A write transaction that runs out of room, as on a full disk (SQLite's page limit stands
    /// in for the disk: the limit is per connection, so a fresh connection has room again).
    async fn fill_up(db: &Db) -> sqlx::Error {
        let mut tx = db.begin().await.unwrap();
        exec(&mut tx, "PRAGMA max_page_count = 1").await.ok();
        let error = loop {
            if let Err(e) = exec(&mut tx, "INSERT INTO t VALUES (zeroblob(65536))").await {
                break e;
            }
        };
        drop(tx);
        error
    }

    #[tokio::test]
    async fn a_connection_a_full_disk_left_inside_a_transaction_is_never_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path(), "full", 1).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        exec(&mut tx, "CREATE TABLE t (b BLOB)").await.unwrap();
        match tx {
            Tx::Sqlite(t) => t.commit().await.unwrap(),
            Tx::Postgres(_) => unreachable!(),
        }
        let full = fill_up(&db).await;
        assert!(crate::error::is_transient(&full), "{full}");
        // Space is back: the next write must work on a connection that is not stuck in the
        // failed transaction.
        for _ in 0..3 {
            let mut tx = db
                .begin()
                .await
                .expect("a transaction after the disk emptied");
            exec(&mut tx, "PRAGMA max_page_count = 1073741823")
                .await
                .unwrap();
            exec(&mut tx, "INSERT INTO t VALUES (zeroblob(16))")
                .await
                .unwrap();
            match tx {
                Tx::Sqlite(t) => t.commit().await.unwrap(),
                Tx::Postgres(_) => unreachable!(),
            }
        }
    }
}

#[cfg(test)]
mod disk_tests {
    use std::process::Command;

    use super::{DISK_FLOOR_BYTES, Db};

    /// A small tmpfs of its own, unmounted when dropped.
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn mount(megabytes: u64) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let status = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
                .arg(dir.path())
                .status()
                .expect("mount runs");
            assert!(status.success(), "mount a tmpfs (root only): {status}");
            Self(dir)
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0.path()).status();
        }
    }

    #[tokio::test]
    #[ignore = "mounts a tmpfs, which needs root: .ci/run runs it"]
    async fn an_embedded_store_on_a_full_disk_is_not_ready_until_space_comes_back() {
        let disk = Tmpfs::mount(48);
        let db = Db::open_sqlite(disk.0.path(), "full", 1).await.unwrap();
        db.ping().await.expect("ready with room to write");
        // Fill the disk to within a few kilobytes, as a runaway log or a big backup would.
        let filler = disk.0.path().join("filler");
        let free = super::free_bytes(disk.0.path()).unwrap();
        std::fs::write(&filler, vec![0u8; (free - 64 * 1024) as usize]).unwrap();
        let full = db.ping().await.expect_err("not ready on a full disk");
        assert!(full.to_string().contains("is full"), "{full}");
        // Space comes back: so does readiness, without a restart.
        std::fs::remove_file(&filler).unwrap();
        assert!(super::free_bytes(disk.0.path()).unwrap() > DISK_FLOOR_BYTES);
        db.ping().await.expect("ready again");
        db.close().await;
    }
}
