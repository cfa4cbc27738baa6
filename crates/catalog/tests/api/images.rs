//! Product images: the drawing every product has, and the photo an admin puts in its place.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use nubo_platform::both_modes;
use nubo_platform::testing::{TestMode, TestSystem};
use serde_json::Value;

use crate::helpers::{Admin, CUSTOMER_EMAIL, assert_problem, product, sign_in, start};

both_modes!(
    every_seeded_product_has_a_drawing_at_its_image_url,
    an_admin_uploads_a_png_and_a_jpeg_and_shoppers_get_them_at_each_width,
    deleting_the_photo_returns_to_the_drawing,
    uploads_that_are_not_a_usable_photo_are_refused_and_change_nothing,
    only_an_admin_may_change_an_image,
);

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

/// A photo with transparency (so it is kept as PNG), 900 × 600.
fn transparent_png() -> Vec<u8> {
    let image = RgbaImage::from_fn(900, 600, |x, y| {
        Rgba([
            (x / 4) as u8,
            (y / 3) as u8,
            120,
            if x < 450 { 255 } else { 90 },
        ])
    });
    encoded(&DynamicImage::ImageRgba8(image), ImageFormat::Png)
}

/// A plain photo, 700 × 500.
fn jpeg() -> Vec<u8> {
    let image = RgbImage::from_fn(700, 500, |x, y| Rgb([(x / 3) as u8, (y / 2) as u8, 60]));
    encoded(&DynamicImage::ImageRgb8(image), ImageFormat::Jpeg)
}

/// A PNG of a few dozen bytes that declares `width` × `height` pixels of 16-bit RGBA: what a
/// decompression bomb looks like to a decoder that trusts its header.
fn declared_png(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]); // 16 bits, RGBA, deflate, no filter variant, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (*b"IHDR", ihdr),
        // zlib of nothing: far too little data, which a bounded decoder never gets to read.
        (
            *b"IDAT",
            vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ),
        (*b"IEND", Vec::new()),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend(kind);
        png.extend(&data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// GETs `path` from the catalog and answers the status, content type and body.
async fn fetch(admin: &Admin, path: &str) -> (u16, String, reqwest::header::HeaderMap, Vec<u8>) {
    let response = admin.get(path).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        headers,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn assert_drawing(admin: &Admin, image_path: &str) {
    let (status, content_type, headers, body) = fetch(admin, image_path).await;
    assert_eq!(status, 200, "{image_path}");
    assert_eq!(content_type, "image/svg+xml");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let svg = String::from_utf8(body).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 800 800\""));
    assert!(!svg.contains("<script"));
}

async fn every_seeded_product_has_a_drawing_at_its_image_url(mode: TestMode) {
    let services = [&nubo_identity::SERVICE, &nubo_catalog::SERVICE];
    let system = TestSystem::start_with(mode, &services, |s| s.seed_demo_data = true, &[]).await;
    // A shopper: no account needed to read.
    let shopper = Admin {
        base: system.url("catalog"),
        http: reqwest::Client::new(),
        token: String::new(),
    };
    let page: Value = shopper
        .get("/api/v1/products?per_page=100")
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 60);
    for item in items {
        let sku = item["sku"].as_str().unwrap();
        let image = item["image"].as_str().unwrap();
        assert_eq!(
            image,
            format!("/api/v1/products/{sku}/image?v={}", item["version"])
        );
        assert_drawing(&shopper, image).await;
    }
    let (_, _, headers, _) = fetch(&shopper, items[0]["image"].as_str().unwrap()).await;
    assert_eq!(headers["cache-control"], "public, max-age=86400, immutable");
    // Without the version (or an old one) it may change under the same URL.
    let sku = items[0]["sku"].as_str().unwrap();
    let (_, _, headers, _) = fetch(&shopper, &format!("/api/v1/products/{sku}/image")).await;
    assert_eq!(headers["cache-control"], "public, max-age=300");
    system.shutdown().await;
}

async fn an_admin_uploads_a_png_and_a_jpeg_and_shoppers_get_them_at_each_width(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-500", 900)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["image"], "/api/v1/products/TEA-500/image?v=1");

    let response = admin.put_image(id, "image/png", transparent_png()).await;
    assert_eq!(response.status(), 200);
    let after_png: Value = response.json().await.unwrap();
    assert_eq!(after_png["version"], 2);
    let image = after_png["image"].as_str().unwrap().to_owned();
    assert_eq!(image, "/api/v1/products/TEA-500/image?v=2");
    let shopper_sees: Value = admin
        .get("/api/v1/products/TEA-500")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shopper_sees["image"],
        image.as_str(),
        "the cache was invalidated"
    );

    // The narrowest stored width at least as wide as asked, else the widest (its own 900).
    for (w, expected) in [(320, 320), (100, 320), (321, 640), (641, 900), (5000, 900)] {
        let (status, content_type, headers, body) = fetch(&admin, &format!("{image}&w={w}")).await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "image/png", "transparency is kept");
        assert_eq!(headers["cache-control"], "public, max-age=86400, immutable");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let decoded = image::load_from_memory_with_format(&body, ImageFormat::Png).unwrap();
        assert_eq!(decoded.width(), expected, "w={w}");
        assert!(decoded.color().has_alpha());
    }
    let (_, _, _, widest) = fetch(&admin, &image).await;
    assert_eq!(image::load_from_memory(&widest).unwrap().width(), 900);

    // The price history hears of the new version like any other edit.
    admin.wait_for_history(id, 2).await;

    let response = admin.put_image("TEA-500", "image/jpeg", jpeg()).await;
    assert_eq!(response.status(), 200, "by SKU too");
    let after_jpeg: Value = response.json().await.unwrap();
    assert_eq!(after_jpeg["version"], 3);
    let image = after_jpeg["image"].as_str().unwrap();
    assert_eq!(image, "/api/v1/products/TEA-500/image?v=3");
    let (status, content_type, _, body) = fetch(&admin, &format!("{image}&w=320")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "image/jpeg");
    let decoded = image::load_from_memory_with_format(&body, ImageFormat::Jpeg).unwrap();
    assert!(decoded.width() <= 320);
    assert_eq!((decoded.width(), decoded.height()), (320, 229));
    let (_, _, _, body) = fetch(&admin, &format!("{image}&w=1280")).await;
    assert_eq!(
        image::load_from_memory(&body).unwrap().width(),
        700,
        "never enlarged"
    );
    system.shutdown().await;
}

async fn deleting_the_photo_returns_to_the_drawing(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-501", 900)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        admin.put_image(id, "image/jpeg", jpeg()).await.status(),
        200
    );

    let response = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/products/{id}/image"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["version"], 3);
    assert_drawing(&admin, after["image"].as_str().unwrap()).await;
    assert_drawing(&admin, "/api/v1/products/TEA-501/image?w=640").await;

    // Nothing left to delete: nothing changes.
    let again: Value = admin
        .send(
            reqwest::Method::DELETE,
            "/api/v1/admin/products/TEA-501/image",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["version"], 3);
    system.shutdown().await;
}

async fn uploads_that_are_not_a_usable_photo_are_refused_and_change_nothing(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-502", 900)).await;
    let id = created["id"].as_str().unwrap();

    let gif = admin.put_image(id, "image/gif", b"GIF89a".to_vec()).await;
    assert_eq!(gif.headers()["accept"], "image/png, image/jpeg");
    assert_problem(gif, 415).await;
    assert_problem(admin.put_image(id, "application/json", jpeg()).await, 415).await;

    for (content_type, bytes) in [
        ("image/png", b"not a picture at all".to_vec()),
        ("image/jpeg", transparent_png()),
        ("image/png", jpeg()),
        ("image/png", Vec::new()),
    ] {
        let body = assert_problem(admin.put_image(id, content_type, bytes).await, 422).await;
        assert_eq!(body["errors"][0]["field"], "body", "{body}");
    }
    // Decompression bombs: a few bytes declaring billions of pixels, and one declaring 512 MiB
    // of pixels within the side limit.
    for (width, height) in [(100_000, 100_000), (8_000, 8_000)] {
        let bomb = declared_png(width, height);
        assert!(bomb.len() < 100);
        let body = assert_problem(admin.put_image(id, "image/png", bomb).await, 422).await;
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("too large"), "{body}");
    }
    let limit = system.settings().body_limit_bytes;
    let oversized = admin.put_image(id, "image/png", vec![0; limit + 1]).await;
    assert_problem(oversized, 413).await;
    let unknown = admin.put_image("TEA-404", "image/jpeg", jpeg()).await;
    assert_problem(unknown, 404).await;

    let now: Value = admin
        .get(&format!("/api/v1/products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 1, "nothing was written");
    assert_drawing(&admin, now["image"].as_str().unwrap()).await;
    system.shutdown().await;
}

async fn only_an_admin_may_change_an_image(mode: TestMode) {
    let system = start(mode).await;
    let admin = Admin::of(&system).await;
    let created = admin.create_ok(&product("TEA-503", 900)).await;
    let url = format!(
        "{}/api/v1/admin/products/{}/image",
        admin.base,
        created["id"].as_str().unwrap()
    );
    let customer = sign_in(&system, CUSTOMER_EMAIL).await;
    let put = |token: Option<&str>| {
        let request = admin
            .http
            .put(&url)
            .header("content-type", "image/jpeg")
            .body(jpeg());
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };
    assert_problem(put(None).send().await.unwrap(), 401).await;
    assert_problem(put(Some(&customer)).send().await.unwrap(), 403).await;
    let delete = admin
        .http
        .delete(&url)
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_problem(delete, 403).await;
    assert_problem(admin.http.delete(&url).send().await.unwrap(), 401).await;
    let now: Value = admin
        .get("/api/v1/products/TEA-503")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 1);
    system.shutdown().await;
}
