//! Columnar snapshots: a stash's table kept beside it as an Arrow IPC file, for the
//! generation it was built at (feature `sql`).
//!
//! Reading a stash for a table decodes every entry (decompress, walk the MessagePack, build
//! columns). A snapshot is that work done once: [`Stash::snapshot`] writes the latest
//! versions' table to `snapshot-latest.arrow` in the stash's folder, with the engine's change
//! counter in the file's metadata. While the counter is unchanged, a scan of the whole table
//! reads the columns it needs from the file instead of decoding the stash; after any write the file is stale, ignored, and replaced by the next
//! [`Stash::snapshot`]. Lookups by `_key` and filters on `_timestamp` still go to the engine.
//!
//! Only engines whose counter moves in the same transaction as every write keep snapshots
//! (LMDB, SQLite, diskcache), so that a snapshot can never hide a write: pairtree and MongoDB
//! raise theirs after the write, and a writer that dies between the two would leave a
//! snapshot that looks current. The snapshot is a cache: one that cannot be read is ignored.

use super::provider::StashTable;
use super::Versions;
use crate::engine::EngineExt;
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::stash::Stash;
use datafusion::arrow::array::{Array, ArrayData};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::convert::fb_to_schema;
use datafusion::arrow::ipc::reader::{read_footer_length, FileDecoder};
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::ipc::{root_as_footer, Block, MetadataVersion};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// The snapshot's file name in the stash's folder.
pub const SNAPSHOT_FILE: &str = "snapshot-latest.arrow";

/// Rows per record batch of a snapshot.
const BATCH_ROWS: usize = 16_384;

/// The schema metadata key that holds the generation a snapshot was built at.
const GENERATION_KEY: &str = "hashstash.generation";

fn snapshot_err(e: impl Into<crate::error::BoxError>) -> Error {
    Error::engine("snapshot", e)
}

/// Where `stash` keeps its snapshot, if its engine keeps one.
fn snapshot_path(stash: &Stash) -> Option<PathBuf> {
    let config = stash.config();
    matches!(
        config.engine,
        EngineKind::Lmdb | EngineKind::Sqlite | EngineKind::Diskcache
    )
    .then(|| config.stash_dir().join(SNAPSHOT_FILE))
}

impl Stash {
    /// Writes the stash's table (latest versions) as a columnar snapshot beside it, for the
    /// current generation; returns the number of rows. Until the next write, a scan of the
    /// whole table reads the snapshot's columns instead of decoding every entry: a repeated
    /// aggregate over a large stash runs many times faster (see [`crate::table::snapshot`]).
    /// LMDB, SQLite and diskcache keep snapshots; other engines say so with
    /// [`Error::InvalidOption`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// stash.set("Animal 1", &serde_json::json!({"name": "cat", "age": 9}))?;
    /// assert_eq!(stash.snapshot()?, 1);
    /// assert!(stash.has_current_snapshot()?);
    /// stash.set("Animal 2", &serde_json::json!({"name": "dog", "age": 3}))?;
    /// assert!(!stash.has_current_snapshot()?); // stale: queries decode the stash again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Result<usize> {
        let (Some(path), Some(catalog)) = (snapshot_path(self), self.engine().catalog()) else {
            return Err(Error::InvalidOption {
                option: "snapshot",
                message: format!(
                    "the {} engine keeps no snapshot (lmdb, sqlite and diskcache do)",
                    self.config().engine
                ),
            });
        };
        // Read before the rows: a write while they are read makes the snapshot stale at once.
        let generation = catalog.generation()?;
        let table = StashTable::try_new(self.clone(), Versions::Latest)?;
        let metadata = HashMap::from([(GENERATION_KEY.to_owned(), generation.to_string())]);
        let schema = Arc::new(Schema::new_with_metadata(
            table.arrow_schema().fields().clone(),
            metadata,
        ));
        let dir = self.config().stash_dir();
        let file = tempfile::Builder::new()
            .prefix(".snapshot.")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let mut writer = FileWriter::try_new(file, &schema).map_err(snapshot_err)?;
        let mut rows = 0;
        let mut batches = table.stream()?;
        // Batches of about BATCH_ROWS rows: fewer, larger batches cost a query less per row.
        let mut group = Vec::new();
        let mut grouped = 0;
        loop {
            let next = batches.blocking_next().transpose()?;
            if let Some(batch) = next.as_ref() {
                grouped += batch.num_rows();
                group.push(batch.clone());
            }
            if grouped >= BATCH_ROWS || (next.is_none() && !group.is_empty()) {
                let batch =
                    datafusion::arrow::compute::concat_batches(&table.arrow_schema(), &group)
                        .and_then(|b| b.with_schema(schema.clone()))
                        .map_err(snapshot_err)?;
                rows += batch.num_rows();
                writer.write(&batch).map_err(snapshot_err)?;
                (group, grouped) = (Vec::new(), 0);
            }
            if next.is_none() {
                break;
            }
        }
        writer.finish().map_err(snapshot_err)?;
        let file = writer.into_inner().map_err(snapshot_err)?;
        // The sums are taken from the file as a reader decodes it, so that a reader taking
        // them the same way finds the same numbers unless the bytes changed.
        let written = Snapshot::map(file.as_file(), self.clone(), None).ok_or_else(|| {
            snapshot_err("the snapshot just written does not read back as Arrow IPC")
        })?;
        let sums = written.every_sum()?;
        let headers = (0..written.blocks.len())
            .map(|i| written.header_sum(i))
            .collect::<Option<_>>()
            .ok_or_else(|| snapshot_err("a snapshot batch past the file's end"))?;
        let record = SnapshotRecord {
            generation,
            len: written.bytes.len() as u64,
            footer: written.footer,
            headers,
            sums,
        };
        drop(written);
        let record = serde_json::to_vec(&record).map_err(snapshot_err)?;
        // The file first, then its record: a reader between the two sees a file that does
        // not match the record, and ignores it.
        file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        catalog.write_record(RECORD, &record)?;
        Ok(rows)
    }

    /// Whether the stash has a snapshot of its current generation ([`Stash::snapshot`]),
    /// whole: every column of every batch is read and checked.
    pub fn has_current_snapshot(&self) -> Result<bool> {
        let Some(catalog) = self.engine().catalog() else {
            return Ok(false);
        };
        let Some(snapshot) = current_snapshot(self, catalog.generation()?, None) else {
            return Ok(false);
        };
        Ok(snapshot.read(None)?.all(|batch| batch.is_ok()))
    }
}

/// The catalog record of the snapshot: the generation it was built at, the file's length,
/// and an xxh3 sum of each column of each record batch as decoded. Arrow IPC has no checksums
/// of its own, so a reader checks each column it reads against its sum before using it: a
/// flipped bit is an error (and the snapshot is dropped), never a wrong answer. A query pays
/// only for the columns it reads.
const RECORD: &str = "snapshot-latest.json";

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct SnapshotRecord {
    generation: u64,
    len: u64,
    /// xxh3 of the footer (and the file's trailer), checked before the footer is parsed.
    footer: u64,
    /// Per record batch: xxh3 of its message header, checked before the batch is decoded
    /// (a damaged header could make the decoder misread its buffers).
    headers: Vec<u64>,
    /// Per record batch, per column.
    sums: Vec<Vec<u64>>,
}

/// The sum of a decoded array: its length, offset, null count and the bytes of its buffers,
/// validity and children.
fn array_sum(data: &ArrayData, hasher: &mut Xxh3) {
    for number in [data.len(), data.offset(), data.null_count()] {
        hasher.update(&(number as u64).to_le_bytes());
    }
    if let Some(nulls) = data.nulls() {
        hasher.update(nulls.buffer().as_slice());
    }
    for buffer in data.buffers() {
        hasher.update(&(buffer.len() as u64).to_le_bytes());
        hasher.update(buffer.as_slice());
    }
    for child in data.child_data() {
        array_sum(child, hasher);
    }
}

fn column_sum(array: &dyn Array) -> u64 {
    let mut hasher = Xxh3::new();
    array_sum(&array.to_data(), &mut hasher);
    hasher.digest()
}

/// The snapshot of `stash` if it was built at `generation`, has the length its record says
/// and, given `schema`, exactly its columns. Anything else is a miss. Its columns are checked
/// as they are read ([`Snapshot::read`]).
pub(crate) fn current_snapshot(
    stash: &Stash,
    generation: u64,
    schema: Option<&SchemaRef>,
) -> Option<Snapshot> {
    let path = snapshot_path(stash)?;
    let record = stash.engine().catalog()?.read_record(RECORD).ok()??;
    let record: SnapshotRecord = serde_json::from_slice(&record).ok()?;
    if record.generation != generation {
        return None;
    }
    let file = std::fs::File::open(&path).ok()?;
    let mut snapshot = Snapshot::map(&file, stash.clone(), Some(record.footer))?;
    let built_at = snapshot
        .schema
        .metadata()
        .get(GENERATION_KEY)?
        .parse::<u64>();
    let columns = snapshot.schema.fields().len();
    let fits = snapshot.bytes.len() as u64 == record.len
        && built_at.ok()? == generation
        && record.sums.len() == snapshot.blocks.len()
        && record.headers.len() == snapshot.blocks.len()
        && record.sums.iter().all(|sums| sums.len() == columns)
        && schema.is_none_or(|s| s.fields() == snapshot.schema.fields());
    snapshot.sums = Arc::new(record.sums);
    snapshot.headers = Arc::new(record.headers);
    fits.then_some(snapshot)
}

/// A current snapshot mapped into memory: its batches are read in place.
#[derive(Clone)]
pub(crate) struct Snapshot {
    bytes: Buffer,
    schema: SchemaRef,
    version: MetadataVersion,
    blocks: Vec<Block>,
    /// xxh3 of the footer as found.
    footer: u64,
    /// The record's header sums (per batch); empty while the snapshot is written.
    headers: Arc<Vec<u64>>,
    /// The record's sums (per batch, per column); empty while the snapshot is written.
    sums: Arc<Vec<Vec<u64>>>,
    /// The stash, whose record a damaged snapshot drops.
    stash: Stash,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("bytes", &self.bytes.len())
            .field("batches", &self.blocks.len())
            .finish()
    }
}

impl Snapshot {
    /// The snapshot file `file`, mapped, with its footer read (only if its sum is `footer`,
    /// when given); `None` if it is not one.
    fn map(file: &std::fs::File, stash: Stash, footer: Option<u64>) -> Option<Snapshot> {
        // SAFETY: a snapshot file is never written in place: `Stash::snapshot` writes a new
        // file and renames it over the old one, so a mapped file keeps its bytes (a process
        // that truncated it by hand would end this one with SIGBUS, as with LMDB's map).
        let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
        let len = map.len();
        let start = std::ptr::NonNull::new(map.as_ptr().cast_mut())?;
        // SAFETY: the pointer and length are the map's, and the buffer keeps the map alive.
        let bytes = unsafe { Buffer::from_custom_allocation(start, len, Arc::new(map)) };
        let trailer = len.checked_sub(10)?;
        let footer_len = read_footer_length(bytes[trailer..].try_into().ok()?).ok()?;
        let footer_start = trailer.checked_sub(footer_len)?;
        let footer_sum = xxh3_64(&bytes[footer_start..]);
        if footer.is_some_and(|sum| sum != footer_sum) {
            return None;
        }
        let footer = root_as_footer(&bytes[footer_start..trailer]).ok()?;
        let schema = Arc::new(fb_to_schema(footer.schema()?));
        let blocks = footer.recordBatches()?.iter().copied().collect();
        let version = footer.version();
        Some(Snapshot {
            bytes,
            schema,
            version,
            blocks,
            footer: footer_sum,
            headers: Arc::new(Vec::new()),
            sums: Arc::new(Vec::new()),
            stash,
        })
    }

    /// The bytes of batch `index`: its message header, then its body.
    fn block_bytes(&self, index: usize) -> Option<(&Block, Buffer)> {
        let block = self.blocks.get(index)?;
        let len = usize::try_from(block.bodyLength())
            .ok()?
            .checked_add(usize::try_from(block.metaDataLength()).ok()?)?;
        let at = usize::try_from(block.offset()).ok().filter(|&at| {
            at.checked_add(len)
                .is_some_and(|end| end <= self.bytes.len())
        })?;
        Some((block, self.bytes.slice_with_length(at, len)))
    }

    /// xxh3 of batch `index`'s message header.
    fn header_sum(&self, index: usize) -> Option<u64> {
        let (block, bytes) = self.block_bytes(index)?;
        let header = usize::try_from(block.metaDataLength()).ok()?;
        Some(xxh3_64(bytes.get(..header)?))
    }

    /// Batch `index` with the columns `projection` picks (all if `None`), decoded in place.
    fn decode(&self, decoder: &FileDecoder, index: usize) -> Result<RecordBatch> {
        let (block, data) = self
            .block_bytes(index)
            .ok_or_else(|| snapshot_err("a snapshot batch past the file's end"))?;
        // While the snapshot is written there are no sums yet: the writer decodes its own
        // bytes. A reader decodes only a header it wrote.
        if !self.headers.is_empty() && self.headers.get(index) != self.header_sum(index).as_ref() {
            return Err(snapshot_err("the columnar snapshot is damaged"));
        }
        decoder
            .read_record_batch(block, &data)
            .map_err(snapshot_err)?
            .ok_or_else(|| snapshot_err("an empty snapshot batch"))
    }

    /// The sum of every column of every batch, as [`Snapshot::read`] checks them.
    fn every_sum(&self) -> Result<Vec<Vec<u64>>> {
        let decoder = FileDecoder::new(self.schema.clone(), self.version);
        (0..self.blocks.len())
            .map(|i| {
                let batch = self.decode(&decoder, i)?;
                Ok(batch
                    .columns()
                    .iter()
                    .map(|c| column_sum(c.as_ref()))
                    .collect())
            })
            .collect()
    }

    /// The snapshot's record batches in order, with the columns `projection` picks, each
    /// column checked against its recorded sum before it is given. The arrays point into the
    /// mapped file: nothing is copied. A column that does not match ends the read with an
    /// error and drops the snapshot's record, so the next query reads the stash.
    pub(crate) fn read(
        &self,
        projection: Option<Vec<usize>>,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + 'static> {
        let columns: Vec<usize> = match &projection {
            Some(projection) => projection.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut decoder = FileDecoder::new(self.schema.clone(), self.version);
        if let Some(projection) = projection {
            decoder = decoder.with_projection(projection);
        }
        let snapshot = self.clone();
        let mut failed = false;
        Ok((0..self.blocks.len()).map_while(move |index| {
            if failed {
                return None;
            }
            let checked = snapshot.decode(&decoder, index).and_then(|batch| {
                let sums = snapshot.sums.get(index);
                let whole = batch
                    .columns()
                    .iter()
                    .zip(&columns)
                    .all(|(array, &column)| {
                        sums.and_then(|s| s.get(column)) == Some(&column_sum(array.as_ref()))
                    });
                if whole {
                    Ok(batch)
                } else {
                    Err(snapshot_err("the columnar snapshot is damaged"))
                }
            });
            if checked.is_err() {
                failed = true;
                snapshot.drop_record();
            }
            Some(
                checked
                    .map_err(|e| snapshot_err(format!("{e}: it is dropped, run the query again"))),
            )
        }))
    }

    /// Drops the snapshot's record (an empty record is a miss): queries read the stash.
    fn drop_record(&self) {
        if let Some(catalog) = self.stash.engine().catalog() {
            let _ = catalog.write_record(RECORD, b"");
        }
    }
}

/// A snapshot's batches as a DataFusion stream of `schema`, cut at `limit` rows.
pub(crate) fn snapshot_stream(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>> + Send + 'static,
    limit: Option<usize>,
) -> SendableRecordBatchStream {
    let mut remaining = limit.unwrap_or(usize::MAX);
    let limited = batches.map_while(move |batch| {
        if remaining == 0 {
            return None;
        }
        Some(match batch {
            Ok(batch) => {
                let kept = batch.num_rows().min(remaining);
                remaining -= kept;
                Ok(batch.slice(0, kept))
            }
            Err(e) => {
                remaining = 0;
                Err(DataFusionError::External(Box::new(e)))
            }
        })
    });
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures_util::stream::iter(limited),
    ))
}
