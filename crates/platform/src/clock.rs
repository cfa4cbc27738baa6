//! Time as the platform hands it out: UTC, truncated to microseconds, the precision PostgreSQL
//! keeps, so a timestamp a service returns is the one it later reads back, in either mode.

use chrono::{DateTime, SubsecRound, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
