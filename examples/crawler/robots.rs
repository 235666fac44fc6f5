//! robots.txt: which paths a crawler with our user agent may fetch.
//!
//! The common subset of RFC 9309: groups of `User-agent` lines followed by
//! `Allow`/`Disallow` rules; the group naming our agent (by its product
//! token) wins over `*`; the longest matching rule decides, `Allow` on a tie;
//! `*` and `$` in rules are honoured. The non-standard `Crawl-delay` of the
//! group that applies is read too (seconds, fractions allowed, at most 60).

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Robots {
    /// (allow, pattern) rules of the group that applies to us.
    rules: Vec<(bool, String)>,
    /// The `Crawl-delay` of the group that applies to us, if any.
    pub crawl_delay: Option<Duration>,
}

/// How much of a robots.txt is read (RFC 9309's minimum, 500 KiB).
pub const MAX_SIZE: usize = 500 * 1024;

/// The longest `Crawl-delay` honoured: a larger one would stall a crawl.
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);

impl Robots {
    /// Everything allowed (no robots.txt, or it could not be fetched).
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// Parses `text` for the agent whose product token is `agent`.
    pub fn parse(text: &str, agent: &str) -> Robots {
        struct Group {
            agents: Vec<String>,
            rules: Vec<(bool, String)>,
            delay: Option<Duration>,
        }
        let token = agent
            .split('/')
            .next()
            .unwrap_or(agent)
            .to_ascii_lowercase();
        let mut groups: Vec<Group> = Vec::new();
        let mut in_agents = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push(Group {
                            agents: Vec::new(),
                            rules: Vec::new(),
                            delay: None,
                        });
                    }
                    in_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.agents.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    // An empty Disallow allows everything: no rule.
                    if let (Some(g), false) = (groups.last_mut(), value.is_empty()) {
                        g.rules.push((key == "allow", value));
                    }
                }
                "crawl-delay" => {
                    in_agents = false;
                    let secs = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0);
                    if let (Some(g), Some(secs)) = (groups.last_mut(), secs) {
                        g.delay = Some(Duration::from_secs_f64(
                            secs.min(MAX_CRAWL_DELAY.as_secs_f64()),
                        ));
                    }
                }
                _ => {}
            }
        }
        // The groups naming us win; without any, the `*` groups apply.
        let named = |g: &&Group| g.agents.contains(&token);
        let chosen: Vec<&Group> = if groups.iter().any(|g| named(&g)) {
            groups.iter().filter(named).collect()
        } else {
            groups
                .iter()
                .filter(|g| g.agents.iter().any(|a| a == "*"))
                .collect()
        };
        Robots {
            rules: chosen
                .iter()
                .flat_map(|g| g.rules.iter().cloned())
                .collect(),
            crawl_delay: chosen.iter().filter_map(|g| g.delay).max(),
        }
    }

    /// Whether `path` (with its query) may be fetched.
    pub fn allowed(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                let better = match best {
                    None => true,
                    Some((l, a)) => len > l || (len == l && *allow && !a),
                };
                if better {
                    best = Some((len, *allow));
                }
            }
        }
        best.map_or(true, |(_, allow)| allow)
    }
}

/// Prefix match with `*` (any run) and a trailing `$` (end of path).
fn matches(pattern: &str, path: &str) -> bool {
    let mut glob = pattern.to_string();
    match glob.strip_suffix('$') {
        Some(p) => glob = p.to_string(),
        None => glob.push('*'),
    }
    glob_match(glob.as_bytes(), path.as_bytes())
}

/// Whole-string match where `*` matches any run of bytes. The literal
/// pieces between stars are matched leftmost-first, which is exact for a
/// pattern whose only wildcard is `*`, and takes time linear in the pattern
/// and the path (a backtracking matcher is O(pattern x path), which a
/// hostile robots.txt and long link paths turn into seconds per check).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let pieces: Vec<&[u8]> = p.split(|&b| b == b'*').collect();
    let (first, rest) = pieces
        .split_first()
        .expect("split yields one piece at least");
    let Some(mut s) = s.strip_prefix(*first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return s.is_empty(); // no star: the whole path
    };
    for piece in middle {
        match find(s, piece) {
            Some(at) => s = &s[at + piece.len()..],
            None => return false,
        }
    }
    s.ends_with(last)
}

/// The first position of `needle` in `hay` (linear: `str::find` is
/// Two-Way; the bytes are the path's and the rule's, both valid UTF-8
/// where they come from, else compared as Latin-1).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match (std::str::from_utf8(hay), std::str::from_utf8(needle)) {
        (Ok(h), Ok(n)) => h.find(n),
        _ => hay.windows(needle.len().max(1)).position(|w| w == needle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_wins_and_agents_are_chosen() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /private/\nAllow: /private/open\n\nUser-agent: other\nDisallow: /\n",
            "sylvan-crawler/0.1",
        );
        assert!(r.allowed("/"));
        assert!(!r.allowed("/private/x"));
        assert!(r.allowed("/private/open/y"));
        let mine = Robots::parse(
            "User-agent: *\nDisallow:\n\nUser-agent: sylvan-crawler\nDisallow: /a*.pdf$\n",
            "sylvan-crawler/0.1",
        );
        assert!(!mine.allowed("/abc.pdf"));
        assert!(mine.allowed("/abc.pdf?x"));
        assert!(mine.allowed("/b.pdf"));
        assert_eq!(mine.crawl_delay, None);
    }

    #[test]
    fn crawl_delay_of_the_chosen_group_is_read_and_capped() {
        let text =
            "User-agent: *\nCrawl-delay: 2.5\nDisallow: /x\n\nUser-agent: other\nCrawl-delay: 9\n";
        let r = Robots::parse(text, "sylvan-crawler/0.1");
        assert_eq!(r.crawl_delay, Some(Duration::from_millis(2500)));
        assert!(!r.allowed("/x"));
        let r = Robots::parse("User-agent: *\nCrawl-delay: 86400\n", "a");
        assert_eq!(r.crawl_delay, Some(MAX_CRAWL_DELAY));
        let r = Robots::parse("User-agent: *\nCrawl-delay: soon\n", "a");
        assert_eq!(r.crawl_delay, None);
    }

    /// A hostile robots.txt (well under --max-body) and a long link path
    /// from the same site: `glob_match` backtracks to the last `*` and
    /// rescans, O(pattern x path) per rule, on a worker thread with no park
    /// point (so timeouts and Ctrl-C cannot land). 200 rules of 2 KB against
    /// a 4 KB path: about 1.6e9 byte comparisons for one `allowed` call.
    #[test]
    fn a_hostile_robots_txt_cannot_make_one_check_take_seconds() {
        let rule = format!("Disallow: /*{}b\n", "a".repeat(2000));
        let text = format!("User-agent: *\n{}", rule.repeat(200));
        let robots = Robots::parse(&text, "sylvan-crawler/0.1");
        let path = format!("/{}", "a".repeat(4000));
        let started = std::time::Instant::now();
        assert!(robots.allowed(&path));
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "one allowed() took {took:?}"
        );
    }
}
