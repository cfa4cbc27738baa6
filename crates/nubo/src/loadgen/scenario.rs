//! What the shoppers do: four kinds of visit to the shop, and the scenarios that weigh them.
//! A scenario is a mix of visits; each iteration of the load draws one visit from it.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// List pages of products, open product pages, look at the categories and one of them.
    Browse,
    /// Search for words of the products' names, open one of the results.
    Search,
    /// Add a line to the cart, read the cart, remove the line.
    Cart,
    /// Add to the cart, check out, follow the order until it is completed or cancelled.
    CheckoutHeavy,
    /// Browse, search, cart and checkout visits weighted by --mix.
    Mixed,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Scenario::Browse => "browse",
            Scenario::Search => "search",
            Scenario::Cart => "cart",
            Scenario::CheckoutHeavy => "checkout-heavy",
            Scenario::Mixed => "mixed",
        };
        f.write_str(name)
    }
}

/// One iteration of the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    Browse,
    Search,
    Cart,
    Checkout,
}

impl Visit {
    const ALL: [Visit; 4] = [Visit::Browse, Visit::Search, Visit::Cart, Visit::Checkout];

    fn name(self) -> &'static str {
        match self {
            Visit::Browse => "browse",
            Visit::Search => "search",
            Visit::Cart => "cart",
            Visit::Checkout => "checkout",
        }
    }

    /// Browsing and searching need no account; a cart belongs to a signed-in customer.
    pub fn needs_account(self) -> bool {
        matches!(self, Visit::Cart | Visit::Checkout)
    }
}

/// Weights of the four visits; an iteration draws a visit with probability weight / total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 4],
}

impl Mix {
    /// A shop's day: mostly looking, some searching, fewer carts, few checkouts.
    pub const MIXED: &str = "browse=60,search=20,cart=15,checkout=5";

    /// The mix of `scenario`; `mixed` takes `weights` (as --mix spells them).
    pub fn of(scenario: Scenario, weights: &str) -> Result<Self, String> {
        let only = |visit: Visit| {
            let mut weights = [0; 4];
            weights[visit as usize] = 1;
            Ok(Self { weights })
        };
        match scenario {
            Scenario::Browse => only(Visit::Browse),
            Scenario::Search => only(Visit::Search),
            Scenario::Cart => only(Visit::Cart),
            Scenario::CheckoutHeavy => only(Visit::Checkout),
            Scenario::Mixed => Self::parse(weights),
        }
    }

    /// `browse=60,search=20,cart=15,checkout=5`; a visit left out weighs nothing.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut weights = [0; 4];
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not VISIT=WEIGHT"))?;
            let visit = Visit::ALL
                .into_iter()
                .find(|v| v.name() == name.trim())
                .ok_or_else(|| {
                    format!("{name:?} is not a visit (browse, search, cart or checkout)")
                })?;
            weights[visit as usize] = weight
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|w| *w <= 1_000_000)
                .ok_or_else(|| format!("the weight of {name} must be 0 to 1000000"))?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err("the mix must weigh at least one visit".to_owned());
        }
        Ok(Self { weights })
    }

    /// What to draw `roll` from.
    pub fn total(&self) -> u32 {
        self.weights.iter().sum()
    }

    /// The visit that `roll` (in `0..total()`) falls on.
    pub fn pick(&self, roll: u32) -> Visit {
        let mut left = roll;
        for visit in Visit::ALL {
            let weight = self.weights[visit as usize];
            if left < weight {
                return visit;
            }
            left -= weight;
        }
        // Only a roll past the total gets here: the last visit that weighs anything.
        Visit::ALL
            .into_iter()
            .rev()
            .find(|v| self.weights[*v as usize] > 0)
            .unwrap_or(Visit::Browse)
    }

    /// Whether some visits check out (and the run must set and check the stock).
    pub fn buys(&self) -> bool {
        self.weights[Visit::Checkout as usize] > 0
    }

    pub fn needs_accounts(&self) -> bool {
        Visit::ALL
            .into_iter()
            .any(|v| v.needs_account() && self.weights[v as usize] > 0)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Visit::ALL
            .into_iter()
            .filter(|v| self.weights[*v as usize] > 0)
            .map(|v| format!("{}={}", v.name(), self.weights[v as usize]))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mixed_day_draws_each_visit_as_often_as_it_weighs() {
        let mix = Mix::of(Scenario::Mixed, Mix::MIXED).unwrap();
        assert_eq!(mix.total(), 100);
        let mut drawn = [0u32; 4];
        for roll in 0..mix.total() {
            drawn[mix.pick(roll) as usize] += 1;
        }
        assert_eq!(drawn, [60, 20, 15, 5]);
        assert!(mix.needs_accounts());
        assert_eq!(mix.to_string(), Mix::MIXED);
    }

    #[test]
    fn a_single_scenario_draws_only_its_visit() {
        let mix = Mix::of(Scenario::CheckoutHeavy, "ignored").unwrap();
        assert!((0..mix.total()).all(|r| mix.pick(r) == Visit::Checkout));
        let browse = Mix::of(Scenario::Browse, "").unwrap();
        assert_eq!(browse.pick(0), Visit::Browse);
        assert!(
            !browse.needs_accounts(),
            "browsing needs no prepared account"
        );
    }

    #[test]
    fn a_mix_leaves_out_what_weighs_nothing_and_refuses_what_it_cannot_read() {
        let mix = Mix::parse("search=1, checkout=3").unwrap();
        assert_eq!(
            (mix.pick(0), mix.pick(1), mix.pick(3)),
            (Visit::Search, Visit::Checkout, Visit::Checkout)
        );
        assert_eq!(mix.pick(99), Visit::Checkout, "a roll past the total");
        assert!(Mix::parse("browse=0").is_err());
        assert!(Mix::parse("shop=3").unwrap_err().contains("not a visit"));
        assert!(Mix::parse("browse").is_err());
        assert!(Mix::parse("browse=-1").is_err());
    }
}
