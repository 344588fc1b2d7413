//! A linear HTML5 tokenizer over untrusted pages, and the start tags it finds.

use html5gum::Span;
use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};

/// A start tag as the HTML5 tokenizer saw it: lower-case name and the attributes Cairn
/// reads ([`WANTED`]), character references decoded (the first of duplicates wins).
pub(crate) struct StartTag {
    pub name: String,
    attrs: Vec<(&'static str, String)>,
}

impl StartTag {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// The only attributes discovery and verification look at; others are never copied.
const WANTED: [&str; 5] = ["href", "rel", "type", "title", "src"];

/// A tokenizer over an untrusted page, by [html5gum], calling `on_event` for each event.
///
/// html5gum is a WHATWG tokenizer (it passes html5lib's tokenizer tests) with no unsafe code
/// and no dependencies. It reads the input in one pass, and its callback interface lends
/// each name, value and text run without copying, so neither many `<` nor many attributes
/// make it quadratic or costly (html5ever's tokenizer checks duplicate attributes by a linear
/// search, and lol_html is a rewriter with far more machinery than finding a few tags needs).
/// Its naive state switching treats the content of `<title>`, `<textarea>`, `<script>`,
/// `<style>` and the like as text, as a browser does, so markup quoted there is never taken
/// for a tag.
pub(crate) fn tokenize<'a, T: 'a>(
    html: &'a str,
    on_event: impl FnMut(CallbackEvent<'_>) -> Option<T> + 'a,
) -> impl Iterator<Item = T> + 'a {
    let mut on_event = on_event;
    let mut emitter = CallbackEmitter::new(move |event: CallbackEvent<'_>, _: Span<()>| on_event(event));
    emitter.naively_switch_states(true);
    html5gum::Tokenizer::new_with_emitter(html, emitter).filter_map(Result::ok)
}

/// The start tags of an untrusted page, in document order.
pub(crate) fn start_tags(html: &str) -> impl Iterator<Item = StartTag> + '_ {
    let mut current: Option<StartTag> = None;
    // Where the value of the attribute being read goes, if it is wanted.
    let mut slot: Option<usize> = None;
    tokenize(html, move |event| {
        match event {
            CallbackEvent::OpenStartTag { name } => {
                current = Some(StartTag { name: String::from_utf8_lossy(name).into_owned(), attrs: Vec::new() });
                slot = None;
            }
            CallbackEvent::AttributeName { name } => {
                slot = None;
                if let Some(tag) = current.as_mut()
                    && let Some(key) = WANTED.iter().find(|w| w.as_bytes() == name)
                    && tag.attr(key).is_none()
                {
                    // A name without a value has the empty value.
                    tag.attrs.push((key, String::new()));
                    slot = Some(tag.attrs.len() - 1);
                }
            }
            CallbackEvent::AttributeValue { value } => {
                if let (Some(tag), Some(i)) = (current.as_mut(), slot.take()) {
                    tag.attrs[i].1 = String::from_utf8_lossy(value).into_owned();
                }
            }
            CallbackEvent::CloseStartTag { .. } => return current.take(),
            _ => {}
        }
        None
    })
}
