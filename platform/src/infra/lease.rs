//! Leases held in Postgres: work that must run once per installation (the health monitor)
//! runs in whichever process holds its lease. The holder renews it well before it expires;
//! a holder that dies stops renewing, and another process takes over once it has expired.

use std::time::Duration;

use uuid::Uuid;

use crate::kernel::Result;

/// Takes or renews the lease `name` for `holder` for `ttl`: true when `holder` has it now
/// (it was free, expired, or already `holder`'s). One statement: of any number of
/// processes asking at once, one gets it.
pub async fn hold(db: &sqlx::PgPool, name: &str, holder: Uuid, ttl: Duration) -> Result<bool> {
    let held = sqlx::query_scalar!(
        "INSERT INTO leases (name, holder, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
          WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now()
         RETURNING holder",
        name,
        holder,
        ttl.as_secs_f64()
    )
    .fetch_optional(db)
    .await?;
    Ok(held == Some(holder))
}

/// Gives the lease up (on shutdown), so another process need not wait for it to expire.
pub async fn release(db: &sqlx::PgPool, name: &str, holder: Uuid) -> Result<()> {
    sqlx::query!(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        name,
        holder
    )
    .execute(db)
    .await?;
    Ok(())
}
