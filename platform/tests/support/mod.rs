//! What integration tests (here and in `server/tests`, which include this file by path)
//! start from: a signed-up owner of a fresh organization on a given plan.

use platform::Platform;
use platform::accounts::{self, Email, NewPassword, PersonName, SignUp};
use platform::orgs::{Membership, OrganizationName, Role};
use uuid::Uuid;

/// Signs up a new owner (a unique address) and puts the organization on `plan`.
pub async fn owner_on_plan(platform: &Platform, plan: &str) -> Membership {
    let signed_up = accounts::sign_up(
        platform,
        SignUp {
            email: Email::parse(&format!("{}@example.com", Uuid::new_v4().simple())).unwrap(),
            name: PersonName::parse("Owner").unwrap(),
            password: NewPassword::parse("correct horse battery").unwrap(),
            organization: OrganizationName::parse("Acme").unwrap(),
        },
        None,
    )
    .await
    .unwrap();
    sqlx::query("UPDATE organizations SET plan_id = $2 WHERE id = $1")
        .bind(signed_up.organization_id)
        .bind(plan)
        .execute(&platform.db)
        .await
        .unwrap();
    Membership {
        organization_id: signed_up.organization_id,
        user_id: signed_up.user_id,
        role: Role::Owner,
    }
}
