//! The values payments works with. Each type can only be built valid, and an authorization
//! request is parsed into them in one go, reporting every bad field at once. The card number
//! lives in [`CardNumber`] (shared with orders, which checks a card before a checkout starts),
//! which never prints, and is dropped once the provider has seen it.

use nubo_contracts::Money;
pub use nubo_contracts::card::{CardNumber, ValidCard};
use nubo_contracts::payments::AuthorizePayment;
use nubo_platform::chrono::NaiveDate;
use nubo_platform::error::FieldError;
use nubo_platform::uuid::Uuid;

/// An amount a card can be charged: 1 to 10 000 000 minor units of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount(Money);

impl Amount {
    pub const MAX_MINOR: i64 = 10_000_000;

    /// Every problem with `money`, keyed by field name below `amount`.
    pub fn parse(money: &Money) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(1..=Self::MAX_MINOR).contains(&money.amount_minor) {
            errors.push(field(
                "amount.amount_minor",
                format!("must be between 1 and {}", Self::MAX_MINOR),
            ));
        }
        if let Err(m) = Money::parse(1, &money.currency) {
            errors.push(field("amount.currency", m));
        }
        if errors.is_empty() {
            Ok(Self(money.clone()))
        } else {
            Err(errors)
        }
    }

    pub fn money(&self) -> &Money {
        &self.0
    }
}

/// An [`AuthorizePayment`] that passed every check.
#[derive(Clone, Debug)]
pub struct ValidAuthorization {
    pub id: Uuid,
    pub amount: Amount,
    pub card: ValidCard,
}

impl ValidAuthorization {
    pub fn parse(r: &AuthorizePayment, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let amount = Amount::parse(&r.amount);
        let card = ValidCard::parse(&r.card, today);
        match (amount, card) {
            (Ok(amount), Ok(card)) => Ok(Self {
                id: r.payment_id,
                amount,
                card,
            }),
            (amount, card) => Err(amount
                .err()
                .into_iter()
                .flatten()
                .chain(card.err().into_iter().flat_map(|bad| bad.errors))
                .collect()),
        }
    }
}

pub fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_bounds_and_a_currency() {
        let money = |amount_minor, currency: &str| Money {
            amount_minor,
            currency: currency.to_owned(),
        };
        assert!(Amount::parse(&money(1, "EUR")).is_ok());
        assert!(Amount::parse(&money(10_000_000, "EUR")).is_ok());
        for bad in [0, -5, 10_000_001] {
            assert_eq!(
                Amount::parse(&money(bad, "EUR")).unwrap_err()[0].field,
                "amount.amount_minor"
            );
        }
        assert_eq!(
            Amount::parse(&money(100, "eur")).unwrap_err()[0].field,
            "amount.currency"
        );
    }
}
