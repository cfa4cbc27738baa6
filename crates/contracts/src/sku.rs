//! The stock-keeping unit, the one name a product has in every service.

use serde::{Serialize, Serializer};

/// 3 to 32 upper-case letters, digits and dashes, not starting with a dash.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok_len = (3..=32).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if ok_len && ok_chars && !raw.starts_with('-') {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 3 to 32 upper-case letters, digits or dashes".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Sku {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Sku;

    #[test]
    fn only_well_formed_skus_parse() {
        assert!(Sku::parse("TEA-001").is_ok());
        for bad in ["te", "tea-001", "-TEA", "TEA 1", &"A".repeat(33)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }
}
