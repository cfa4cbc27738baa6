//! The text messages themselves: one short message when an order is confirmed and one when it is
//! cancelled, to the mobile number the customer gave at checkout (none if they gave none, and
//! none for a placed order or a refund, which the email covers). Like the emails, rendering is
//! pure: the same event always makes the same text.
//!
//! A text fits one SMS: at most [`MAX_CHARS`] characters. Everything around the cancellation
//! reason is fixed and short, so only the reason is cut, at a word, to what is left. The
//! messages themselves use only characters of the GSM 7-bit alphabet, where 160 is one SMS; a
//! reason in other scripts makes the provider send it in more than one part.

use nubo_contracts::orders::{OrderCancelled, OrderConfirmed};
use nubo_platform::uuid::Uuid;

use crate::domain::{Channel, Kind, Message};
use crate::emails::format_money;

/// The characters of one SMS in the GSM 7-bit alphabet.
pub const MAX_CHARS: usize = 160;

const SENDER: &str = "nubo shop";
/// Where a cut reason ends.
const CUT: &str = "...";

/// The text for a confirmed order, if the customer gave a mobile number.
pub fn order_confirmed(event: &OrderConfirmed) -> Option<Message> {
    let to = mobile(event.phone.as_deref())?;
    let body = format!(
        "{SENDER}: {} is confirmed, {}. Thank you! We're getting it ready.",
        order(&event.number),
        format_money(&event.total)
    );
    Some(text(
        Kind::OrderConfirmed,
        event.order_id,
        event.user_id,
        to,
        body,
    ))
}

/// The text for a cancelled order, if the customer gave a mobile number: why, in the shop's
/// words, and what happens to their money.
pub fn order_cancelled(event: &OrderCancelled) -> Option<Message> {
    let to = mobile(event.phone.as_deref())?;
    let head = format!("{SENDER}: {} was cancelled", order(&event.number));
    let money = if event.refunded {
        format!(
            "The {} you paid goes back to your card.",
            format_money(&event.total)
        )
    } else {
        "Nothing was charged.".to_owned()
    };
    let reason = one_line(&event.reason);
    let reason = reason
        .trim_end_matches(['.', '!', '?', ',', ';', ':'])
        .trim();
    let body = if reason.is_empty() {
        format!("{head}. {money}")
    } else {
        // "{head}: {reason}. {money}"
        let room = MAX_CHARS.saturating_sub(count(&head) + 2 + 2 + count(&money));
        format!("{head}: {}. {money}", cut(reason, room))
    };
    Some(text(
        Kind::OrderCancelled,
        event.order_id,
        event.user_id,
        to,
        body,
    ))
}

fn text(kind: Kind, order_id: Uuid, user_id: Uuid, to: &str, body: String) -> Message {
    Message {
        channel: Channel::Sms,
        kind,
        order_id,
        user_id,
        to: to.to_owned(),
        subject: String::new(),
        body,
    }
}

/// The number to text, if one was given. It is checked when sent: a number that is not one
/// makes a message that fails, which admins see, rather than a message that silently is not.
fn mobile(phone: Option<&str>) -> Option<&str> {
    phone.map(str::trim).filter(|p| !p.is_empty())
}

/// "order NB-7K3M9QX2", or "your order" for an order without a number: its id is no help in a
/// text.
fn order(number: &str) -> String {
    match number.trim() {
        "" => "your order".to_owned(),
        number => format!("order {number}"),
    }
}

/// Every run of white space (new lines included) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn count(text: &str) -> usize {
    text.chars().count()
}

/// `text` in at most `room` characters: whole, or cut after a word and ended with `...`.
fn cut(text: &str, room: usize) -> String {
    if count(text) <= room {
        return text.to_owned();
    }
    let keep = room.saturating_sub(CUT.len());
    let head: String = text.chars().take(keep).collect();
    // Back to the last word boundary, unless one word fills everything.
    let head = match head.rfind(' ') {
        Some(space) if text.chars().nth(keep) != Some(' ') && space > 0 => &head[..space],
        _ => head.as_str(),
    };
    format!("{}{CUT}", head.trim_end_matches([' ', ',', ';', ':', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_contracts::Money;

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".to_owned(),
        }
    }

    fn cancelled(reason: &str, refunded: bool) -> OrderCancelled {
        OrderCancelled {
            order_id: Uuid::now_v7(),
            number: "NB-7K3M9QX2".into(),
            user_id: Uuid::now_v7(),
            email: "bo@shop.test".into(),
            phone: Some("+4915123456789".into()),
            reason: reason.into(),
            refunded,
            total: eur(1250),
        }
    }

    #[test]
    fn a_confirmed_order_is_texted_in_one_short_message() {
        let event = OrderConfirmed {
            order_id: Uuid::now_v7(),
            number: "NB-7K3M9QX2".into(),
            user_id: Uuid::now_v7(),
            email: "bo@shop.test".into(),
            phone: Some(" +4915123456789 ".into()),
            lines: vec![],
            total: eur(1250),
        };
        let text = order_confirmed(&event).unwrap();
        assert_eq!(text.channel, Channel::Sms);
        assert_eq!(text.to, "+4915123456789");
        assert_eq!(text.subject, "");
        assert_eq!(
            text.body,
            "nubo shop: order NB-7K3M9QX2 is confirmed, EUR 12.50. Thank you! We're getting it \
             ready."
        );
        let unnumbered = OrderConfirmed {
            number: String::new(),
            ..event.clone()
        };
        assert!(
            order_confirmed(&unnumbered)
                .unwrap()
                .body
                .starts_with("nubo shop: your order is confirmed")
        );
        for phone in [None, Some(String::new()), Some("  ".to_owned())] {
            let event = OrderConfirmed {
                phone,
                ..event.clone()
            };
            assert_eq!(order_confirmed(&event), None);
        }
    }

    #[test]
    fn a_cancelled_order_is_texted_with_its_reason_and_money() {
        let text = order_cancelled(&cancelled("Blue mug is out of stock.", true)).unwrap();
        assert_eq!(
            text.body,
            "nubo shop: order NB-7K3M9QX2 was cancelled: Blue mug is out of stock. The EUR 12.50 \
             you paid goes back to your card."
        );
        let text = order_cancelled(&cancelled("Your card was\n declined", false)).unwrap();
        assert_eq!(
            text.body,
            "nubo shop: order NB-7K3M9QX2 was cancelled: Your card was declined. Nothing was \
             charged."
        );
        let text = order_cancelled(&cancelled("  ", false)).unwrap();
        assert_eq!(
            text.body,
            "nubo shop: order NB-7K3M9QX2 was cancelled. Nothing was charged."
        );
    }

    #[test]
    fn a_long_reason_is_cut_at_a_word_to_fit_one_message() {
        let reason = "We are very sorry, but the warehouse found the blue mug broken when packing \
                      your parcel, and no other blue mug is left in stock anywhere in Europe.";
        for refunded in [true, false] {
            let body = order_cancelled(&cancelled(reason, refunded)).unwrap().body;
            assert!(count(&body) <= MAX_CHARS, "{} chars: {body}", count(&body));
            assert!(
                body.contains("cancelled: We are very sorry, but the"),
                "{body}"
            );
            assert!(body.contains("... "), "{body}");
            assert!(!body.contains(" ..."), "{body}");
            assert!(
                body.ends_with("charged.") || body.ends_with("card."),
                "{body}"
            );
        }
        let word = "x".repeat(400);
        let body = order_cancelled(&cancelled(&word, true)).unwrap().body;
        assert!(count(&body) <= MAX_CHARS, "{body}");
        // Not the bytes but the characters count.
        let body = order_cancelled(&cancelled(&"Ü".repeat(400), true))
            .unwrap()
            .body;
        assert_eq!(count(&body), MAX_CHARS, "{body}");
    }
}
