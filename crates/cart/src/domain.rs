//! What a cart line may hold, and how a cart is priced from the catalog's current products.

use std::collections::BTreeMap;

use nubo_contracts::Money;
use nubo_contracts::cart::{CartLine, CartView, MAX_QUANTITY};
use nubo_platform::uuid::Uuid;
use serde::Deserialize;

/// A quantity a line may be set to or grow by: 1 to [`MAX_QUANTITY`].
pub fn quantity(raw: i64) -> Result<i64, String> {
    if (1..=MAX_QUANTITY).contains(&raw) {
        Ok(raw)
    } else {
        Err(format!("must be from 1 to {MAX_QUANTITY}"))
    }
}

/// What the cart needs of a catalog product.
#[derive(Clone, Debug, Deserialize)]
pub struct Priced {
    pub sku: String,
    pub name: String,
    pub price: Money,
}

/// The stored lines (SKU to quantity) priced with `products` (SKU to product, absent when the
/// catalog no longer has it). Lines whose quantity is not positive are not shown: they are the
/// trace of an add that was undone.
pub fn price(
    user_id: Uuid,
    stored: &BTreeMap<String, i64>,
    products: &BTreeMap<String, Priced>,
    empty_currency: &str,
) -> Result<CartView, String> {
    let mut lines = Vec::new();
    let mut total: Option<Money> = None;
    for (sku, &quantity) in stored.iter().filter(|(_, q)| **q > 0) {
        let Some(product) = products.get(sku) else {
            lines.push(CartLine {
                sku: sku.clone(),
                quantity,
                available: false,
                name: None,
                unit_price: None,
                line_total: None,
            });
            continue;
        };
        let line_total = Money {
            amount_minor: product
                .price
                .amount_minor
                .checked_mul(quantity)
                .ok_or("a line total overflows")?,
            currency: product.price.currency.clone(),
        };
        let sum = total.get_or_insert_with(|| Money {
            amount_minor: 0,
            currency: line_total.currency.clone(),
        });
        if sum.currency != line_total.currency {
            return Err(format!(
                "the cart mixes currencies {} and {}",
                sum.currency, line_total.currency
            ));
        }
        sum.amount_minor = sum
            .amount_minor
            .checked_add(line_total.amount_minor)
            .ok_or("the cart total overflows")?;
        lines.push(CartLine {
            sku: sku.clone(),
            quantity,
            available: true,
            name: Some(product.name.clone()),
            unit_price: Some(product.price.clone()),
            line_total: Some(line_total),
        });
    }
    Ok(CartView {
        user_id,
        lines,
        total: total.unwrap_or_else(|| Money {
            amount_minor: 0,
            currency: empty_currency.to_owned(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn quantities_are_one_to_a_thousand() {
        assert!(quantity(1).is_ok() && quantity(1000).is_ok());
        for bad in [0, -1, 1001] {
            assert!(quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cart_is_priced_and_gone_products_count_for_nothing() {
        let user = Uuid::nil();
        let stored = BTreeMap::from([
            ("TEA-1".to_owned(), 2),
            ("TEA-2".to_owned(), 1),
            ("GONE-1".to_owned(), 4),
            ("UNDONE".to_owned(), 0),
        ]);
        let products = BTreeMap::from([
            (
                "TEA-1".to_owned(),
                Priced {
                    sku: "TEA-1".into(),
                    name: "Green".into(),
                    price: eur(450),
                },
            ),
            (
                "TEA-2".to_owned(),
                Priced {
                    sku: "TEA-2".into(),
                    name: "Black".into(),
                    price: eur(300),
                },
            ),
        ]);
        let cart = price(user, &stored, &products, "EUR").unwrap();
        assert_eq!(cart.total, eur(1200));
        let skus: Vec<_> = cart.lines.iter().map(|l| l.sku.as_str()).collect();
        assert_eq!(skus, ["GONE-1", "TEA-1", "TEA-2"]);
        assert!(!cart.lines[0].available && cart.lines[0].line_total.is_none());
        assert_eq!(cart.lines[1].line_total, Some(eur(900)));

        let empty = price(user, &BTreeMap::new(), &products, "USD").unwrap();
        assert!(empty.lines.is_empty());
        assert_eq!(empty.total.currency, "USD");
    }
}
