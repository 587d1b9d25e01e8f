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
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt};
use std::future::Future;
use std::ops::Range;
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
    /// A part failed to go up (the upload is discarded).
    failed: bool,
}

impl Upload {
    /// An upload to the object at `url`; nothing is sent until a part is full.
    pub(crate) fn create(url: &str) -> Result<Upload> {
        Ok(Upload {
            file: FileStore::open(url)?,
            part: Vec::new(),
            upload: None,
            failed: false,
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
        if self.failed {
            return Err(self.file.error("writing", "a part failed"));
        }
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

    /// Takes bytes into the part, sending it once full. A part that fails to go up discards
    /// the upload there and then (the parts sent are not left on the store, whoever holds
    /// the writer), and every later write fails.
    pub(crate) fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other(
                self.file.error("writing", "an earlier part failed"),
            ));
        }
        let room = PART_BYTES - self.part.len();
        let taken = buf.len().min(room);
        self.part.extend_from_slice(&buf[..taken]);
        if self.part.len() == PART_BYTES {
            if let Err(e) = self.send_part() {
                self.failed = true;
                // The error that matters is the part's.
                let _ = self.abort();
                return Err(std::io::Error::other(e));
            }
        }
        Ok(taken)
    }
}

/// An object read start to end, one range of [`PART_BYTES`] at a time (each request
/// bounded, however large the object).
pub struct Download {
    file: FileStore,
    size: u64,
    offset: u64,
    chunk: Bytes,
}

impl Download {
    /// Opens the object at `url` (one request: its size); a missing object is an error.
    pub(crate) fn open(url: &str) -> Result<Download> {
        let file = FileStore::open(url)?;
        let size = file.block("reading", file.store.head(&file.path))?.size;
        Ok(Download {
            file,
            size,
            offset: 0,
            chunk: Bytes::new(),
        })
    }

    /// The object's bytes from `start` to `start + length`, which must lie within it.
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
}

impl std::io::Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() && self.offset < self.size {
            let length = (self.size - self.offset).min(PART_BYTES as u64);
            let chunk = self.range(self.offset, length);
            self.chunk = chunk.map_err(std::io::Error::other)?;
            self.offset += length;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A parquet object read as DataFusion reads one: the footer in one suffix read, then each
/// row group's column chunks in ranged reads (nearby ranges merged by `get_ranges`).
struct ParquetObject {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    size: u64,
    shown: String,
}

impl ParquetObject {
    /// A store error as a parquet error that carries this crate's (see `ParquetBatches`).
    fn error(&self, e: impl std::fmt::Display) -> ParquetError {
        let error = Error::engine("objectstore", format!("reading {}: {e}", self.shown));
        ParquetError::External(Box::new(error))
    }
}

impl AsyncFileReader for ParquetObject {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        self.get_byte_ranges(vec![range])
            .map(|ranges| ranges.map(|mut r| r.pop().unwrap_or_default()))
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        async move {
            // A range past the end comes from a damaged footer: refused, never requested.
            if let Some(bad) = ranges.iter().find(|r| r.start > r.end || r.end > self.size) {
                let why = format!("bytes {bad:?} are past its end ({})", self.size);
                return Err(self.error(why));
            }
            let fetched = self.store.get_ranges(&self.path, &ranges).await;
            fetched.map_err(|e| self.error(e))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let footer = ParquetMetaDataReader::new().with_prefetch_hint(Some(FOOTER_HINT));
            Ok(Arc::new(footer.load_and_finish(self, size).await?))
        }
        .boxed()
    }
}

/// The bytes read at once from the end of a parquet object: most footers fit, so one
/// request reads them.
const FOOTER_HINT: usize = 64 << 10;

/// The record batches of a parquet object, read as they are used.
pub(crate) struct ParquetBatches {
    file: FileStore,
    stream: ParquetRecordBatchStream<ParquetObject>,
}

impl ParquetBatches {
    /// Opens the parquet object at `url` (its size, then its footer), in batches of
    /// `batch_size` rows. A store that fails is `Error::Engine`; bytes that are not parquet
    /// are `Error::Decode`.
    pub(crate) fn open(url: &str, batch_size: usize) -> Result<ParquetBatches> {
        let file = FileStore::open(url)?;
        let size = file.block("reading", file.store.head(&file.path))?.size;
        let object = ParquetObject {
            store: file.store.clone(),
            path: file.path.clone(),
            size,
            shown: file.shown.clone(),
        };
        let opened = file.runtime.block(async {
            ParquetRecordBatchStreamBuilder::new(object)
                .await
                .and_then(|b| b.with_batch_size(batch_size).build())
        })?;
        let stream = opened.map_err(|e| file.parquet_error(e))?;
        Ok(ParquetBatches { file, stream })
    }
}

impl Iterator for ParquetBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let (file, stream) = (&self.file, &mut self.stream);
        match file.runtime.block(stream.next()) {
            Err(e) => Some(Err(e)),
            Ok(batch) => batch.map(|b| b.map_err(|e| file.parquet_error(e))),
        }
    }
}

impl FileStore {
    /// A parquet reader's error: the store's own when it was the store that failed, else
    /// bytes that do not decode.
    fn parquet_error(&self, e: ParquetError) -> Error {
        match e {
            ParquetError::External(e) => match e.downcast::<Error>() {
                Ok(store) => *store,
                Err(other) => Error::decode(self.shown.clone(), "parquet", other.to_string()),
            },
            e => Error::decode(self.shown.clone(), "parquet", e.to_string()),
        }
    }
}
