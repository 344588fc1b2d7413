//! QR codes drawn on the server as inline SVG, so a printed certificate leads back to its
//! verification page without any image being fetched.

use qrcode::QrCode;
use qrcode::render::svg;

use super::charts::escape;

/// `url` as a QR code: an inline `<svg>` that is an image named for assistive technology, or
/// `None` when the text is too long for a QR code.
pub fn svg(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    let drawn = code
        .render::<svg::Color>()
        .min_dimensions(160, 160)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .quiet_zone(true)
        .build();
    // The renderer writes a standalone document; inline SVG in HTML takes no XML declaration.
    let start = drawn.find("<svg")?;
    let label = escape(&format!("QR code of this page's address, {url}"));
    let body = drawn.get(start + "<svg".len()..)?;
    let open_end = body.find('>')?;
    Some(format!(
        "<svg class=\"qr\" role=\"img\" aria-label=\"{label}\"{}><title>{label}</title>{}",
        body.get(..open_end)?.replace(" version=\"1.1\"", ""),
        body.get(open_end..)?.strip_prefix('>')?
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_qr_code_is_an_inline_svg_image_named_by_the_escaped_address() {
        let s = svg("https://example.edu/assertions/abc?x=1&y=2").unwrap();
        assert!(s.starts_with("<svg class=\"qr\" role=\"img\" aria-label=\"QR code of this page&#39;s address, "));
        assert!(s.contains(
            "<title>QR code of this page&#39;s address, https://example.edu/assertions/abc?x=1&amp;y=2</title>"
        ));
        assert!(!s.contains("<?xml") && s.ends_with("</svg>") && s.contains("<path"));
        assert_eq!(s.matches("<svg").count(), 1);
    }

    #[test]
    fn text_too_long_for_a_qr_code_gives_none() {
        assert!(svg(&"x".repeat(8_000)).is_none());
    }
}
