//! Admins managing categories, and what that means for the products in them.

use nubo_platform::both_modes;
use nubo_platform::sqlx::{self, migrate::Migrator};
use nubo_platform::storage::Db;
use nubo_platform::testing::TestMode;
use nubo_platform::uuid::Uuid;
use nubo_platform::with_db;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Admin, CUSTOMER_EMAIL, assert_problem, product, sign_in, start};

both_modes!(
    an_admin_adds_renames_and_removes_a_category,
    a_product_needs_a_category_that_exists,
    a_category_in_use_cannot_be_deleted,
    category_routes_need_an_admin,
    categories_already_in_use_are_backfilled_and_searchable,
);

async fn categories(admin: &Admin) -> Value {
    let response = admin.get("/api/v1/categories").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn an_admin_adds_renames_and_removes_a_category(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let body = json!({ "slug": "brewing-gear", "name": "Brewing gear", "description": "Kettles." });
    let created = admin
        .send(Method::POST, "/api/v1/admin/categories", Some(&body))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created, body);
    let duplicate = admin
        .send(Method::POST, "/api/v1/admin/categories", Some(&body))
        .await;
    assert_problem(duplicate, 409).await;
    let bad = json!({ "slug": "Brewing Gear!", "name": "" });
    let bad = assert_problem(
        admin
            .send(Method::POST, "/api/v1/admin/categories", Some(&bad))
            .await,
        422,
    )
    .await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2);

    let listed = categories(&admin).await;
    assert_eq!(
        listed[0],
        json!({ "category": "brewing-gear", "name": "Brewing gear", "description": "Kettles.", "products": 0 })
    );

    let renamed = json!({ "name": "Gear", "description": "Kettles and scales." });
    let response = admin
        .send(
            Method::PUT,
            "/api/v1/admin/categories/brewing-gear",
            Some(&renamed),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Gear");
    assert_eq!(
        categories(&admin).await[0]["description"],
        "Kettles and scales."
    );
    let missing = admin
        .send(Method::PUT, "/api/v1/admin/categories/nope", Some(&renamed))
        .await;
    assert_problem(missing, 404).await;

    let deleted = admin
        .send(
            Method::DELETE,
            "/api/v1/admin/categories/brewing-gear",
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let slugs: Vec<Value> = categories(&admin)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].clone())
        .collect();
    assert_eq!(slugs, [json!("coffee"), json!("tea")]);
    let again = admin
        .send(
            Method::DELETE,
            "/api/v1/admin/categories/brewing-gear",
            None,
        )
        .await;
    assert_problem(again, 404).await;
    system.shutdown().await;
}

async fn a_product_needs_a_category_that_exists(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let mut nowhere = product("TEA-001", 100);
    nowhere["category"] = json!("snacks");
    // A well-formed product naming a category that does not exist conflicts with the shop.
    let body = assert_problem(admin.create(&nowhere).await, 409).await;
    assert_eq!(
        body["errors"],
        json!([{ "field": "category", "message": "no such category" }])
    );
    let created = admin.create_ok(&product("TEA-001", 100)).await;
    let id = created["id"].as_str().unwrap();
    assert_problem(admin.update(id, &nowhere).await, 409).await;
    let list: Value = admin.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(
        list["items"][0]["category"], "tea",
        "the product stayed where it was"
    );
    system.shutdown().await;
}

async fn a_category_in_use_cannot_be_deleted(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-001", 100)).await;
    let in_use = admin
        .send(Method::DELETE, "/api/v1/admin/categories/tea", None)
        .await;
    assert_problem(in_use, 409).await;
    assert_eq!(categories(&admin).await[1]["products"], 1);

    // Once its last product moves elsewhere, it can go.
    let mut moved = product("TEA-001", 100);
    moved["category"] = json!("coffee");
    let id = created["id"].as_str().unwrap();
    assert_eq!(admin.update(id, &moved).await.status(), 200);
    let deleted = admin
        .send(Method::DELETE, "/api/v1/admin/categories/tea", None)
        .await;
    assert_eq!(deleted.status(), 204);
    system.shutdown().await;
}

async fn category_routes_need_an_admin(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let customer = sign_in(&system, CUSTOMER_EMAIL).await;
    let body = json!({ "slug": "snacks", "name": "Snacks", "description": "" });
    let requests = [
        (Method::POST, "/api/v1/admin/categories"),
        (Method::PUT, "/api/v1/admin/categories/tea"),
        (Method::DELETE, "/api/v1/admin/categories/coffee"),
    ];
    for (method, path) in requests {
        let url = format!("{}{path}", admin.base);
        let anonymous = admin
            .http
            .request(method.clone(), &url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(anonymous, 401).await;
        let as_customer = admin
            .http
            .request(method, &url)
            .bearer_auth(&customer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(as_customer, 403).await;
    }
    let listed = categories(&admin).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "nothing was written");
    assert_eq!(listed[1]["name"], "Tea");
    system.shutdown().await;
}

/// A database from before categories had a table: products already in use get their category
/// (named after the slug) and become searchable once the new migration runs.
async fn categories_already_in_use_are_backfilled_and_searchable(mode: TestMode) {
    let dir = tempfile::tempdir().unwrap();
    let (db, folder) = match mode {
        TestMode::Embedded => (
            Db::open_sqlite(dir.path(), "catalog", 2).await.unwrap(),
            "sqlite",
        ),
        TestMode::Distributed => {
            let url = nubo_platform::testing::fresh_postgres_database().await;
            (
                Db::connect_postgres(&url, "catalog", 2).unwrap(),
                "postgres",
            )
        }
    };
    let path = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
    let all = Migrator::new(std::path::Path::new(&path)).await.unwrap();
    let before = Migrator::with_migrations(
        all.migrations
            .iter()
            .filter(|m| m.version < 20261125000002)
            .cloned()
            .collect(),
    );
    with_db!(&db, pool => before.run(pool).await).unwrap();
    let insert = "INSERT INTO products (id, sku, name, description, price_minor, currency, category, \
                  image_url, version, created_at, updated_at) \
                  VALUES ($1, $2, $3, 'Old stock.', 100, 'EUR', $4, '', 1, $5, $5)";
    for (sku, name, category) in [
        ("BRW-001", "Gooseneck Kettle", "brewing-gear"),
        ("TEA-001", "Green tea", "tea"),
        ("TEA-002", "Black tea", "tea"),
    ] {
        let now = nubo_platform::clock::now();
        with_db!(&db, pool => sqlx::query(insert)
            .bind(Uuid::now_v7())
            .bind(sku)
            .bind(name)
            .bind(category)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
        .unwrap();
    }
    with_db!(&db, pool => all.run(pool).await).unwrap();

    let found: Vec<(String, String, i64)> = nubo_catalog::store::categories(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.slug, c.name, c.products))
        .collect();
    assert_eq!(
        found,
        [
            ("brewing-gear".into(), "Brewing gear".into(), 1),
            ("tea".into(), "Tea".into(), 2),
        ]
    );
    let terms = nubo_catalog::domain::SearchTerms::parse("kett").unwrap();
    let (products, total) = nubo_catalog::search::search(&db, &terms, None, 10, 0)
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(products[0].sku, "BRW-001");
    let terms = nubo_catalog::domain::SearchTerms::parse("stock").unwrap();
    let (_, total) = nubo_catalog::search::search(&db, &terms, Some("tea"), 10, 0)
        .await
        .unwrap();
    assert_eq!(total, 2);
    db.close().await;
}
