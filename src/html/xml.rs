//! XML documents with no DTD: the only shape any XML parser in Cairn is given.

use std::borrow::Cow;

/// An XML document that declares its own DTD.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("the document declares a DTD with its own entities, which Cairn does not accept")]
pub struct DtdError;

/// Refuses an XML document whose `<!DOCTYPE>` has an internal subset (`[…]`, where entities
/// are declared, and so where entity bombs live), and removes an external-only one (as old
/// RSS 0.91 feeds carry), which nothing here would fetch. Either way no XML parser in Cairn
/// ever sees a DTD. A DOCTYPE can only come before the root element, so only the prolog is
/// scanned, once, front to back.
pub fn without_dtd(text: &str) -> Result<Cow<'_, str>, DtdError> {
    let mut i = 0;
    loop {
        let rest = &text[i..];
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        i += rest.len() - trimmed.len();
        let skip = |open: &str, close: &str| {
            trimmed.starts_with(open).then(|| trimmed.find(close).map_or(text.len(), |e| i + e + close.len()))
        };
        if let Some(next) = skip("<?", "?>").or_else(|| skip("<!--", "-->")) {
            i = next;
            continue;
        }
        if !trimmed.get(..9).is_some_and(|d| d.eq_ignore_ascii_case("<!doctype")) {
            return Ok(Cow::Borrowed(text));
        }
        let mut quote = None;
        for (j, c) in trimmed.char_indices().skip(9) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '[') => return Err(DtdError),
                (None, '>') => return Ok(Cow::Owned(format!("{}{}", &text[..i], &trimmed[j + 1..]))),
                _ => {}
            }
        }
        // An unterminated DOCTYPE: let the parsers report the broken document.
        return Err(DtdError);
    }
}
