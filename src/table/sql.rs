//! SQL over stashes (DataFusion), Arrow record batches and parquet export (feature `sql`).
//!
//! A stash becomes a table named `stash` (or any name, with [`sql_over`] and [`register`]):
//! a [`StashTable`], whose schema is inferred from every flattened row (see
//! [`super::schema`]) once per change of the stash (kept in the engine's catalog), and whose
//! rows stream out of the engine as the query runs.

use super::location::Output;
use super::parquet_tables::ParquetTables;
use super::provider::{StashTable, Verdict};
use super::Versions;
use crate::error::{Error, Result};
use crate::stash::Stash;
use crate::time_filter::Moment;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures_util::StreamExt;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

fn sql_err(e: impl Into<crate::error::BoxError>) -> Error {
    Error::Sql { source: e.into() }
}

impl Stash {
    /// The stash as an Arrow schema and record batches (latest versions; in append mode
    /// with `_version` and `_timestamp`).
    pub fn to_batches(&self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.to_batches_of(Versions::Latest)
    }

    /// Like [`Stash::to_batches`], choosing which versions become rows.
    pub fn to_batches_of(&self, versions: Versions) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let table = StashTable::try_new(self.clone(), versions)?;
        Ok((table.arrow_schema(), table.batches()?))
    }

    /// Runs a SQL query over this stash, as table `stash`, with every version beside it as
    /// `stash_versions` (`_version` and `_timestamp` in append mode; outside it, each key's
    /// one version).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// stash.set("Animal 1", &serde_json::json!({"name": "cat", "age": 9}))?;
    /// stash.set("Animal 2", &serde_json::json!({"name": "dog", "age": 3}))?;
    /// let batches = stash.sql("SELECT _key FROM stash WHERE age > 5")?;
    /// let shown = hashstash::table::sql::pretty(&batches)?;
    /// assert!(shown.contains("Animal 1") && !shown.contains("Animal 2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sql(&self, query: &str) -> Result<Vec<RecordBatch>> {
        sql_over(&[("stash", self)], query)
    }

    /// [`Stash::sql`] over the stash as it stood at `moment` (time travel): table `stash`
    /// holds, per key, the last version written at or before it, and `stash_versions` every
    /// version written by then.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hashstash::time_filter::Moment;
    /// let stash = hashstash::Stash::builder().root_dir(dir.path()).append_mode(true).open()?;
    /// stash.set("price", &10)?;
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// let then = Moment::now();
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// stash.set("price", &12)?;
    /// let shown = |b: &[_]| hashstash::table::sql::pretty(b);
    /// assert!(shown(&stash.sql_as_of("SELECT _value FROM stash", then)?)?.contains("10"));
    /// assert!(shown(&stash.sql("SELECT _value FROM stash")?)?.contains("12"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sql_as_of(&self, query: &str, moment: Moment) -> Result<Vec<RecordBatch>> {
        sql_over_as_of(&[("stash", self)], query, moment)
    }

    /// [`Stash::sql`] for async code (the stash's schema is read on a blocking thread).
    pub async fn sql_async(&self, query: &str) -> Result<Vec<RecordBatch>> {
        let stash = self.clone();
        let ctx = SessionContext::new();
        let wanted = tables_named(&ctx, query);
        let tables = tokio::task::spawn_blocking(move || {
            speculative_tables(&[("stash", &stash)], wanted.as_deref(), Versions::Latest)
        })
        .await
        .map_err(sql_err)??;
        let first = run_query(&register_all(ctx, &tables)?, query).await;
        let failed = first.is_err();
        let exact = tokio::task::spawn_blocking(move || settle(tables, failed))
            .await
            .map_err(sql_err)??;
        match exact {
            None => first,
            Some(exact) => run_query(&register_all(SessionContext::new(), &exact)?, query).await,
        }
    }

    /// Writes the stash's table to a parquet file, batch by batch as the stash is read;
    /// returns the number of rows. `path` may also be an object-store URL
    /// (`s3://bucket/snap.parquet`, `gs://`, `az://`; feature `objectstore`): the file is
    /// uploaded as it is written and appears whole when done (see
    /// [`location`](super::location)).
    pub fn to_parquet(&self, path: impl AsRef<Path>) -> Result<usize> {
        self.to_parquet_of(path, Versions::Latest)
    }

    /// [`Stash::to_parquet`] of the versions `versions` picks: [`Versions::All`] writes every
    /// version of every key, with `_version` and `_timestamp` (in append mode).
    pub fn to_parquet_of(&self, path: impl AsRef<Path>, versions: Versions) -> Result<usize> {
        let table = StashTable::try_new(self.clone(), versions)?;
        let mut file = ParquetSink::create(path.as_ref(), table.arrow_schema())?;
        let written = table.record_batches().and_then(|batches| {
            for batch in batches {
                file.write(&batch?)?;
            }
            Ok(())
        });
        match written {
            Ok(()) => file.close(),
            Err(e) => {
                // An object's parts are discarded; the error that matters is the first.
                let _ = file.abort();
                Err(e)
            }
        }
    }

    /// [`Stash::sql`] with the results streamed: batches come as the query makes them, so a
    /// result larger than memory can be written out (see [`sql_over_stream`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// for i in 0..100 {
    ///     stash.set(&format!("Animal {i}"), &serde_json::json!({"age": i}))?;
    /// }
    /// let mut rows = 0;
    /// for batch in stash.sql_stream("SELECT _key, age FROM stash WHERE age >= 50")? {
    ///     rows += batch?.num_rows();
    /// }
    /// assert_eq!(rows, 50);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sql_stream(&self, query: &str) -> Result<SqlStream> {
        sql_over_stream(&[("stash", self)], query)
    }
}

/// A parquet file written batch by batch, each row group flushed once it holds
/// [`ParquetSink::ROW_GROUP_BYTES`] (parquet's own bound is a row count, which for wide
/// rows holds far more in memory). The file is local, or an object in object storage
/// ([`Location`](super::location::Location)), uploaded as it is written.
pub struct ParquetSink {
    writer: datafusion::parquet::arrow::ArrowWriter<Output>,
    rows: usize,
}

impl ParquetSink {
    /// The in-memory size at which a row group is written out.
    pub const ROW_GROUP_BYTES: usize = 64 << 20;

    /// Creates (or replaces) the file or object at `path` for rows of `schema`.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let file = Output::create(path)?;
        let writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None)
            .map_err(sql_err)?;
        Ok(ParquetSink { writer, rows: 0 })
    }

    /// Appends a batch's rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(sql_err)?;
        self.rows += batch.num_rows();
        if self.writer.in_progress_size() >= Self::ROW_GROUP_BYTES {
            self.writer.flush().map_err(sql_err)?;
        }
        Ok(())
    }

    /// Writes the footer and completes the file (an object appears only now); returns the
    /// number of rows written.
    pub fn close(self) -> Result<usize> {
        // A part that fails to go up discards the upload itself (see `Upload`).
        let file = self.writer.into_inner().map_err(sql_err)?;
        file.finish()?;
        Ok(self.rows)
    }

    /// Gives up on the file: an object is not made (its parts sent are discarded); a local
    /// file is left as far as it was written.
    pub fn abort(mut self) -> Result<()> {
        self.writer.inner_mut().abort()
    }
}

/// The results of a query, batch by batch as the query makes them ([`sql_over_stream`],
/// [`Stash::sql_stream`]). An iterator of record batches; an error ends it.
pub struct SqlStream {
    schema: SchemaRef,
    /// Batches already made (a speculative run that finished within its budget).
    made: std::vec::IntoIter<RecordBatch>,
    /// The query still running, if any (dropped before the runtime that drives it).
    running: Option<SendableRecordBatchStream>,
    runtime: tokio::runtime::Runtime,
}

impl SqlStream {
    /// The schema of the result (known before the first batch, also for no rows).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl fmt::Debug for SqlStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStream")
            .field("schema", &self.schema)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Iterator for SqlStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        if let Some(batch) = self.made.next() {
            return Some(Ok(batch));
        }
        let running = self.running.as_mut()?;
        let next = self.runtime.block_on(running.next());
        if !matches!(next, Some(Ok(_))) {
            self.running = None; // the end, or an error that ends the stream
        }
        next.map(|batch| batch.map_err(sql_err))
    }
}

/// How much of a speculative run's result [`sql_over_stream`] holds back until the run
/// says whether its sampled schema held: a larger result is streamed on the exact schema.
const SPECULATIVE_BUDGET_BYTES: usize = 32 << 20;

/// [`sql_over`] with the results streamed, batch by batch as the query makes them, so that
/// a result larger than memory goes straight to a file or a socket.
///
/// A stream cannot take back a batch it gave, so only exact schemas stream: each table's
/// catalog schema when nothing was written since it was recorded (its batches are checked
/// against it, and a row that does not fit ends the stream with an error rather than lose
/// a column). After a write the query runs first on sampled schemas, as [`sql_over`] does,
/// holding its results back: a small result (up to 32 MiB: lookups, aggregates, `LIMIT`s)
/// is given once the sample is known to hold; a larger one is dropped and the query
/// streams on the schema inferred from every row.
pub fn sql_over_stream(tables: &[(&str, &Stash)], query: &str) -> Result<SqlStream> {
    sql_over_stream_versions(tables, &ParquetTables::new(), query, Versions::Latest)
}

/// [`sql_over_stream`] as the stashes stood at `moment` (see [`sql_over_as_of`]).
pub fn sql_over_stream_as_of(
    tables: &[(&str, &Stash)],
    query: &str,
    moment: Moment,
) -> Result<SqlStream> {
    sql_over_stream_versions(tables, &ParquetTables::new(), query, Versions::AsOf(moment))
}

/// What a speculative run held back.
enum HeldBack {
    /// The whole result, and its schema.
    All(SchemaRef, Vec<RecordBatch>),
    /// More than the budget: dropped.
    TooLarge,
    /// The query failed (maybe on a column a sample missed).
    Failed(Error),
}

fn sql_over_stream_versions(
    tables: &[(&str, &Stash)],
    files: &ParquetTables,
    query: &str,
    latest: Versions,
) -> Result<SqlStream> {
    let runtime = query_runtime()?;
    let ctx = runtime.block_on(files.session())?;
    let tables = speculative_tables(tables, tables_named(&ctx, query).as_deref(), latest)?;
    if tables.iter().any(|(_, table)| table.is_speculative()) {
        let ctx = register_all(ctx, &tables)?;
        let held = runtime.block_on(hold_back(&ctx, query));
        let exact = match held {
            HeldBack::All(schema, batches) => match settle(tables, false)? {
                None => return Ok(SqlStream::made(runtime, schema, batches)),
                Some(exact) => exact,
            },
            HeldBack::Failed(e) => match settle(tables, true)? {
                None => return Err(e),
                Some(exact) => exact,
            },
            HeldBack::TooLarge => exact_tables(tables)?,
        };
        let ctx = context_of(&runtime, files, &exact)?;
        return SqlStream::start(runtime, &ctx, query);
    }
    let exact = exact_tables(tables)?;
    let ctx = register_all(ctx, &exact)?;
    SqlStream::start(runtime, &ctx, query)
}

/// The tables with exact schemas (the catalog's when current, checked by their scans; else
/// inferred from every row).
fn exact_tables(tables: Vec<(String, StashTable)>) -> Result<Vec<(String, StashTable)>> {
    tables
        .into_iter()
        .map(|(name, table)| {
            Ok((
                name,
                StashTable::try_new(table.stash().clone(), table.versions())?,
            ))
        })
        .collect()
}

/// Runs `query`, keeping its result if it fits in [`SPECULATIVE_BUDGET_BYTES`].
async fn hold_back(ctx: &SessionContext, query: &str) -> HeldBack {
    let mut stream = match start_query(ctx, query).await {
        Ok(stream) => stream,
        Err(e) => return HeldBack::Failed(e),
    };
    let (mut batches, mut bytes) = (Vec::new(), 0usize);
    while let Some(batch) = stream.next().await {
        match batch {
            Ok(batch) => {
                bytes = bytes.saturating_add(batch.get_array_memory_size());
                batches.push(batch);
                if bytes > SPECULATIVE_BUDGET_BYTES {
                    return HeldBack::TooLarge;
                }
            }
            Err(e) => return HeldBack::Failed(sql_err(e)),
        }
    }
    HeldBack::All(stream.schema(), batches)
}

async fn start_query(ctx: &SessionContext, query: &str) -> Result<SendableRecordBatchStream> {
    let frame = ctx.sql(query).await.map_err(sql_err)?;
    frame.execute_stream().await.map_err(sql_err)
}

impl SqlStream {
    fn made(runtime: tokio::runtime::Runtime, schema: SchemaRef, made: Vec<RecordBatch>) -> Self {
        SqlStream {
            runtime,
            schema,
            made: made.into_iter(),
            running: None,
        }
    }

    fn start(runtime: tokio::runtime::Runtime, ctx: &SessionContext, query: &str) -> Result<Self> {
        let running = runtime.block_on(start_query(ctx, query))?;
        Ok(SqlStream {
            runtime,
            schema: running.schema(),
            made: Vec::new().into_iter(),
            running: Some(running),
        })
    }
}

/// A DataFusion session with each stash registered as a table (latest versions).
pub fn context(tables: &[(&str, &Stash)]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (name, stash) in tables {
        register(&ctx, name, stash, Versions::Latest)?;
    }
    Ok(ctx)
}

/// Registers `stash` in `ctx` as table `name`; [`Versions::All`] gives every version of
/// every key in append mode, with `_version` and `_timestamp`.
pub fn register(ctx: &SessionContext, name: &str, stash: &Stash, versions: Versions) -> Result<()> {
    let table = StashTable::try_new(stash.clone(), versions)?;
    ctx.register_table(name, Arc::new(table)).map_err(sql_err)?;
    Ok(())
}

/// Runs `query` over several stashes, each registered under its name.
///
/// Each stash's schema is the one its engine's catalog holds when nothing was written since
/// it was inferred; a stash written since has its schema sampled from its first rows,
/// widened by the last schema recorded ([`StashTable::speculative`]). Either way the query's
/// own scan checks every row it reads against the schema. If a scan of the whole stash finds
/// another schema (a later row has another column or kind), or a row read does not fit, the
/// query runs again on the exact schema, inferred anew. So a scan's results are those of the
/// exact schema, and a query that reads only some rows (`_key = ...`, `_key IN (...)`,
/// `LIMIT n`) reads only those (after a write, and the sample): each row it returns is whole.
/// Right after a write, `SELECT * ... LIMIT n` may show a column that only rows removed since
/// had, all nulls, until a whole scan records the schema anew.
///
/// Beside each `NAME` is `NAME_versions`: every version of every key, with `_version` and
/// `_timestamp` in append mode (outside it, each key's one version). Only the tables the
/// query names are read.
pub fn sql_over(tables: &[(&str, &Stash)], query: &str) -> Result<Vec<RecordBatch>> {
    sql_over_versions(tables, &ParquetTables::new(), query, Versions::Latest)
}

/// [`sql_over`] as the stashes stood at `moment`: each `NAME` holds, per key, the last
/// version written at or before it ([`Versions::AsOf`]), and `NAME_versions` every version
/// written by then.
pub fn sql_over_as_of(
    tables: &[(&str, &Stash)],
    query: &str,
    moment: Moment,
) -> Result<Vec<RecordBatch>> {
    sql_over_versions(tables, &ParquetTables::new(), query, Versions::AsOf(moment))
}

/// [`sql_over`] with parquet files as tables beside the stashes (a snapshot in object
/// storage, say: see [`ParquetTables`]); with `as_of`, the stashes as they stood then
/// ([`sql_over_as_of`]; a file is as it was written).
pub fn sql_over_with(
    tables: &[(&str, &Stash)],
    files: &ParquetTables,
    query: &str,
    as_of: Option<Moment>,
) -> Result<Vec<RecordBatch>> {
    let latest = as_of.map_or(Versions::Latest, Versions::AsOf);
    sql_over_versions(tables, files, query, latest)
}

/// [`sql_over_stream`] with parquet files as tables beside the stashes (see
/// [`sql_over_with`]).
pub fn sql_over_stream_with(
    tables: &[(&str, &Stash)],
    files: &ParquetTables,
    query: &str,
    as_of: Option<Moment>,
) -> Result<SqlStream> {
    let latest = as_of.map_or(Versions::Latest, Versions::AsOf);
    sql_over_stream_versions(tables, files, query, latest)
}

/// The suffix of the table of every version beside each stash's table.
pub const VERSIONS_SUFFIX: &str = "_versions";

/// The tables a query names, if it parses (a query that does not is left to DataFusion to
/// report).
fn tables_named(ctx: &SessionContext, query: &str) -> Option<Vec<String>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(query, &dialect).ok()?;
    let references = state.resolve_table_references(&statement).ok()?;
    Some(references.iter().map(|r| r.table().to_owned()).collect())
}

/// Each stash as a speculative table `NAME` of `latest` (its latest versions, or those as of
/// a moment) and `NAME_versions`, those of them the query names (`wanted`; `None`: all).
fn speculative_tables(
    tables: &[(&str, &Stash)],
    wanted: Option<&[String]>,
    latest: Versions,
) -> Result<Vec<(String, StashTable)>> {
    let all = match latest {
        Versions::AsOf(moment) => Versions::AllUntil(moment),
        _ => Versions::All,
    };
    let mut made = Vec::new();
    for (name, stash) in tables {
        let history = format!("{name}{VERSIONS_SUFFIX}");
        for (table, versions) in [(name.to_string(), latest), (history, all)] {
            let named = wanted.is_none_or(|w| w.iter().any(|t| t.eq_ignore_ascii_case(&table)));
            if named {
                let read = StashTable::speculative((*stash).clone(), versions)?;
                made.push((table, read));
            }
        }
    }
    Ok(made)
}

fn sql_over_versions(
    tables: &[(&str, &Stash)],
    files: &ParquetTables,
    query: &str,
    latest: Versions,
) -> Result<Vec<RecordBatch>> {
    let runtime = query_runtime()?;
    // One session (making one registers every built-in function: it costs a millisecond).
    let ctx = runtime.block_on(files.session())?;
    let tables = speculative_tables(tables, tables_named(&ctx, query).as_deref(), latest)?;
    let first = runtime.block_on(run_query(&register_all(ctx, &tables)?, query));
    match settle(tables, first.is_err())? {
        None => first,
        Some(exact) => {
            let ctx = context_of(&runtime, files, &exact)?;
            runtime.block_on(run_query(&ctx, query))
        }
    }
}

/// The runtime a query runs on: one worker per core, so that DataFusion's partitions (the
/// two halves of an aggregation, say) run side by side rather than taking turns.
fn query_runtime() -> Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("hashstash-sql")
        .enable_all()
        .build()
        .map_err(sql_err)
}

/// A session with each file and each table registered under its name.
fn context_of(
    runtime: &tokio::runtime::Runtime,
    files: &ParquetTables,
    tables: &[(String, StashTable)],
) -> Result<SessionContext> {
    register_all(runtime.block_on(files.session())?, tables)
}

/// `ctx` with each table registered under its name.
fn register_all(ctx: SessionContext, tables: &[(String, StashTable)]) -> Result<SessionContext> {
    for (name, table) in tables {
        ctx.register_table(name.as_str(), Arc::new(table.clone()))
            .map_err(sql_err)?;
    }
    Ok(ctx)
}

/// After a query over speculative tables (that `failed` or not): `None` if every table's
/// schema held (the results stand), or else the tables with their exact schemas, to run the
/// query again on.
fn settle(
    tables: Vec<(String, StashTable)>,
    failed: bool,
) -> Result<Option<Vec<(String, StashTable)>>> {
    let mut exact = Vec::with_capacity(tables.len());
    let mut all_held = true;
    for (name, table) in tables {
        let sampled: Vec<_> = table.arrow_schema().fields().iter().cloned().collect();
        let table = match table.verdict_after(failed) {
            Verdict::Holds => table,
            verdict => {
                // The exact schema: what the check saw in every row, or else inferred now.
                let (stash, versions) = (table.stash().clone(), table.versions());
                let whole = match verdict {
                    Verdict::Differs(seen) => StashTable::exact(stash, versions, &seen),
                    Verdict::Widened(seen) => StashTable::widened(stash, versions, &seen),
                    // Inferred anew: the rows read did not fit, so the catalog may be stale.
                    _ => StashTable::inferred(stash, versions)?,
                };
                let same: Vec<_> = whole.arrow_schema().fields().iter().cloned().collect();
                all_held &= same == sampled;
                whole
            }
        };
        exact.push((name, table));
    }
    Ok((!all_held).then_some(exact))
}

async fn run_query(ctx: &SessionContext, query: &str) -> Result<Vec<RecordBatch>> {
    let frame = ctx.sql(query).await.map_err(sql_err)?;
    frame.collect().await.map_err(sql_err)
}

/// Record batches as a text table.
pub fn pretty(batches: &[RecordBatch]) -> Result<String> {
    datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .map(|t| t.to_string())
        .map_err(sql_err)
}
