//! The normal form of a request path, checked once, before any routing.
//!
//! A path is routed, authorized and forwarded as it arrived, so it must mean one thing to every
//! component that reads it: the gateway choosing an upstream, the upstream's router, a proxy in
//! between. A path that some decoder would turn into another path (dot segments, an encoded or
//! doubled slash, a backslash, double percent-encoding, an overlong UTF-8 sequence, a NUL) is
//! refused with 400 instead of being repaired: repairing is where the decoders disagree, and
//! nothing a well-behaved client sends needs it.
//!
//! In normal form a path
//! - starts with `/` and has no empty segment (no `//`, no trailing `/` except the root);
//! - has no `.` or `..` segment;
//! - holds only unreserved characters, `/` and the sub-delimiters `! $ & ' ( ) * + , =`, `:`, `@`
//!   raw (no `;`, which some servers read as a path parameter, and no `\`);
//! - percent-encodes only what must be encoded: never an unreserved character, `/`, `\`, `.`,
//!   `%`, `;` or a control character; and what it encodes decodes to valid UTF-8.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Problem;

/// Why a path is not in normal form, in words a client developer can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotNormal {
    NotAbsolute,
    EmptySegment,
    DotSegment,
    ForbiddenCharacter(char),
    BadEscape,
    NeedlessEscape(char),
    ForbiddenEscape(u8),
    NotUtf8,
}

impl std::fmt::Display for NotNormal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("the path must start with `/`"),
            Self::EmptySegment => {
                f.write_str("the path has an empty segment (`//` or a trailing `/`)")
            }
            Self::DotSegment => f.write_str("the path has a `.` or `..` segment"),
            Self::ForbiddenCharacter(c) => {
                write!(f, "the path holds {c:?}, which nubo paths never contain")
            }
            Self::BadEscape => f.write_str("the path has a `%` not followed by two hex digits"),
            Self::NeedlessEscape(c) => {
                write!(
                    f,
                    "the path percent-encodes {c:?}, which must be sent as it is"
                )
            }
            Self::ForbiddenEscape(b) => write!(
                f,
                "the path percent-encodes byte 0x{b:02X} (a slash, backslash, dot, percent sign, \
                 semicolon or control character), which nubo paths never contain"
            ),
            Self::NotUtf8 => f.write_str("the path's percent-encoded bytes are not valid UTF-8"),
        }
    }
}

/// Checks that `path` (as received, still percent-encoded) is in normal form.
pub fn check(path: &str) -> Result<(), NotNormal> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(NotNormal::NotAbsolute);
    }
    if path == "/" {
        return Ok(());
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(NotNormal::BadEscape)?;
                let byte = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))
                    .ok_or(NotNormal::BadEscape)?;
                if is_unreserved(byte) && byte != b'.' {
                    return Err(NotNormal::NeedlessEscape(char::from(byte)));
                }
                if matches!(byte, b'/' | b'\\' | b'.' | b'%' | b';') || byte.is_ascii_control() {
                    return Err(NotNormal::ForbiddenEscape(byte));
                }
                decoded.push(byte);
                i += 3;
            }
            b if is_unreserved(b) || b == b'/' || is_allowed_delimiter(b) => {
                decoded.push(b);
                i += 1;
            }
            b => {
                let c = if b.is_ascii() {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                };
                return Err(NotNormal::ForbiddenCharacter(c));
            }
        }
    }
    // Rust's UTF-8 check refuses overlong forms and surrogates, the classic ways to smuggle a
    // `.` or `/` past a decoder that checks bytes.
    let decoded = std::str::from_utf8(&decoded).map_err(|_| NotNormal::NotUtf8)?;
    for segment in decoded[1..].split('/') {
        match segment {
            "" => return Err(NotNormal::EmptySegment),
            "." | ".." => return Err(NotNormal::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_allowed_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
    )
}

/// The layer: a request whose path is not in normal form is answered 400 before anything else
/// sees it.
pub async fn refuse_abnormal(request: Request, next: Next) -> Response {
    match check(request.uri().path()) {
        Ok(()) => next.run(request).await,
        Err(why) => Problem::new(StatusCode::BAD_REQUEST, why.to_string())
            .with_kind("path-not-normal")
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_nubo_serves_are_normal() {
        for path in [
            "/",
            "/api/v1/products",
            "/api/v1/products/0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
            "/api/v1/cart/lines/TEA-001",
            "/api/v1/products/search",
            "/.well-known/jwks.json",
            "/internal/v1/reservations/0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b/commit",
            "/api/v1/categories/green%20tea",
            "/api/v1/categories/th%C3%A9",
            "/storefront.js",
        ] {
            assert_eq!(check(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn every_spelling_of_a_way_out_is_refused() {
        for (path, why) in [
            ("", NotNormal::NotAbsolute),
            ("api/v1/products", NotNormal::NotAbsolute),
            ("*", NotNormal::NotAbsolute),
            ("/api/v1/../internal", NotNormal::DotSegment),
            ("/api/v1/./products", NotNormal::DotSegment),
            ("/api/v1/products/..", NotNormal::DotSegment),
            ("/api/v1/%2e%2e/internal", NotNormal::ForbiddenEscape(b'.')),
            ("/api/v1/%2E%2E/internal", NotNormal::ForbiddenEscape(b'.')),
            ("/api/v1/.%2e/internal", NotNormal::ForbiddenEscape(b'.')),
            (
                "/api/v1/%252e%252e/internal",
                NotNormal::ForbiddenEscape(b'%'),
            ),
            ("/api/v1/..%2finternal", NotNormal::ForbiddenEscape(b'/')),
            ("/api/v1/..%2Finternal", NotNormal::ForbiddenEscape(b'/')),
            ("/api/v1/..%5cinternal", NotNormal::ForbiddenEscape(b'\\')),
            ("/api/v1/..\\internal", NotNormal::ForbiddenCharacter('\\')),
            ("/api/v1/..;/internal", NotNormal::ForbiddenCharacter(';')),
            ("/api/v1/products;x=1", NotNormal::ForbiddenCharacter(';')),
            ("/api/v1/%3b/internal", NotNormal::ForbiddenEscape(b';')),
            ("/api/v1//internal", NotNormal::EmptySegment),
            ("//internal/v1/carts", NotNormal::EmptySegment),
            ("/api/v1/products/", NotNormal::EmptySegment),
            ("/api/v1/products%00", NotNormal::ForbiddenEscape(0)),
            ("/api/v1/%0a", NotNormal::ForbiddenEscape(b'\n')),
            ("/api/v1/%c0%ae%c0%ae/internal", NotNormal::NotUtf8),
            ("/api/v1/%e0%80%ae/internal", NotNormal::NotUtf8),
            ("/api/v1/%ed%a0%80", NotNormal::NotUtf8),
            ("/api/v1/%ff", NotNormal::NotUtf8),
            ("/api/v1/%41pi", NotNormal::NeedlessEscape('A')),
            ("/api/v1/%2", NotNormal::BadEscape),
            ("/api/v1/%zz", NotNormal::BadEscape),
            ("/api/v1/%+1", NotNormal::BadEscape),
            (
                "/api/v1/caf\u{e9}",
                NotNormal::ForbiddenCharacter('\u{fffd}'),
            ),
        ] {
            assert_eq!(check(path), Err(why), "{path}");
        }
    }
}
