//! How an order reaches its customer: the contact they give (an email address, a mobile number
//! for text messages), the shipping options and their cost, the countries the shop delivers to,
//! and the address, each checked so a bad field is named before anything is ordered.

use nubo_contracts::Money;
use nubo_contracts::orders::{
    Address, Contact, Country, OrderShipping, Shipping, ShippingOption, ShippingOptions,
};
use nubo_platform::error::FieldError;

/// A shipping option: id, name, days in words, price and the items' total from which it is
/// free (in minor units).
struct Offer {
    id: &'static str,
    name: &'static str,
    days: &'static str,
    price_minor: i64,
    free_over_minor: Option<i64>,
}

const OPTIONS: &[Offer] = &[
    Offer {
        id: "standard",
        name: "Standard delivery",
        days: "3–5 working days",
        price_minor: 490,
        free_over_minor: Some(5_000),
    },
    Offer {
        id: "express",
        name: "Express delivery",
        days: "1–2 working days",
        price_minor: 990,
        free_over_minor: None,
    },
];

/// What an order without an address is: picked up at the shop, free.
pub const COLLECT: &str = "collect";
const COLLECT_NAME: &str = "Collect at the shop";

/// The countries the shop delivers to, with the form of their postal codes: `9` a digit, `A` a
/// letter, `?` a letter or digit, and a space that may also be left out; `None` accepts 2 to 10
/// letters, digits, spaces and dashes.
const COUNTRIES: &[(&str, &str, Option<&[&str]>)] = &[
    ("AT", "Austria", Some(&["9999"])),
    ("BE", "Belgium", Some(&["9999"])),
    ("CH", "Switzerland", Some(&["9999"])),
    ("DE", "Germany", Some(&["99999"])),
    ("DK", "Denmark", Some(&["9999"])),
    ("ES", "Spain", Some(&["99999"])),
    ("FI", "Finland", Some(&["99999"])),
    ("FR", "France", Some(&["99999"])),
    ("GB", "United Kingdom", None),
    ("IE", "Ireland", Some(&["A99 ????"])),
    ("IT", "Italy", Some(&["99999"])),
    ("LU", "Luxembourg", Some(&["9999"])),
    ("NL", "Netherlands", Some(&["9999 AA"])),
    ("NO", "Norway", Some(&["9999"])),
    ("PL", "Poland", Some(&["99-999"])),
    ("PT", "Portugal", Some(&["9999-999"])),
    ("SE", "Sweden", Some(&["999 99"])),
    ("US", "United States", Some(&["99999", "99999-9999"])),
];

/// The name of a shipping option by its id (`collect` included).
pub fn name(id: &str) -> &'static str {
    OPTIONS
        .iter()
        .find(|o| o.id == id)
        .map_or(COLLECT_NAME, |o| o.name)
}

/// The options as the API lists them, priced in `currency`.
pub fn options(currency: &str) -> ShippingOptions {
    ShippingOptions {
        options: OPTIONS
            .iter()
            .map(|o| ShippingOption {
                id: o.id.to_owned(),
                name: o.name.to_owned(),
                days: o.days.to_owned(),
                price: money(o.price_minor, currency),
                free_over: o.free_over_minor.map(|m| money(m, currency)),
            })
            .collect(),
        countries: COUNTRIES
            .iter()
            .map(|(code, name, _)| Country {
                code: (*code).to_owned(),
                name: (*name).to_owned(),
            })
            .collect(),
    }
}

/// The contact and shipping a checkout asked for, checked and priced for `items_total`; the
/// account's email stands in for a missing contact, and a missing address means collecting.
pub fn check(
    contact: Option<Contact>,
    shipping: Option<Shipping>,
    account_email: &str,
    items_total: &Money,
) -> Result<(Contact, OrderShipping), Vec<FieldError>> {
    let mut errors = Vec::new();
    let contact = match contact {
        None => Contact {
            email: account_email.to_owned(),
            phone: None,
        },
        Some(c) => Contact {
            email: email(&c.email, &mut errors),
            phone: c.phone.as_deref().and_then(|p| phone(p, &mut errors)),
        },
    };
    let shipping = match shipping {
        None => OrderShipping {
            option: COLLECT.to_owned(),
            name: COLLECT_NAME.to_owned(),
            price: money(0, &items_total.currency),
            address: None,
        },
        Some(s) => {
            let address = address(s.address, &mut errors);
            match OPTIONS.iter().find(|o| o.id == s.option) {
                Some(o) => OrderShipping {
                    option: o.id.to_owned(),
                    name: o.name.to_owned(),
                    price: money(cost(o, items_total.amount_minor), &items_total.currency),
                    address: Some(address),
                },
                None => {
                    errors.push(field(
                        "shipping.option",
                        "choose standard or express delivery",
                    ));
                    return Err(errors);
                }
            }
        }
    };
    if errors.is_empty() {
        Ok((contact, shipping))
    } else {
        Err(errors)
    }
}

fn cost(option: &Offer, items_minor: i64) -> i64 {
    match option.free_over_minor {
        Some(free) if items_minor >= free => 0,
        _ => option.price_minor,
    }
}

fn money(amount_minor: i64, currency: &str) -> Money {
    Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

fn email(raw: &str, errors: &mut Vec<FieldError>) -> String {
    let email = raw.trim();
    let well_formed = raw.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !well_formed {
        errors.push(field(
            "contact.email",
            "enter an email address like name@example.com",
        ));
    }
    email.to_owned()
}

/// A mobile number in international form: `+`, then 7 to 15 digits, the first not 0.
fn phone(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    if kept.is_empty() {
        return None;
    }
    let digits = kept.strip_prefix('+').unwrap_or("");
    let ok = raw.chars().count() <= 32
        && (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Some(kept)
    } else {
        errors.push(field(
            "contact.phone",
            "enter a mobile number with its country code, like +49 151 23456789, or leave it empty",
        ));
        None
    }
}

fn address(raw: Address, errors: &mut Vec<FieldError>) -> Address {
    // Lengths count as sent too: what the schema promises a client.
    let mut text = |name: &str, value: &str, min: usize, max: usize, what: &str| {
        let sent = value.chars().count();
        let value = value.trim();
        let n = value.chars().count();
        if n < min || n > max || sent > max || value.chars().any(char::is_control) {
            let message = if min > 0 && n == 0 {
                format!("enter {what}")
            } else {
                format!("{what} may have at most {max} characters")
            };
            errors.push(field(&format!("shipping.address.{name}"), &message));
        }
        value.to_owned()
    };
    let name = text("name", &raw.name, 1, 100, "the name of who receives it");
    let line1 = text("line1", &raw.line1, 1, 200, "the street and number");
    let line2 = text("line2", &raw.line2, 0, 200, "the second address line");
    let city = text("city", &raw.city, 1, 100, "the town or city");
    let country = raw.country.trim().to_ascii_uppercase();
    let postal_code = raw.postal_code.trim().to_ascii_uppercase();
    let known = COUNTRIES
        .iter()
        .find(|(code, _, _)| *code == country && raw.country.len() == 2);
    match known {
        _ if raw.postal_code.chars().count() > 12 => errors.push(field(
            "shipping.address.postal_code",
            "a postal code has at most 12 characters",
        )),
        None => errors.push(field(
            "shipping.address.country",
            "choose one of the countries we deliver to",
        )),
        Some((_, name, forms)) if !postal_ok(&postal_code, *forms) => errors.push(field(
            "shipping.address.postal_code",
            &format!("this is not a postal code of {name}"),
        )),
        Some(_) => {}
    }
    Address {
        name,
        line1,
        line2,
        city,
        postal_code,
        country,
    }
}

fn postal_ok(code: &str, forms: Option<&[&str]>) -> bool {
    let Some(forms) = forms else {
        return (2..=10).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
    };
    forms
        .iter()
        .any(|form| fits(code, form) || fits(code, &form.replace(' ', "")))
}

fn fits(code: &str, form: &str) -> bool {
    code.len() == form.len()
        && code.bytes().zip(form.bytes()).all(|(c, f)| match f {
            b'9' => c.is_ascii_digit(),
            b'A' => c.is_ascii_uppercase(),
            b'?' => c.is_ascii_uppercase() || c.is_ascii_digit(),
            other => c == other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(m: i64) -> Money {
        money(m, "EUR")
    }

    fn home(country: &str, postal_code: &str) -> Address {
        Address {
            name: "Ada Lovelace".into(),
            line1: "Unter den Linden 1".into(),
            line2: String::new(),
            city: "Berlin".into(),
            postal_code: postal_code.into(),
            country: country.into(),
        }
    }

    fn ship(option: &str, address: Address) -> Option<Shipping> {
        Some(Shipping {
            option: option.into(),
            address,
        })
    }

    #[test]
    fn standard_delivery_is_free_from_fifty_euros_and_express_never() {
        let (_, s) = check(
            None,
            ship("standard", home("DE", "10115")),
            "a@b.de",
            &eur(4_999),
        )
        .unwrap();
        assert_eq!(s.price, eur(490));
        let (_, s) = check(
            None,
            ship("standard", home("DE", "10115")),
            "a@b.de",
            &eur(5_000),
        )
        .unwrap();
        assert_eq!(s.price, eur(0));
        let (_, s) = check(
            None,
            ship("express", home("de", " 10115 ")),
            "a@b.de",
            &eur(9_000),
        )
        .unwrap();
        assert_eq!(
            (s.price, s.address.unwrap().country),
            (eur(990), "DE".into())
        );
        let (c, s) = check(None, None, "a@b.de", &eur(100)).unwrap();
        assert_eq!((c.email.as_str(), s.option.as_str()), ("a@b.de", COLLECT));
    }

    #[test]
    fn postal_codes_take_their_countrys_form() {
        for (country, code) in [
            ("NL", "1012 AB"),
            ("NL", "1012AB"),
            ("US", "94105-1234"),
            ("GB", "SW1A 1AA"),
            ("PL", "00-950"),
            ("IE", "D02 X285"),
        ] {
            assert!(
                check(
                    None,
                    ship("standard", home(country, code)),
                    "a@b.de",
                    &eur(1)
                )
                .is_ok(),
                "{country} {code}"
            );
        }
        for (country, code) in [
            ("DE", "1011"),
            ("NL", "AB 1012"),
            ("FR", "7500A"),
            ("ZZ", "12345"),
        ] {
            assert!(
                check(
                    None,
                    ship("standard", home(country, code)),
                    "a@b.de",
                    &eur(1)
                )
                .is_err(),
                "{country} {code}"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = home("DE", "10115");
        bad.name = " ".into();
        bad.city = "x".repeat(101);
        let contact = Contact {
            email: "not an email".into(),
            phone: Some("0151 2345678".into()),
        };
        let errors = check(Some(contact), ship("standard", bad), "a@b.de", &eur(1)).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "contact.email",
                "contact.phone",
                "shipping.address.name",
                "shipping.address.city"
            ]
        );
        let errors =
            check(None, ship("drone", home("DE", "10115")), "a@b.de", &eur(1)).unwrap_err();
        assert_eq!(errors[0].field, "shipping.option");
    }

    #[test]
    fn phone_numbers_are_kept_in_international_form() {
        let contact = Contact {
            email: "a@b.de".into(),
            phone: Some("+49 (151) 234-567.89".into()),
        };
        let (c, _) = check(Some(contact), None, "x@y.de", &eur(1)).unwrap();
        assert_eq!(c.phone.as_deref(), Some("+4915123456789"));
        let blank = Contact {
            email: "a@b.de".into(),
            phone: Some("  ".into()),
        };
        assert_eq!(
            check(Some(blank), None, "x@y.de", &eur(1)).unwrap().0.phone,
            None
        );
    }
}
