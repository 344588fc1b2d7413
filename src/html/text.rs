//! Plain text from HTML, and the small text helpers around it.

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            _ => "&gt;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

pub(crate) fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn truncate_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "…" }
}

/// Plain text of an HTML fragment: tags dropped (script/style with their content), character
/// references decoded, by the same linear HTML5 tokenizer as discovery.
pub fn html_to_text(html: &str) -> String {
    use html5gum::emitters::callback::CallbackEvent;
    if !html.contains('<') && !html.contains('&') {
        return html.to_string();
    }
    let mut hidden = false;
    let mut text = String::with_capacity(html.len());
    super::tokenize::tokenize(html, |event| {
        match event {
            CallbackEvent::String { value } if !hidden => text.push_str(&String::from_utf8_lossy(value)),
            CallbackEvent::OpenStartTag { name } => {
                hidden = matches!(name, b"script" | b"style");
                text.push(' ');
            }
            CallbackEvent::EndTag { .. } => {
                hidden = false;
                text.push(' ');
            }
            _ => {}
        }
        None::<()>
    })
    .for_each(drop);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_tags_become_text() {
        assert_eq!(html_to_text("<p>A &amp; B&#35;x &#x41;</p><script>bad()</script>").trim(), "A & B#x A");
    }
}
