//! SQL over stashes (DataFusion), Arrow record batches and parquet export (feature `sql`).
//!
//! A stash becomes a table named `stash` (or any name, with [`sql_over`]). Its schema is
//! inferred from every flattened row (see [`super::schema`]); the rows are then read into
//! record batches of [`BATCH_ROWS`] rows.

use super::batch::rows_to_batch;
use super::flatten::Row;
use super::schema::SchemaBuilder;
use super::Versions;
use crate::error::{Error, Result};
use crate::stash::Stash;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::path::Path;
use std::sync::Arc;

/// Rows per record batch.
pub const BATCH_ROWS: usize = 8192;

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
        let rows: Vec<Row> = self.rows(versions)?.collect::<Result<_>>()?;
        let mut builder = SchemaBuilder::default();
        rows.iter().for_each(|row| builder.add_row(row));
        let schema = builder.schema();
        let batches = rows
            .chunks(BATCH_ROWS)
            .map(|chunk| rows_to_batch(&schema, chunk))
            .collect::<Result<Vec<_>>>()?;
        Ok((schema, batches))
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
        let ctx = context(&[("stash", self)])?;
        run_query(&ctx, query).await
    }

    /// Writes the stash's table to a parquet file; returns the number of rows.
    pub fn to_parquet(&self, path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref();
        let (schema, batches) = self.to_batches()?;
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None)
            .map_err(sql_err)?;
        let mut rows = 0;
        for batch in &batches {
            rows += batch.num_rows();
            writer.write(batch).map_err(sql_err)?;
        }
        writer.close().map_err(sql_err)?;
        Ok(rows)
    }
}

/// A DataFusion session with each stash registered as a table.
pub fn context(tables: &[(&str, &Stash)]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for (name, stash) in tables {
        let (schema, batches) = stash.to_batches()?;
        let table = MemTable::try_new(schema, vec![batches]).map_err(sql_err)?;
        ctx.register_table(*name, Arc::new(table))
            .map_err(sql_err)?;
    }
    Ok(ctx)
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
