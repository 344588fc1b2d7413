//! Badge artwork: checking uploaded PNG/SVG images and drawing the default badge.
//!
//! Uploads are identified by their bytes, never by file name or declared type. A PNG must
//! decode fully within the dimension limits; an SVG must parse as XML with an `<svg>` root,
//! and is stored as Cairn re-writes it (drawing only), because it is later served from
//! Cairn's own origin and baked into credentials.

use std::io::Cursor;
use std::sync::{Arc, LazyLock};

use resvg::usvg;

/// Largest upload accepted, in bytes.
pub const MAX_BYTES: usize = 512 * 1024;
/// Largest width or height of a PNG, in pixels.
pub const MAX_SIDE: u32 = 1024;
/// Smallest width or height of a PNG, in pixels.
pub const MIN_SIDE: u32 = 32;

/// The two artwork formats Open Badges baking supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtKind {
    Png,
    Svg,
}

impl ArtKind {
    pub fn mime(self) -> &'static str {
        match self {
            ArtKind::Png => "image/png",
            ArtKind::Svg => "image/svg+xml",
        }
    }

    pub fn from_mime(mime: &str) -> Option<ArtKind> {
        match mime {
            "image/png" => Some(ArtKind::Png),
            "image/svg+xml" => Some(ArtKind::Svg),
            _ => None,
        }
    }
}

/// Artwork that passed [`check`].
#[derive(Debug, Clone)]
pub struct Artwork {
    pub bytes: Vec<u8>,
    pub kind: ArtKind,
    /// What the artwork lost on the way, such as text that no font could draw: stored all the
    /// same, and said to the person who uploaded it.
    pub warning: Option<String>,
}

/// Checks uploaded bytes and returns the artwork, or a message saying what is wrong.
pub fn check(bytes: Vec<u8>) -> Result<Artwork, String> {
    if bytes.is_empty() {
        return Err("the uploaded file is empty".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!("the image is {} KiB; the limit is {} KiB", bytes.len().div_ceil(1024), MAX_BYTES / 1024));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        check_png(&bytes)?;
        return Ok(Artwork { bytes, kind: ArtKind::Png, warning: None });
    }
    if let Some(other) = sniff_other(&bytes) {
        return Err(format!("this is a {other} file; badge images must be PNG or SVG"));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) if looks_like_xml(text) => {
            let (bytes, warning) = rewrite_svg(text)?;
            Ok(Artwork { bytes, kind: ArtKind::Svg, warning })
        }
        _ => Err("this file is neither a PNG nor an SVG image; badge images must be PNG or SVG".into()),
    }
}

fn sniff_other(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\xff\xd8\xff") {
        Some("JPEG")
    } else if b.starts_with(b"GIF8") {
        Some("GIF")
    } else if b.len() > 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("WebP")
    } else if b.starts_with(b"%PDF") {
        Some("PDF")
    } else if b.starts_with(b"BM") && b.len() > 14 {
        Some("BMP")
    } else {
        None
    }
}

fn looks_like_xml(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('<')
}

fn check_png(bytes: &[u8]) -> Result<(), String> {
    // The header alone gives the dimensions; check them before decoding anything.
    let (w, h) = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png)
        .into_dimensions()
        .map_err(|e| format!("the PNG cannot be read ({e})"))?;
    if w > MAX_SIDE || h > MAX_SIDE || w < MIN_SIDE || h < MIN_SIDE {
        return Err(format!(
            "the PNG is {w}×{h} pixels; badge images must be between {MIN_SIDE} and {MAX_SIDE} pixels a side"
        ));
    }
    // Decode it all: a truncated or corrupt file must not pass on its header alone.
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| format!("the PNG is damaged or incomplete ({e})"))?;
    Ok(())
}

const SVG_NS: &str = "http://www.w3.org/2000/svg";
/// Largest width or height of an SVG, in user units.
const MAX_SVG_SIDE: f32 = 4096.0;
/// Largest raster image embedded in an SVG (decoded `data:` bytes).
pub const MAX_EMBEDDED_BYTES: usize = 256 * 1024;
/// Largest re-serialised SVG: `<use>` copies are written out in full, so a small file that
/// reuses itself many times could otherwise grow without bound.
const MAX_WRITTEN_BYTES: usize = 2 * 1024 * 1024;

/// The family every generic name (`serif`, `sans-serif`, `cursive`, `fantasy`) and every
/// family that no font has stands for: DejaVu Sans, bundled in the binary.
pub const FALLBACK_FAMILY: &str = "DejaVu Sans";
/// The family `monospace` stands for, bundled too.
pub const MONOSPACE_FAMILY: &str = "DejaVu Sans Mono";

/// The machine's fonts and the bundled DejaVu faces, so that text in artwork is drawn on any
/// machine: a named family the machine has is used; generic families and unknown names fall
/// back to the bundled faces (usvg tries the named families in order, then `serif`).
pub(crate) fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: LazyLock<Arc<usvg::fontdb::Database>> = LazyLock::new(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        for face in
            [dejavu::sans::regular(), dejavu::sans::bold(), dejavu::sans_mono::regular(), dejavu::sans_mono::bold()]
        {
            db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(face)));
        }
        db.set_serif_family(FALLBACK_FAMILY);
        db.set_sans_serif_family(FALLBACK_FAMILY);
        db.set_cursive_family(FALLBACK_FAMILY);
        db.set_fantasy_family(FALLBACK_FAMILY);
        db.set_monospace_family(MONOSPACE_FAMILY);
        Arc::new(db)
    });
    FONTS.clone()
}

/// Text elements with something to draw, in the source document.
fn text_in_source(doc: &roxmltree::Document) -> usize {
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text" && n.tag_name().namespace() == Some(SVG_NS))
        .filter(|n| n.descendants().any(|d| d.is_text() && !d.text().unwrap_or_default().trim().is_empty()))
        .count()
}

/// Text nodes that usvg could lay out with a font, in the tree it built.
fn text_drawn(group: &usvg::Group) -> usize {
    group
        .children()
        .iter()
        .map(|n| match n {
            usvg::Node::Group(g) => text_drawn(g),
            usvg::Node::Text(t) => usize::from(!t.flattened().children().is_empty()),
            _ => 0,
        })
        .sum()
}

/// Only embedded PNGs, bounded in bytes and pixels; nothing is ever loaded from a file or
/// the network.
pub(crate) fn embedded_images_only() -> usvg::ImageHrefResolver<'static> {
    usvg::ImageHrefResolver {
        resolve_data: Box::new(|mime, data, _| {
            let png = mime == "image/png" || data.starts_with(b"\x89PNG\r\n\x1a\n");
            if !png || data.len() > MAX_EMBEDDED_BYTES {
                return None;
            }
            let (w, h) = image::ImageReader::with_format(Cursor::new(data.as_slice()), image::ImageFormat::Png)
                .into_dimensions()
                .ok()?;
            (w <= MAX_SIDE * 4 && h <= MAX_SIDE * 4).then_some(usvg::ImageKind::PNG(data))
        }),
        resolve_string: Box::new(|_, _| None),
    }
}

/// Parses the SVG and writes it out again from the tree [usvg] built (the same library that
/// later rasterises it). The writer knows only drawing: shapes, paths, text, gradients,
/// patterns, clips, masks, filters and embedded PNGs. Scripts, event handlers, `<style>`
/// (its rules are applied first), animation, foreign content, links and every outside
/// reference are simply not written, so the stored artwork is inert by construction
/// rather than by a list of things to refuse.
///
/// Returns a warning with the bytes when some of the document's text could not be drawn.
fn rewrite_svg(text: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let text = crate::html::xml::without_dtd(text).map_err(|e| format!("the SVG cannot be used: {e}"))?;
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 200_000, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(&text, opts)
        .map_err(|e| format!("the SVG is not well-formed XML ({e})"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" || root.tag_name().namespace() != Some(SVG_NS) {
        return Err("the file is XML but not an SVG image (its root element must be <svg> in the SVG namespace)".into());
    }
    let options = usvg::Options { fontdb: fonts(), image_href_resolver: embedded_images_only(), ..Default::default() };
    let tree = usvg::Tree::from_xmltree(&doc, &options).map_err(|e| format!("the SVG cannot be read ({e})"))?;
    let size = tree.size();
    if size.width() > MAX_SVG_SIDE || size.height() > MAX_SVG_SIDE {
        return Err(format!("the SVG is {}×{}; at most {MAX_SVG_SIDE} a side is allowed", size.width(), size.height()));
    }
    let written = tree.to_string(&usvg::WriteOptions { preserve_text: true, ..Default::default() });
    if written.len() > MAX_WRITTEN_BYTES {
        return Err("the SVG repeats its parts too many times to be stored; simplify the drawing".into());
    }
    let (texts, drawn) = (text_in_source(&doc), text_drawn(tree.root()));
    let warning = (drawn < texts).then(|| {
        format!(
            "{} of the image's {texts} text element(s) could not be drawn (no font has their letters, or they are \
             not shown); the badge shows them without that text — convert the text to paths in the drawing program",
            texts - drawn
        )
    });
    Ok((written.into_bytes(), warning))
}

/// Side, in pixels, of the PNG a badge is baked into: an SVG badge is drawn at this size.
pub const BAKED_SIDE: u32 = 400;

/// The PNG a learner will receive for this artwork, without the baked assertion (which does
/// not change its pixels): an uploaded PNG as it is, an SVG drawn as an award draws it.
pub fn preview_png(art: &Artwork) -> Result<Vec<u8>, String> {
    match art.kind {
        ArtKind::Png => Ok(art.bytes.clone()),
        ArtKind::Svg => super::bake::rasterize(&art.bytes, BAKED_SIDE),
    }
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Splits `text` into at most `max_lines` lines of about `width` characters, adding an
/// ellipsis when it had to cut.
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            last.push('…');
        }
    }
    lines
        .into_iter()
        .map(|l| if l.chars().count() > width + 2 { l.chars().take(width).collect::<String>() + "…" } else { l })
        .collect()
}

/// Draws the default badge: a medal showing the task title, the course name and the hashtag.
/// The colour is derived from the hashtag so that each task's badge is recognisable.
pub fn default_svg(task_title: &str, course_title: &str, hashtag: &str) -> String {
    let hue = hashtag.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 360;
    let title_lines = wrap(task_title, 16, 3);
    let course_lines = wrap(course_title, 22, 1);
    let mut text = String::new();
    let first_y = 190 - (title_lines.len() as i32 - 1) * 14;
    for (i, line) in title_lines.iter().enumerate() {
        text.push_str(&format!(
            "<text x=\"200\" y=\"{}\" font-size=\"26\" font-weight=\"700\">{}</text>",
            first_y + i as i32 * 30,
            xml_escape(line)
        ));
    }
    if let Some(course) = course_lines.first() {
        text.push_str(&format!("<text x=\"200\" y=\"120\" font-size=\"17\">{}</text>", xml_escape(course)));
    }
    format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"400\" viewBox=\"0 0 400 400\" ",
            "role=\"img\" aria-label=\"{label}\">",
            "<title>{label}</title>",
            "<circle cx=\"200\" cy=\"200\" r=\"190\" fill=\"hsl({hue},55%,30%)\"/>",
            "<circle cx=\"200\" cy=\"200\" r=\"170\" fill=\"none\" stroke=\"#ffffff\" stroke-width=\"6\" stroke-dasharray=\"2 10\"/>",
            "<circle cx=\"200\" cy=\"200\" r=\"150\" fill=\"hsl({hue},60%,40%)\"/>",
            "<g fill=\"#ffffff\" font-family=\"DejaVu Sans, Verdana, sans-serif\" text-anchor=\"middle\">",
            "{text}",
            "<text x=\"200\" y=\"300\" font-size=\"20\" font-family=\"DejaVu Sans Mono, monospace\">{tag}</text>",
            "</g></svg>"
        ),
        label = xml_escape(&format!("{task_title} — {course_title}")),
        hue = hue,
        text = text,
        tag = xml_escape(hashtag),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 30, 30, 255]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn a_real_png_within_limits_passes() {
        assert_eq!(check(png(64, 64)).unwrap().kind, ArtKind::Png);
    }

    #[test]
    fn oversized_tiny_truncated_and_foreign_files_are_refused() {
        assert!(check(png(2000, 64)).unwrap_err().contains("pixels"));
        assert!(check(png(8, 8)).unwrap_err().contains("pixels"));
        let mut cut = png(64, 64);
        cut.truncate(cut.len() / 2);
        assert!(check(cut).is_err());
        assert!(check(b"\xff\xd8\xff\xe0 jpeg".to_vec()).unwrap_err().contains("JPEG"));
        assert!(check(b"hello world".to_vec()).unwrap_err().contains("neither"));
        assert!(check(vec![b' '; MAX_BYTES + 1]).unwrap_err().contains("limit"));
    }

    #[test]
    fn svgs_are_rewritten_without_anything_active() {
        let ok = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle r="4"/></svg>"#;
        let art = check(ok.as_bytes().to_vec()).unwrap();
        assert_eq!(art.kind, ArtKind::Svg);
        assert!(String::from_utf8(art.bytes).unwrap().contains("<path"), "the circle is drawn");
        let hostile = r##"<?xml version="1.0"?>
            <!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
            <svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10" onload="alert(1)">
            <style>rect { fill: url(https://evil.example/p.svg#x); } @import url(https://evil.example/s.css);</style>
            <script>alert(1)</script>
            <a href="javascript:alert(2)"><rect width="5" height="5" style="fill:url(https://evil.example/q#y)"/></a>
            <set attributeName="href" to="javascript:alert(3)"/>
            <animate attributeName="xlink:href" values="javascript:alert(4)"/>
            <image href="https://evil.example/x.png" width="4" height="4"/>
            <image xlink:href="/etc/passwd" width="4" height="4"/>
            <foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>
            <circle r="3" fill="red"/></svg>"##;
        let out = String::from_utf8(check(hostile.as_bytes().to_vec()).unwrap().bytes).unwrap();
        for gone in [
            "script",
            "alert",
            "style",
            "evil",
            "url(h",
            "<set",
            "<animate",
            "javascript",
            "passwd",
            "foreign",
            "onload",
        ] {
            assert!(!out.contains(gone), "{gone} survived: {out}");
        }
        assert!(out.contains("<path"), "{out}");
        for bad in [
            r#"<html><body/></html>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg"><unclosed></svg>"#,
            r#"<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="10000" height="10"/>"#,
        ] {
            assert!(check(bad.as_bytes().to_vec()).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_pngs_are_kept_and_bounded() {
        use base64::Engine;
        let small = base64::engine::general_purpose::STANDARD.encode(png(64, 64));
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><image width="64" height="64" href="data:image/png;base64,{small}"/></svg>"#
        );
        let out = String::from_utf8(check(svg.into_bytes()).unwrap().bytes).unwrap();
        assert!(out.contains("data:image/png;base64,"), "{out}");
        // A PNG claiming 20,000 pixels a side is left out, not decoded.
        let mut huge = png(64, 64);
        huge[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        let huge = base64::engine::general_purpose::STANDARD.encode(huge);
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><image width="64" height="64" href="data:image/png;base64,{huge}"/></svg>"#
        );
        let out = String::from_utf8(check(svg.into_bytes()).unwrap().bytes).unwrap();
        assert!(!out.contains("<image"), "{out}");
    }

    #[test]
    fn the_default_badge_is_a_valid_inert_svg_with_escaped_text() {
        let svg = default_svg("Data & <Graphs>", "E-Learning 3.0", "#el30-data");
        check(svg.clone().into_bytes()).unwrap();
        assert!(svg.contains("Data &amp; &lt;Graphs&gt;"));
        assert!(svg.contains("#el30-data"));
    }
}
