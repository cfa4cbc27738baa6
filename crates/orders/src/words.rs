//! What an order's customer reads about it: one sentence for where it is now, and whether it is
//! slow. Step names, saga states and services' errors stay in the admins' views (`state`,
//! `steps`); this is the only text the storefront shows about an order's progress.

use nubo_contracts::orders::OrderShipping;

use crate::domain::State;

/// The sentence for an order in `state` after `attempts` failed tries at its current step.
pub fn message(
    state: State,
    attempts: i32,
    shipping: &OrderShipping,
    cancel_reason: Option<&str>,
    refunded: bool,
) -> String {
    let slow = attempts > 0;
    match state {
        State::Placed if slow => "It is taking longer than usual to set your items aside. We keep \
                                  trying; you do not need to do anything."
            .to_owned(),
        State::Placed => "We are setting your items aside.".to_owned(),
        State::Reserved if slow => "Your bank is taking longer than usual to answer. We keep \
                                    trying, and you will not be charged twice."
            .to_owned(),
        State::Reserved => "We are confirming your payment with your bank.".to_owned(),
        State::Authorized => "Your payment is approved; we are confirming your order.".to_owned(),
        State::Confirmed | State::Captured | State::StockCommitted | State::Completed => {
            match &shipping.address {
                Some(a) => format!(
                    "Your order is confirmed and will be sent to {}, {}.",
                    a.name, a.city
                ),
                None => "Your order is confirmed: collect it at the shop.".to_owned(),
            }
        }
        State::Compensating => {
            "We are cancelling your order and giving back anything that was charged.".to_owned()
        }
        State::Cancelled => {
            let reason = cancel_reason.unwrap_or("the order could not be completed");
            let mut text = format!("Your order was cancelled: {reason}.");
            if refunded {
                text += " The money you paid was refunded.";
            }
            text
        }
    }
}

/// Whether the customer should hear that the order takes longer than usual.
pub fn slow(state: State, attempts: i32) -> bool {
    attempts > 0 && !state.is_final()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_contracts::Money;
    use nubo_contracts::orders::Address;

    fn collect() -> OrderShipping {
        OrderShipping {
            option: "collect".into(),
            name: "Collect".into(),
            price: Money {
                amount_minor: 0,
                currency: "EUR".into(),
            },
            address: None,
        }
    }

    #[test]
    fn customers_never_read_step_names_or_services() {
        let mut shipped = collect();
        shipped.address = Some(Address {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: String::new(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        });
        for state in State::ALL {
            for attempts in [0, 3] {
                let text = message(
                    state,
                    attempts,
                    &shipped,
                    Some("your card was declined"),
                    true,
                );
                for internal in ["_", "payments", "inventory", "503", "circuit", "saga"] {
                    assert!(!text.contains(internal), "{state:?}: {text}");
                }
            }
        }
        assert!(message(State::Completed, 0, &shipped, None, false).contains("Ada, Berlin"));
        assert!(message(State::Reserved, 2, &collect(), None, false).contains("longer than usual"));
        assert!(slow(State::Reserved, 1) && !slow(State::Cancelled, 1) && !slow(State::Placed, 0));
    }
}
