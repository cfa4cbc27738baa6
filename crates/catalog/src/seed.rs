//! Demo data: a small shop's catalog, inserted only into an empty store, each product through
//! the same path as an admin's create so its `ProductChanged` event goes out too.

use nubo_contracts::catalog::ProductChange;
use nubo_platform::Context;

use crate::domain::{CategoryInput, PriceInput, ProductInput};
use crate::store::{self, CategoryError, WriteError};

/// Slug, name, description; created before the products that use them.
const CATEGORIES: &[(&str, &str, &str)] = &[
    (
        "coffee",
        "Coffee",
        "Single origins and blends, roasted in small batches.",
    ),
    (
        "tea",
        "Tea",
        "Green, black, white and oolong teas, and herbal infusions.",
    ),
    (
        "brewing",
        "Brewing gear",
        "Drippers, kettles, grinders and scales.",
    ),
    (
        "cups",
        "Cups and teapots",
        "Things to drink from and pour with.",
    ),
    ("books", "Books", "Reading for the curious drinker."),
    ("gifts", "Gifts", "Sets, gift cards and things for the bar."),
];

/// Name, description, price in cents.
type Item = (&'static str, &'static str, i64);

/// The demo catalog's coffees (name, description, price in cents): what the benchmarks put on
/// a page, so they measure the shop's own kind of product.
pub fn coffees() -> &'static [Item] {
    CATALOG
        .iter()
        .find(|(category, ..)| *category == "coffee")
        .map_or(&[], |(_, _, items)| items)
}

/// Category, SKU prefix, and its products.
const CATALOG: &[(&str, &str, &[Item])] = &[
    (
        "coffee",
        "COF",
        &[
            (
                "Ethiopia Yirgacheffe",
                "Washed, floral, bergamot and lemon; light roast, 250 g.",
                1490,
            ),
            (
                "Colombia Huila",
                "Caramel and red apple; medium roast, 250 g.",
                1290,
            ),
            (
                "Brazil Cerrado",
                "Nutty, chocolate, low acidity; for espresso, 1 kg.",
                3490,
            ),
            (
                "Kenya AA Nyeri",
                "Blackcurrant and tomato; bright and juicy, 250 g.",
                1690,
            ),
            (
                "Guatemala Antigua",
                "Cocoa and spice; medium-dark roast, 250 g.",
                1390,
            ),
            (
                "Sumatra Mandheling",
                "Earthy, herbal, full body; dark roast, 250 g.",
                1350,
            ),
            (
                "House Espresso Blend",
                "Brazil and Ethiopia for milk drinks, 1 kg.",
                2990,
            ),
            (
                "Decaf Mexico",
                "Sugar-cane process decaf; toffee and orange, 250 g.",
                1250,
            ),
            (
                "Costa Rica Tarrazu",
                "Honey process; stone fruit and honey, 250 g.",
                1590,
            ),
            (
                "Rwanda Bourbon",
                "Red fruit and black tea; light roast, 250 g.",
                1550,
            ),
        ],
    ),
    (
        "tea",
        "TEA",
        &[
            (
                "Sencha Uji",
                "Steamed Japanese green tea, grassy and sweet, 100 g.",
                1190,
            ),
            (
                "Darjeeling First Flush",
                "Muscatel and flowers, 100 g.",
                1450,
            ),
            (
                "Assam Breakfast",
                "Malty black tea that takes milk, 250 g.",
                890,
            ),
            ("Silver Needle", "White tea buds from Fujian, 50 g.", 1990),
            (
                "Tieguanyin Oolong",
                "Rolled oolong, orchid and cream, 100 g.",
                1690,
            ),
            ("Earl Grey", "Black tea with bergamot oil, 100 g.", 790),
            (
                "Rooibos Vanilla",
                "Caffeine-free red bush with vanilla, 100 g.",
                690,
            ),
            ("Genmaicha", "Green tea with roasted rice, 100 g.", 750),
            (
                "Matcha Ceremonial",
                "Stone-ground tencha for whisking, 30 g.",
                2490,
            ),
            ("Chamomile Flowers", "Whole Egyptian chamomile, 50 g.", 590),
        ],
    ),
    (
        "brewing",
        "BRW",
        &[
            ("Pour-over Dripper", "Ceramic cone dripper, size 02.", 2400),
            (
                "Paper Filters 100",
                "Bleached filters for size 02 drippers.",
                650,
            ),
            (
                "Gooseneck Kettle",
                "1 l, temperature control to 1 degree.",
                8900,
            ),
            (
                "Burr Grinder",
                "Conical steel burrs, 40 grind settings.",
                14900,
            ),
            ("French Press", "Borosilicate glass, 1 l.", 3200),
            ("Milk Frother", "Induction jug for hot and cold foam.", 6900),
            ("Brew Scale", "0.1 g resolution with timer.", 3900),
            ("Cold Brew Bottle", "Filter-in bottle, 1 l.", 2900),
            (
                "Moka Pot",
                "Aluminium stovetop espresso maker, 6 cups.",
                3500,
            ),
            ("Tea Infuser", "Stainless steel basket for mugs.", 1200),
        ],
    ),
    (
        "cups",
        "CUP",
        &[
            (
                "Espresso Cups, pair",
                "Porcelain, 80 ml, with saucers.",
                2400,
            ),
            ("Cappuccino Cup", "Porcelain, 180 ml.", 1600),
            ("Travel Mug", "Insulated, leak-proof, 350 ml.", 2900),
            (
                "Glass Teapot",
                "Heat-proof glass with infuser, 800 ml.",
                3400,
            ),
            ("Stoneware Mug", "Hand-glazed, 300 ml.", 1900),
            ("Double-wall Glasses", "Set of two, 250 ml.", 2600),
            ("Matcha Bowl", "Chawan, hand-thrown, 400 ml.", 3900),
            (
                "Cast-iron Teapot",
                "Tetsubin with enamel lining, 600 ml.",
                6900,
            ),
            ("Latte Glass", "Tempered glass, 350 ml.", 900),
            ("Serving Tray", "Oiled oak, 40 x 25 cm.", 4500),
        ],
    ),
    (
        "books",
        "BOK",
        &[
            (
                "The World Atlas of Coffee",
                "Origins, varieties and brewing.",
                3500,
            ),
            ("The Tea Book", "Kinds, regions and how to brew them.", 2500),
            (
                "Espresso at Home",
                "Dialing in, milk and maintenance.",
                2900,
            ),
            (
                "The Science of Brewing",
                "Extraction explained with charts.",
                3900,
            ),
            (
                "Café Recipes",
                "Seventy drinks and the pastries to go with them.",
                2700,
            ),
            ("A Year of Tea", "Seasonal teas and ceremonies.", 2300),
            ("Roasting Basics", "From green bean to first crack.", 3100),
            ("The Barista Handbook", "Workflow for a busy bar.", 2800),
            ("Origins Journal", "Notebook for tasting notes.", 1400),
            (
                "Latte Art Guide",
                "Hearts, tulips and rosettas, step by step.",
                1900,
            ),
        ],
    ),
    (
        "gifts",
        "GFT",
        &[
            ("Coffee Tasting Set", "Four origins, 4 x 100 g.", 3900),
            ("Tea Discovery Box", "Six teas, 6 x 30 g.", 3500),
            ("Gift Card 25", "Spend it on anything in the shop.", 2500),
            ("Gift Card 50", "Spend it on anything in the shop.", 5000),
            (
                "Brewing Starter Kit",
                "Dripper, filters, scale and a coffee.",
                7900,
            ),
            (
                "Chocolate Pairing Box",
                "Five bars matched to our coffees.",
                2900,
            ),
            ("Subscription, 3 months", "A new coffee every month.", 4500),
            ("Tote Bag", "Organic cotton, printed logo.", 1500),
            ("Barista Apron", "Waxed canvas with leather straps.", 4900),
            ("Cupping Spoon", "Brass spoon for tasting sessions.", 1700),
        ],
    ),
];

/// Inserts the demo catalog if the store is empty.
pub async fn demo_products(ctx: Context) -> anyhow::Result<()> {
    if store::count(&ctx.db).await? > 0 {
        return Ok(());
    }
    let mut tx = ctx.db.begin().await?;
    for (slug, name, description) in CATEGORIES {
        let input = CategoryInput {
            slug: (*slug).to_owned(),
            name: (*name).to_owned(),
            description: (*description).to_owned(),
        };
        let valid = input
            .validate()
            .map_err(|e| anyhow::anyhow!("demo category {slug} is invalid: {e:?}"))?;
        match store::insert_category(&mut tx, &valid).await {
            // Already there: from the migration's backfill, an admin or another replica.
            Ok(()) | Err(CategoryError::SlugTaken) => {}
            Err(CategoryError::Database(e)) => return Err(e.into()),
            Err(e) => anyhow::bail!("cannot create demo category {slug}: {e:?}"),
        }
    }
    let mut inserted = 0;
    for (category, prefix, products) in CATALOG {
        for (n, (name, description, cents)) in products.iter().enumerate() {
            let input = ProductInput {
                sku: format!("{prefix}-{:03}", n + 1),
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                price: PriceInput {
                    amount_minor: *cents,
                    currency: "EUR".to_owned(),
                },
                category: (*category).to_owned(),
                image_url: String::new(),
            };
            let valid = input
                .validate()
                .map_err(|e| anyhow::anyhow!("demo product {name} is invalid: {e:?}"))?;
            match store::insert(&mut tx, &valid).await {
                Ok(product) => {
                    ctx.publish(&mut tx, &product.changed(ProductChange::Created))
                        .await?;
                    inserted += 1;
                }
                // Another replica seeded at the same time; its rows stand.
                Err(WriteError::SkuTaken) => {}
                Err(WriteError::NotFound) => {}
                Err(WriteError::UnknownCategory) => {
                    anyhow::bail!("demo product {name} is in an unknown category {category}")
                }
                Err(WriteError::Database(e)) => return Err(e.into()),
            }
        }
    }
    ctx.commit(tx).await?;
    tracing::info!(products = inserted, "seeded demo catalog");
    Ok(())
}
