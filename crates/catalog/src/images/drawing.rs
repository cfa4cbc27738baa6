//! The illustration every product has until an admin uploads a photo: a flat drawing of what
//! its category holds (coffee beans, tea leaves, a dripper over a carafe, a cup, a stack of
//! books, a wrapped box), in colours and a layout drawn from its SKU, with its initials on a
//! badge. The same product always gets the same picture, and two products of a category look
//! related but not alike. Plain SVG: no script, no external reference, no font to fetch.

use std::fmt::Write;

use crate::domain::Product;

/// The side of the square canvas (`viewBox`), in SVG units.
pub const SIDE: u32 = 800;

/// The illustration of `product`, as an SVG document.
pub fn draw(product: &Product) -> String {
    let mut dice = Dice::from(product.sku.as_str());
    let palette = Palette::roll(&mut dice, &product.category);
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIDE} {SIDE}" width="{SIDE}" height="{SIDE}" role="img" aria-label="{name}"><title>{name}</title>"#,
        name = escape(&product.name),
    );
    background(&mut svg, &mut dice, &palette);
    let subject = match product.category.as_str() {
        "coffee" => beans,
        "tea" => leaves,
        "brewing" => dripper,
        "cups" => cup,
        "books" => books,
        "gifts" => gift,
        _ => tag,
    };
    subject(&mut svg, &mut dice, &palette);
    badge(&mut svg, &initials(&product.name), &palette);
    svg.push_str("</svg>");
    svg
}

/// Colours for one product: a soft backdrop and a subject in its category's hues.
struct Palette {
    /// The backdrop's hue; the subject's main hue, saturation and lightness.
    back: u32,
    hue: u32,
    sat: u32,
    light: u32,
}

impl Palette {
    fn roll(dice: &mut Dice, category: &str) -> Self {
        // Each category keeps to the hues of what it shows; the SKU picks within them.
        let (from, span, sat, light) = match category {
            "coffee" => (18, 20, 40, 30),
            "tea" => (80, 70, 38, 38),
            "books" | "gifts" | "brewing" | "cups" => (0, 360, 30, 50),
            _ => (190, 120, 35, 45),
        };
        let hue = (from + dice.below(span)) % 360;
        Self {
            back: (hue + 150 + dice.below(60)) % 360,
            hue,
            sat: sat + dice.below(15),
            light: light + dice.below(8),
        }
    }

    /// The subject's colour, `turn` degrees round the wheel and `lighter` points lighter.
    fn subject(&self, turn: u32, lighter: i32) -> String {
        let light = (self.light as i32 + lighter).clamp(8, 95);
        format!("hsl({},{}%,{}%)", (self.hue + turn) % 360, self.sat, light)
    }

    fn backdrop(&self, light: u32) -> String {
        format!("hsl({},38%,{light}%)", self.back)
    }
}

/// A deterministic stream of numbers from a SKU: FNV-1a, then xorshift.
struct Dice(u64);

impl From<&str> for Dice {
    fn from(seed: &str) -> Self {
        let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self(hash | 1)
    }
}

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n.max(1))) as u32
    }

    /// A number in `-n..=n`.
    fn spread(&mut self, n: u32) -> i32 {
        self.below(2 * n + 1) as i32 - n as i32
    }
}

fn background(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let angle = dice.below(360);
    let _ = write!(
        svg,
        r#"<defs><linearGradient id="bg" gradientTransform="rotate({angle} .5 .5)"><stop offset="0" stop-color="{}"/><stop offset="1" stop-color="{}"/></linearGradient></defs><rect width="{SIDE}" height="{SIDE}" fill="url(#bg)"/>"#,
        p.backdrop(93),
        p.backdrop(84),
    );
    for _ in 0..4 {
        let (x, y, r) = (dice.below(SIDE), dice.below(SIDE), 60 + dice.below(140));
        let _ = write!(
            svg,
            r##"<circle cx="{x}" cy="{y}" r="{r}" fill="#fff" opacity=".22"/>"##
        );
    }
    // The subject stands on a soft shadow.
    svg.push_str(r##"<ellipse cx="400" cy="650" rx="230" ry="26" fill="#000" opacity=".08"/>"##);
}

fn beans(svg: &mut String, dice: &mut Dice, p: &Palette) {
    for (x, y, turn, darker) in [(315, 400, -28, 0), (490, 445, 22, -6)] {
        let rotate = turn + dice.spread(8);
        let _ = write!(
            svg,
            r##"<g transform="translate({x} {y}) rotate({rotate})"><ellipse rx="112" ry="158" fill="{}"/><ellipse cx="-38" cy="-52" rx="36" ry="62" fill="#fff" opacity=".12"/><path d="M4 -138C52 -62 -44 52 4 138" fill="none" stroke="{}" stroke-width="16" stroke-linecap="round"/></g>"##,
            p.subject(0, darker),
            p.subject(8, -14 + darker),
        );
    }
}

fn leaves(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let _ = write!(
        svg,
        r#"<path d="M400 640C396 560 392 500 400 430" fill="none" stroke="{}" stroke-width="12" stroke-linecap="round"/>"#,
        p.subject(0, -12),
    );
    for (turn, lighter) in [(-34, 0), (30, 8)] {
        let rotate = turn + dice.spread(6);
        let _ = write!(
            svg,
            r#"<g transform="rotate({rotate} 400 560)"><path d="M400 560C300 500 290 330 400 190C510 330 500 500 400 560Z" fill="{}"/><path d="M400 540V230M400 470L350 420M400 470L450 420M400 390L358 345M400 390L442 345M400 310L372 280M400 310L428 280" fill="none" stroke="{}" stroke-width="7" stroke-linecap="round" opacity=".7"/></g>"#,
            p.subject(0, lighter),
            p.subject(10, lighter + 22),
        );
    }
}

fn dripper(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let coffee = format!("hsl({},45%,26%)", 20 + dice.below(12));
    let _ = write!(
        svg,
        r##"<path d="M290 430H510C548 430 560 470 560 520V600C560 630 540 650 510 650H290C260 650 240 630 240 600V520C240 470 252 430 290 430Z" fill="#fff" opacity=".55" stroke="{glass}" stroke-width="6"/><path d="M250 560H550V600C550 625 535 640 510 640H290C265 640 250 625 250 600Z" fill="{coffee}"/><path d="M250 250H550L475 410H325Z" fill="{body}"/><rect x="230" y="232" width="340" height="28" rx="14" fill="{rim}"/><rect x="300" y="410" width="200" height="22" rx="6" fill="{rim}"/><path d="M330 290L370 390M400 290V390M470 290L430 390" stroke="{rib}" stroke-width="8" stroke-linecap="round" opacity=".5"/>"##,
        glass = p.subject(0, 30),
        body = p.subject(0, 0),
        rim = p.subject(0, -10),
        rib = p.subject(0, 25),
    );
}

fn cup(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let drink = format!("hsl({},45%,{}%)", 18 + dice.below(20), 24 + dice.below(10));
    let _ = write!(
        svg,
        r##"<ellipse cx="400" cy="610" rx="240" ry="42" fill="{saucer}"/><ellipse cx="400" cy="602" rx="150" ry="22" fill="{rim}" opacity=".5"/><path d="M545 410C650 400 660 540 530 540" fill="none" stroke="{body}" stroke-width="30" stroke-linecap="round"/><path d="M245 380H555C555 520 505 600 400 600C295 600 245 520 245 380Z" fill="{body}"/><ellipse cx="400" cy="380" rx="155" ry="32" fill="{rim}"/><ellipse cx="400" cy="384" rx="135" ry="23" fill="{drink}"/><path d="M270 420C275 500 300 550 340 570" fill="none" stroke="#fff" stroke-width="14" stroke-linecap="round" opacity=".25"/>"##,
        saucer = p.subject(0, 12),
        body = p.subject(0, 0),
        rim = p.subject(0, 18),
    );
    for x in [340, 400, 460] {
        let sway = dice.spread(12);
        let _ = write!(
            svg,
            r##"<path d="M{x} 320C{a} 280 {b} 250 {x} 210" fill="none" stroke="#fff" stroke-width="14" stroke-linecap="round" opacity=".7"/>"##,
            a = x - 30 + sway,
            b = x + 30 + sway,
        );
    }
}

fn books(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let mut y = 560;
    for (n, width) in [(0, 420), (1, 380), (2, 400)] {
        let x = 400 - width / 2 + dice.spread(24);
        let tilt = dice.spread(3);
        let turn = 40 * n as u32;
        let _ = write!(
            svg,
            r##"<g transform="rotate({tilt} 400 {y})"><rect x="{x}" y="{y}" width="{width}" height="84" rx="10" fill="{cover}"/><rect x="{px}" y="{py}" width="{pw}" height="60" rx="4" fill="#fffdf6"/><rect x="{x}" y="{y}" width="38" height="84" rx="10" fill="{spine}"/><rect x="{lx}" y="{ly}" width="{lw}" height="8" rx="4" fill="{spine}" opacity=".6"/></g>"##,
            cover = p.subject(turn, 0),
            spine = p.subject(turn, -14),
            px = x + width - 28,
            py = y + 12,
            pw = 18,
            lx = x + 70,
            ly = y + 38,
            lw = width / 3,
        );
        y -= 90;
    }
    let _ = write!(
        svg,
        r#"<path d="M470 290V390L490 372L510 390V290Z" fill="{}"/>"#,
        p.subject(180, 0),
    );
}

fn gift(svg: &mut String, dice: &mut Dice, p: &Palette) {
    let ribbon = p.subject(150 + dice.below(60), 10);
    let _ = write!(
        svg,
        r##"<rect x="260" y="390" width="280" height="250" rx="12" fill="{body}"/><rect x="236" y="336" width="328" height="74" rx="12" fill="{lid}"/><rect x="382" y="336" width="36" height="304" fill="{ribbon}"/><rect x="260" y="470" width="280" height="30" fill="{ribbon}" opacity=".85"/><path d="M400 336C340 250 270 280 300 320C320 345 370 340 400 336ZM400 336C460 250 530 280 500 320C480 345 430 340 400 336Z" fill="{ribbon}"/><circle cx="400" cy="334" r="18" fill="{knot}"/>"##,
        body = p.subject(0, 0),
        lid = p.subject(0, -8),
        knot = p.subject(150, -5),
    );
}

/// For a category the catalog has no drawing of: a price tag.
fn tag(svg: &mut String, _dice: &mut Dice, p: &Palette) {
    let _ = write!(
        svg,
        r##"<path d="M250 300L420 250L570 400L420 590L250 450Z" fill="{}"/><circle cx="320" cy="350" r="26" fill="#fff" opacity=".8"/>"##,
        p.subject(0, 0),
    );
}

fn badge(svg: &mut String, initials: &str, p: &Palette) {
    if initials.is_empty() {
        return;
    }
    let _ = write!(
        svg,
        r##"<circle cx="692" cy="108" r="56" fill="#fff" opacity=".78"/><text x="692" y="108" dy=".35em" text-anchor="middle" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="40" font-weight="600" letter-spacing="1" fill="{}">{initials}</text>"##,
        p.subject(0, -10),
    );
}

/// Up to two letters or digits: the first of the name's first two words, upper case.
fn initials(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter_map(|word| word.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// Text made safe inside an XML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use nubo_contracts::Money;
    use nubo_platform::chrono::Utc;
    use nubo_platform::uuid::Uuid;

    use super::*;

    pub(crate) fn product(sku: &str, name: &str, category: &str) -> Product {
        Product {
            id: Uuid::nil(),
            sku: sku.into(),
            name: name.into(),
            description: String::new(),
            price: Money {
                amount_minor: 100,
                currency: "EUR".into(),
            },
            category: category.into(),
            image: String::new(),
            image_url: String::new(),
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_same_product_always_gets_the_same_picture_and_others_differ() {
        let tea = product("TEA-001", "Sencha Uji", "tea");
        assert_eq!(draw(&tea), draw(&tea));
        assert_ne!(draw(&tea), draw(&product("TEA-002", "Sencha Uji", "tea")));
        assert_ne!(draw(&tea), draw(&product("TEA-001", "Sencha Uji", "cups")));
    }

    #[test]
    fn a_drawing_is_square_self_contained_and_escapes_the_name() {
        for category in [
            "coffee", "tea", "brewing", "cups", "books", "gifts", "other",
        ] {
            let svg = draw(&product("X-1", "Tom & Jerry's <script>", category));
            assert!(
                svg.starts_with(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 800 800\""
                )
            );
            assert!(svg.ends_with("</svg>"));
            assert!(svg.contains("<title>Tom &amp; Jerry&apos;s &lt;script&gt;</title>"));
            assert!(svg.contains(">TJ</text>"), "{category}");
            for banned in [
                "<script",
                "href",
                "@import",
                "url(http",
                "<image",
                "<foreignObject",
            ] {
                assert!(!svg.contains(banned), "{category} has {banned}");
            }
        }
    }

    #[test]
    fn initials_are_two_letters_at_most() {
        assert_eq!(initials("Ethiopia Yirgacheffe"), "EY");
        assert_eq!(initials("Espresso Cups, pair"), "EC");
        assert_eq!(initials("café"), "C");
        assert_eq!(initials("  "), "");
    }
}
