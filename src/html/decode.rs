//! Turning bytes and character references into text.

use encoding_rs::Encoding;

/// Decodes `body` to UTF-8: a byte-order mark first, then the XML declaration, then the
/// HTTP `charset`, then UTF-8 when the bytes are valid UTF-8, else windows-1252.
pub fn decode(body: &[u8], http_charset: Option<&str>) -> String {
    if let Some((enc, bom)) = Encoding::for_bom(body) {
        return enc.decode_without_bom_handling(&body[bom..]).0.into_owned();
    }
    let declared = xml_declared_encoding(body).and_then(|l| Encoding::for_label(l.as_bytes()));
    // UTF-16 declared without a BOM cannot be right for an ASCII-readable declaration.
    let declared = declared.filter(|e| *e != encoding_rs::UTF_16LE && *e != encoding_rs::UTF_16BE);
    let enc = declared.or_else(|| http_charset.and_then(|c| Encoding::for_label(c.trim().as_bytes())));
    match enc {
        Some(enc) => enc.decode_without_bom_handling(body).0.into_owned(),
        None => match std::str::from_utf8(body) {
            Ok(s) => s.to_string(),
            Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(body).0.into_owned(),
        },
    }
}

/// The `encoding` of an `<?xml …?>` declaration at the start of the document.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start();
    if !t.starts_with("<?xml") {
        return None;
    }
    let decl = &t[..t.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// Decodes numeric character references and the common named entities.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Look no further than the longest name: a run of `&` without `;` stays linear.
        let end = after.bytes().take(11).position(|b| b == b';');
        let decoded = end.and_then(|i| {
            let name = &after[..i];
            let c = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
            } else if let Some(num) = name.strip_prefix('#') {
                num.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some(' '),
                    "hellip" => Some('…'),
                    "mdash" => Some('—'),
                    "ndash" => Some('–'),
                    "rsquo" => Some('’'),
                    "lsquo" => Some('‘'),
                    "ldquo" => Some('“'),
                    "rdquo" => Some('”'),
                    _ => None,
                }
            };
            c.map(|c| (c, i))
        });
        match decoded {
            Some((c, i)) => {
                out.push(c);
                rest = &after[i + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_detected_in_order() {
        // windows-1252 declared in the XML.
        let body = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss version=\"2.0\"><channel><title>Caf\xe9</title></channel></rss>";
        assert!(decode(body, None).contains("Café"));
        // Only in the HTTP header.
        assert!(decode(b"<rss><title>Caf\xe9</title></rss>", Some("iso-8859-1")).contains("Café"));
        // UTF-16 with a BOM.
        let mut utf16 = vec![0xff, 0xfe];
        for u in "<rss>Café</rss>".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&utf16, Some("utf-8")), "<rss>Café</rss>");
        // Undeclared, invalid UTF-8: windows-1252.
        assert_eq!(decode(b"<rss>\x93hi\x94</rss>", None), "<rss>\u{201c}hi\u{201d}</rss>");
    }
}
