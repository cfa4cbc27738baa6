//! The values orders works with: the saga's states, an idempotency key that can only be built
//! valid, and a priced cart turned into order lines (or the reason it cannot be bought).

use nubo_contracts::Money;
use nubo_contracts::card::ValidCard;
use nubo_contracts::cart::CartView;
use nubo_contracts::orders::{MAX_IDEMPOTENCY_KEY, OrderLine, OrderStatus};
use nubo_platform::error::FieldError;
use nubo_platform::uuid::Uuid;

/// Where an order's checkout saga is. The happy path runs top to bottom; any failure before
/// the money is taken, and any refusal after it, turns to `Compensating`, which undoes what was
/// done and ends `Cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The cart is priced into the order; next: reserve the stock.
    Placed,
    /// Stock is held; next: authorize the card.
    Reserved,
    /// The money is held on the card; next: confirm the order.
    Authorized,
    /// The order is accepted (`OrderConfirmed`); next: capture the money.
    Confirmed,
    /// The money is taken; next: commit the stock.
    Captured,
    /// The units left the shop; next: clear the cart.
    StockCommitted,
    /// Done.
    Completed,
    /// Undoing: void or refund the payment, release the stock, then `Cancelled`.
    Compensating,
    /// Done, undone (`OrderCancelled`).
    Cancelled,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Placed,
        State::Reserved,
        State::Authorized,
        State::Confirmed,
        State::Captured,
        State::StockCommitted,
        State::Completed,
        State::Compensating,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::Reserved => "reserved",
            Self::Authorized => "authorized",
            Self::Confirmed => "confirmed",
            Self::Captured => "captured",
            Self::StockCommitted => "stock_committed",
            Self::Completed => "completed",
            Self::Compensating => "compensating",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// Whether the order was accepted: from here on a failure is refunded, not just voided, and
    /// only an admin turns it back.
    pub fn is_confirmed(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::Captured | Self::StockCommitted | Self::Completed
        )
    }

    /// What the customer sees.
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Placed | Self::Reserved | Self::Authorized => OrderStatus::Pending,
            Self::Compensating => OrderStatus::Cancelling,
            Self::Confirmed | Self::Captured | Self::StockCommitted | Self::Completed => {
                OrderStatus::Confirmed
            }
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }

    /// The saga states an order with `status` can be in (for listing filters).
    pub fn with_status(status: OrderStatus) -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.status() == status)
            .map(State::as_str)
            .collect()
    }
}

/// A client's `Idempotency-Key`: 1 to 200 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Err(
                "the Idempotency-Key header is required: send a new random value (a UUID) \
                        for each checkout, and the same one when you retry it"
                    .to_owned(),
            );
        };
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY {
            return Err(format!(
                "the Idempotency-Key header must have 1 to {MAX_IDEMPOTENCY_KEY} characters"
            ));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the Idempotency-Key header may only hold visible ASCII characters".to_owned(),
            );
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What tells two checkout requests under one key apart without storing the card: its last
/// four digits and expiry.
pub fn fingerprint(card: &ValidCard) -> String {
    format!(
        "{}:{:02}/{}",
        card.number.last4(),
        card.expiry_month,
        card.expiry_year
    )
}

/// The largest total one card payment takes (payments' limit), in minor units.
pub const MAX_TOTAL_MINOR: i64 = 10_000_000;

/// Why a cart cannot be checked out; each is the customer's to fix.
#[derive(Debug, PartialEq)]
pub enum Unbuyable {
    Empty,
    Unavailable(Vec<FieldError>),
    TooExpensive(Money),
    MixedCurrencies,
}

/// The cart's lines as order lines and its total, priced as the catalog has them now.
pub fn price(cart: &CartView) -> Result<(Vec<OrderLine>, Money), Unbuyable> {
    if cart.lines.is_empty() {
        return Err(Unbuyable::Empty);
    }
    let unavailable: Vec<FieldError> = cart
        .lines
        .iter()
        .filter(|l| !l.available || l.unit_price.is_none() || l.name.is_none())
        .map(|l| FieldError {
            field: format!("cart.lines.{}", l.sku),
            message: format!("{} is no longer sold; remove it from your cart", l.sku),
        })
        .collect();
    if !unavailable.is_empty() {
        return Err(Unbuyable::Unavailable(unavailable));
    }
    let mut lines = Vec::with_capacity(cart.lines.len());
    let mut total = 0i64;
    for line in &cart.lines {
        let (Some(name), Some(unit_price)) = (&line.name, &line.unit_price) else {
            unreachable!("unavailable lines were refused above");
        };
        if unit_price.currency != cart.total.currency {
            return Err(Unbuyable::MixedCurrencies);
        }
        let line_total = unit_price
            .amount_minor
            .checked_mul(line.quantity)
            .filter(|t| *t <= MAX_TOTAL_MINOR)
            .ok_or_else(|| Unbuyable::TooExpensive(cart.total.clone()))?;
        total += line_total;
        lines.push(OrderLine {
            sku: line.sku.clone(),
            name: name.clone(),
            quantity: line.quantity,
            unit_price: unit_price.clone(),
            line_total: Money {
                amount_minor: line_total,
                currency: unit_price.currency.clone(),
            },
        });
    }
    let total = Money {
        amount_minor: total,
        currency: cart.total.currency.clone(),
    };
    if total.amount_minor > MAX_TOTAL_MINOR {
        return Err(Unbuyable::TooExpensive(total));
    }
    if total.amount_minor < 1 {
        return Err(Unbuyable::Empty);
    }
    Ok((lines, total))
}

/// Crockford's base 32: digits and letters without I, L, O and U, so a number read aloud or
/// typed by hand is not misread.
const NUMBER_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new order number customers can quote: `NB-` and 8 characters holding 40 random bits. It
/// is unique because the table says so: a clash (rare) draws another.
pub fn order_number() -> String {
    let random = Uuid::new_v4();
    let bits = random
        .as_bytes()
        .iter()
        .take(5)
        .fold(0u64, |n, b| (n << 8) | u64::from(*b));
    let code: String = (0..8)
        .rev()
        .map(|i| char::from(NUMBER_ALPHABET[((bits >> (i * 5)) & 31) as usize]))
        .collect();
    format!("NB-{code}")
}

/// Whether `raw` has the form of an order number (not whether such an order exists).
pub fn is_order_number(raw: &str) -> bool {
    raw.strip_prefix("NB-")
        .is_some_and(|code| code.len() == 8 && code.bytes().all(|b| NUMBER_ALPHABET.contains(&b)))
}

/// `EUR 12.50`: money in words for reasons the customer reads.
pub fn show(money: &Money) -> String {
    format!(
        "{} {}.{:02}",
        money.currency,
        money.amount_minor / 100,
        money.amount_minor % 100
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_contracts::cart::CartLine;

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    fn line(sku: &str, quantity: i64, price: Option<i64>) -> CartLine {
        CartLine {
            sku: sku.into(),
            quantity,
            available: price.is_some(),
            name: price.map(|_| format!("{sku} tea")),
            unit_price: price.map(eur),
            line_total: price.map(|p| eur(p * quantity)),
        }
    }

    fn cart(lines: Vec<CartLine>) -> CartView {
        let total = lines
            .iter()
            .filter_map(|l| l.line_total.as_ref())
            .map(|m| m.amount_minor)
            .sum();
        CartView {
            user_id: Uuid::nil(),
            lines,
            total: eur(total),
        }
    }

    #[test]
    fn states_round_trip_and_map_to_what_customers_see() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::Compensating.status(), OrderStatus::Cancelling);
        assert_eq!(State::Captured.status(), OrderStatus::Confirmed);
        assert_eq!(
            State::with_status(OrderStatus::Cancelled),
            vec!["cancelled"]
        );
    }

    #[test]
    fn a_cart_is_priced_line_by_line() {
        let (lines, total) =
            price(&cart(vec![line("A", 2, Some(250)), line("B", 1, Some(99))])).unwrap();
        assert_eq!(total, eur(599));
        assert_eq!(lines[0].line_total, eur(500));
        assert_eq!(lines[1].name, "B tea");
    }

    #[test]
    fn carts_that_cannot_be_bought_say_why() {
        assert_eq!(price(&cart(vec![])), Err(Unbuyable::Empty));
        let Err(Unbuyable::Unavailable(errors)) =
            price(&cart(vec![line("A", 1, Some(100)), line("GONE", 1, None)]))
        else {
            panic!("an unavailable line must be refused");
        };
        assert_eq!(errors[0].field, "cart.lines.GONE");
        assert!(matches!(
            price(&cart(vec![line("A", 1000, Some(9_999_999))])),
            Err(Unbuyable::TooExpensive(_))
        ));
    }

    #[test]
    fn order_numbers_are_short_and_unambiguous() {
        let numbers: std::collections::HashSet<String> =
            (0..1000).map(|_| order_number()).collect();
        assert_eq!(numbers.len(), 1000);
        for n in &numbers {
            assert!(is_order_number(n), "{n}");
            assert_eq!(n.len(), 11);
        }
        assert!(
            !is_order_number("NB-0000000I") && !is_order_number("NB-123") && !is_order_number("x")
        );
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(IdempotencyKey::parse(Some("3f0c8a7e-checkout-1")).is_ok());
        for bad in [None, Some(""), Some("has space"), Some("tab\t")] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(Some(&"k".repeat(201))).is_err());
    }

    #[test]
    fn a_fingerprint_keeps_no_more_than_payments_stores() {
        let card = nubo_contracts::payments::Card {
            number: "4242 4242 4242 4242".into(),
            expiry_month: 3,
            expiry_year: 2030,
            cvc: "123".into(),
        };
        let today = nubo_platform::chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let card = ValidCard::parse(&card, today).unwrap();
        assert_eq!(fingerprint(&card), "4242:03/2030");
        assert_eq!(show(&eur(1250)), "EUR 12.50");
    }
}
