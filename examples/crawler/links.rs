//! What an HTML page offers a crawler: its links, and whether it lets them be
//! followed; plus the one canonical URL form the crawler compares and
//! deduplicates by.
//!
//! # Contract
//!
//! [`extract`] tokenizes the page's raw bytes with html5gum (no tree is
//! built) and returns, in document order and each once, the absolute
//! http(s) URLs ([`canonical`] form) named by
//!
//! * `<a href>` and `<area href>`, unless their `rel` holds `nofollow`
//!   (`rel="ugc nofollow"` too): those are left out and counted;
//! * `<link href>` whose `rel` names another page: `alternate`, `canonical`,
//!   `next`, `prev`/`previous` (but not `alternate stylesheet`). Style
//!   sheets, icons, preload/prefetch hints, manifests and the like are
//!   resources, not pages;
//! * `<frame src>` and `<iframe src>`;
//! * `<meta http-equiv="refresh" content="5; url=/x">`, in the spellings
//!   browsers accept (`0;URL='x'`, `0, url = "x"`, `0; x`);
//! * `<object data>` and `<embed src>` only when they embed a document: a
//!   `type` of `text/html` or `application/xhtml+xml`, or, with no `type`, a
//!   URL path ending in `.html`, `.htm` or `.xhtml`. Plugins, images and
//!   video are not pages;
//! * all of the above inside `<noscript>` as well: a crawler runs no
//!   scripts, so it reads the page as a browser with scripting disabled
//!   does (mdBook's link to `toc.html` lives there).
//!
//! Relative URLs resolve against the first `<base href>` of the document,
//! wherever it stands (a browser freezes the base URL for the whole
//! document), or else against the page's URL.
//!
//! `<meta name="robots">`, or a `<meta name>` equal to the crawler's
//! product token (`sylvan-crawler` of `sylvan-crawler/0.1`), sets
//! [`Page::nofollow`] / [`Page::noindex`] for `nofollow`, `noindex` and
//! `none`. [`extract`] still lists the links; the caller must not follow
//! them.
//!
//! Not extracted: the contents of `<script>`, `<style>`, `<title>`,
//! `<textarea>`, `<iframe>`, `<noembed>`, `<noframes>`, `<xmp>` and
//! `<plaintext>` (text to a browser, and so here), comments, links that
//! scripts build, resources (`<img>`, `<script src>`, `srcset`, CSS
//! `url()`), `<form action>`, `<iframe srcdoc>`, SVG `xlink:href`, and
//! schemes other than http and https (`mailto:`, `javascript:`, `data:`).
//!
//! # Bytes, not text
//!
//! No charset is decoded. An attribute value that is valid UTF-8 is used
//! as it is (so IDN hosts work and non-ASCII path characters are sent as
//! UTF-8 escapes, as a browser does on a UTF-8 page); one that is not, for
//! example undeclared Latin-1 `caf\xe9`, has each non-ASCII byte
//! percent-encoded (`caf%E9`, the request wget makes) instead of being
//! turned into U+FFFD. Character references (`caf&eacute;`) are decoded by
//! the tokenizer to Unicode and so always become UTF-8 (`caf%C3%A9`), even
//! on a Latin-1 page.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv6Addr;

use html5gum::{State, Token, Tokenizer};
use url::Url;

/// What one HTML page offers the crawler.
#[derive(Debug, Default)]
pub struct Page {
    /// Absolute http(s) links in document order, in [`canonical`] form,
    /// each once.
    pub links: Vec<Url>,
    /// How many distinct URLs were left out because every link to them
    /// carried `rel="nofollow"` (for the summary).
    pub nofollow_links: usize,
    /// `<meta name="robots" content="nofollow">` (or `none`, or the same
    /// under the crawler's own name): the links must not be followed.
    pub nofollow: bool,
    /// `<meta name="robots" content="noindex">` (or `none`): the page asks
    /// not to be indexed.
    pub noindex: bool,
}

/// The links of the HTML document `html`, fetched from `page`, and its
/// robots directives for `user_agent` (a User-Agent header such as
/// `sylvan-crawler/0.1`; its product token is matched against
/// `<meta name>`). See the module documentation for what counts as a link.
///
/// Runs in time linear in the size of the page.
pub fn extract(html: &[u8], page: &Url, user_agent: &str) -> Page {
    let agent = product_token(user_agent);
    let mut out = Page::default();
    // (URL text, rel=nofollow), resolved only at the end: the first
    // <base href> applies to the links before it too.
    let mut found: Vec<(String, bool)> = Vec::new();
    // None: no <base href> yet. Some(None): the first did not parse, and
    // the page's URL applies, as in a browser.
    let mut base: Option<Option<Url>> = None;

    let mut tokenizer = Tokenizer::new(html);
    while let Some(token) = tokenizer.next() {
        let Ok(Token::StartTag(tag)) = token else {
            continue;
        };
        if let Some(state) = content_state(&tag.name) {
            tokenizer.set_state(state);
        }
        let attr = |name: &str| tag.attributes.get(name.as_bytes()).map(|v| &v[..]);
        let rel_has = |word: &str| {
            attr("rel").is_some_and(|rel| {
                rel.split(|b| b.is_ascii_whitespace())
                    .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
            })
        };
        match &tag.name[..] {
            b"a" | b"area" => {
                if let Some(href) = attr("href") {
                    found.push((url_text(href).into_owned(), rel_has("nofollow")));
                }
            }
            b"link" => {
                let page_rel = ["alternate", "canonical", "next", "prev", "previous"]
                    .iter()
                    .any(|r| rel_has(r));
                if page_rel && !rel_has("stylesheet") {
                    if let Some(href) = attr("href") {
                        found.push((url_text(href).into_owned(), false));
                    }
                }
            }
            b"frame" | b"iframe" => {
                if let Some(src) = attr("src") {
                    found.push((url_text(src).into_owned(), false));
                }
            }
            b"object" | b"embed" => {
                let src = if tag.name[..] == *b"object" {
                    attr("data")
                } else {
                    attr("src")
                };
                if let Some(src) = src.filter(|src| embeds_document(attr("type"), src)) {
                    found.push((url_text(src).into_owned(), false));
                }
            }
            b"base" => {
                if let (None, Some(href)) = (&base, attr("href")) {
                    base = Some(page.join(&url_text(href)).ok());
                }
            }
            b"meta" => {
                let content = attr("content").unwrap_or_default();
                if attr("http-equiv").is_some_and(|h| h.eq_ignore_ascii_case(b"refresh")) {
                    if let Some(url) = refresh_url(content) {
                        found.push((url_text(url).into_owned(), false));
                    }
                }
                let name = attr("name").map(<[u8]>::trim_ascii).unwrap_or_default();
                let for_us = name.eq_ignore_ascii_case(b"robots")
                    || (!agent.is_empty() && name.eq_ignore_ascii_case(agent.as_bytes()));
                if for_us {
                    for word in content.split(|&b| b == b',' || b.is_ascii_whitespace()) {
                        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
                        out.nofollow |= is("nofollow") || is("none");
                        out.noindex |= is("noindex") || is("none");
                    }
                }
            }
            _ => {}
        }
    }

    let base = base.flatten().unwrap_or_else(|| page.clone());
    let mut seen: HashSet<Url> = HashSet::new();
    let mut left_out: HashSet<Url> = HashSet::new();
    for (href, nofollow) in found {
        let Some(url) = normalize(&base, &href) else {
            continue;
        };
        if nofollow {
            left_out.insert(url);
        } else if !seen.contains(&url) {
            seen.insert(url.clone());
            out.links.push(url);
        }
    }
    out.nofollow_links = left_out.iter().filter(|u| !seen.contains(*u)).count();
    out
}

/// Whether a response with this `Content-Type` is an HTML or XHTML
/// document whose links [`extract`] should read: `text/html` or
/// `application/xhtml+xml`, case-insensitive, parameters ignored. With no
/// (or an empty) `Content-Type`, `body` is sniffed as browsers do (WHATWG
/// MIME Sniffing: after leading whitespace, `<!DOCTYPE HTML`, `<html`,
/// `<head`, `<body`, `<a`, `<p`, `<!--`, … followed by a space or `>`).
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    match content_type.map(essence) {
        Some(t) if !t.is_empty() => is_html_type(&t),
        _ => sniffs_as_html(body),
    }
}

/// The canonical form of `url`, used wherever URLs are compared or
/// deduplicated: the fragment removed; percent-escapes of unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) in the path and query decoded and the
/// other escapes upper-cased, so `/a~b`, `/a%7Eb` and `/a%7eb` are one URL.
/// The `url` crate already lower-cases the scheme and host, drops the
/// default port and turns an empty path into `/`. `None` unless the scheme
/// is http or https and there is a host.
pub fn canonical(mut url: Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().unwrap_or("").is_empty() {
        return None;
    }
    url.set_fragment(None);
    if let Some(path) = normalize_escapes(url.path()) {
        url.set_path(&path);
    }
    if let Some(query) = url.query().and_then(normalize_escapes) {
        url.set_query(Some(&query));
    }
    Some(url)
}

/// Resolves `href` against `base` and returns its [`canonical`] form, or
/// `None` if it does not parse or is not an http(s) URL with a host.
/// Surrounding whitespace is ignored; non-ASCII characters are sent as
/// their UTF-8 percent-escapes and existing escapes are kept (`%` is never
/// encoded again).
pub fn normalize(base: &Url, href: &str) -> Option<Url> {
    canonical(base.join(href).ok()?)
}

/// A start URL as typed on the command line, in [`canonical`] form.
///
/// Input without a scheme (`example.com`, `127.0.0.1:8080/x`,
/// `[::1]:8080/`, a bare `::1`, `localhost`) is taken as `http://`, and the
/// returned note says so (`no scheme in "example.com": assuming
/// http://example.com/`). A `#fragment` is dropped. Schemes other than
/// http and https, and input that is no URL, are errors that name the input
/// and the reason.
pub fn parse_start_url(input: &str) -> Result<(Url, Option<String>), String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty URL".to_string());
    }
    let with_scheme = if has_scheme(text) {
        None
    } else if text.parse::<Ipv6Addr>().is_ok() {
        Some(format!("http://[{text}]/"))
    } else {
        Some(format!("http://{text}"))
    };
    let parsed = Url::parse(with_scheme.as_deref().unwrap_or(text))
        .map_err(|e| format!("malformed URL {input:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported scheme {:?} in {input:?}: only http:// and https:// URLs can be crawled",
            parsed.scheme()
        ));
    }
    let url = canonical(parsed).ok_or_else(|| format!("no host in {input:?}"))?;
    let note = with_scheme.map(|_| format!("no scheme in {text:?}: assuming {url}"));
    Ok((url, note))
}

/// The tokenizer state the content of element `name` is read in, for
/// elements whose content is not markup (HTML's tree builder makes these
/// switches; html5gum leaves them to its user). `<noscript>` is absent on
/// purpose: without scripting its content is markup.
fn content_state(name: &[u8]) -> Option<State> {
    match name {
        b"script" => Some(State::ScriptData),
        b"style" | b"iframe" | b"noembed" | b"noframes" | b"xmp" => Some(State::RawText),
        b"title" | b"textarea" => Some(State::RcData),
        b"plaintext" => Some(State::PlainText),
        _ => None,
    }
}

/// An attribute value as URL text: as it is when it is UTF-8, else with
/// every non-ASCII byte percent-encoded (see the module documentation).
fn url_text(value: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            let mut text = String::with_capacity(value.len() + 8);
            for &b in value {
                if b.is_ascii() {
                    text.push(char::from(b));
                } else {
                    text.push_str(&format!("%{b:02X}"));
                }
            }
            Cow::Owned(text)
        }
    }
}

/// `s` with unreserved escapes decoded and the others upper-cased, or
/// `None` if that changes nothing. A `%` not followed by two hex digits is
/// kept as it is.
fn normalize_escapes(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        let escape = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)),
            _ => None,
        };
        let Some((hi, lo)) = escape else {
            if let Some(out) = &mut out {
                out.push(char::from(bytes[i]));
            }
            i += 1;
            continue;
        };
        let byte = hi << 4 | lo;
        let replacement = if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            char::from(byte).to_string()
        } else {
            format!("%{byte:02X}")
        };
        if out.is_none() && replacement != s[i..i + 3] {
            out = Some(s[..i].to_string());
        }
        if let Some(out) = &mut out {
            out.push_str(&replacement);
        }
        i += 3;
    }
    out
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// The URL of a `<meta http-equiv="refresh">` content attribute, following
/// HTML's "shared declarative refresh steps": a delay (digits and dots),
/// then `;` or `,` or whitespace, then optionally `url =`, then the URL,
/// optionally quoted. `None` for a plain delay (a reload of the same page).
fn refresh_url(content: &[u8]) -> Option<&[u8]> {
    let mut s = content.trim_ascii();
    let delay = s
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    if delay == 0 {
        return None;
    }
    s = &s[delay..];
    match s.first() {
        Some(b';' | b',') => s = &s[1..],
        Some(b) if b.is_ascii_whitespace() => {
            s = s.trim_ascii_start();
            if let Some(b';' | b',') = s.first() {
                s = &s[1..];
            }
        }
        _ => return None,
    }
    s = s.trim_ascii_start();
    if s.len() >= 3 && s[..3].eq_ignore_ascii_case(b"url") {
        if let Some(rest) = s[3..].trim_ascii_start().strip_prefix(b"=") {
            s = rest.trim_ascii_start();
        }
    }
    if let Some(&quote @ (b'\'' | b'"')) = s.first() {
        s = &s[1..];
        if let Some(end) = s.iter().position(|&b| b == quote) {
            s = &s[..end];
        }
    }
    let s = s.trim_ascii();
    (!s.is_empty()).then_some(s)
}

/// Whether `<object>`/`<embed>` with this `type` and URL embeds a document.
fn embeds_document(mime: Option<&[u8]>, src: &[u8]) -> bool {
    match mime.map(|t| essence(&String::from_utf8_lossy(t)).to_string()) {
        Some(t) if !t.is_empty() => is_html_type(&t),
        _ => {
            let path = src.split(|&b| b == b'?' || b == b'#').next().unwrap_or(src);
            let path = path.to_ascii_lowercase();
            [&b".html"[..], b".htm", b".xhtml"]
                .iter()
                .any(|ext| path.ends_with(ext))
        }
    }
}

/// The MIME type of a `Content-Type` value: lower-cased, parameters and
/// surrounding whitespace removed.
fn essence(content_type: &str) -> Cow<'_, str> {
    let t = content_type.split(';').next().unwrap_or("").trim();
    if t.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(t.to_ascii_lowercase())
    } else {
        Cow::Borrowed(t)
    }
}

/// Whether a MIME type essence is one whose documents [`extract`] reads.
fn is_html_type(essence: &str) -> bool {
    matches!(essence, "text/html" | "application/xhtml+xml")
}

/// WHATWG MIME Sniffing, "identifying a resource with an unknown MIME
/// type", its HTML patterns only.
fn sniffs_as_html(body: &[u8]) -> bool {
    const PATTERNS: [&[u8]; 17] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a",
        b"<style",
        b"<title",
        b"<b",
        b"<body",
        b"<br",
        b"<p",
        b"<!--",
    ];
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let body = body.trim_ascii_start();
    PATTERNS.iter().any(|p| {
        body.len() > p.len()
            && body[..p.len()].eq_ignore_ascii_case(p)
            && matches!(body[p.len()], b' ' | b'>')
    })
}

/// Whether `text` starts with a scheme (`scheme:`), as opposed to a
/// host and port (`localhost:8080`, `example.com:80/x`).
fn has_scheme(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    is_scheme && !is_port
}

/// The product token of a User-Agent (`sylvan-crawler` of
/// `sylvan-crawler/0.1 (+https://…)`).
fn product_token(user_agent: &str) -> &str {
    user_agent
        .trim()
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "sylvan-crawler/0.1";

    fn page() -> Url {
        Url::parse("http://h.test/a/b.html").unwrap()
    }

    fn links_of(html: &[u8]) -> Vec<String> {
        extract(html, &page(), AGENT)
            .links
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn resolves_dedups_and_skips_non_links() {
        let html = br#"<a href="c.html#x">1</a><A HREF='c.html'>2</A><a href="mailto:x@y">3</a>
            <script>var s = "<a href='/no'>";</script><!-- <a href="/comment"> -->
            <base href="/base/"><a href="d">4</a><a href="HTTP://H.TEST:80/e">5</a>"#;
        // The base URL holds for the whole document, as in a browser: also
        // for the link before <base>.
        assert_eq!(
            links_of(html),
            [
                "http://h.test/base/c.html",
                "http://h.test/base/d",
                "http://h.test/e"
            ]
        );
    }

    #[test]
    fn a_and_area() {
        let html = br#"<a href="/x">x</a><map><area href="/y" shape=rect></map><a name=top>"#;
        assert_eq!(links_of(html), ["http://h.test/x", "http://h.test/y"]);
    }

    #[test]
    fn link_rel_names_pages_not_resources() {
        let html = br#"<head>
            <link rel="stylesheet" href="/s.css"><link rel="icon" href="/i.png">
            <link rel="preload" href="/p.js"><link rel="alternate stylesheet" href="/alt.css">
            <link rel="Next" href="/2"><link rel="prev" href="/0"><link rel="previous" href="/00">
            <link rel="alternate" hreflang="de" href="/de/"><link rel="canonical" href="/c">
            <link rel="manifest" href="/m.json"></head>"#;
        assert_eq!(
            links_of(html),
            [
                "http://h.test/2",
                "http://h.test/0",
                "http://h.test/00",
                "http://h.test/de/",
                "http://h.test/c"
            ]
        );
    }

    #[test]
    fn frames_and_iframes() {
        let html = br#"<frameset><frame src="f1.html"><frame src=/f2></frameset>
            <iframe src="i.html"><a href="/not-markup">fallback</a></iframe><a href="/after">"#;
        assert_eq!(
            links_of(html),
            [
                "http://h.test/a/f1.html",
                "http://h.test/f2",
                "http://h.test/a/i.html",
                "http://h.test/after"
            ]
        );
    }

    #[test]
    fn meta_refresh_in_real_world_spellings() {
        for (content, want) in [
            ("5; url=/x", Some("/x")),
            ("0;URL='/x'", Some("/x")),
            ("0; URL=\"/x\"", Some("/x")),
            ("  3 ;  url = /x  ", Some("/x")),
            ("0,url=/x", Some("/x")),
            ("0 url=/x", Some("/x")),
            ("0; /x", Some("/x")),
            ("0.5; Url='/x' trailing", Some("/x")),
            ("10", None),
            ("0; url=", None),
            ("url=/x", None),
            ("soon; url=/x", None),
        ] {
            let content = content.replace('"', "&quot;");
            let html = format!(r#"<meta http-equiv="Refresh" content="{content}">"#);
            let got = links_of(html.as_bytes());
            let want: Vec<String> = want
                .map(|p| format!("http://h.test{p}"))
                .into_iter()
                .collect();
            assert_eq!(got, want, "content={content:?}");
        }
        // Single quotes around the attribute, double quotes inside.
        let html = br#"<meta http-equiv=refresh content='0; url="next.html"'>"#;
        assert_eq!(links_of(html), ["http://h.test/a/next.html"]);
    }

    #[test]
    fn object_and_embed_only_when_they_embed_documents() {
        let html = br#"<object data="/doc" type="text/html; charset=utf-8"></object>
            <object data="/movie.swf" type="application/x-shockwave-flash"></object>
            <object data="/page.HTM?x=1"></object><object data="/img.png"></object>
            <embed src="/e.xhtml"><embed src="/e.html" type="image/svg+xml">
            <embed src="/x" type="application/xhtml+xml"><embed src="/clip.mp4">"#;
        assert_eq!(
            links_of(html),
            [
                "http://h.test/doc",
                "http://h.test/page.HTM?x=1",
                "http://h.test/e.xhtml",
                "http://h.test/x"
            ]
        );
    }

    #[test]
    fn first_base_wins_and_applies_to_the_whole_document() {
        let html = br#"<a href="early">0</a><base href="http://other.test/b/">
            <base href="/ignored/"><a href="late">1</a>"#;
        assert_eq!(
            links_of(html),
            ["http://other.test/b/early", "http://other.test/b/late"]
        );
        // A <base> without href does not count; an unparsable one falls
        // back to the page URL.
        let html = br#"<base target=_top><base href="http://[bad/"><base href="/x/"><a href=l>"#;
        assert_eq!(links_of(html), ["http://h.test/a/l"]);
    }

    #[test]
    fn noscript_content_is_markup_but_script_and_style_are_not() {
        // mdBook's page: the table of contents link is in <noscript>.
        let html = br#"<head><noscript><link rel="next" href="/n"></noscript>
            <style>a[href="/css"] {}</style></head><body>
            <script>document.write('<a href="/js">')</script>
            <noscript><iframe src="toc.html"></iframe><a href="toc.html">toc</a></noscript>
            <title><a href="/title"></title><textarea><a href="/ta"></textarea>
            <a href="/end">"#;
        assert_eq!(
            links_of(html),
            [
                "http://h.test/n",
                "http://h.test/a/toc.html",
                "http://h.test/end"
            ]
        );
    }

    #[test]
    fn rel_nofollow_links_are_left_out_and_counted() {
        let html = br#"<a href="/f">f</a><a rel="nofollow" href="/n1">n1</a>
            <a rel="ugc NOFOLLOW" href="/n2">n2</a><area rel=nofollow href="/n3">
            <a rel=nofollow href="/n1#again">again</a><a rel=nofollow href="/f">f too</a>
            <a rel=nofollow href="mailto:x@y">not http</a><a rel="noopener" href="/o">o</a>"#;
        let got = extract(html, &page(), AGENT);
        let links: Vec<String> = got.links.into_iter().map(String::from).collect();
        assert_eq!(links, ["http://h.test/f", "http://h.test/o"]);
        // /n1, /n2, /n3: /f is followed through its other link.
        assert_eq!(got.nofollow_links, 3);
        assert!(!got.nofollow && !got.noindex);
    }

    #[test]
    fn meta_robots_for_all_robots_or_for_this_crawler() {
        let check = |meta: &str, nofollow: bool, noindex: bool| {
            let html = format!("<head>{meta}</head><a href=/x>");
            let got = extract(html.as_bytes(), &page(), AGENT);
            assert_eq!((got.nofollow, got.noindex), (nofollow, noindex), "{meta}");
            assert_eq!(got.links.len(), 1, "links are still listed: {meta}");
        };
        check(r#"<meta name="robots" content="nofollow">"#, true, false);
        check(r#"<meta name="ROBOTS" content="NoIndex">"#, false, true);
        check(
            r#"<meta name="robots" content="noindex, nofollow">"#,
            true,
            true,
        );
        check(r#"<meta name="robots" content="none">"#, true, true);
        check(
            r#"<meta name="robots" content="index,follow">"#,
            false,
            false,
        );
        check(
            r#"<meta name="Sylvan-Crawler" content="nofollow">"#,
            true,
            false,
        );
        check(
            r#"<meta name="googlebot" content="nofollow">"#,
            false,
            false,
        );
        check(r#"<meta name="description" content="none">"#, false, false);
        check(r#"<meta content="nofollow">"#, false, false);
    }

    #[test]
    fn latin1_bytes_are_kept_not_replaced() {
        let html = b"<a href=\"caf\xe9?q=\xe9\">x</a><a href=\"caf&eacute;\">y</a>";
        assert_eq!(
            links_of(html),
            ["http://h.test/a/caf%E9?q=%E9", "http://h.test/a/caf%C3%A9"]
        );
        // UTF-8 stays UTF-8 (and as before): escapes are not encoded again.
        let html = "<a href=\"caf\u{e9}\">x</a><a href=\"caf%C3%A9\">y</a><a href=\"100%\">z</a>";
        assert_eq!(
            links_of(html.as_bytes()),
            ["http://h.test/a/caf%C3%A9", "http://h.test/a/100%"]
        );
        // An IDN host on a UTF-8 page.
        assert_eq!(
            links_of("<a href=\"http://b\u{fc}cher.test/\">".as_bytes()),
            ["http://xn--bcher-kva.test/"]
        );
    }

    #[test]
    fn thirty_thousand_links_dedup_in_document_order() {
        const N: usize = 30_000;
        let mut html = String::with_capacity(N * 80);
        for i in 0..N {
            html.push_str(&format!("<li><a href=\"/p/{i}\">{i}</a>"));
        }
        // The same URLs again, spelled differently, in reverse.
        for i in (0..N).rev() {
            html.push_str(&format!(
                "<a href=\"http://H.TEST:80/%70/{i}#s\">{i}</a><a href=p/{i}>rel</a>"
            ));
        }
        let got = extract(html.as_bytes(), &page(), AGENT);
        assert_eq!(got.links.len(), 2 * N);
        for (i, url) in got.links[..N].iter().enumerate() {
            assert_eq!(url.path(), format!("/p/{i}"));
        }
        for (k, url) in got.links[N..].iter().enumerate() {
            assert_eq!(url.path(), format!("/a/p/{}", N - 1 - k));
        }
    }

    #[test]
    fn is_html_by_type_or_sniffed() {
        assert!(is_html(Some("text/html"), b""));
        assert!(is_html(Some(" Text/HTML ; charset=ISO-8859-1"), b""));
        assert!(is_html(Some("application/xhtml+xml"), b""));
        assert!(!is_html(Some("text/plain"), b"<html>"));
        assert!(!is_html(Some("text/csv"), b"a,b"));
        assert!(!is_html(Some("application/xml"), b"<html>"));
        assert!(is_html(None, b"  \n<!DOCTYPE html>\n<html>"));
        assert!(is_html(Some(""), b"\xEF\xBB\xBF<HTML lang=en>"));
        assert!(is_html(None, b"<p>hello"));
        assert!(is_html(None, b"<!-- x --><a href=/>"));
        assert!(!is_html(None, b"<pre>"));
        assert!(!is_html(None, b"<?xml version=\"1.0\"?>"));
        assert!(!is_html(None, b"%PDF-1.7"));
        assert!(!is_html(None, b"<html"));
        assert!(!is_html(None, b""));
    }

    #[test]
    fn canonical_form() {
        let c = |s: &str| canonical(Url::parse(s).unwrap()).map(String::from);
        for (a, b) in [
            ("http://h.test/a~b", "http://h.test/a%7Eb"),
            ("http://h.test/a~b", "http://h.test/a%7eb"),
            ("http://h.test/a%2Fb", "http://h.test/a%2fb"),
            ("http://h.test/", "http://H.test:80"),
            ("https://h.test/x", "https://h.test:443/x#frag"),
            ("http://h.test/?q=a-b", "http://h.test/?q=a%2Db"),
        ] {
            assert_eq!(c(a), c(b), "{a} vs {b}");
        }
        assert_eq!(
            c("HTTP://H.test:8080/%41%7e%2f%e9%zz%4?x=%7E%26#f").unwrap(),
            "http://h.test:8080/A~%2F%E9%zz%4?x=~%26"
        );
        assert_eq!(c("ftp://h.test/"), None);
        assert_eq!(c("mailto:x@h.test"), None);
        assert_eq!(c("data:text/html,x"), None);
    }

    #[test]
    fn normalize_resolves_and_canonicalises() {
        let base = page();
        let n = |h: &str| normalize(&base, h).map(String::from);
        assert_eq!(n(" c%7e.html#x ").unwrap(), "http://h.test/a/c~.html");
        assert_eq!(n("../up").unwrap(), "http://h.test/up");
        assert_eq!(n("//other.test").unwrap(), "http://other.test/");
        assert_eq!(n("").unwrap(), "http://h.test/a/b.html");
        assert_eq!(n("javascript:void(0)"), None);
        assert_eq!(n("http://[::1"), None);
    }

    #[test]
    fn start_urls_as_typed() {
        let ok = |s: &str| parse_start_url(s).unwrap();
        let (url, note) = ok("example.com");
        assert_eq!(url.as_str(), "http://example.com/");
        assert_eq!(
            note.unwrap(),
            "no scheme in \"example.com\": assuming http://example.com/"
        );
        assert_eq!(ok("127.0.0.1:8080/x").0.as_str(), "http://127.0.0.1:8080/x");
        assert_eq!(ok("[::1]:8080/").0.as_str(), "http://[::1]:8080/");
        assert_eq!(ok("::1").0.as_str(), "http://[::1]/");
        assert_eq!(ok("localhost").0.as_str(), "http://localhost/");
        assert_eq!(ok("localhost:3000").0.as_str(), "http://localhost:3000/");
        assert_eq!(ok("example.com:80/a#b").0.as_str(), "http://example.com/a");
        let (url, note) = ok(" https://Example.com/a%7e#top ");
        assert_eq!((url.as_str(), note), ("https://example.com/a~", None));
        assert_eq!(ok("http://[::1]:9/").0.as_str(), "http://[::1]:9/");

        let err = |s: &str| parse_start_url(s).unwrap_err();
        assert!(err("ftp://h.test/").contains("unsupported scheme \"ftp\""));
        assert!(err("mailto:a@h.test").contains("unsupported scheme \"mailto\""));
        assert!(err("not a url").starts_with("malformed URL \"not a url\""));
        assert!(err("http://").starts_with("malformed URL"));
        assert_eq!(err("  "), "empty URL");
    }
}
