//! SQL over stashes (DataFusion), Arrow record batches and parquet export (feature `sql`).
//!
//! A stash becomes a table named `stash` (or any name, with [`sql_over`] and [`register`]):
//! a [`StashTable`], whose schema is inferred from every flattened row (see
//! [`super::schema`]) and whose rows stream out of the engine as the query runs.

use super::provider::StashTable;
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

    /// [`Stash::sql`] for async code (the stash is read on a blocking thread).
    pub async fn sql_async(&self, query: &str) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let table = StashTable::try_new_async(self.clone(), Versions::Latest).await?;
        ctx.register_table("stash", Arc::new(table))
            .map_err(sql_err)?;
        run_query(&ctx, query).await
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
pub fn sql_over(tables: &[(&str, &Stash)], query: &str) -> Result<Vec<RecordBatch>> {
    let ctx = context(tables)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(sql_err)?;
    runtime.block_on(run_query(&ctx, query))
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
