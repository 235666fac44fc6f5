//! Errors that say what failed, as Go's do: `bind tcp 127.0.0.1:7000:
//! Address already in use (os error 98)`. The [`io::ErrorKind`] is the
//! original's, and the original error is the wrapper's `source()` (and
//! `get_ref()` holds the wrapper), so code that matches on kinds is
//! unaffected.

use std::fmt;
use std::io;

/// "`what`: `cause`", keeping `cause` as the source.
#[derive(Debug)]
struct Context {
    what: String,
    cause: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// `e`, with `what()` ("bind tcp 127.0.0.1:7000") in front of its message.
/// An error that already says what failed is left as it is.
pub(crate) fn with_context(e: io::Error, what: impl FnOnce() -> String) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Context>()) {
        return e;
    }
    io::Error::new(
        e.kind(),
        Context {
            what: what(),
            cause: e,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_kind_and_the_cause() {
        let e = io::Error::from_raw_os_error(libc::EADDRINUSE);
        let e = with_context(e, || "bind tcp 127.0.0.1:7000".into());
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(
            e.to_string().starts_with("bind tcp 127.0.0.1:7000: "),
            "{e}"
        );
        let cause = std::error::Error::source(e.get_ref().unwrap()).unwrap();
        let cause = cause.downcast_ref::<io::Error>().unwrap();
        assert_eq!(cause.raw_os_error(), Some(libc::EADDRINUSE));
        // Not wrapped twice.
        let again = with_context(e, || "outer".into());
        assert!(again.to_string().starts_with("bind tcp"), "{again}");
    }
}
