//! Where a snapshot, an export or an import lives (feature `sql`): a local path, or with
//! the `objectstore` feature an object in object storage (`s3://bucket/snap.parquet`,
//! `gs://`, `az://`), so that a stash written on one machine is queried from another
//! without copying files by hand.
//!
//! An object is written through the same `object_store` client as the objectstore engine
//! (credentials from the `AWS_*`, `GOOGLE_*` or `AZURE_*` environment, or object_store's
//! options in the URL's query string): in one put when small, else in parts of 8 MiB
//! completed at the end, so that readers see the whole object or none of it; and read in
//! ranges of 8 MiB, each request bounded.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The URL schemes of object storage.
const OBJECT_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "azure", "abfs", "abfss"];

/// A file's place: on this machine, or an object in object storage. (`Debug` shows a URL
/// with its secrets redacted.)
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path (`file://` URLs are local paths too).
    Local(PathBuf),
    /// An object-store URL, `s3://bucket/key` say (with object_store's options, if any, in
    /// its query string).
    Object(String),
}

impl Location {
    /// Where `path` points: an object when it starts with an object-storage scheme
    /// (`s3://`, `gs://`, `az://`, ...), else a local path.
    pub fn of(path: &Path) -> Location {
        let Some(text) = path.to_str() else {
            return Location::Local(path.into());
        };
        match text.split_once("://") {
            Some((scheme, _)) if OBJECT_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) => {
                Location::Object(text.to_owned())
            }
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("file") => url::Url::parse(text)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .map_or_else(|| Location::Local(path.into()), Location::Local),
            _ => Location::Local(path.into()),
        }
    }

    /// Whether the file's name (without a URL's query string) ends in `.parquet`.
    pub fn is_parquet(&self) -> bool {
        let name = match self {
            Location::Local(path) => path.to_string_lossy().into_owned(),
            Location::Object(url) => url.split('?').next().unwrap_or_default().to_owned(),
        };
        name.to_ascii_lowercase().ends_with(".parquet")
    }

    /// The location as shown in errors and progress (a URL's secrets redacted).
    pub fn shown(&self) -> String {
        match self {
            Location::Local(path) => path.display().to_string(),
            Location::Object(url) => crate::config::redact_url(url),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => f.debug_tuple("Local").field(path).finish(),
            Location::Object(_) => f.debug_tuple("Object").field(&self.shown()).finish(),
        }
    }
}

/// An I/O error on the file shown as `shown` ([`Location::shown`]): the store's own error
/// when an object's read or upload failed (carried through `std::io`), else `Error::Io`.
pub fn io_error(shown: &str, e: std::io::Error) -> Error {
    match e.downcast::<Error>() {
        Ok(store) => store,
        Err(e) => Error::io(shown, e),
    }
}

/// A file being written: a local file, or an object uploaded as it is written. Call
/// [`Output::finish`] to complete it (an object appears only then); dropped unfinished, a
/// local file stays as far as it was written and an object is not made.
pub struct Output {
    inner: OutputKind,
    shown: String,
}

enum OutputKind {
    File(std::io::BufWriter<std::fs::File>),
    #[cfg(feature = "objectstore")]
    Object(Box<crate::engine::objectstore_files::Upload>),
}

impl Output {
    /// Creates (or replaces) the file or object at `path` (see [`Location::of`]).
    pub fn create(path: &Path) -> Result<Output> {
        let location = Location::of(path);
        let shown = location.shown();
        let inner = match location {
            Location::Local(path) => {
                let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
                OutputKind::File(std::io::BufWriter::new(file))
            }
            Location::Object(url) => object_output(&url)?,
        };
        Ok(Output { inner, shown })
    }

    /// Completes the file: flushes it, or completes the object's upload.
    pub fn finish(self) -> Result<()> {
        match self.inner {
            OutputKind::File(mut file) => file.flush().map_err(|e| io_error(&self.shown, e)),
            #[cfg(feature = "objectstore")]
            OutputKind::Object(upload) => upload.finish(),
        }
    }

    /// Gives up on the file: an object's parts uploaded so far are discarded (the output is
    /// not to be written again; a local file stays as far as it was written).
    pub fn abort(&mut self) -> Result<()> {
        match &mut self.inner {
            OutputKind::File(_) => Ok(()),
            #[cfg(feature = "objectstore")]
            OutputKind::Object(upload) => upload.abort(),
        }
    }

    /// Where it goes, as shown in errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            OutputKind::File(file) => file.write(buf),
            #[cfg(feature = "objectstore")]
            OutputKind::Object(upload) => upload.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            OutputKind::File(file) => file.flush(),
            // Parts go out as they fill; the rest waits for `finish`.
            #[cfg(feature = "objectstore")]
            OutputKind::Object(_) => Ok(()),
        }
    }
}

/// Opens the file or object at `path` for reading, start to end.
pub fn open_input(path: &Path) -> Result<Box<dyn std::io::Read + Send>> {
    match Location::of(path) {
        Location::Local(path) => {
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            Ok(Box::new(file))
        }
        Location::Object(url) => object_input(&url),
    }
}

#[cfg(feature = "objectstore")]
fn object_output(url: &str) -> Result<OutputKind> {
    let upload = crate::engine::objectstore_files::Upload::create(url)?;
    Ok(OutputKind::Object(Box::new(upload)))
}

#[cfg(feature = "objectstore")]
fn object_input(url: &str) -> Result<Box<dyn std::io::Read + Send>> {
    Ok(Box::new(crate::engine::objectstore_files::Download::open(
        url,
    )?))
}

#[cfg(not(feature = "objectstore"))]
fn object_output(_: &str) -> Result<OutputKind> {
    Err(not_compiled())
}

#[cfg(not(feature = "objectstore"))]
fn object_input(_: &str) -> Result<Box<dyn std::io::Read + Send>> {
    Err(not_compiled())
}

/// Object storage without the feature that brings it.
#[cfg(not(feature = "objectstore"))]
pub(crate) fn not_compiled() -> Error {
    Error::EngineNotCompiled {
        engine: "objectstore",
        feature: "objectstore",
    }
}
