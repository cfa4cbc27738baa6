//! A card as payments charges it, checked in one place: orders checks the shopper's card before
//! a checkout changes anything, payments checks it again before the provider sees it. Each type
//! can only be built valid; the number never prints.

use nubo_platform::chrono::{Datelike, NaiveDate};
use nubo_platform::error::FieldError;

use crate::payments::Card;

/// A card number that passed the Luhn check. Its `Debug` shows the last four digits only, so a
/// stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// 12 to 19 digits passing the Luhn check; spaces and dashes between them are ignored.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::parse_sorted(raw).map_err(|(message, _)| message)
    }

    /// Like [`CardNumber::parse`], saying also whether the number is well formed (12 to 19
    /// digits) and only its check digit is wrong.
    fn parse_sorted(raw: &str) -> Result<Self, (String, bool)> {
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(("must contain digits only".to_owned(), false));
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(("must have 12 to 19 digits".to_owned(), false));
        }
        if !luhn(&digits) {
            return Err(("is not a valid card number (check digit)".to_owned(), true));
        }
        Ok(Self(digits))
    }

    /// The digits, for the provider and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// The scheme, from the number's leading digits.
    pub fn brand(&self) -> &'static str {
        let n = &self.0;
        let prefix = |len: usize| n[..len].parse::<u32>().unwrap_or(0);
        if n.starts_with('4') {
            "visa"
        } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
            "mastercard"
        } else if matches!(prefix(2), 34 | 37) {
            "amex"
        } else if n.starts_with("6011") || n.starts_with("65") {
            "discover"
        } else {
            "unknown"
        }
    }
}

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber(**** {})", self.last4())
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A card that can be charged today. The CVC is only ever handed to the provider.
#[derive(Clone)]
pub struct ValidCard {
    pub number: CardNumber,
    pub expiry_month: u32,
    pub expiry_year: i32,
    cvc: String,
}

impl ValidCard {
    pub fn cvc(&self) -> &str {
        &self.cvc
    }
}

impl std::fmt::Debug for ValidCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidCard")
            .field("number", &self.number)
            .field("expiry_month", &self.expiry_month)
            .field("expiry_year", &self.expiry_year)
            .finish_non_exhaustive()
    }
}

/// Why a card cannot pay, keyed by field name below `card`.
#[derive(Clone, Debug, PartialEq)]
pub struct BadCard {
    pub errors: Vec<FieldError>,
    /// Every field is well formed, and the card itself is no good (its check digit is wrong,
    /// it has expired, or it expires too far ahead): what a bank would refuse, not a request
    /// that breaks the API's contract.
    pub refused: bool,
}

impl ValidCard {
    /// The card, or every problem with it as of `today`: first what is malformed (all of it at
    /// once), and only for a well-formed card why it is refused.
    pub fn parse(card: &Card, today: NaiveDate) -> Result<Self, BadCard> {
        let (mut malformed, mut refused) = (Vec::new(), Vec::new());
        let number = CardNumber::parse_sorted(&card.number).map_err(|(m, only_check_digit)| {
            let list = if only_check_digit {
                &mut refused
            } else {
                &mut malformed
            };
            list.push(field("card.number", m));
        });
        if !(1..=12).contains(&card.expiry_month) {
            malformed.push(field("card.expiry_month", "must be between 1 and 12"));
        } else if !(1000..=9999).contains(&card.expiry_year) {
            malformed.push(field("card.expiry_year", "must be a four-digit year"));
        } else if (card.expiry_year, card.expiry_month) < (today.year(), today.month()) {
            // A card is good through the last day of its expiry month.
            refused.push(field("card.expiry_year", "the card has expired"));
        } else if card.expiry_year > today.year() + 20 {
            refused.push(field("card.expiry_year", "is too far in the future"));
        }
        let cvc_ok =
            (3..=4).contains(&card.cvc.len()) && card.cvc.chars().all(|c| c.is_ascii_digit());
        if !cvc_ok {
            malformed.push(field("card.cvc", "must be 3 or 4 digits"));
        }
        match number {
            _ if !malformed.is_empty() => Err(BadCard {
                errors: malformed,
                refused: false,
            }),
            Ok(number) if refused.is_empty() => Ok(Self {
                number,
                expiry_month: card.expiry_month,
                expiry_year: card.expiry_year,
                cvc: card.cvc.clone(),
            }),
            _ => Err(BadCard {
                errors: refused,
                refused: true,
            }),
        }
    }
}

fn field(name: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 6, 15).unwrap()
    }

    fn card(number: &str, month: u32, year: i32, cvc: &str) -> Card {
        Card {
            number: number.to_owned(),
            expiry_month: month,
            expiry_year: year,
            cvc: cvc.to_owned(),
        }
    }

    fn fields(c: Card) -> Vec<String> {
        ValidCard::parse(&c, today())
            .unwrap_err()
            .errors
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_good_card_keeps_its_last_four_and_brand() {
        let valid =
            ValidCard::parse(&card("4242 4242 4242 4242", 6, 2027, "123"), today()).unwrap();
        assert_eq!(valid.number.last4(), "4242");
        assert_eq!(valid.number.brand(), "visa");
        for (number, brand) in [
            ("5555555555554444", "mastercard"),
            ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"),
            ("6011111111111117", "discover"),
        ] {
            assert_eq!(
                CardNumber::parse(number).unwrap().brand(),
                brand,
                "{number}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_number_or_the_cvc() {
        let valid = ValidCard::parse(&card("4242424242424242", 1, 2030, "987"), today()).unwrap();
        let shown = format!("{valid:?} {:?}", card("4242424242424242", 1, 2030, "987"));
        assert!(!shown.contains("424242424242"), "{shown}");
        assert!(!shown.contains("987"), "{shown}");
        assert!(shown.contains("4242"), "{shown}");
    }

    #[test]
    fn every_malformed_card_field_is_reported_at_once() {
        assert_eq!(
            fields(card("42x2424242424242", 13, 2030, "12")),
            ["card.number", "card.expiry_month", "card.cvc"]
        );
        // A wrong check digit waits until the rest is well formed: it is a refusal.
        assert_eq!(
            fields(card("4242424242424241", 13, 2030, "12")),
            ["card.expiry_month", "card.cvc"]
        );
        assert_eq!(fields(card("42424242", 1, 2030, "123")), ["card.number"]);
        assert_eq!(
            fields(card("4242x42424242424", 1, 2030, "123")),
            ["card.number"]
        );
        assert_eq!(
            fields(card("4242424242424242", 5, 2027, "123")),
            ["card.expiry_year"]
        );
        assert_eq!(
            fields(card("4242424242424242", 1, 2030, "12345")),
            ["card.cvc"]
        );
    }

    #[test]
    fn a_well_formed_card_the_bank_would_refuse_is_a_refusal() {
        for (bad, field) in [
            (card("4242424242424241", 1, 2030, "123"), "card.number"),
            (card("4242424242424242", 5, 2027, "123"), "card.expiry_year"),
            (card("4242424242424242", 5, 2048, "123"), "card.expiry_year"),
        ] {
            let refusal = ValidCard::parse(&bad, today()).unwrap_err();
            assert!(refusal.refused, "{field}");
            assert_eq!(refusal.errors[0].field, field);
        }
        let malformed = ValidCard::parse(&card("4242", 5, 2048, "123"), today()).unwrap_err();
        assert!(!malformed.refused);
    }
}
