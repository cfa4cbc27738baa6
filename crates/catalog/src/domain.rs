//! Products and the values they are made of. Each type can only be built valid.

use nubo_contracts::Money;
pub use nubo_contracts::Sku;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::error::FieldError;
use nubo_platform::uuid::Uuid;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A category slug: 1 to 40 lower-case letters, digits and dashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Category(String);

impl Category {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok_len = (1..=40).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok_len && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 40 lower-case letters, digits or dashes".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category as stored and served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CategoryInfo {
    pub slug: String,
    pub name: String,
    pub description: String,
}

/// What an admin sends to create a category.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    /// 1 to 40 lower-case letters, digits and dashes; names the category in paths and products.
    #[schema(pattern = "^[a-z0-9-]{1,40}$", example = "tea")]
    pub slug: String,
    /// 1 to 100 characters, not counting spaces around them.
    #[schema(pattern = "^\\s*\\S([\\s\\S]*\\S)?\\s*$", max_length = 100)]
    pub name: String,
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
}

/// What an admin sends to rename or re-describe a category; the slug is in the path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryUpdate {
    /// 1 to 100 characters, not counting spaces around them.
    #[schema(pattern = "^\\s*\\S([\\s\\S]*\\S)?\\s*$", max_length = 100)]
    pub name: String,
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
}

/// A category that passed every check.
#[derive(Clone, Debug)]
pub struct ValidCategory {
    pub slug: Category,
    pub name: String,
    pub description: String,
}

impl CategoryInput {
    /// Checks every field and reports all problems at once.
    pub fn validate(self) -> Result<ValidCategory, Vec<FieldError>> {
        let slug = Category::parse(&self.slug);
        let mut errors = Vec::new();
        if let Err(message) = &slug {
            errors.push(FieldError {
                field: "slug".to_owned(),
                message: message.clone(),
            });
        }
        let (name, more) = check_category_text(&self.name, &self.description);
        errors.extend(more);
        match slug {
            Ok(slug) if errors.is_empty() => Ok(ValidCategory {
                slug,
                name,
                description: self.description,
            }),
            _ => Err(errors),
        }
    }
}

impl CategoryUpdate {
    /// Checks the fields for the category whose slug came from the path.
    pub fn validate(self, slug: Category) -> Result<ValidCategory, Vec<FieldError>> {
        let (name, errors) = check_category_text(&self.name, &self.description);
        if errors.is_empty() {
            Ok(ValidCategory {
                slug,
                name,
                description: self.description,
            })
        } else {
            Err(errors)
        }
    }
}

/// The trimmed name, and what is wrong with the name and description.
fn check_category_text(name: &str, description: &str) -> (String, Vec<FieldError>) {
    let mut errors = Vec::new();
    // At most 100 characters as sent, too: what the schema promises a client.
    let sent = name.chars().count();
    let name = name.trim().to_owned();
    if !(1..=100).contains(&name.chars().count()) || sent > 100 {
        errors.push(FieldError {
            field: "name".to_owned(),
            message: "must be 1 to 100 characters".to_owned(),
        });
    }
    if description.chars().count() > 1000 {
        errors.push(FieldError {
            field: "description".to_owned(),
            message: "must be at most 1000 characters".to_owned(),
        });
    }
    (name, errors)
}

/// What a shopper searches for, reduced to plain words: everything that is not a letter or a
/// digit separates words, so no character the user types can reach a query language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// Accepts 1 to 200 characters; the result may hold no words at all (`"*"`, `"--"`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !(1..=200).contains(&raw.chars().count()) {
            return Err("must be 1 to 200 characters".to_owned());
        }
        let words = raw
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        Ok(Self(words))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An FTS5 query: every word quoted, the last one matched as a prefix, all required.
    pub fn to_fts5(&self) -> String {
        self.join(|w| format!("\"{w}\""), "*", " AND ")
    }

    /// A PostgreSQL `to_tsquery` text: every word quoted, the last one a prefix, all required.
    pub fn to_tsquery(&self) -> String {
        self.join(|w| format!("'{w}'"), ":*", " & ")
    }

    fn join(&self, quote: impl Fn(&str) -> String, prefix: &str, and: &str) -> String {
        let mut quoted: Vec<String> = self.0.iter().map(|w| quote(w)).collect();
        if let Some(last) = quoted.last_mut() {
            last.push_str(prefix);
        }
        quoted.join(and)
    }
}

/// How a path names a product: by its id or by its SKU. A UUID is 36 characters and a SKU at
/// most 32, so one can never be taken for the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductRef {
    Id(Uuid),
    Sku(Sku),
}

impl ProductRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() == 36
            && let Ok(id) = Uuid::parse_str(raw)
        {
            return Ok(Self::Id(id));
        }
        Sku::parse(raw)
            .map(Self::Sku)
            .map_err(|_| "must be a product id (a UUID) or a SKU such as TEA-001".to_owned())
    }
}

/// A product as stored and served.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category: String,
    /// The product's image, served by the catalog: the photo an admin uploaded (PNG or JPEG)
    /// or else an illustration drawn for it (SVG). The URL changes whenever the product does,
    /// so its answer may be kept for a day; add `&w=320`, `&w=640` or `&w=1280` for a width.
    #[schema(example = "/api/v1/products/TEA-001/image?v=3")]
    pub image: String,
    /// An image elsewhere that an admin set (an `https://` URL or a path), or empty.
    pub image_url: String,
    /// Increases by one with every change, the image's included.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a product's image is served: by SKU, so the URL reads well, and with the product's
/// version, so every change to the product (its image's included) gives a new URL.
pub fn image_path(sku: &str, version: i64) -> String {
    format!("/api/v1/products/{sku}/image?v={version}")
}

/// What an admin sends to create or replace a product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// 3 to 32 upper-case letters, digits and dashes, not starting with a dash.
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", example = "TEA-001")]
    pub sku: String,
    /// 1 to 200 characters, not counting spaces around them.
    #[schema(pattern = "^\\s*\\S([\\s\\S]*\\S)?\\s*$", max_length = 200)]
    pub name: String,
    /// At most 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    pub price: PriceInput,
    /// The slug of a category that exists (409 otherwise).
    #[schema(pattern = "^[a-z0-9-]{1,40}$", example = "tea")]
    pub category: String,
    /// Empty, an `https://` URL or a path on this site; at most 500 characters.
    #[serde(default)]
    #[schema(pattern = "^$|^(https://|/)", max_length = 500)]
    pub image_url: String,
}

/// A price as an admin sends it: integer minor units, never a float.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// 0 to 100000000.00 in major units.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub amount_minor: i64,
    /// ISO 4217, upper case: `EUR`.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// A [`ProductInput`] that passed every check.
#[derive(Clone, Debug)]
pub struct ValidProduct {
    pub sku: Sku,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category: Category,
    pub image_url: String,
}

impl ProductInput {
    /// Checks every field and reports all problems at once.
    pub fn validate(self) -> Result<ValidProduct, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &str, result: Result<(), String>| {
            if let Err(message) = result {
                errors.push(FieldError {
                    field: field.to_owned(),
                    message,
                });
            }
        };
        let sku = Sku::parse(&self.sku);
        check("sku", sku.as_ref().map(|_| ()).map_err(Clone::clone));
        let sent = self.name.chars().count();
        let name = self.name.trim().to_owned();
        check(
            "name",
            if (1..=200).contains(&name.chars().count()) && sent <= 200 {
                Ok(())
            } else {
                Err("must be 1 to 200 characters".into())
            },
        );
        check(
            "description",
            if self.description.chars().count() <= 5000 {
                Ok(())
            } else {
                Err("must be at most 5000 characters".into())
            },
        );
        let price = Money::parse(self.price.amount_minor, &self.price.currency);
        check("price", price.as_ref().map(|_| ()).map_err(Clone::clone));
        let category = Category::parse(&self.category);
        check(
            "category",
            category.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let image_ok = self.image_url.is_empty()
            || ((self.image_url.starts_with("https://") || self.image_url.starts_with("/"))
                && self.image_url.chars().count() <= 500);
        check(
            "image_url",
            if image_ok {
                Ok(())
            } else {
                Err("must be an https:// URL or a path".into())
            },
        );
        match (sku, price, category) {
            (Ok(sku), Ok(price), Ok(category)) if errors.is_empty() => Ok(ValidProduct {
                sku,
                name,
                description: self.description,
                price,
                category,
                image_url: self.image_url,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProductInput {
        ProductInput {
            sku: "TEA-001".into(),
            name: "Green tea".into(),
            description: String::new(),
            price: PriceInput {
                amount_minor: 499,
                currency: "EUR".into(),
            },
            category: "tea".into(),
            image_url: String::new(),
        }
    }

    #[test]
    fn a_valid_product_passes() {
        assert!(input().validate().is_ok());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut bad = input();
        bad.sku = "tea 1".into();
        bad.price.amount_minor = -1;
        bad.category = "Tea!".into();
        let errors = bad.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["sku", "price", "category"]);
    }

    #[test]
    fn search_words_are_quoted_and_the_last_is_a_prefix() {
        let terms = SearchTerms::parse("Green \"TEA\" NEAR( gree' OR 1=1 --").unwrap();
        assert_eq!(
            terms.to_fts5(),
            r#""green" AND "tea" AND "near" AND "gree" AND "or" AND "1" AND "1"*"#
        );
        assert_eq!(
            terms.to_tsquery(),
            "'green' & 'tea' & 'near' & 'gree' & 'or' & '1' & '1':*"
        );
        assert!(SearchTerms::parse("\"*--").unwrap().is_empty());
        assert!(SearchTerms::parse("").is_err());
        assert!(SearchTerms::parse(&"a".repeat(201)).is_err());
    }

    #[test]
    fn a_product_is_named_by_its_id_or_its_sku() {
        let id = "01a211dc-d363-71a9-b3b7-f1327e53f1ff";
        assert_eq!(
            ProductRef::parse(id),
            Ok(ProductRef::Id(Uuid::parse_str(id).unwrap()))
        );
        assert_eq!(
            ProductRef::parse("TEA-001"),
            Ok(ProductRef::Sku(Sku::parse("TEA-001").unwrap()))
        );
        for bad in ["tea-001", "T", "not-a-uuid", "", &"A".repeat(33)] {
            assert!(ProductRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_currency_must_be_an_iso_code() {
        let mut bad = input();
        bad.price.currency = "euro".into();
        assert!(bad.validate().is_err());
    }
}
