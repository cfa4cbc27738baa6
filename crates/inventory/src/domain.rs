//! The values inventory works with. Each type can only be built valid, and a request is parsed
//! into them in one go, reporting every bad field at once.

pub use nubo_contracts::Sku;
use nubo_contracts::inventory::{ReleaseStock, ReserveStock, StockLine};
use nubo_platform::chrono::TimeDelta;
use nubo_platform::error::FieldError;
use nubo_platform::uuid::Uuid;

/// How many units one line of a reservation holds: 1 to 1000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 1000;

    pub fn parse(raw: i64) -> Result<Self, String> {
        if (1..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(format!("must be between 1 and {}", Self::MAX))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Units physically in stock, as an admin counts them: 0 to 1 000 000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnHand(i64);

impl OnHand {
    pub const MAX: i64 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, String> {
        if (0..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(format!("must be between 0 and {}", Self::MAX))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Why a reservation was released: 1 to 200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if (1..=200).contains(&trimmed.chars().count()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err("must be 1 to 200 characters".to_owned())
        }
    }

    pub fn expired() -> Self {
        Self(nubo_contracts::inventory::EXPIRED.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<ReleaseStock> for Reason {
    type Error = Vec<FieldError>;

    fn try_from(r: ReleaseStock) -> Result<Self, Self::Error> {
        Self::parse(&r.reason).map_err(|m| vec![field("reason", m)])
    }
}

/// One line of a reservation, with where it stood in the request (for error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub index: usize,
    pub sku: Sku,
    pub quantity: Quantity,
}

/// A [`ReserveStock`] that passed every check. Lines are sorted by SKU, so concurrent
/// reservations lock stock rows in the same order and cannot deadlock.
#[derive(Clone, Debug)]
pub struct ValidReservation {
    pub id: Uuid,
    pub lines: Vec<Line>,
    pub ttl: TimeDelta,
}

impl ValidReservation {
    pub const MAX_TTL_SECS: i64 = 3600;
    pub const MAX_LINES: usize = 100;

    /// The lines as they are stored and compared: sorted by SKU.
    pub fn stock_lines(&self) -> Vec<StockLine> {
        self.lines
            .iter()
            .map(|l| StockLine {
                sku: l.sku.as_str().to_owned(),
                quantity: l.quantity.get(),
            })
            .collect()
    }
}

impl TryFrom<ReserveStock> for ValidReservation {
    type Error = Vec<FieldError>;

    fn try_from(r: ReserveStock) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        if r.lines.is_empty() {
            errors.push(field("lines", "must have at least one line"));
        }
        if r.lines.len() > Self::MAX_LINES {
            errors.push(field(
                "lines",
                format!("must have at most {} lines", Self::MAX_LINES),
            ));
        }
        let mut lines = Vec::with_capacity(r.lines.len());
        for (index, line) in r.lines.iter().enumerate() {
            let sku = Sku::parse(&line.sku)
                .map_err(|m| errors.push(field(&format!("lines[{index}].sku"), m)));
            let quantity = Quantity::parse(line.quantity)
                .map_err(|m| errors.push(field(&format!("lines[{index}].quantity"), m)));
            if let (Ok(sku), Ok(quantity)) = (sku, quantity) {
                if lines.iter().any(|l: &Line| l.sku == sku) {
                    errors.push(field(
                        &format!("lines[{index}].sku"),
                        format!("{} appears more than once", sku.as_str()),
                    ));
                }
                lines.push(Line {
                    index,
                    sku,
                    quantity,
                });
            }
        }
        if !(1..=Self::MAX_TTL_SECS).contains(&r.ttl_secs) {
            errors.push(field(
                "ttl_secs",
                format!("must be between 1 and {}", Self::MAX_TTL_SECS),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(Self {
            id: r.reservation_id,
            lines,
            ttl: TimeDelta::seconds(r.ttl_secs),
        })
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

    fn request(lines: &[(&str, i64)], ttl_secs: i64) -> ReserveStock {
        ReserveStock {
            reservation_id: Uuid::now_v7(),
            lines: lines
                .iter()
                .map(|(sku, quantity)| StockLine {
                    sku: (*sku).to_owned(),
                    quantity: *quantity,
                })
                .collect(),
            ttl_secs,
        }
    }

    fn fields(r: ReserveStock) -> Vec<String> {
        ValidReservation::try_from(r)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_valid_reservation_has_its_lines_sorted_by_sku() {
        let valid = ValidReservation::try_from(request(&[("TEA-2", 1), ("TEA-1", 3)], 60)).unwrap();
        let skus: Vec<_> = valid.lines.iter().map(|l| l.sku.as_str()).collect();
        assert_eq!(skus, ["TEA-1", "TEA-2"]);
        assert_eq!(valid.lines[0].index, 1);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let bad = request(
            &[("tea", 0), ("TEA-1", 1001), ("TEA-1", 1), ("TEA-1", 1)],
            0,
        );
        assert_eq!(
            fields(bad),
            [
                "lines[0].sku",
                "lines[0].quantity",
                "lines[1].quantity",
                "lines[3].sku",
                "ttl_secs"
            ]
        );
    }

    #[test]
    fn a_reservation_needs_lines() {
        assert_eq!(fields(request(&[], 60)), ["lines"]);
    }

    #[test]
    fn quantities_and_stock_have_bounds() {
        assert!(Quantity::parse(1).is_ok() && Quantity::parse(1000).is_ok());
        assert!(Quantity::parse(0).is_err() && Quantity::parse(-1).is_err());
        assert!(OnHand::parse(0).is_ok() && OnHand::parse(1_000_000).is_ok());
        assert!(OnHand::parse(-1).is_err() && OnHand::parse(1_000_001).is_err());
        assert!(Reason::parse("  ").is_err());
    }
}
