//! [`StashTable`]: a stash as a DataFusion table, read while the query runs.
//!
//! The schema is inferred once per change of the stash (one pass over it, keeping only
//! column names and kinds) and recorded in the engine's catalog
//! ([`crate::engine::catalog`]) with the generation it was read at; a table made while the
//! generation is unchanged reuses it. A query then streams record batches out of the engine
//! through the scan pipeline (`table/scan.rs`): only the columns it asks for are built, a `LIMIT` bounds the
//! read, and `_key = literal` / `_key IN (...)` are answered by point lookups instead of a
//! scan.
//!
//! A table can also be *speculative* ([`StashTable::speculative`], what [`Stash::sql`] uses):
//! its schema is the catalog's, or after a write the first rows' (widened by the last
//! recorded schema), and the scan infers the schema of every row it reads in the same walk
//! that builds the batches. Once the query has run, [`StashTable::verdict`] says whether the
//! rows read have the table's schema. If they have, the results are exactly those of an
//! exact table; if not, the query runs again on the exact schema. A first query after a
//! write then costs one pass, not two, and a lookup costs the sample and its rows.

use super::batch::entries_to_batch;
use super::flatten::{KEY_COLUMN, TIMESTAMP_COLUMN, VERSION_COLUMN};
use super::scan::{Decoded, Pipeline, RowVersions, Source, Work, EVERY_NUMBER};
use super::schema::{Kind, SchemaBuilder, SeenSchema};
use super::snapshot::{current_snapshot, snapshot_stream, Snapshot};
use super::Versions;
use crate::engine::EngineExt;
use crate::engine::TimeWindow;
use crate::error::Result;
use crate::stash::Stash;
use async_trait::async_trait;
use ciborium::Value;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr::{Between, InList};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PhysicalExpr, PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// Rows a speculative table's schema is sampled from.
const SAMPLE_ROWS: usize = 10_000;

/// A stash as a DataFusion [`TableProvider`], on any engine.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// use hashstash::table::provider::StashTable;
/// stash.set("Animal 1", &serde_json::json!({"name": "cat"}))?;
/// let table = StashTable::try_new(stash.clone(), hashstash::Versions::Latest)?;
/// let ctx = datafusion::prelude::SessionContext::new();
/// ctx.register_table("animals", std::sync::Arc::new(table))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StashTable {
    stash: Stash,
    versions: Versions,
    schema: SchemaRef,
    /// The kind of `_key` when point lookups can answer filters on it: only text or integer
    /// keys, whose literal encodes to exactly the stored key bytes.
    key_kind: Option<Kind>,
    /// A speculative table's check of its sampled schema against the rows its scans read.
    check: Option<Arc<Mutex<Check>>>,
    /// An exact table's schema when it came from the catalog: each batch is checked against
    /// it, and a row that does not fit fails the scan (and drops the record) rather than
    /// lose a column, should the catalog have missed a write.
    trusted: Option<Arc<SchemaBuilder>>,
}

/// What the scans of a speculative table found.
#[derive(Debug)]
struct Check {
    sample: SchemaBuilder,
    /// The engine generation when the sample was read, to cache a schema found to hold.
    generation: Option<u64>,
    /// Whether the schema came from the catalog (then it need not be recorded again).
    recorded: bool,
    /// The schema of every row the scans read so far.
    seen: SeenSchema,
    /// Whether some scan read every row.
    complete: bool,
}

/// Whether a speculative table's sampled schema is the stash's (see
/// [`StashTable::verdict`]).
#[derive(Debug)]
pub enum Verdict {
    /// The schema is exact: the table was not speculative, or a scan read every row and
    /// found the sampled schema.
    Holds,
    /// The stash's schema is this other one: results built on the sample are not exact.
    Differs(SchemaBuilder),
    /// No scan read every row, and a row read does not fit the sampled schema: this is the
    /// sample widened by the rows read, which a second run returns whole.
    Widened(SchemaBuilder),
    /// No scan read every row, and a row read does not fit the schema (or the query failed
    /// on a sampled schema): only inferring the whole schema can tell.
    Unknown,
}

impl fmt::Debug for StashTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StashTable")
            .field("engine", &self.stash.engine().name())
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

impl StashTable {
    /// The table of `stash`, its schema inferred from every row. Reads the whole stash
    /// (in parallel, keeping only the columns): in async code use
    /// [`StashTable::try_new_async`].
    pub fn try_new(stash: Stash, versions: Versions) -> Result<Self> {
        let (schema, from_catalog) = schema_of(&stash, versions)?;
        let mut table = StashTable::with_schema(stash, versions, &schema, None);
        table.trusted = from_catalog.then(|| Arc::new(schema));
        Ok(table)
    }

    /// The table of `stash`, its schema inferred from every row now (the catalog is not
    /// consulted, and is brought up to date).
    pub(crate) fn inferred(stash: Stash, versions: Versions) -> Result<Self> {
        let generation = generation_of(&stash, versions)?;
        let schema = infer_schema(&stash, versions, usize::MAX)?;
        if let Some(generation) = generation {
            let _ = write_cached_schema(&stash, versions, generation, &schema);
        }
        Ok(StashTable::with_schema(stash, versions, &schema, None))
    }

    /// A speculative table whose sample is `schema` (checked by its scans as any is).
    pub(crate) fn widened(stash: Stash, versions: Versions, schema: &SchemaBuilder) -> Self {
        let check = Check {
            sample: schema.clone(),
            generation: None,
            recorded: false,
            seen: SeenSchema::new(schema.columns().len()),
            complete: false,
        };
        StashTable::with_schema(stash, versions, schema, Some(check))
    }

    /// The table of `stash` with `schema`, known to be the stash's (inferred from every row).
    pub(crate) fn exact(stash: Stash, versions: Versions, schema: &SchemaBuilder) -> Self {
        StashTable::with_schema(stash, versions, schema, None)
    }

    /// The table of `stash` with a known schema.
    fn with_schema(
        stash: Stash,
        versions: Versions,
        schema: &SchemaBuilder,
        check: Option<Check>,
    ) -> Self {
        let key_kind = schema
            .kind(KEY_COLUMN)
            .filter(|k| matches!(k, Kind::Text | Kind::Int))
            .cloned();
        StashTable {
            schema: schema.schema(),
            stash,
            versions,
            key_kind,
            check: check.map(|c| Arc::new(Mutex::new(c))),
            trusted: None,
        }
    }

    /// A table whose schema is the catalog's if nothing was written since, or else is
    /// sampled from the first rows; either way its scans check every row they read against
    /// it (see the module's docs and [`StashTable::verdict`]), so that even a catalog that
    /// missed a write (a writer that died between its write and the counter, on pairtree or
    /// MongoDB) costs a second run, never a wrong answer.
    pub fn speculative(stash: Stash, versions: Versions) -> Result<Self> {
        let generation = generation_of(&stash, versions)?;
        let cached = generation.and_then(|g| read_cached_schema(&stash, versions, g));
        let recorded = matches!(cached, Some((_, true)));
        let sample = match cached {
            Some((cached, true)) => cached,
            // Written since: the first rows, widened by the schema recorded before the
            // writes, so that columns and kinds of rows the sample does not reach still show.
            Some((mut stale, false)) => {
                stale.merge(infer_schema(&stash, versions, SAMPLE_ROWS)?);
                stale
            }
            None => infer_schema(&stash, versions, SAMPLE_ROWS)?,
        };
        let check = Check {
            sample: sample.clone(),
            generation,
            recorded,
            seen: SeenSchema::new(sample.columns().len()),
            complete: false,
        };
        Ok(StashTable::with_schema(
            stash,
            versions,
            &sample,
            Some(check),
        ))
    }

    /// Whether this table's schema is the stash's, from what its scans read. A sampled
    /// schema found to hold for every row is cached, as an inferred one is.
    pub fn verdict(&self) -> Verdict {
        self.verdict_after(false)
    }

    /// [`StashTable::verdict`] after a query that ran (`failed`: or failed, maybe on a
    /// column a sample missed; a schema from the catalog is the stash's, and stands).
    pub(crate) fn verdict_after(&self, failed: bool) -> Verdict {
        let Some(check) = &self.check else {
            return Verdict::Holds;
        };
        let check = check.lock().unwrap_or_else(|e| e.into_inner());
        if !check.complete {
            // Only some rows were read (a LIMIT, key lookups): if each of them fits the
            // schema, each row returned is whole, and the answer stands.
            return if (check.recorded || !failed) && check.seen.fits(&check.sample) {
                Verdict::Holds
            } else if !failed && !check.recorded {
                // A row read has a column or kind the sample missed (a lookup of a key
                // written since, outside the sample): the same rows fit the sample widened
                // by what they hold, so a second run on it returns them whole.
                Verdict::Widened(check.seen.schema(&check.sample))
            } else {
                Verdict::Unknown
            };
        }
        let holds = check.seen.is(&check.sample);
        let seen = check.seen.schema(&check.sample);
        // What the scan saw in every row is the stash's schema either way: record it.
        if let (Some(generation), false) = (check.generation, holds && check.recorded) {
            let _ = write_cached_schema(&self.stash, self.versions, generation, &seen);
        }
        if holds {
            Verdict::Holds
        } else {
            Verdict::Differs(seen)
        }
    }

    /// The stash this table reads.
    pub fn stash(&self) -> &Stash {
        &self.stash
    }

    /// Which versions become rows.
    pub fn versions(&self) -> Versions {
        self.versions
    }

    /// Whether this table's schema was sampled rather than inferred from every row.
    pub fn is_speculative(&self) -> bool {
        self.check
            .as_ref()
            .is_some_and(|c| !c.lock().unwrap_or_else(|e| e.into_inner()).recorded)
    }

    /// [`StashTable::try_new`] on a blocking thread.
    pub async fn try_new_async(stash: Stash, versions: Versions) -> Result<Self> {
        tokio::task::spawn_blocking(move || StashTable::try_new(stash, versions))
            .await
            .map_err(|e| crate::error::Error::engine("table", e))?
    }

    /// The stash's Arrow schema.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Every row as record batches, as they are read (in stash order).
    pub fn stream(&self) -> Result<Pipeline<RecordBatch>> {
        self.pipeline(Source::All, EVERY_NUMBER, None, None)
    }

    /// Every row as record batches, in stash order: from the stash's columnar snapshot when
    /// it holds exactly this table (see [`super::snapshot`]), else read from the engine as
    /// [`StashTable::stream`] reads it.
    pub fn record_batches(&self) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
        if let Some(snapshot) = self.current_snapshot()? {
            return Ok(Box::new(snapshot.read(None)?));
        }
        let mut pipeline = self.stream()?;
        Ok(Box::new(std::iter::from_fn(move || {
            pipeline.blocking_next()
        })))
    }

    /// Every row as record batches, all read at once.
    pub fn batches(&self) -> Result<Vec<RecordBatch>> {
        let mut pipeline = self.stream()?;
        std::iter::from_fn(|| pipeline.blocking_next()).collect()
    }

    /// The record batches of `source` with the columns `projection` picks, as they are read.
    fn pipeline(
        &self,
        source: Source,
        numbers: RangeInclusive<u64>,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Pipeline<RecordBatch>> {
        let schema = self.schema.clone();
        let trusted = self.trusted.clone();
        let (stash, versions) = (self.stash.clone(), self.versions);
        let work: Arc<Work<RecordBatch>> = Arc::new(move |entries: &Decoded| {
            let Some(trusted) = &trusted else {
                return entries_to_batch(&schema, projection.as_deref(), entries, None);
            };
            let mut seen = SeenSchema::new(trusted.columns().len());
            let batch = entries_to_batch(&schema, projection.as_deref(), entries, Some(&mut seen))?;
            if !seen.fits(trusted) {
                forget_cached_schema(&stash, versions);
                return Err(crate::Error::engine(
                    "table",
                    "the stash's catalog missed a write (a writer stopped between its write \
                     and the change counter): its schema record is dropped, run the query again",
                ));
            }
            Ok(batch)
        });
        let versions = RowVersions {
            versions: self.versions,
            numbers,
        };
        Pipeline::start_limited(self.stash.clone(), source, versions, work, limit)
    }

    /// [`StashTable::pipeline`] that also infers the schema of each batch's rows, in the
    /// walk that builds the batch.
    fn checked_pipeline(
        &self,
        source: Source,
        numbers: RangeInclusive<u64>,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> Result<Pipeline<(RecordBatch, SeenSchema)>> {
        let schema = self.schema.clone();
        let work: Arc<Work<(RecordBatch, SeenSchema)>> = Arc::new(move |entries: &Decoded| {
            let mut seen = SeenSchema::new(schema.fields().len());
            let batch = entries_to_batch(&schema, projection.as_deref(), entries, Some(&mut seen))?;
            Ok((batch, seen))
        });
        let versions = RowVersions {
            versions: self.versions,
            numbers,
        };
        Pipeline::start_limited(self.stash.clone(), source, versions, work, limit)
    }

    /// The version numbers a filter on `_version` keeps (append mode), as an inclusive range
    /// that holds every row it keeps (DataFusion still applies the filter itself): versions
    /// outside it are never decoded.
    fn version_filter(&self, filter: &Expr) -> Option<RangeInclusive<u64>> {
        if !self.stash.config().append_mode {
            return None; // no `_version` column
        }
        let max = i128::from(u64::MAX);
        Some(match compared(filter, VERSION_COLUMN, version_literal)? {
            Compared::Op(Operator::Eq, n) => version_range(n, n),
            Compared::Op(Operator::Gt, n) => version_range(n + 1, max),
            Compared::Op(Operator::GtEq, n) => version_range(n, max),
            Compared::Op(Operator::Lt, n) => version_range(0, n - 1),
            Compared::Op(Operator::LtEq, n) => version_range(0, n),
            Compared::Op(..) => return None,
            Compared::Between(low, high) => version_range(low, high),
        })
    }

    /// The write times a filter on `_timestamp` keeps, as a window of the latest versions'
    /// times that holds every row it keeps (DataFusion still applies the filter itself).
    /// With every version as rows, only a lower bound holds: an entry whose latest version
    /// is older than it has no version after it, while an old version of a recent entry may
    /// be before an upper bound.
    fn time_filter(&self, filter: &Expr) -> Option<TimeWindow> {
        if !self.stash.config().append_mode {
            return None; // no `_timestamp` column
        }
        let bound = |after, before, inclusive| TimeWindow {
            after,
            before,
            inclusive,
        };
        let window = match compared(filter, TIMESTAMP_COLUMN, timestamp_literal)? {
            Compared::Op(Operator::Gt, t) => bound(Some(t), None, false),
            Compared::Op(Operator::GtEq, t) => bound(Some(t), None, true),
            Compared::Op(Operator::Lt, t) => bound(None, Some(t), false),
            Compared::Op(Operator::LtEq, t) => bound(None, Some(t), true),
            Compared::Op(Operator::Eq, t) => bound(Some(t), Some(t), true),
            Compared::Op(..) => return None,
            Compared::Between(low, high) => bound(Some(low), Some(high), true),
        };
        match self.versions {
            Versions::Latest => Some(window),
            // The row of a version at or before the moment: its key's latest version is at
            // least as recent, so only a lower bound holds (as with every version).
            Versions::All | Versions::AsOf(_) | Versions::AllUntil(_) => {
                window.after.is_some().then_some(TimeWindow {
                    before: None,
                    ..window
                })
            }
        }
    }

    /// The stash's columnar snapshot, if it holds exactly this table: the latest versions at
    /// the engine's current generation, with this schema.
    fn current_snapshot(&self) -> Result<Option<Snapshot>> {
        if self.versions != Versions::Latest {
            return Ok(None);
        }
        let Some(catalog) = self.stash.engine().catalog() else {
            return Ok(None);
        };
        let generation = catalog.generation()?;
        Ok(current_snapshot(
            &self.stash,
            generation,
            Some(&self.schema),
        ))
    }

    /// The key values a filter asks for, if point lookups can answer it exactly.
    fn key_filter(&self, filter: &Expr) -> Option<Vec<Value>> {
        let kind = self.key_kind.as_ref()?;
        let is_key = |e: &Expr| matches!(e, Expr::Column(c) if c.name == KEY_COLUMN);
        let literal = |e: &Expr| match e {
            Expr::Literal(scalar, _) => key_literal(scalar, kind),
            _ => None,
        };
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                if is_key(left) {
                    Some(vec![literal(right)?])
                } else if is_key(right) {
                    Some(vec![literal(left)?])
                } else {
                    None
                }
            }
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) if is_key(expr) => list.iter().map(literal).collect(),
            // DataFusion rewrites a short `IN` list as equalities joined by OR.
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let mut keys = self.key_filter(left)?;
                keys.extend(self.key_filter(right)?);
                Some(keys)
            }
            _ => None,
        }
    }
}

/// The time a SQL timestamp literal names, in µs since the Unix epoch (a timestamp's time
/// zone only says how to show it: the number is UTC).
/// A filter comparing one column with a literal: `column OP literal` (a literal on the left
/// is turned round), or `column BETWEEN low AND high`.
enum Compared<T> {
    Op(Operator, T),
    Between(T, T),
}

/// `filter` as a comparison of `column` with literals that `literal` reads, if it is one.
fn compared<T>(
    filter: &Expr,
    column: &str,
    literal: impl Fn(&Expr) -> Option<T>,
) -> Option<Compared<T>> {
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_column(left) => {
            Some(Compared::Op(*op, literal(right)?))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_column(right) => {
            Some(Compared::Op(op.swap()?, literal(left)?))
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_column(expr) => Some(Compared::Between(literal(low)?, literal(high)?)),
        _ => None,
    }
}

/// The version numbers from `low` to `high`, both included, clamped to u64 (the bounds are
/// i128 so that a bound past either end clamps rather than wraps); empty if none is.
fn version_range(low: i128, high: i128) -> RangeInclusive<u64> {
    let clamp = |x: i128| u64::try_from(x.max(0)).unwrap_or(u64::MAX);
    if low > high || high < 0 || low > i128::from(u64::MAX) {
        RangeInclusive::new(1, 0) // empty: keeps no version
    } else {
        clamp(low)..=clamp(high)
    }
}

/// An integer literal compared with `_version`.
fn version_literal(e: &Expr) -> Option<i128> {
    use ScalarValue as S;
    match e {
        Expr::Literal(S::Int8(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::Int16(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::Int32(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::Int64(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::UInt8(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::UInt16(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::UInt32(Some(n)), _) => Some((*n).into()),
        Expr::Literal(S::UInt64(Some(n)), _) => Some((*n).into()),
        // A cast of an integer literal (DataFusion may wrap one to match the column).
        Expr::Cast(cast) => version_literal(&cast.expr),
        Expr::TryCast(cast) => version_literal(&cast.expr),
        _ => None,
    }
}

fn timestamp_literal(e: &Expr) -> Option<i64> {
    use ScalarValue as S;
    match e {
        Expr::Literal(S::TimestampSecond(Some(t), _), _) => t.checked_mul(1_000_000),
        Expr::Literal(S::TimestampMillisecond(Some(t), _), _) => t.checked_mul(1_000),
        Expr::Literal(S::TimestampMicrosecond(Some(t), _), _) => Some(*t),
        // Rounded outwards would be wrong one way or the other: only exact micros.
        Expr::Literal(S::TimestampNanosecond(Some(t), _), _) => {
            (t % 1_000 == 0).then_some(t / 1_000)
        }
        _ => None,
    }
}

/// The intersection of two windows, as inclusive bounds.
fn both(a: TimeWindow, b: TimeWindow) -> TimeWindow {
    let ((a_low, a_high), (b_low, b_high)) = (a.bounds(), b.bounds());
    let (low, high) = (a_low.max(b_low), a_high.min(b_high));
    TimeWindow {
        after: (low != i64::MIN).then_some(low),
        before: (high != i64::MAX).then_some(high),
        inclusive: true,
    }
}

/// The key a SQL literal names, when the `_key` column is of `kind`.
fn key_literal(scalar: &ScalarValue, kind: &Kind) -> Option<Value> {
    use ScalarValue as S;
    let int = |i: i128| Some(Value::Integer(i64::try_from(i).ok()?.into()));
    match (kind, scalar) {
        (Kind::Text, S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s))) => {
            Some(Value::Text(s.clone()))
        }
        (Kind::Int, S::Int8(Some(i))) => int((*i).into()),
        (Kind::Int, S::Int16(Some(i))) => int((*i).into()),
        (Kind::Int, S::Int32(Some(i))) => int((*i).into()),
        (Kind::Int, S::Int64(Some(i))) => int((*i).into()),
        (Kind::Int, S::UInt8(Some(i))) => int((*i).into()),
        (Kind::Int, S::UInt16(Some(i))) => int((*i).into()),
        (Kind::Int, S::UInt32(Some(i))) => int((*i).into()),
        (Kind::Int, S::UInt64(Some(i))) => int((*i).into()),
        _ => None,
    }
}

/// The schema of `stash`, and whether it came from the catalog: the one in its catalog if
/// nothing was written since it was inferred, otherwise inferred now (and recorded).
fn schema_of(stash: &Stash, versions: Versions) -> Result<(SchemaBuilder, bool)> {
    let Some(generation) = generation_of(stash, versions)? else {
        return Ok((infer_schema(stash, versions, usize::MAX)?, false));
    };
    if let Some((cached, true)) = read_cached_schema(stash, versions, generation) {
        return Ok((cached, true));
    }
    let schema = infer_schema(stash, versions, usize::MAX)?;
    // A cache: failing to write it costs the next query a pass, nothing else.
    let _ = write_cached_schema(stash, versions, generation, &schema);
    Ok((schema, false))
}

/// Drops the recorded schema (an empty record is a miss).
fn forget_cached_schema(stash: &Stash, versions: Versions) {
    if let (Some(catalog), Some(name)) = (stash.engine().catalog(), record_name(versions)) {
        let _ = catalog.write_record(name, b"");
    }
}

/// The engine's change counter, read before the rows a schema is inferred from (a write
/// after it raises it, so the schema is never recorded under a later number); `None` when
/// no schema of these versions is recorded.
fn generation_of(stash: &Stash, versions: Versions) -> Result<Option<u64>> {
    if record_name(versions).is_none() {
        return Ok(None);
    }
    stash.engine().catalog().map(|c| c.generation()).transpose()
}

/// The catalog record of a stash's schema (none for a moment's table: each is inferred).
fn record_name(versions: Versions) -> Option<&'static str> {
    match versions {
        Versions::Latest => Some("schema-latest.json"),
        Versions::All => Some("schema-all.json"),
        Versions::AsOf(_) | Versions::AllUntil(_) => None,
    }
}

/// A schema kept in the engine's catalog, with the generation it was inferred at and a
/// checksum of both (a damaged record is a miss, as a missing one is).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedSchema {
    generation: u64,
    columns: Vec<(String, Kind)>,
    checksum: u64,
}

fn schema_checksum(generation: u64, columns: &[(String, Kind)]) -> Option<u64> {
    let bytes = serde_json::to_vec(&(generation, columns)).ok()?;
    Some(xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// The recorded schema, and whether it belongs to `generation` (anything unreadable or
/// damaged is a miss).
fn read_cached_schema(
    stash: &Stash,
    versions: Versions,
    generation: u64,
) -> Option<(SchemaBuilder, bool)> {
    let bytes = stash
        .engine()
        .catalog()?
        .read_record(record_name(versions)?)
        .ok()??;
    let cached: CachedSchema = serde_json::from_slice(&bytes).ok()?;
    let whole = schema_checksum(cached.generation, &cached.columns) == Some(cached.checksum);
    whole.then(|| {
        let current = cached.generation == generation;
        (SchemaBuilder::from_columns(cached.columns), current)
    })
}

fn write_cached_schema(
    stash: &Stash,
    versions: Versions,
    generation: u64,
    schema: &SchemaBuilder,
) -> Result<()> {
    let (Some(catalog), Some(name)) = (stash.engine().catalog(), record_name(versions)) else {
        return Ok(());
    };
    let columns = schema.columns().to_vec();
    let checksum = schema_checksum(generation, &columns).unwrap_or_default();
    let cached = CachedSchema {
        generation,
        columns,
        checksum,
    };
    let bytes = serde_json::to_vec(&cached).map_err(|e| crate::Error::engine("table", e))?;
    catalog.write_record(name, &bytes)
}

/// The schema of the rows of `stash`, read in parallel chunks merged in stash order, until
/// at least `rows` rows are read (`usize::MAX`: every row).
fn infer_schema(stash: &Stash, versions: Versions, rows: usize) -> Result<SchemaBuilder> {
    let work: Arc<Work<(SchemaBuilder, usize)>> = Arc::new(|entries: &Decoded| {
        let mut part = SchemaBuilder::default();
        entries.visit(&mut part)?;
        Ok((part, entries.rows()))
    });
    let limit = (rows != usize::MAX).then_some(rows);
    let mut pipeline = Pipeline::start_limited(stash.clone(), Source::All, versions, work, limit)?;
    let mut schema = SchemaBuilder::default();
    let mut read = 0usize;
    while read < rows {
        let Some(part) = pipeline.blocking_next() else {
            break;
        };
        let (part, part_rows) = part?;
        schema.merge(part);
        read = read.saturating_add(part_rows);
    }
    Ok(schema)
}

fn df_err(e: crate::error::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for StashTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.key_filter(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else if self.time_filter(f).is_some() || self.version_filter(f).is_some() {
                    // The engine narrows the scan; DataFusion applies the filter to its rows.
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        // Every pushed filter must hold: the keys asked for are those all of them name.
        let mut keys: Option<Vec<Value>> = None;
        for wanted in filters.iter().filter_map(|f| self.key_filter(f)) {
            keys = Some(match keys {
                None => wanted,
                Some(so_far) => so_far.into_iter().filter(|k| wanted.contains(k)).collect(),
            });
        }
        let window = filters
            .iter()
            .filter_map(|f| self.time_filter(f))
            .reduce(both);
        let numbers = filters
            .iter()
            .filter_map(|f| self.version_filter(f))
            .fold(EVERY_NUMBER, |a, b| {
                (*a.start()).max(*b.start())..=(*a.end()).min(*b.end())
            });
        let source = match keys {
            None => window.map_or(Source::All, Source::Written),
            Some(keys) => {
                let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
                for key in keys {
                    let bytes = crate::codec::encode_key_cbor(key).map_err(df_err)?;
                    if !encoded.contains(&bytes) {
                        encoded.push(bytes);
                    }
                }
                Source::Keys(encoded)
            }
        };
        let schema = match projection {
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => self.schema.clone(),
        };
        // A whole-table scan reads a current snapshot instead, unless a small LIMIT makes
        // reading that many entries cheaper than opening the snapshot.
        let whole_table = matches!(source, Source::All) && limit.is_none_or(|n| n >= SAMPLE_ROWS);
        let snapshot = match whole_table {
            true => self.current_snapshot().map_err(df_err)?,
            false => None,
        };
        Ok(Arc::new(StashExec::new(
            self.clone(),
            snapshot,
            source,
            numbers,
            projection.cloned(),
            schema,
            limit,
        )))
    }
}

/// The execution plan of a [`StashTable`] scan: one partition, streamed (decoding runs on
/// the scan's own worker threads).
#[derive(Debug)]
pub struct StashExec {
    table: StashTable,
    /// A current snapshot that answers this whole-table scan instead of the engine.
    snapshot: Option<Snapshot>,
    source: Source,
    /// The version numbers a filter on `_version` keeps (all of them without one).
    numbers: RangeInclusive<u64>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl StashExec {
    fn new(
        table: StashTable,
        snapshot: Option<Snapshot>,
        source: Source,
        numbers: RangeInclusive<u64>,
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
        StashExec {
            table,
            snapshot,
            source,
            numbers,
            projection,
            schema,
            limit,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for StashExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StashExec: engine={}", self.table.stash.engine().name())?;
        match &self.source {
            Source::All if self.snapshot.is_some() => write!(f, ", from its snapshot")?,
            Source::All => write!(f, ", scan")?,
            Source::Keys(keys) => write!(f, ", lookup of {} keys", keys.len())?,
            Source::Written(w) => {
                let (low, high) = w.bounds();
                write!(f, ", scan of entries written in [{low}, {high}] µs")?
            }
        }
        if self.numbers != EVERY_NUMBER && self.snapshot.is_none() {
            let (low, high) = (self.numbers.start(), self.numbers.end());
            write!(f, ", versions [{low}, {high}]")?;
        }
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|c| c.name().as_str())
            .collect();
        write!(f, ", columns=[{}]", columns.join(", "))?;
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for StashExec {
    fn name(&self) -> &'static str {
        "StashExec"
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
        if let Some(snapshot) = &self.snapshot {
            // Exact rows of the current generation: a speculative table's check has
            // nothing to learn from them, and its verdict holds.
            let batches = snapshot.read(self.projection.clone()).map_err(df_err)?;
            return Ok(snapshot_stream(self.schema.clone(), batches, self.limit));
        }
        if let Some(check) = &self.table.check {
            return self.execute_checked(Arc::clone(check));
        }
        let pipeline = self
            .table
            .pipeline(
                self.source.clone(),
                self.numbers.clone(),
                self.projection.clone(),
                self.limit,
            )
            .map_err(df_err)?;
        let remaining = self.limit.unwrap_or(usize::MAX);
        let batches = futures_util::stream::unfold(
            (pipeline, remaining),
            |(mut pipeline, remaining)| async move {
                if remaining == 0 {
                    return None;
                }
                let batch = match pipeline.next().await? {
                    Ok(batch) => batch,
                    Err(e) => return Some((Err(df_err(e)), (pipeline, 0))),
                };
                let kept = batch.num_rows().min(remaining);
                Some((Ok(batch.slice(0, kept)), (pipeline, remaining - kept)))
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}

impl StashExec {
    /// The scan of a speculative table: each batch's rows' schema joins the check, and a
    /// scan that reads every row (all of the stash, to its end) marks it complete.
    fn execute_checked(
        &self,
        check: Arc<Mutex<Check>>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let pipeline = self
            .table
            .checked_pipeline(
                self.source.clone(),
                self.numbers.clone(),
                self.projection.clone(),
                self.limit,
            )
            .map_err(df_err)?;
        // Only a scan of every entry and every version sees the whole table.
        let whole_stash = matches!(self.source, Source::All) && self.numbers == EVERY_NUMBER;
        let remaining = self.limit.unwrap_or(usize::MAX);
        let batches = futures_util::stream::unfold(
            (pipeline, remaining, check),
            move |(mut pipeline, remaining, check)| async move {
                if remaining == 0 {
                    return None;
                }
                let (batch, seen) = match pipeline.next().await {
                    Some(Ok(done)) => done,
                    Some(Err(e)) => return Some((Err(df_err(e)), (pipeline, 0, check))),
                    None => {
                        if whole_stash {
                            check.lock().unwrap_or_else(|e| e.into_inner()).complete = true;
                        }
                        return None;
                    }
                };
                check
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .seen
                    .merge(seen);
                let kept = batch.num_rows().min(remaining);
                Some((
                    Ok(batch.slice(0, kept)),
                    (pipeline, remaining - kept, check),
                ))
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}
