//! A stash's table, SQL results and parquet for Python. Record batches cross to pyarrow
//! through the Arrow C Data Interface (arrow-rs's `arrow-pyarrow`): the columns are handed
//! over, not copied or re-encoded. The Python layer turns the `pyarrow.Table` into a polars
//! or pandas DataFrame.

use crate::errors::OrPy;
use crate::stash::PyStash;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use hashstash::table::parquet_tables::ParquetTables;
use hashstash::table::sql::sql_over_stream_with;
use hashstash::table::Versions;
use hashstash::time_filter::Moment;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// `pyarrow.Table.from_batches(batches, schema)`: the batches handed over without copies.
fn to_table(py: Python<'_>, schema: SchemaRef, batches: Vec<RecordBatch>) -> PyResult<Py<PyAny>> {
    let batches = batches
        .iter()
        .map(|batch| batch.to_pyarrow(py))
        .collect::<PyResult<Vec<_>>>()?;
    let schema = schema.as_ref().to_pyarrow(py)?;
    let table = py.import("pyarrow")?.getattr("Table")?;
    Ok(table
        .call_method1("from_batches", (PyList::new(py, batches)?, schema))?
        .unbind())
}

/// Which versions become rows: the latest (default), every one, or as of a moment.
fn versions(all: bool, as_of: Option<f64>) -> Versions {
    match (all, as_of) {
        (false, None) => Versions::Latest,
        (true, None) => Versions::All,
        (false, Some(at)) => Versions::AsOf(Moment::from_unix_seconds(at)),
        (true, Some(at)) => Versions::AllUntil(Moment::from_unix_seconds(at)),
    }
}

/// The stash as a `pyarrow.Table` (flattened as the crate's tables are: `_key`, then a
/// column per field). `all_versions` gives every version with `_version` and
/// `_timestamp`; `as_of` (seconds since the epoch) the table as it stood then.
#[pyfunction]
#[pyo3(signature = (stash, all_versions = false, as_of = None))]
pub fn to_arrow(
    py: Python<'_>,
    stash: &PyStash,
    all_versions: bool,
    as_of: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let wanted = versions(all_versions, as_of);
    let (schema, batches) = py.detach(|| stash.stash.to_batches_of(wanted)).or_py()?;
    to_table(py, schema, batches)
}

/// Writes the stash's table to a parquet file (a local path or an object-store URL);
/// returns the number of rows.
#[pyfunction]
#[pyo3(signature = (stash, path, all_versions = false))]
pub fn to_parquet(
    py: Python<'_>,
    stash: &PyStash,
    path: std::path::PathBuf,
    all_versions: bool,
) -> PyResult<usize> {
    let wanted = versions(all_versions, None);
    py.detach(|| stash.stash.to_parquet_of(&path, wanted))
        .or_py()
}

/// Loads the rows of a parquet file (as `to_parquet` writes them) into the stash; returns
/// how many entries were stored.
#[pyfunction]
pub fn load_parquet(py: Python<'_>, stash: &PyStash, path: std::path::PathBuf) -> PyResult<usize> {
    py.detach(|| stash.stash.load_parquet(&path)).or_py()
}

/// Runs `query` over stashes (each a table under its name, with `NAME_versions` beside it)
/// and parquet files (local paths or object-store URLs); `as_of` (seconds since the epoch)
/// reads the stashes as they stood then. The result is a `pyarrow.Table`.
#[pyfunction]
#[pyo3(signature = (query, stashes, files = Vec::new(), as_of = None))]
pub fn sql(
    py: Python<'_>,
    query: &str,
    stashes: Vec<(String, PyRef<'_, PyStash>)>,
    files: Vec<(String, std::path::PathBuf)>,
    as_of: Option<f64>,
) -> PyResult<Py<PyAny>> {
    let owned: Vec<(String, hashstash::Stash)> = stashes
        .iter()
        .map(|(name, stash)| (name.clone(), stash.stash.clone()))
        .collect();
    let parquet = files
        .into_iter()
        .fold(ParquetTables::new(), |tables, (name, path)| {
            tables.with(name, path)
        });
    let moment = as_of.map(Moment::from_unix_seconds);
    let (schema, batches) = py
        .detach(|| -> hashstash::Result<_> {
            let tables: Vec<(&str, &hashstash::Stash)> =
                owned.iter().map(|(n, s)| (n.as_str(), s)).collect();
            let stream = sql_over_stream_with(&tables, &parquet, query, moment)?;
            let schema = stream.schema();
            let batches = stream.collect::<hashstash::Result<Vec<_>>>()?;
            Ok((schema, batches))
        })
        .or_py()?;
    to_table(py, schema, batches)
}
