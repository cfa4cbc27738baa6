//! What the shoppers know of the shop before the run: its products, categories and the words
//! of the products' names to search for, read once through the public API.

use std::collections::BTreeSet;

use anyhow::bail;
use serde_json::Value;

use crate::shop::Shop;

/// Products read up front at most; enough to spread product pages over many cache entries.
const PAGES_READ: u32 = 10;
/// A page of the product list as the shoppers browse it.
pub const PER_PAGE: u32 = 20;

pub struct Catalog {
    /// Every product read, by id.
    pub ids: Vec<String>,
    /// The SKUs the shoppers put in carts and buy (the first --products of the catalog), with
    /// ample stock set before the run.
    pub skus: Vec<String>,
    /// Category slugs.
    pub categories: Vec<String>,
    /// Words of the products' names.
    pub words: Vec<String>,
    /// Pages of `PER_PAGE` products.
    pub pages: u32,
}

impl Catalog {
    pub async fn read(shop: &Shop, products: u32) -> anyhow::Result<Self> {
        let mut items: Vec<Value> = Vec::new();
        let mut total = 0;
        for page in 1..=PAGES_READ {
            let answer: Value = shop
                .http
                .get(shop.api(&format!("/products?per_page=100&page={page}")))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            total = answer["total"].as_u64().unwrap_or(0);
            let got = answer["items"].as_array().cloned().unwrap_or_default();
            let last = got.len() < 100;
            items.extend(got);
            if last {
                break;
            }
        }
        if items.is_empty() {
            bail!("the catalog is empty: seed it (nubo up does) or create products first");
        }
        let field = |p: &Value, name: &str| p[name].as_str().map(str::to_owned);
        let categories: Vec<Value> = shop
            .http
            .get(shop.api("/categories"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let names: Vec<String> = items.iter().filter_map(|p| field(p, "name")).collect();
        Ok(Self {
            ids: items.iter().filter_map(|p| field(p, "id")).collect(),
            skus: items
                .iter()
                .take(products as usize)
                .filter_map(|p| field(p, "sku"))
                .collect(),
            categories: categories
                .iter()
                .filter_map(|c| field(c, "category"))
                .collect(),
            words: search_words(names.iter().map(String::as_str)),
            pages: u32::try_from(total.div_ceil(u64::from(PER_PAGE)))
                .unwrap_or(1)
                .max(1),
        })
    }
}

/// The words of `names` a shopper would type: letters and digits, lower case, three or more
/// characters, each once.
pub fn search_words<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let words: BTreeSet<String> = names
        .flat_map(|name| name.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    words.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::search_words;

    #[test]
    fn shoppers_search_for_the_words_of_the_products_names() {
        let names = ["Sencha, First Flush", "Tetsubin 600 ml", "Gyokuro sencha"];
        assert_eq!(
            search_words(names.into_iter()),
            ["600", "first", "flush", "gyokuro", "sencha", "tetsubin"]
        );
    }
}
