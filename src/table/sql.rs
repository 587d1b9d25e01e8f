//! SQL over stashes (DataFusion), Arrow record batches and parquet export (feature `sql`).
//!
//! A stash becomes a table named `stash` (or any name, with [`sql_over`] and [`register`]):
//! a [`StashTable`], whose schema is inferred from every flattened row (see
//! [`super::schema`]) and whose rows stream out of the engine as the query runs.

use super::provider::{StashTable, Verdict};
use super::Versions;
use crate::error::{Error, Result};
use crate::stash::Stash;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use std::path::Path;
use std::sync::Arc;

fn sql_err(e: impl Into<crate::error::BoxError>) -> Error {
    Error::engine("sql", e)
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

    /// Runs a SQL query over this stash, as table `stash`.
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

    /// [`Stash::sql`] for async code (the stash's schema is read on a blocking thread).
    pub async fn sql_async(&self, query: &str) -> Result<Vec<RecordBatch>> {
        let stash = self.clone();
        let table =
            tokio::task::spawn_blocking(move || StashTable::speculative(stash, Versions::Latest))
                .await
                .map_err(sql_err)??;
        let tables = vec![("stash".to_owned(), table)];
        let first = run_query(&context_of(&tables)?, query).await;
        let exact = tokio::task::spawn_blocking(move || settle(tables))
            .await
            .map_err(sql_err)??;
        match exact {
            None => first,
            Some(exact) => run_query(&context_of(&exact)?, query).await,
        }
    }

    /// Writes the stash's table to a parquet file, batch by batch as the stash is read;
    /// returns the number of rows.
    pub fn to_parquet(&self, path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref();
        let table = StashTable::try_new(self.clone(), Versions::Latest)?;
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, table.arrow_schema(), None)
                .map_err(sql_err)?;
        let mut rows = 0;
        let mut batches = table.stream()?;
        while let Some(batch) = batches.blocking_next() {
            let batch = batch?;
            rows += batch.num_rows();
            writer.write(&batch).map_err(sql_err)?;
        }
        writer.close().map_err(sql_err)?;
        Ok(rows)
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
/// A stash written since its last query has its schema sampled from its first rows rather
/// than inferred from all of them first ([`StashTable::speculative`]): the query's own scan
/// checks the sample against every row. If the sample is not the whole stash's schema (a
/// later row has another column or kind), the query runs again on the exact schema, so
/// results are always those of the exact schema.
pub fn sql_over(tables: &[(&str, &Stash)], query: &str) -> Result<Vec<RecordBatch>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(sql_err)?;
    let tables = tables
        .iter()
        .map(|(name, stash)| {
            let table = StashTable::speculative((*stash).clone(), Versions::Latest)?;
            Ok((name.to_string(), table))
        })
        .collect::<Result<Vec<_>>>()?;
    let first = runtime.block_on(run_query(&context_of(&tables)?, query));
    match settle(tables)? {
        None => first,
        Some(exact) => runtime.block_on(run_query(&context_of(&exact)?, query)),
    }
}

/// A session with each table registered under its name.
fn context_of(tables: &[(String, StashTable)]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (name, table) in tables {
        ctx.register_table(name.as_str(), Arc::new(table.clone()))
            .map_err(sql_err)?;
    }
    Ok(ctx)
}

/// After a query over speculative tables: `None` if every table's schema held (the results
/// stand), or else the tables with their exact schemas, to run the query again on.
fn settle(tables: Vec<(String, StashTable)>) -> Result<Option<Vec<(String, StashTable)>>> {
    let mut exact = Vec::with_capacity(tables.len());
    let mut all_held = true;
    for (name, table) in tables {
        let sampled: Vec<_> = table.arrow_schema().fields().iter().cloned().collect();
        let table = match table.verdict() {
            Verdict::Holds => table,
            verdict => {
                // The exact schema: what the check saw in every row, or else inferred now.
                let (stash, versions) = (table.stash().clone(), table.versions());
                let whole = match verdict {
                    Verdict::Differs(seen) => StashTable::exact(stash, versions, &seen),
                    _ => StashTable::try_new(stash, versions)?,
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

#[cfg(feature = "dataframe")]
impl Stash {
    /// The stash's table as a polars DataFrame (the seed's `stash.df`). The record batches
    /// are handed over as an Arrow IPC stream, which polars reads with its own Arrow.
    pub fn df(&self) -> Result<polars::prelude::DataFrame> {
        let (schema, batches) = self.to_batches()?;
        let mut ipc = Vec::new();
        let mut writer = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut ipc, &schema)
            .map_err(sql_err)?;
        for batch in &batches {
            writer.write(batch).map_err(sql_err)?;
        }
        writer.finish().map_err(sql_err)?;
        drop(writer);
        polars::prelude::DataFrame::deserialize_from_reader(&mut std::io::Cursor::new(ipc))
            .map_err(|e| Error::decode("the stash's table", "arrow ipc", e.to_string()))
    }
}
