//! An admin's photo of a product, from the bytes uploaded to the widths the storefront shows.
//! Decoding is bounded before any pixel is allocated (a few bytes of PNG can declare a picture
//! of billions of pixels), runs one or two at a time off the async threads, and never enlarges:
//! a photo narrower than a width is stored at its own width instead.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

/// The widths a photo is stored at (the storefront's `srcset`), unless it is narrower.
pub const WIDTHS: [u32; 3] = [320, 640, 1280];
/// The widest or tallest photo decoded at all.
pub const MAX_SIDE: u32 = 8192;
/// The most memory one decoded photo may take (8-bit RGB: about 44 megapixels).
pub const MAX_DECODED_BYTES: u64 = 128 << 20;
/// The largest upload read, whatever the service's body limit would let through.
pub const MAX_UPLOAD_BYTES: usize = 8 << 20;
/// JPEG quality of the stored widths: small files, no visible blocks at these sizes.
const JPEG_QUALITY: u8 = 82;

/// What an upload may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    /// The format a `Content-Type` names (parameters and case ignored), if one of ours.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("image/png") {
            Some(Self::Png)
        } else if essence.eq_ignore_ascii_case("image/jpeg") {
            Some(Self::Jpeg)
        } else {
            None
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
        }
    }
}

/// One stored width of a photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Why an upload cannot be a product's photo.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("the body is not a {0} image that can be read: {1}")]
    Undecodable(&'static str, String),
    #[error(
        "the image is too large: at most {MAX_SIDE} pixels a side and {} MiB decoded",
        MAX_DECODED_BYTES >> 20
    )]
    TooLarge,
    #[error("the image could not be encoded: {0}")]
    Encoding(#[source] ImageError),
}

/// Decodes `bytes` as `format` within the limits, turns it upright (a camera's EXIF
/// orientation), and encodes it at each of [`WIDTHS`] it is at least as wide as, and at its own
/// width if narrower than the widest: JPEG, or PNG when the photo has transparent pixels.
/// Narrowest first.
pub fn variants(bytes: &[u8], format: Format) -> Result<Vec<Variant>, PhotoError> {
    let photo = decode(bytes, format)?;
    let transparent = photo.color().has_alpha() && !is_opaque(&photo);
    let widest = photo.width().min(WIDTHS[WIDTHS.len() - 1]);
    let mut widths: Vec<u32> = WIDTHS.iter().copied().filter(|w| *w < widest).collect();
    widths.push(widest);
    let mut out = Vec::with_capacity(widths.len());
    // The widest first from the original; each narrower from that one, which is cheaper and
    // still at least twice as wide as what it makes.
    let base = resized(&photo, widest, transparent);
    drop(photo);
    for width in widths.iter().rev() {
        let image = if *width == widest {
            base.clone()
        } else {
            resized(&base, *width, transparent)
        };
        out.push(encode(&image, transparent)?);
    }
    out.reverse();
    Ok(out)
}

fn decode(bytes: &[u8], format: Format) -> Result<DynamicImage, PhotoError> {
    let name = match format {
        Format::Png => "PNG",
        Format::Jpeg => "JPEG",
    };
    let undecodable = |e: ImageError| match e {
        ImageError::Limits(_) => PhotoError::TooLarge,
        other => PhotoError::Undecodable(name, other.to_string()),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    // Checked here too, before the pixels are allocated: not every decoder counts its output
    // against `max_alloc`.
    if decoder.total_bytes() > MAX_DECODED_BYTES {
        return Err(PhotoError::TooLarge);
    }
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut photo = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    photo.apply_orientation(orientation);
    Ok(photo)
}

/// Whether every pixel is fully opaque (a PNG with an alpha channel it does not use is stored
/// as JPEG, which is much smaller for a photo).
fn is_opaque(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageLumaA8(i) => i.pixels().all(|p| p.0[1] == u8::MAX),
        DynamicImage::ImageRgba8(i) => i.pixels().all(|p| p.0[3] == u8::MAX),
        DynamicImage::ImageLumaA16(i) => i.pixels().all(|p| p.0[1] == u16::MAX),
        DynamicImage::ImageRgba16(i) => i.pixels().all(|p| p.0[3] == u16::MAX),
        other => !other.color().has_alpha(),
    }
}

/// `image` at `width` (height in proportion), as 8-bit RGB, or RGBA when `transparent`.
fn resized(image: &DynamicImage, width: u32, transparent: bool) -> DynamicImage {
    let scaled = if width == image.width() {
        image.clone()
    } else {
        let height = (u64::from(image.height()) * u64::from(width) + u64::from(image.width()) / 2)
            / u64::from(image.width());
        let height = u32::try_from(height.max(1)).unwrap_or(u32::MAX);
        image.resize_exact(width, height, FilterType::Lanczos3)
    };
    match (transparent, scaled) {
        (true, rgba @ DynamicImage::ImageRgba8(_)) => rgba,
        (true, other) => DynamicImage::ImageRgba8(other.to_rgba8()),
        (false, rgb @ DynamicImage::ImageRgb8(_)) => rgb,
        (false, other) => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

fn encode(image: &DynamicImage, transparent: bool) -> Result<Variant, PhotoError> {
    let mut bytes = Vec::new();
    let content_type = if transparent {
        let encoder =
            PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, PngFilter::Adaptive);
        image
            .write_with_encoder(encoder)
            .map_err(PhotoError::Encoding)?;
        "image/png"
    } else {
        let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
        image
            .write_with_encoder(encoder)
            .map_err(PhotoError::Encoding)?;
        "image/jpeg"
    };
    Ok(Variant {
        width: image.width(),
        height: image.height(),
        content_type,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    fn png(image: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    fn photo(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    #[test]
    fn a_large_photo_is_stored_at_each_width_and_never_enlarged() {
        let stored = variants(&png(photo(2000, 1000)), Format::Png).unwrap();
        let sizes: Vec<_> = stored.iter().map(|v| (v.width, v.height)).collect();
        assert_eq!(sizes, [(320, 160), (640, 320), (1280, 640)]);
        assert!(stored.iter().all(|v| v.content_type == "image/jpeg"));

        let small = variants(&png(photo(500, 400)), Format::Png).unwrap();
        let sizes: Vec<_> = small.iter().map(|v| (v.width, v.height)).collect();
        assert_eq!(sizes, [(320, 256), (500, 400)]);

        let tiny = variants(&png(photo(100, 50)), Format::Png).unwrap();
        assert_eq!(tiny.len(), 1);
        assert_eq!((tiny[0].width, tiny[0].height), (100, 50));
    }

    #[test]
    fn transparency_is_kept_as_png_and_unused_alpha_becomes_jpeg() {
        let see_through = RgbaImage::from_fn(400, 400, |x, _| Rgba([200, 10, 10, (x % 256) as u8]));
        let stored = variants(&png(DynamicImage::ImageRgba8(see_through)), Format::Png).unwrap();
        assert!(stored.iter().all(|v| v.content_type == "image/png"));
        let decoded = image::load_from_memory(&stored[0].bytes).unwrap();
        assert!(decoded.color().has_alpha());

        let opaque = RgbaImage::from_pixel(400, 400, Rgba([1, 2, 3, 255]));
        let stored = variants(&png(DynamicImage::ImageRgba8(opaque)), Format::Png).unwrap();
        assert!(stored.iter().all(|v| v.content_type == "image/jpeg"));
    }

    #[test]
    fn a_jpeg_round_trips() {
        let mut jpeg = Vec::new();
        photo(700, 700)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, 90))
            .unwrap();
        let stored = variants(&jpeg, Format::Jpeg).unwrap();
        let widths: Vec<_> = stored.iter().map(|v| v.width).collect();
        assert_eq!(widths, [320, 640, 700]);
        let decoded = image::load_from_memory(&stored[0].bytes).unwrap();
        assert_eq!(decoded.width(), 320);
    }

    #[test]
    fn bytes_of_another_kind_or_none_are_refused() {
        let png_bytes = png(photo(10, 10));
        assert!(matches!(
            variants(&png_bytes, Format::Jpeg),
            Err(PhotoError::Undecodable("JPEG", _))
        ));
        assert!(matches!(
            variants(b"not an image", Format::Png),
            Err(PhotoError::Undecodable("PNG", _))
        ));
        assert!(matches!(
            variants(&[], Format::Png),
            Err(PhotoError::Undecodable(..))
        ));
    }

    #[test]
    fn a_content_type_names_a_format() {
        assert_eq!(Format::from_content_type("image/png"), Some(Format::Png));
        assert_eq!(
            Format::from_content_type("Image/JPEG; q=1"),
            Some(Format::Jpeg)
        );
        assert_eq!(Format::from_content_type("image/gif"), None);
        assert_eq!(Format::from_content_type("image/pngx"), None);
    }
}
