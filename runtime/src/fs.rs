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
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-write-{}", std::process::id()));
/// fs::write(&path, "first")?;
/// fs::write(&path, b"second")?; // truncates: no trace of "first"
/// assert_eq!(fs::read_to_string(&path)?, "second");
/// fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-symlink-{}", std::process::id()));
/// let target = std::env::current_dir()?.join("Cargo.toml");
/// std::os::unix::fs::symlink(&target, &path)?;
/// assert!(fs::symlink_metadata(&path)?.file_type().is_symlink()); // the link itself
/// assert!(fs::metadata(&path)?.is_file()); // what it points to
/// fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let mut entries = sylvan::fs::read_dir("src")?;
/// let first = entries.next().unwrap()?; // already read: no IO here
/// assert!(first.path().starts_with("src"));
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-create-dir-{}", std::process::id()));
/// fs::create_dir(&path)?;
/// assert!(fs::metadata(&path)?.is_dir());
/// assert_eq!(fs::create_dir(&path).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
/// fs::remove_dir(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::create_dir)
}

/// Creates a directory and its missing parents ([`std::fs::create_dir_all`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-create-dir-all-{}", std::process::id()));
/// fs::create_dir_all(path.join("a/b/c"))?;
/// fs::create_dir_all(path.join("a/b"))?; // already there: fine
/// assert!(fs::exists(path.join("a/b/c"))?);
/// fs::remove_dir_all(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::create_dir_all)
}

/// Removes a file ([`std::fs::remove_file`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-remove-file-{}", std::process::id()));
/// fs::write(&path, "x")?;
/// fs::remove_file(&path)?;
/// assert!(!fs::exists(&path)?);
/// assert_eq!(fs::remove_file(&path).unwrap_err().kind(), std::io::ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_file)
}

/// Removes an empty directory ([`std::fs::remove_dir`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-remove-dir-{}", std::process::id()));
/// fs::create_dir(&path)?;
/// fs::write(path.join("f"), "x")?;
/// assert!(fs::remove_dir(&path).is_err()); // not empty
/// fs::remove_file(path.join("f"))?;
/// fs::remove_dir(&path)?;
/// assert!(!fs::exists(&path)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_dir)
}

/// Removes a directory and everything in it ([`std::fs::remove_dir_all`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-remove-dir-all-{}", std::process::id()));
/// fs::create_dir_all(path.join("sub"))?;
/// fs::write(path.join("sub/f"), "x")?;
/// fs::remove_dir_all(&path)?;
/// assert!(!fs::exists(&path)?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    on_pool(path.as_ref(), std::fs::remove_dir_all)
}

/// Renames a file or directory ([`std::fs::rename`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-rename-{}", std::process::id()));
/// let new = path.with_extension("renamed");
/// fs::write(&path, "moved")?;
/// fs::rename(&path, &new)?;
/// assert!(!fs::exists(&path)?);
/// assert_eq!(fs::read_to_string(&new)?, "moved");
/// fs::remove_file(&new)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let to = to.as_ref().to_path_buf();
    on_pool(from.as_ref(), move |from| std::fs::rename(from, to))
}

/// Copies a file's contents and permissions ([`std::fs::copy`]); returns
/// the bytes copied.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::fs;
/// let path = std::env::temp_dir().join(format!("sylvan-doc-copy-{}", std::process::id()));
/// assert_eq!(fs::copy("Cargo.toml", &path)?, fs::metadata("Cargo.toml")?.len());
/// assert_eq!(fs::read(&path)?, fs::read("Cargo.toml")?);
/// fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let to = to.as_ref().to_path_buf();
    on_pool(from.as_ref(), move |from| std::fs::copy(from, to))
}

/// The absolute path with symlinks resolved ([`std::fs::canonicalize`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let abs = sylvan::fs::canonicalize("src/../Cargo.toml")?;
/// assert!(abs.is_absolute() && abs.ends_with("Cargo.toml"));
/// assert!(!abs.to_string_lossy().contains(".."));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    on_pool(path.as_ref(), std::fs::canonicalize)
}

/// Whether `path` exists ([`std::fs::exists`]'s answer, via metadata):
/// `Ok(false)` for a missing file, an error when that cannot be told.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// assert!(sylvan::fs::exists("Cargo.toml")?);
/// assert!(!sylvan::fs::exists("no/such/file")?);
/// # Ok::<(), std::io::Error>(())
/// ```
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
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Read;
    /// let mut f = sylvan::fs::File::open("Cargo.toml")?;
    /// let mut head = [0u8; 1];
    /// f.read_exact(&mut head)?;
    /// assert_eq!(&head, b"[");
    /// assert!(sylvan::fs::File::open("no/such/file").is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates or truncates a file for writing ([`std::fs::File::create`]).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, File};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-create-{}", std::process::id()));
    /// File::create(&path)?.write_all(b"one two")?;
    /// File::create(&path)?.write_all(b"3")?; // truncated first
    /// assert_eq!(fs::read_to_string(&path)?, "3");
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Options to open a file with ([`OpenOptions`]).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::fs::{self, File};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-options-{}", std::process::id()));
    /// File::options().write(true).create_new(true).open(&path)?;
    /// assert!(File::options().write(true).create_new(true).open(&path).is_err()); // exists now
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file (its operations then run on the pool).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Read;
    /// let std_file = std::fs::File::open("Cargo.toml")?;
    /// let mut f = sylvan::fs::File::from_std(std_file);
    /// let mut text = String::new();
    /// f.read_to_string(&mut text)?; // in a fiber: on the blocking pool
    /// assert!(text.contains("[package]"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File { inner: file }
    }

    /// The std file inside.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let f = sylvan::fs::File::open("Cargo.toml")?;
    /// let std_file: std::fs::File = f.into_std();
    /// assert!(std_file.metadata()?.is_file());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> std::fs::File {
        self.inner
    }

    /// The file's metadata.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let f = sylvan::fs::File::open("Cargo.toml")?;
    /// assert_eq!(f.metadata()?.len(), sylvan::fs::metadata("Cargo.toml")?.len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        unblock_scoped(|| self.inner.metadata())
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, File};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-sync-all-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"durable")?;
    /// f.sync_all()?; // on the device now, length and times included
    /// assert_eq!(fs::read(&path)?, b"durable");
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        unblock_scoped(|| self.inner.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, File};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-sync-data-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"record\n")?;
    /// f.sync_data()?; // the data, not necessarily every metadata change
    /// assert_eq!(f.metadata()?.len(), 7);
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        unblock_scoped(|| self.inner.sync_data())
    }

    /// Truncates or extends the file to `size` bytes.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, File};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-set-len-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"0123456789")?;
    /// f.set_len(4)?;
    /// assert_eq!(fs::read(&path)?, b"0123");
    /// f.set_len(6)?; // extended with zeros
    /// assert_eq!(fs::read(&path)?, b"0123\0\0");
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let err = sylvan::fs::OpenOptions::new().open("Cargo.toml").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput); // neither read nor write
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions {
            inner: std::fs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Read;
    /// let mut f = sylvan::fs::OpenOptions::new().read(true).open("Cargo.toml")?;
    /// let mut s = String::new();
    /// f.read_to_string(&mut s)?;
    /// assert!(!s.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.inner.read(read);
        self
    }

    /// Open for writing.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, OpenOptions};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-write-opt-{}", std::process::id()));
    /// fs::write(&path, "abc")?;
    /// OpenOptions::new().write(true).open(&path)?.write_all(b"X")?; // overwrites from the start
    /// assert_eq!(fs::read_to_string(&path)?, "Xbc");
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.inner.write(write);
        self
    }

    /// Writes go to the end.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::io::Write;
    /// use sylvan::fs::{self, OpenOptions};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-append-{}", std::process::id()));
    /// fs::write(&path, "abc")?;
    /// OpenOptions::new().append(true).open(&path)?.write_all(b"d")?;
    /// assert_eq!(fs::read_to_string(&path)?, "abcd");
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.inner.append(append);
        self
    }

    /// Truncate to 0 bytes on open.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::fs::{self, OpenOptions};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-truncate-{}", std::process::id()));
    /// fs::write(&path, "old contents")?;
    /// OpenOptions::new().write(true).truncate(true).open(&path)?;
    /// assert_eq!(fs::metadata(&path)?.len(), 0);
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.inner.truncate(truncate);
        self
    }

    /// Create the file if it is missing.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::fs::{self, OpenOptions};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-create-opt-{}", std::process::id()));
    /// assert!(OpenOptions::new().write(true).open(&path).is_err()); // missing
    /// OpenOptions::new().write(true).create(true).open(&path)?;
    /// assert!(fs::exists(&path)?);
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.inner.create(create);
        self
    }

    /// Create the file, failing if it exists.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::fs::{self, OpenOptions};
    /// let path = std::env::temp_dir().join(format!("sylvan-doc-create-new-{}", std::process::id()));
    /// let mut opts = OpenOptions::new();
    /// opts.write(true).create_new(true);
    /// opts.open(&path)?; // made it
    /// let err = opts.open(&path).unwrap_err(); // someone (we) made it first
    /// assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    /// fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.inner.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the pool.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let f = sylvan::spawn(|| sylvan::fs::OpenOptions::new().read(true).open("Cargo.toml"))
    ///     .join()
    ///     .unwrap()?; // the fiber parked while a pool thread opened it
    /// assert!(f.metadata()?.is_file());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
