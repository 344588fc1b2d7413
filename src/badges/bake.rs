//! Open Badges baking (Baking Specification 2.0): the assertion carried inside the image.
//!
//! PNG: one uncompressed `iTXt` chunk with keyword `openbadges`, inserted right after
//! `IHDR` (any older one is dropped). SVG: an `<openbadges:assertion verify="URL">` element,
//! the first child of `<svg>`, with the assertion JSON in CDATA and the `openbadges`
//! namespace declared on the root.
//!
//! Open Badges 3.0 bakes a signed credential the same way under other names: the PNG
//! `iTXt` keyword `openbadgecredential`, and an `<openbadges:credential>` element (namespace
//! `https://purl.imsglobal.org/ob/v3p0`) holding the credential JSON in CDATA.

use std::sync::{Arc, Mutex};

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// The PNG keyword of an Open Badges 2.0 assertion.
pub const OB2_KEYWORD: &str = "openbadges";
/// The PNG keyword of an Open Badges 3.0 credential.
pub const OB3_KEYWORD: &str = "openbadgecredential";
/// The SVG namespace of Open Badges 3.0 baking.
pub const OB3_NAMESPACE: &str = "https://purl.imsglobal.org/ob/v3p0";

/// Bakes `payload` (the assertion JSON or its URL) into a PNG.
pub fn bake_png(png: &[u8], payload: &str) -> Result<Vec<u8>, String> {
    bake_png_as(png, OB2_KEYWORD, payload)
}

/// Bakes `payload` into a PNG under `keyword`; any badge already baked in it, of either
/// version, is dropped, so an image carries one.
pub fn bake_png_as(png: &[u8], keyword: &str, payload: &str) -> Result<Vec<u8>, String> {
    if !png.starts_with(PNG_SIGNATURE) {
        return Err("not a PNG".into());
    }
    let mut out = Vec::with_capacity(png.len() + payload.len() + 64);
    out.extend_from_slice(PNG_SIGNATURE);
    let mut pos = 8;
    let mut inserted = false;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes([png[pos], png[pos + 1], png[pos + 2], png[pos + 3]]) as usize;
        let end = pos + 12 + len;
        if end > png.len() {
            return Err("the PNG is truncated".into());
        }
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        let is_old_badge = kind == b"iTXt"
            && [OB2_KEYWORD, OB3_KEYWORD]
                .iter()
                .any(|k| data.starts_with(k.as_bytes()) && data.get(k.len()) == Some(&0));
        if !is_old_badge {
            out.extend_from_slice(&png[pos..end]);
        }
        if kind == b"IHDR" && !inserted {
            write_itxt(&mut out, keyword, payload);
            inserted = true;
        }
        pos = end;
        if kind == b"IEND" {
            break;
        }
    }
    if !inserted {
        return Err("the PNG has no IHDR chunk".into());
    }
    Ok(out)
}

fn write_itxt(out: &mut Vec<u8>, keyword: &str, text: &str) {
    // keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty translated keyword, NUL, text
    let mut data = Vec::with_capacity(text.len() + 32);
    data.extend_from_slice(keyword.as_bytes());
    data.extend_from_slice(b"\0\0\0\0\0");
    data.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(b"iTXt");
    out.extend_from_slice(&data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Reads the `openbadges` iTXt payload of a PNG, if any.
pub fn unbake_png(png: &[u8]) -> Option<String> {
    unbake_png_as(png, OB2_KEYWORD)
}

/// Reads the iTXt payload under `keyword` of a PNG, if any.
pub fn unbake_png_as(png: &[u8], keyword: &str) -> Option<String> {
    let mut pos = 8;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().ok()?) as usize;
        let data = png.get(pos + 8..pos + 8 + len)?;
        if &png[pos + 4..pos + 8] == b"iTXt"
            && data.starts_with(keyword.as_bytes())
            && data.get(keyword.len()) == Some(&0)
        {
            let rest = data.get(keyword.len() + 1..)?;
            // compression flag, method, language\0, translated\0, text
            let rest = rest.get(2..)?;
            let lang_end = rest.iter().position(|b| *b == 0)?;
            let rest = &rest[lang_end + 1..];
            let tr_end = rest.iter().position(|b| *b == 0)?;
            return String::from_utf8(rest[tr_end + 1..].to_vec()).ok();
        }
        pos += 12 + len;
    }
    None
}

/// JSON safe inside CDATA: `>` is written as `\u003e`, which JSON parsers read back as `>`,
/// so the text can never contain `]]>`.
pub fn cdata_safe_json(json: &str) -> String {
    json.replace('>', "\\u003e")
}

/// Bakes an assertion into an SVG image.
pub fn bake_svg(svg: &str, assertion_url: &str, assertion_json: &str) -> Result<String, String> {
    let element = format!(
        "<openbadges:assertion verify=\"{}\"><![CDATA[{}]]></openbadges:assertion>",
        super::art::xml_escape(assertion_url),
        cdata_safe_json(assertion_json)
    );
    insert_first(svg, "http://openbadges.org", &element)
}

/// Bakes a signed Open Badges 3.0 credential into an SVG image.
pub fn bake_svg_credential(svg: &str, credential_json: &str) -> Result<String, String> {
    let element =
        format!("<openbadges:credential><![CDATA[{}]]></openbadges:credential>", cdata_safe_json(credential_json));
    insert_first(svg, OB3_NAMESPACE, &element)
}

/// Reads the credential JSON of an SVG baked with [`bake_svg_credential`].
pub fn unbake_svg_credential(svg: &str) -> Option<String> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(svg, opts).ok()?;
    let node = doc.root_element().children().find(|n| {
        n.is_element() && n.tag_name().name() == "credential" && n.tag_name().namespace() == Some(OB3_NAMESPACE)
    })?;
    Some(node.text()?.trim().to_string())
}

/// Puts `element` first inside the `<svg>` root and declares the `openbadges` prefix as
/// `namespace` there.
fn insert_first(svg: &str, namespace: &str, element: &str) -> Result<String, String> {
    let start = svg.find("<svg").ok_or("not an SVG image")?;
    let open_end = start + svg[start..].find('>').ok_or("the SVG root tag is not closed")?;
    let self_closing = svg[..open_end].ends_with('/');
    let tag_end = if self_closing { open_end - 1 } else { open_end };
    let mut root = svg[start..tag_end].to_string();
    // Stored artwork is written by Cairn and never declares the prefix itself.
    if !root.contains("xmlns:openbadges") {
        root.push_str(&format!(" xmlns:openbadges=\"{namespace}\""));
    }
    let mut out = String::with_capacity(svg.len() + element.len() + 64);
    out.push_str(&svg[..start]);
    out.push_str(&root);
    out.push('>');
    out.push_str(element);
    if self_closing {
        out.push_str("</svg>");
        out.push_str(&svg[open_end + 1..]);
    } else {
        out.push_str(&svg[open_end + 1..]);
    }
    Ok(out)
}

/// Rasterises SVG artwork to a PNG of `size`×`size` pixels (fitting, centred).
pub fn rasterize(svg: &[u8], size: u32) -> Result<Vec<u8>, String> {
    // The same fonts and the same resolver as the artwork rewrite: nothing is read from a file
    // or the network, whatever the SVG names.
    let opt = resvg::usvg::Options {
        fontdb: super::art::fonts(),
        image_href_resolver: super::art::embedded_images_only(),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_data(svg, &opt).map_err(|e| format!("the SVG cannot be drawn: {e}"))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size, size).ok_or("bad size")?;
    let s = tree.size();
    let scale = (size as f32 / s.width()).min(size as f32 / s.height());
    let dx = (size as f32 - s.width() * scale) / 2.0;
    let dy = (size as f32 - s.height() * scale) / 2.0;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale).post_translate(dx, dy),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| e.to_string())
}

/// (task id, last change) → rasterised PNG.
type Rasters = std::collections::HashMap<(i64, i64), Arc<Vec<u8>>>;

/// Rasterised artwork per (task id, last change), so an award does not redraw the badge.
#[derive(Default)]
pub struct RasterCache {
    entries: Mutex<Rasters>,
}

impl RasterCache {
    pub fn get_or_render(&self, key: (i64, i64), svg: &[u8]) -> Result<Arc<Vec<u8>>, String> {
        if let Some(hit) = self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let png = Arc::new(rasterize(svg, super::art::BAKED_SIDE)?);
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 1000 {
            map.clear();
        }
        map.insert(key, png.clone());
        Ok(png)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rasterising_never_reads_an_image_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let red = dir.path().join("red.svg");
        std::fs::write(
            &red,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>"#,
        )
        .unwrap();
        for href in [red.display().to_string(), format!("file://{}", red.display())] {
            let svg = format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="{href}" width="8" height="8"/></svg>"#
            );
            let png = rasterize(svg.as_bytes(), 8).unwrap();
            let drawn = image::load_from_memory(&png).unwrap().to_rgba8();
            assert!(drawn.pixels().all(|p| p.0[3] == 0), "{href} was read and drawn into the badge");
        }
    }

    #[test]
    fn png_baking_round_trips_and_replaces_an_old_chunk() {
        let svg = super::super::art::default_svg("Data", "E-Learning 3.0", "#el30-data");
        let png = rasterize(svg.as_bytes(), 64).unwrap();
        let baked = bake_png(&png, "{\"id\":\"https://x.org/a/1\"}").unwrap();
        assert_eq!(unbake_png(&baked).as_deref(), Some("{\"id\":\"https://x.org/a/1\"}"));
        let rebaked = bake_png(&baked, "second").unwrap();
        assert_eq!(unbake_png(&rebaked).as_deref(), Some("second"));
        assert_eq!(rebaked.windows(10).filter(|w| w == b"openbadges").count(), 1);
        image::load_from_memory(&rebaked).expect("still a valid PNG");
    }

    #[test]
    fn svg_baking_puts_the_assertion_first_with_cdata_safe_json() {
        let svg = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"><circle r=\"1\"/></svg>";
        let baked = bake_svg(svg, "https://x.org/a/1", "{\"n\":\"a]]>b\"}").unwrap();
        assert!(baked.contains(
            "xmlns:openbadges=\"http://openbadges.org\"><openbadges:assertion verify=\"https://x.org/a/1\"><![CDATA["
        ));
        assert!(!baked.contains("a]]>b"));
        let doc = roxmltree::Document::parse(&baked).unwrap();
        let first = doc.root_element().first_element_child().unwrap();
        assert_eq!(first.tag_name().name(), "assertion");
        let json: serde_json::Value = serde_json::from_str(first.text().unwrap()).unwrap();
        assert_eq!(json["n"], "a]]>b");
        let closed = bake_svg("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "u", "{}").unwrap();
        roxmltree::Document::parse(&closed).unwrap();
    }
}
