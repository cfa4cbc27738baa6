//! The emails themselves: one plain-text email per event that concerns a customer, rendered from
//! the event alone (and, for a refund, what the order events said about the order). Rendering
//! is pure, so the same event always makes the same email. An order is named by the number the
//! customer quotes (`NB-7K3M9QX2`), or by its id for events of orders that have none.

use nubo_contracts::Money;
use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderLine};
use nubo_contracts::payments::PaymentRefunded;
use nubo_platform::uuid::Uuid;

use crate::domain::{Channel, Kind, Message};

/// What the order events told notifications about an order: who to write to about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownOrder {
    pub order_id: Uuid,
    /// Empty if the order's events had none.
    pub number: String,
    pub user_id: Uuid,
    pub email: String,
    pub total: Money,
}

/// How a customer knows the order: its number, or its id if it has none.
pub fn order_name(number: &str, order_id: Uuid) -> String {
    match number.trim() {
        "" => order_id.to_string(),
        number => number.to_owned(),
    }
}

const SIGNATURE: &str = "Your nubo shop";

pub fn order_confirmed(event: &OrderConfirmed) -> Message {
    let order = order_name(&event.number, event.order_id);
    let mut body = format!(
        "Hello,\n\n\
         thank you for your order. It is confirmed and we are getting it ready.\n\n\
         Order: {order}\n\n"
    );
    for line in &event.lines {
        body.push_str(&order_line(line));
        body.push('\n');
    }
    body.push_str(&format!(
        "\nTotal: {}\n\n{SIGNATURE}\n",
        format_money(&event.total)
    ));
    Message {
        channel: Channel::Email,
        kind: Kind::OrderConfirmed,
        order_id: event.order_id,
        user_id: event.user_id,
        to: event.email.clone(),
        subject: format!("Your order {order} is confirmed"),
        body,
    }
}

pub fn order_cancelled(event: &OrderCancelled) -> Message {
    let order = order_name(&event.number, event.order_id);
    let money = if event.refunded {
        format!(
            "The {} you paid goes back to your card; we will write again once it is refunded.",
            format_money(&event.total)
        )
    } else {
        "Nothing was charged to your card for it.".to_owned()
    };
    Message {
        channel: Channel::Email,
        kind: Kind::OrderCancelled,
        order_id: event.order_id,
        user_id: event.user_id,
        to: event.email.clone(),
        subject: format!("Your order {order} was cancelled"),
        body: format!(
            "Hello,\n\n\
             we are sorry: your order {order} was cancelled.\n\n\
             Why: {}\n\n\
             {money}\n\n\
             {SIGNATURE}\n",
            event.reason.trim()
        ),
    }
}

/// `order` is what the order events said about `event.payment_id`, which is the order id.
pub fn payment_refunded(event: &PaymentRefunded, order: &KnownOrder) -> Message {
    let name = order_name(&order.number, order.order_id);
    Message {
        channel: Channel::Email,
        kind: Kind::PaymentRefunded,
        order_id: order.order_id,
        user_id: order.user_id,
        to: order.email.clone(),
        subject: format!("Your refund for order {name}"),
        body: format!(
            "Hello,\n\n\
             we refunded {} to your card for order {name}.\n\
             Depending on your bank, it can take a few days to show on your statement.\n\n\
             {SIGNATURE}\n",
            format_money(&event.amount),
        ),
    }
}

fn order_line(line: &OrderLine) -> String {
    format!(
        "  {} x {} ({}) at {} = {}",
        line.quantity,
        line.name.trim(),
        line.sku,
        format_money(&line.unit_price),
        format_money(&line.line_total)
    )
}

/// `EUR 12.50`, `JPY 1200`, `KWD 1.250`: the currency code, then the amount in major units with
/// as many decimals as ISO 4217 gives the currency. The table below holds the currencies whose
/// minor unit is not the usual hundredth; every other code is shown with 2 decimals, which is
/// right for almost every currency in use (and for all the shop sells in).
pub fn format_money(money: &Money) -> String {
    let decimals = minor_unit_digits(&money.currency);
    let sign = if money.amount_minor < 0 { "-" } else { "" };
    let minor = money.amount_minor.unsigned_abs();
    if decimals == 0 {
        return format!("{} {sign}{minor}", money.currency);
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{} {sign}{}.{:0width$}",
        money.currency,
        minor / scale,
        minor % scale,
        width = decimals as usize
    )
}

/// Digits after the decimal point of `currency`'s major unit (ISO 4217 "minor unit").
fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount_minor: i64, currency: &str) -> Money {
        Money {
            amount_minor,
            currency: currency.to_owned(),
        }
    }

    #[test]
    fn money_reads_as_a_customer_expects() {
        for (amount, currency, shown) in [
            (1250, "EUR", "EUR 12.50"),
            (5, "USD", "USD 0.05"),
            (0, "EUR", "EUR 0.00"),
            (10_000_000_000, "GBP", "GBP 100000000.00"),
            (1200, "JPY", "JPY 1200"),
            (1250, "KWD", "KWD 1.250"),
            (7, "BHD", "BHD 0.007"),
            (-1250, "EUR", "EUR -12.50"),
            (i64::MIN, "EUR", "EUR -92233720368547758.08"),
        ] {
            assert_eq!(format_money(&money(amount, currency)), shown);
        }
    }

    fn confirmed(number: &str) -> OrderConfirmed {
        OrderConfirmed {
            order_id: Uuid::now_v7(),
            number: number.into(),
            user_id: Uuid::now_v7(),
            email: "alice@shop.test".into(),
            phone: None,
            lines: vec![OrderLine {
                sku: "TEA-GREEN".into(),
                name: "Green tea".into(),
                quantity: 2,
                unit_price: money(450, "EUR"),
                line_total: money(900, "EUR"),
            }],
            total: money(900, "EUR"),
        }
    }

    #[test]
    fn a_confirmed_order_lists_its_lines_and_total() {
        let email = order_confirmed(&confirmed("NB-7K3M9QX2"));
        assert_eq!(email.channel, Channel::Email);
        assert_eq!(email.subject, "Your order NB-7K3M9QX2 is confirmed");
        assert!(email.body.contains("Order: NB-7K3M9QX2\n"));
        assert!(
            email
                .body
                .contains("  2 x Green tea (TEA-GREEN) at EUR 4.50 = EUR 9.00\n")
        );
        assert!(email.body.contains("Total: EUR 9.00\n"));
    }

    #[test]
    fn an_order_without_a_number_is_named_by_its_id() {
        let event = confirmed("  ");
        let email = order_confirmed(&event);
        assert_eq!(
            email.subject,
            format!("Your order {} is confirmed", event.order_id)
        );
        assert!(email.body.contains(&format!("Order: {}\n", event.order_id)));
    }
}
