//! Markdown written by instructors (task criteria), rendered to HTML and then sanitised,
//! so that neither raw HTML nor `javascript:` links reach a page.

/// Renders Markdown to sanitised HTML.
pub fn render(md: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(
        md,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    let mut html = String::with_capacity(md.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default().link_rel(Some("noopener noreferrer nofollow")).clean(&html).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_is_rendered_and_scripts_are_removed() {
        let html = super::render("**Post** a [link](javascript:alert(1)) <script>alert(2)</script>\n\n- one");
        assert!(html.contains("<strong>Post</strong>"));
        assert!(html.contains("<li>one</li>"));
        assert!(!html.contains("script") && !html.contains("javascript"), "{html}");
    }
}
