//! Whole files in object storage (features `objectstore` and `sql`): parquet snapshots,
//! exports and imports written to and read from `s3://`, `gs://` or `az://` URLs, through the
//! same client as the objectstore engine (see [`crate::table::location`]).
//!
//! Each request has a bound: a connection [`CONNECT_TIMEOUT`], a request (one part, one
//! range) [`REQUEST_TIMEOUT`], so that a file of any size moves, and a dead store fails in
//! time.

use super::objectstore::open_store;
use super::EngineRuntime;
use crate::error::{Error, Result};
use bytes::Bytes;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::reader::{ChunkReader, Length};
use object_store::path::Path as ObjPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The size of each part of an upload in parts (S3 takes parts of 5 MiB and more), and of
/// each range a download reads: the memory a transfer holds.
pub const PART_BYTES: usize = 8 << 20;

/// How long a connection to the store may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request (a part of [`PART_BYTES`], a range) may take, with its retries.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A store opened for a file: its client, the runtime it runs on, the object's path.
pub(crate) struct FileStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: ObjPath,
    /// The URL with its secrets redacted, for errors.
    shown: String,
    runtime: EngineRuntime,
}

impl FileStore {
    /// Opens the store of `url` (no request is made yet).
    pub(crate) fn open(url: &str) -> Result<FileStore> {
        let runtime = EngineRuntime::new("objectstore", 1)?;
        let (store, path, _) = {
            // The HTTP client is made inside the runtime it will run on.
            let _guard = runtime.get()?.enter();
            open_store(url, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?
        };
        if path.as_ref().is_empty() {
            return Err(Error::InvalidOption {
                option: "url",
                message: format!(
                    "{} names a bucket, not a file in it",
                    crate::config::redact_url(url)
                ),
            });
        }
        let shown = crate::config::redact_url(url);
        Ok(FileStore {
            store,
            path,
            shown,
            runtime,
        })
    }

    /// Runs `request` to its end; a store error names what failed and where.
    pub(crate) fn block<T: Send>(
        &self,
        what: &str,
        request: impl Future<Output = object_store::Result<T>> + Send,
    ) -> Result<T> {
        self.runtime
            .block(request)?
            .map_err(|e| self.error(what, e))
    }

    /// A store error as this crate's, naming the call and the file.
    pub(crate) fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::engine("objectstore", format!("{what} {}: {e}", self.shown))
    }
}

/// An object written as a stream: in one put if it stays under [`PART_BYTES`], else in parts,
/// so that the memory it holds is one part and the object appears whole or not at all.
pub struct Upload {
    file: FileStore,
    part: Vec<u8>,
    /// Started when the first part is full.
    upload: Option<Box<dyn MultipartUpload>>,
}

impl Upload {
    /// An upload to the object at `url`; nothing is sent until a part is full.
    pub(crate) fn create(url: &str) -> Result<Upload> {
        Ok(Upload {
            file: FileStore::open(url)?,
            part: Vec::new(),
            upload: None,
        })
    }

    /// Sends the full part.
    fn send_part(&mut self) -> Result<()> {
        let part = Bytes::from(std::mem::take(&mut self.part));
        let (file, upload) = (&self.file, &mut self.upload);
        if upload.is_none() {
            let started = file.block(
                "starting the upload of",
                file.store.put_multipart(&file.path),
            )?;
            *upload = Some(started);
        }
        if let Some(upload) = upload {
            let sent = upload.put_part(part.into());
            file.block("uploading a part of", sent)?;
        }
        Ok(())
    }

    /// Sends what is left and completes the object.
    pub(crate) fn finish(mut self) -> Result<()> {
        let Some(mut upload) = self.upload.take() else {
            let whole = Bytes::from(std::mem::take(&mut self.part));
            let file = &self.file;
            return file
                .block("writing", file.store.put(&file.path, whole.into()))
                .map(drop);
        };
        let file = &self.file;
        let last = Bytes::from(std::mem::take(&mut self.part));
        let done = async {
            if !last.is_empty() {
                upload.put_part(last.into()).await?;
            }
            upload.complete().await
        };
        match file.block("completing", done) {
            Ok(_) => Ok(()),
            Err(e) => {
                // The parts sent are discarded; the error that mattered is the first.
                let _ = file.block("discarding the upload of", upload.abort());
                Err(e)
            }
        }
    }

    /// Discards the parts sent so far (the upload is not to be used again).
    pub(crate) fn abort(&mut self) -> Result<()> {
        self.part = Vec::new();
        match self.upload.take() {
            Some(mut upload) => self.file.block("discarding the upload of", upload.abort()),
            None => Ok(()),
        }
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = PART_BYTES - self.part.len();
        let taken = buf.len().min(room);
        self.part.extend_from_slice(&buf[..taken]);
        if self.part.len() == PART_BYTES {
            self.send_part().map_err(std::io::Error::other)?;
        }
        Ok(taken)
    }
}

/// An object opened for reading: its store and size. Read start to end as a [`Download`],
/// or in the ranges a parquet reader asks for (it is a parquet [`ChunkReader`]).
#[derive(Clone)]
pub struct RemoteFile {
    file: Arc<FileStore>,
    size: u64,
}

impl RemoteFile {
    /// Opens the object at `url` (one request: its size); a missing object is an error.
    pub(crate) fn open(url: &str) -> Result<RemoteFile> {
        let file = FileStore::open(url)?;
        let meta = file.block("reading", file.store.head(&file.path))?;
        Ok(RemoteFile {
            file: Arc::new(file),
            size: meta.size,
        })
    }

    /// The object's bytes from `start` to `start + length`, which must lie within it (a
    /// length read from a damaged file is refused, never allocated).
    fn range(&self, start: u64, length: u64) -> Result<Bytes> {
        let end = start.checked_add(length).filter(|end| *end <= self.size);
        let Some(end) = end else {
            let why = format!("{length} bytes at {start} are past its end ({})", self.size);
            return Err(self.file.error("reading", why));
        };
        let file = &self.file;
        let bytes = file.block("reading", file.store.get_range(&file.path, start..end))?;
        if bytes.len() as u64 != length {
            let why = format!("{} bytes came for {length} asked", bytes.len());
            return Err(file.error("reading", why));
        }
        Ok(bytes)
    }

    /// A reader from `offset` to the end.
    pub(crate) fn download(&self, offset: u64) -> Download {
        Download {
            remote: self.clone(),
            offset,
            chunk: Bytes::new(),
        }
    }
}

/// An object read from an offset to its end, one range of [`PART_BYTES`] at a time (each
/// request bounded, however large the object).
pub struct Download {
    remote: RemoteFile,
    offset: u64,
    chunk: Bytes,
}

impl std::io::Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.remote.size;
        if self.chunk.is_empty() && self.offset < size {
            let length = (size - self.offset).min(PART_BYTES as u64);
            let chunk = self.remote.range(self.offset, length);
            self.chunk = chunk.map_err(std::io::Error::other)?;
            self.offset += length;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RemoteFile {
    type T = Download;

    fn get_read(&self, start: u64) -> ParquetResult<Download> {
        Ok(self.download(start))
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        self.range(start, length as u64)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}
