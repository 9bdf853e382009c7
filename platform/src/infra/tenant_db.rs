//! One PostgreSQL schema and one role per site, in the tenant database.
//!
//! The role owns its schema and nothing else: it may connect to the tenant database
//! only, its `search_path` is its schema, and its `CONNECTION LIMIT` and
//! `statement_timeout` come from the plan. Identifiers cannot be bound as parameters,
//! so each one is built here from a site id and checked against a strict pattern before
//! it is put in a statement.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

use crate::catalog::plans::Limits;
use crate::kernel::{Error, Result};

/// `site_<32 hex digits>`: a site's role and schema name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIdent(String);

impl TenantIdent {
    pub fn for_site(site_id: Uuid) -> Self {
        Self(format!("site_{}", site_id.simple()))
    }

    /// Only names of exactly our shape are accepted.
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = raw.len() == 37
            && raw.starts_with("site_")
            && raw[5..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Error::Internal(format!("not a tenant identifier: {raw:?}")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Double-quoted for SQL; safe because of the pattern checked above.
    fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

/// A database name from configuration: `[a-z_][a-z0-9_]{0,62}`.
pub fn check_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "provision.tenant_database must match [a-z_][a-z0-9_]{{0,62}}, got {name:?}"
        )))
    }
}

/// Generated passwords are 40 of `[a-z0-9]`; anything else is refused before it reaches SQL.
fn check_password(password: &str) -> Result<()> {
    if password.len() == 40
        && password
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(Error::Internal(
            "a tenant password has an unexpected shape".to_owned(),
        ))
    }
}

/// A transaction that holds the lock on the tenant database's privileges: PostgreSQL
/// fails concurrent GRANT/REVOKE on one database with "tuple concurrently updated".
async fn begin_acl_change(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('slipway:tenant-acl'))")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The admin connection to the tenant database (created when missing, closed to PUBLIC).
#[derive(Debug, Clone)]
pub struct TenantDb {
    pub pool: PgPool,
    pub database: String,
    /// The port tenants connect to (the cluster's).
    pub port: u16,
}

impl TenantDb {
    /// Connects as the control plane's role to `database` on the same cluster as `control`.
    pub async fn open(control: &PgPool, database: &str) -> Result<Self> {
        check_database_name(database)?;
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
            database
        )
        .fetch_one(control)
        .await?;
        let mut attempts = 0;
        while !exists && attempts <= 20 {
            let created = sqlx::query(&format!("CREATE DATABASE \"{database}\""))
                .execute(control)
                .await;
            match created {
                Ok(_) => break,
                // Another process created it in between: 42P04 duplicate_database when it had
                // committed before we looked, 23505 on pg_database's unique index when both
                // inserted at once.
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("42P04" | "23505")) =>
                {
                    break;
                }
                // 55006 object_in_use: template1 is busy with another CREATE DATABASE.
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("55006") && attempts < 20 =>
                {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
        let options: PgConnectOptions = (*control.connect_options()).clone().database(database);
        let port = options.get_port();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            // Statements carry tenant passwords: never log them.
            .connect_with(options.disable_statement_logging())
            .await?;
        // Tenants get CONNECT one by one; nobody may create objects in `public`.
        let mut tx = begin_acl_change(&pool).await?;
        sqlx::query(&format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let tenant_db = Self {
            pool,
            database: database.to_owned(),
            port,
        };
        let open = tenant_db.databases_open_to_every_role().await?;
        if !open.is_empty() {
            tracing::warn!(
                databases = ?open,
                "sites' database roles can connect to these databases (PUBLIC has CONNECT); \
                 as their owner run: REVOKE CONNECT ON DATABASE <name> FROM PUBLIC"
            );
        }
        Ok(tenant_db)
    }

    /// Databases of the cluster, other than the tenant database, that any role may
    /// connect to (PUBLIC holds CONNECT, which PostgreSQL grants by default): a site's role
    /// could open them. Slipway closes its own; `postgres` and `template1` belong to the
    /// superuser and are closed by the installation (see docs/operations.md).
    pub async fn databases_open_to_every_role(&self) -> Result<Vec<String>> {
        let open = sqlx::query_scalar!(
            r#"SELECT datname AS "datname!" FROM pg_database
                WHERE datallowconn AND datname <> $1
                  AND (datacl IS NULL
                       OR EXISTS (SELECT 1 FROM aclexplode(datacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))
                ORDER BY datname"#,
            self.database
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(open)
    }

    /// Creates or updates the site's role and schema so that they match `limits`.
    /// Safe to repeat; each statement either does nothing or sets the same value again.
    #[tracing::instrument(skip_all, fields(tenant = %ident.as_str()))]
    pub async fn ensure(&self, ident: &TenantIdent, password: &str, limits: &Limits) -> Result<()> {
        check_password(password)?;
        let role = ident.quoted();
        let mut conn = begin_acl_change(&self.pool).await?;
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS "exists!""#,
            ident.as_str()
        )
        .fetch_one(&mut *conn)
        .await?;
        if !exists {
            let created = sqlx::query(&format!(
                "CREATE ROLE {role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
            ))
            .execute(&mut *conn)
            .await;
            match created {
                // 42710 duplicate_object: created since we looked.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42710") => {}
                other => {
                    other?;
                }
            }
        }
        let connections = i64::from(limits.db_connections.max(1));
        let statements = [
            format!(
                "ALTER ROLE {role} WITH LOGIN PASSWORD '{password}' CONNECTION LIMIT {connections}"
            ),
            format!(
                "ALTER ROLE {role} SET statement_timeout = {}",
                limits.statement_timeout_ms.max(100)
            ),
            format!("ALTER ROLE {role} SET search_path = {role}"),
            // The control plane's role must be a member to create the schema for it and,
            // later, to drop what it owns.
            format!("GRANT {role} TO CURRENT_USER"),
            format!("GRANT CONNECT ON DATABASE \"{}\" TO {role}", self.database),
            format!("CREATE SCHEMA IF NOT EXISTS {role} AUTHORIZATION {role}"),
        ];
        for statement in statements {
            sqlx::query(&statement).execute(&mut *conn).await?;
        }
        conn.commit().await?;
        Ok(())
    }

    /// Whether the role and the schema exist: (role, schema).
    pub async fn exists(&self, ident: &TenantIdent) -> Result<(bool, bool)> {
        let row = sqlx::query!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS "role!",
                      EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS "schema!""#,
            ident.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.role, row.schema))
    }

    /// Bytes the site's schema takes on disk: its tables and materialized views with their
    /// indexes and TOAST.
    pub async fn schema_size(&self, ident: &TenantIdent) -> Result<u64> {
        let bytes = sqlx::query_scalar!(
            r#"SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint AS "bytes!"
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')"#,
            ident.as_str()
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Drops the schema with everything in it, then the role. Safe to repeat.
    #[tracing::instrument(skip_all, fields(tenant = %ident.as_str()))]
    pub async fn drop(&self, ident: &TenantIdent) -> Result<()> {
        let role = ident.quoted();
        let mut conn = begin_acl_change(&self.pool).await?;
        sqlx::query!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            ident.as_str()
        )
        .fetch_all(&mut *conn)
        .await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {role} CASCADE"))
            .execute(&mut *conn)
            .await?;
        let role_exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS "exists!""#,
            ident.as_str()
        )
        .fetch_one(&mut *conn)
        .await?;
        if role_exists {
            for statement in [
                format!("DROP OWNED BY {role} CASCADE"),
                format!("REVOKE ALL ON DATABASE \"{}\" FROM {role}", self.database),
                format!("DROP ROLE IF EXISTS {role}"),
            ] {
                sqlx::query(&statement).execute(&mut *conn).await?;
            }
        }
        conn.commit().await?;
        Ok(())
    }

    /// A URL for the site's app, with its own role, reaching the cluster at `host`.
    pub fn url_for(&self, ident: &TenantIdent, password: &str, host: &str) -> String {
        format!(
            "postgres://{user}:{password}@{host}:{port}/{db}",
            user = ident.as_str(),
            port = self.port,
            db = self.database
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_have_one_shape() {
        let id = Uuid::new_v4();
        let ident = TenantIdent::for_site(id);
        assert_eq!(TenantIdent::parse(ident.as_str()).unwrap(), ident);
        for bad in [
            "site_",
            "site_x",
            "public",
            "site_0123456789abcdef0123456789ABCDEF",
            "site_0123456789abcdef0123456789abcde\"",
            "site_0123456789abcdef0123456789abcdef; DROP ROLE slipway",
        ] {
            assert!(TenantIdent::parse(bad).is_err(), "{bad}");
        }
        assert!(check_database_name("slipway_tenants").is_ok());
        for bad in ["", "Tenants", "x\"; DROP", "9db", &"a".repeat(64)] {
            assert!(check_database_name(bad).is_err(), "{bad}");
        }
        assert!(check_password(&"a1".repeat(20)).is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password(&format!("{}'", "a".repeat(39))).is_err());
    }
}
