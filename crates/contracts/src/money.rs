//! Money as integer minor units and an ISO 4217 currency code; never a float.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Cents, pence, ...: the smallest unit of `currency`.
    pub amount_minor: i64,
    /// ISO 4217 code, upper case: `EUR`, `USD`.
    pub currency: String,
}

impl Money {
    /// A valid amount: not negative, and a three-letter upper-case currency code.
    pub fn parse(amount_minor: i64, currency: &str) -> Result<Self, String> {
        if amount_minor < 0 {
            return Err("must not be negative".to_owned());
        }
        // 100 million in major units: more than any one price in a shop, far from i64's limits.
        if amount_minor > 10_000_000_000 {
            return Err("must be at most 100000000.00".to_owned());
        }
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(format!(
                "currency {currency:?} is not an ISO 4217 code like EUR"
            ));
        }
        Ok(Self {
            amount_minor,
            currency: currency.to_owned(),
        })
    }
}
