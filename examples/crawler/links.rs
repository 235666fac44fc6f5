//! Link extraction with a real HTML tokenizer (html5gum): `href`s of `<a>`,
//! `<area>` and `<link>`, and `src`s of `<frame>`/`<iframe>`, resolved
//! against the page URL (or its `<base href>`), fragments dropped.

use html5gum::emitters::default::DefaultEmitter;
use html5gum::{Token, Tokenizer};
use url::Url;

/// The absolute http(s) links of an HTML document, in document order, with
/// duplicates removed. Other schemes (mailto:, javascript:, …) are dropped.
pub fn extract(html: &[u8], page: &Url) -> Vec<Url> {
    let text = String::from_utf8_lossy(html);
    let mut emitter = DefaultEmitter::default();
    // Treat <script>/<style> contents as text, as a browser would.
    emitter.naively_switch_states(true);
    let mut base = page.clone();
    let mut out: Vec<Url> = Vec::new();
    for token in Tokenizer::new_with_emitter(text.as_ref(), emitter).flatten() {
        let Token::StartTag(tag) = token else {
            continue;
        };
        let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
        let attr = match name.as_str() {
            "a" | "area" | "link" | "base" => "href",
            "frame" | "iframe" => "src",
            _ => continue,
        };
        let Some(value) = tag.attributes.get(attr.as_bytes()) else {
            continue;
        };
        let value = String::from_utf8_lossy(value);
        let value = value.trim();
        if name == "base" {
            if let Ok(b) = base.join(value) {
                base = b;
            }
            continue;
        }
        if name == "link" {
            // Only <link rel=alternate|next|prev> name pages; stylesheets don't.
            let rel = tag
                .attributes
                .get(b"rel".as_slice())
                .map(|r| String::from_utf8_lossy(r).to_ascii_lowercase());
            if !rel.is_some_and(|r| {
                r.split_whitespace()
                    .any(|w| matches!(w, "alternate" | "next" | "prev"))
            }) {
                continue;
            }
        }
        if let Some(url) = normalize(&base, value) {
            if !out.contains(&url) {
                out.push(url);
            }
        }
    }
    out
}

/// Resolves `href` against `base`: absolute http(s) URL without fragment.
pub fn normalize(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dedups_and_skips_non_links() {
        let page = Url::parse("http://h.test/a/b.html").unwrap();
        let html = br#"<a href="c.html#x">1</a><A HREF='c.html'>2</A><a href="mailto:x@y">3</a>
            <script>var s = "<a href='/no'>";</script><!-- <a href="/comment"> -->
            <base href="/base/"><a href="d">4</a><a href="HTTP://H.TEST:80/e">5</a>"#;
        let got: Vec<String> = extract(html, &page).into_iter().map(String::from).collect();
        assert_eq!(
            got,
            [
                "http://h.test/a/c.html",
                "http://h.test/base/d",
                "http://h.test/e"
            ]
        );
    }
}
