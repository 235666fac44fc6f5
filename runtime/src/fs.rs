//! `std::fs`, for fibers: file IO that runs on the blocking pool while the
//! calling fiber parks, so a server can read and write files without
//! stalling its worker (gevent's `FileObjectThread`, Evergreen's file IO).
//!
//! The functions have std's names and shapes ([`read`], [`read_to_string`],
//! [`write()`], [`metadata`], [`read_dir`], …) and return std's types
//! ([`std::fs::Metadata`], [`std::fs::DirEntry`]). [`File`] and
//! [`OpenOptions`] mirror std's; each `read`/`write`/`seek` of a `File` is
//! one trip to the pool (a few microseconds), so read and write in large
//! pieces (wrap a `File` in a `BufReader`/`BufWriter` as with std).
//!
//! Linux has no readiness notification for regular files (epoll refuses
//! them), which is why a thread pool is the mechanism here, as in libuv and
//! tokio. Outside a fiber every call runs right there, as std's would.
//!
//! Interruption: the whole-file functions ([`read`], [`write()`], …) own their
//! arguments, so a cancellation or [`timeout`](crate::timeout) ends the wait
//! at once (the operation itself still finishes on the pool). [`File`]'s
//! reads and writes borrow the caller's buffer and so wait for the pool
//! before an interruption is delivered (see
//! [`unblock_scoped`]).
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! let dir = std::env::temp_dir().join(format!("sylvan-fs-doc-{}", std::process::id()));
//! let contents = sylvan::spawn(move || {
//!     sylvan::fs::create_dir_all(&dir)?;
//!     let path = dir.join("greeting.txt");
//!     sylvan::fs::write(&path, "hello from a fiber")?;
//!     let text = sylvan::fs::read_to_string(&path)?;
//!     sylvan::fs::remove_dir_all(&dir)?;
//!     Ok::<_, std::io::Error>(text)
//! })
//! .join()
//! .unwrap()
//! .unwrap();
//! assert_eq!(contents, "hello from a fiber");
//! ```

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use std::fs::{DirEntry, FileType, Metadata, Permissions};

use crate::blocking::{unblock, unblock_scoped};

/// Runs `f` with an owned copy of `path` on the blocking pool.
fn on_pool<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce(PathBuf) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = path.to_path_buf();
    unblock(move || f(path))
}

/// Reads a whole file ([`std::fs::read`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let manifest = sylvan::spawn(|| sylvan::fs::read("Cargo.toml")).join().unwrap().unwrap();
/// assert!(!manifest.is_empty());
/// ```
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    on_pool(path.as_ref(), std::fs::read)
}

/// Reads a whole file as UTF-8 ([`std::fs::read_to_string`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let err = sylvan::spawn(|| sylvan::fs::read_to_string("/nonexistent/x")).join().unwrap();
/// assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    on_pool(path.as_ref(), std::fs::read_to_string)
}

/// Writes a whole file, creating or truncating it ([`std::fs::write`]).
///
/// See the [module example](self).
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let contents = contents.as_ref().to_vec();
    on_pool(path.as_ref(), move |p| std::fs::write(p, contents))
}

/// A file's metadata, following symlinks ([`std::fs::metadata`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let meta = sylvan::spawn(|| sylvan::fs::metadata("Cargo.toml")).join().unwrap().unwrap();
/// assert!(meta.is_file());
/// ```
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_pool(path.as_ref(), std::fs::metadata)
}

/// A file's metadata, not following symlinks ([`std::fs::symlink_metadata`]).
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    on_pool(path.as_ref(), std::fs::symlink_metadata)
}

/// The entries of a directory ([`std::fs::read_dir`]). The directory is
/// read whole on the pool; the returned iterator does no IO of its own
/// (but [`DirEntry::metadata`] does: call [`metadata`] for many entries
/// of a slow file system).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let names: Vec<String> = sylvan::spawn(|| {
///     sylvan::fs::read_dir(".")
///         .unwrap()
///         .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
///         .collect()
/// })
/// .join()
/// .unwrap();
/// assert!(names.iter().any(|n| n == "Cargo.toml"));
/// ```
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    on_pool(path.as_ref(), |p| {
        let entries: Vec<io::Result<DirEntry>> = std::fs::read_dir(p)?.collect();
        Ok(ReadDir {
            entries: entries.into_iter(),
        })
    })
}

/// The entries [`read_dir`] found.
pub struct ReadDir {
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;
    fn next(&mut self) -> Option<Self::Item> {
        self.entries.next()
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("remaining", &self.entries.len())
            .finish()
    }
}

/// Creates a directory ([`std::fs::create_dir`]).
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::create_dir)
}

/// Creates a directory and its missing parents ([`std::fs::create_dir_all`]).
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::create_dir_all)
}

/// Removes a file ([`std::fs::remove_file`]).
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_file)
}

/// Removes an empty directory ([`std::fs::remove_dir`]).
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_dir)
}

/// Removes a directory and everything in it ([`std::fs::remove_dir_all`]).
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_dir_all)
}

/// Renames a file or directory ([`std::fs::rename`]).
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let to = to.as_ref().to_path_buf();
    on_pool(from.as_ref(), move |from| std::fs::rename(from, to))
}

/// Copies a file's contents and permissions ([`std::fs::copy`]); returns
/// the bytes copied.
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let to = to.as_ref().to_path_buf();
    on_pool(from.as_ref(), move |from| std::fs::copy(from, to))
}

/// The absolute path with symlinks resolved ([`std::fs::canonicalize`]).
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_pool(path.as_ref(), std::fs::canonicalize)
}

/// Whether `path` exists ([`std::fs::exists`]'s answer, via metadata):
/// `Ok(false)` for a missing file, an error when that cannot be told.
pub fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// An open file whose operations run on the blocking pool, shaped like
/// [`std::fs::File`] (`Read`, `Write`, `Seek`, also through `&File`).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::io::{BufRead, BufReader, Write};
/// use sylvan::fs::File;
///
/// let path = std::env::temp_dir().join(format!("sylvan-file-doc-{}", std::process::id()));
/// let lines = sylvan::spawn(move || -> std::io::Result<usize> {
///     let mut f = File::create(&path)?;
///     for i in 0..100 {
///         writeln!(f, "line {i}")?;
///     }
///     f.sync_all()?;
///     let n = BufReader::new(File::open(&path)?).lines().count();
///     sylvan::fs::remove_file(&path)?;
///     Ok(n)
/// })
/// .join()
/// .unwrap()
/// .unwrap();
/// assert_eq!(lines, 100);
/// ```
pub struct File {
    inner: std::fs::File,
}

impl File {
    /// Opens a file for reading ([`std::fs::File::open`]).
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates or truncates a file for writing ([`std::fs::File::create`]).
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Options to open a file with ([`OpenOptions`]).
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file (its operations then run on the pool).
    pub fn from_std(file: std::fs::File) -> File {
        File { inner: file }
    }

    /// The std file inside.
    pub fn into_std(self) -> std::fs::File {
        self.inner
    }

    /// The file's metadata.
    pub fn metadata(&self) -> io::Result<Metadata> {
        unblock_scoped(|| self.inner.metadata())
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub fn sync_all(&self) -> io::Result<()> {
        unblock_scoped(|| self.inner.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        unblock_scoped(|| self.inner.sync_data())
    }

    /// Truncates or extends the file to `size` bytes.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        unblock_scoped(|| self.inner.set_len(size))
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let f = &self.inner;
        unblock_scoped(|| (&mut &*f).read(buf))
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let f = &self.inner;
        unblock_scoped(|| (&mut &*f).read_to_end(buf))
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = &self.inner;
        unblock_scoped(|| (&mut &*f).write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let f = &self.inner;
        unblock_scoped(|| (&mut &*f).write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let f = &self.inner;
        unblock_scoped(|| (&mut &*f).seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("inner", &self.inner).finish()
    }
}

/// How to open a [`File`], shaped like [`std::fs::OpenOptions`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("sylvan-append-doc-{}", std::process::id()));
/// sylvan::spawn(move || -> std::io::Result<()> {
///     for word in ["a", "b"] {
///         let mut log = sylvan::fs::OpenOptions::new().append(true).create(true).open(&path)?;
///         log.write_all(word.as_bytes())?;
///     }
///     assert_eq!(sylvan::fs::read_to_string(&path)?, "ab");
///     sylvan::fs::remove_file(&path)
/// })
/// .join()
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    inner: std::fs::OpenOptions,
}

impl OpenOptions {
    /// Nothing set (as std's).
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: std::fs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.inner.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.inner.write(write);
        self
    }

    /// Writes go to the end.
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.inner.append(append);
        self
    }

    /// Truncate to 0 bytes on open.
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.inner.truncate(truncate);
        self
    }

    /// Create the file if it is missing.
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.inner.create(create);
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.inner.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the pool.
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let options = self.inner.clone();
        on_pool(path.as_ref(), move |p| options.open(p)).map(File::from_std)
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}
