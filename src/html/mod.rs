//! The crate's HTML and XML toolkit, for every untrusted document Cairn reads (feeds, blog
//! pages, Webmention sources, OPML files, badge artwork): character decoding, a DTD-free XML
//! prolog, a linear HTML5 tokenizer, plain text, and sanitising. Nothing here knows about
//! feeds; what does is in `harvest`.

pub mod decode;
pub mod sanitize;
pub mod text;
pub mod tokenize;
pub mod xml;
