//! Durations on the command line, for the servers' flags and the crawler's
//! `--timeout` alike.

use std::time::Duration;

/// The longest duration accepted: longer ones are typos, and a deadline
/// that far away could overflow `Instant`.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Parses a duration such as `500ms`, `2s`, `1.5s`, `10m` or `1h` (a bare
/// number is seconds). Zero, negative and absurdly long (over [`LONGEST`])
/// durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(
        s.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len()),
    );
    let n: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 10s or 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use ms, s, m or h)"
            ))
        }
    };
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Err(format!("the duration must be more than zero: {s:?}")),
        Ok(d) if d <= LONGEST => Ok(d),
        _ => Err(format!("not a usable duration: {s:?} (100 years at most)")),
    }
}
