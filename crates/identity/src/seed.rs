//! Demo accounts, created only in an empty store: an admin and a customer whose passwords the
//! README and `nubo up` print.

use nubo_platform::Context;
use nubo_platform::config::Secret;

use crate::accounts::{self, SignupError};
use crate::domain::{Email, Password, Role};
use crate::store;

pub const DEMO_ACCOUNTS: &[(&str, &str, Role)] = &[
    ("admin@nubo.example", "nubo-admin-demo", Role::Admin),
    (
        "customer@nubo.example",
        "nubo-customer-demo",
        Role::Customer,
    ),
];

pub async fn demo_accounts(ctx: Context) -> anyhow::Result<()> {
    if store::count_users(&ctx.db).await? > 0 {
        return Ok(());
    }
    for (email, password, role) in DEMO_ACCOUNTS {
        let email = Email::parse(email).map_err(anyhow::Error::msg)?;
        let password = Password::parse(Secret::new(*password)).map_err(anyhow::Error::msg)?;
        match accounts::create(&ctx.db, &email, password, *role).await {
            // Another replica seeding at the same moment got there first.
            Ok(_) | Err(SignupError::EmailTaken) => {}
            Err(SignupError::Internal(e)) => return Err(e),
        }
    }
    tracing::info!(accounts = DEMO_ACCOUNTS.len(), "seeded demo accounts");
    Ok(())
}
