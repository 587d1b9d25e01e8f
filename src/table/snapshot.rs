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
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::stash::Stash;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PhysicalExpr, PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// The snapshot's file name in the stash's folder.
pub const SNAPSHOT_FILE: &str = "snapshot-latest.arrow";

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
        let file = Hashing {
            inner: file,
            hasher: Xxh3::new(),
            len: 0,
        };
        let mut writer = FileWriter::try_new(file, &schema).map_err(snapshot_err)?;
        let mut rows = 0;
        let mut batches = table.stream()?;
        while let Some(batch) = batches.blocking_next() {
            let batch = batch?.with_schema(schema.clone()).map_err(snapshot_err)?;
            rows += batch.num_rows();
            writer.write(&batch).map_err(snapshot_err)?;
        }
        writer.finish().map_err(snapshot_err)?;
        let file = writer.into_inner().map_err(snapshot_err)?;
        let record = SnapshotRecord {
            generation,
            len: file.len,
            checksum: file.hasher.digest(),
        };
        let record = serde_json::to_vec(&record).map_err(snapshot_err)?;
        // The file first, then its record: a reader between the two sees a file that does
        // not match the record, and ignores it.
        file.inner
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        catalog.write_record(RECORD, &record)?;
        Ok(rows)
    }

    /// Whether the stash has a snapshot of its current generation ([`Stash::snapshot`]).
    pub fn has_current_snapshot(&self) -> Result<bool> {
        let Some(catalog) = self.engine().catalog() else {
            return Ok(false);
        };
        Ok(current_snapshot(self, catalog.generation()?, None).is_some())
    }
}

/// The catalog record of the snapshot: the generation it was built at, and the file's length
/// and xxh3 checksum (Arrow IPC has no checksums of its own: a flipped bit in the file would
/// be a wrong answer, so a file that does not match its record is never read).
const RECORD: &str = "snapshot-latest.json";

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct SnapshotRecord {
    generation: u64,
    len: u64,
    checksum: u64,
}

/// A writer that hashes and counts what it writes.
struct Hashing<W> {
    inner: W,
    hasher: Xxh3,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The snapshot of `stash` if it was built at `generation`, matches its record whole (length
/// and checksum) and, given `schema`, has exactly its columns. Anything else is a miss.
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
    // The file is checked and then read through the same handle: a snapshot written over it
    // meanwhile is another file.
    let mut file = std::fs::File::open(&path).ok()?;
    let mut hasher = Xxh3::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&chunk[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    if (len, hasher.digest()) != (record.len, record.checksum) {
        return None;
    }
    file.seek(SeekFrom::Start(0)).ok()?;
    let reader = FileReader::try_new(file.try_clone().ok()?, None).ok()?;
    let built_at = reader
        .schema()
        .metadata()
        .get(GENERATION_KEY)?
        .parse::<u64>();
    if built_at.ok()? != generation {
        return None;
    }
    if schema.is_some_and(|s| s.fields() != reader.schema().fields()) {
        return None;
    }
    Some(Snapshot {
        file: Arc::new(file),
        batches: reader.num_batches(),
    })
}

/// A current snapshot file, checked.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    file: Arc<std::fs::File>,
    batches: usize,
}

impl Snapshot {
    /// The snapshot's record batches in order, with the columns `projection` picks.
    pub(crate) fn read(
        &self,
        projection: Option<Vec<usize>>,
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + 'static> {
        let path = std::path::Path::new(SNAPSHOT_FILE);
        let mut file = self.file.try_clone().map_err(|e| Error::io(path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;
        let reader = FileReader::try_new(file, projection).map_err(snapshot_err)?;
        Ok(reader.map(|batch| batch.map_err(snapshot_err)))
    }
}

/// The scan of a whole table from its snapshot: one partition, in the stash's order (as the
/// engine's scan would give it), read as the query asks.
#[derive(Debug)]
pub(crate) struct SnapshotExec {
    snapshot: Snapshot,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl SnapshotExec {
    pub(crate) fn new(
        snapshot: Snapshot,
        projection: Option<Vec<usize>>,
        schema: SchemaRef,
        limit: Option<usize>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        SnapshotExec {
            snapshot,
            projection,
            schema,
            limit,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for SnapshotExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SnapshotExec: {} batches, columns=[{}]",
            self.snapshot.batches,
            self.schema
                .fields()
                .iter()
                .map(|c| c.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for SnapshotExec {
    fn name(&self) -> &'static str {
        "SnapshotExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let batches = self
            .snapshot
            .read(self.projection.clone())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut remaining = self.limit.unwrap_or(usize::MAX);
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
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures_util::stream::iter(limited),
        )))
    }
}
