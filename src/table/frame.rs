//! Stashes as polars DataFrames (features `sql` and `dataframe`), handed over without
//! copying the columns.
//!
//! polars has its own Arrow (polars-arrow), not arrow-rs. Each column of a record batch
//! crosses through the Arrow C Data Interface: arrow-rs exports the array's buffers and a
//! release callback, polars imports them as its own array, and the buffers stay where they
//! are until polars drops them. Batches are read one at a time and joined into groups of
//! about [`ROWS_PER_CHUNK`] rows first (one copy of a small group), so the frame has a few
//! large chunks rather than one per 4,096 entries, and memory holds the frame plus one
//! group. Text columns are the exception polars makes: it keeps strings as views, and
//! converts arrow-rs `Utf8` arrays into them as it imports.

use super::provider::StashTable;
use super::Versions;
use crate::error::{Error, Result};
use crate::stash::Stash;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ffi::to_ffi;
use datafusion::arrow::record_batch::RecordBatch;
use polars::prelude::{Column, DataFrame, IntoColumn, PlSmallStr, Series};

/// Rows per chunk of the frame's columns.
pub const ROWS_PER_CHUNK: usize = 1 << 16;

fn frame_err(e: impl std::fmt::Display) -> Error {
    Error::decode("the stash's table", "arrow c data interface", e.to_string())
}

impl Stash {
    /// The stash's table as a polars DataFrame (the Python original's `stash.df`): latest
    /// versions, and in append mode `_version` and `_timestamp`. The columns are moved into
    /// polars through the Arrow C Data Interface, not copied (see [`crate::table::frame`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// stash.set("Animal 1", &serde_json::json!({"name": "cat", "etc": {"age": 9}}))?;
    /// let df = stash.df()?;
    /// let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    /// assert_eq!(names, ["_key", "name", "etc.age"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn df(&self) -> Result<DataFrame> {
        self.df_of(Versions::Latest)
    }

    /// Every version of every key as a DataFrame, with `_version` and `_timestamp` in append
    /// mode (the Python original's `stash.df` of an append-mode stash, all versions).
    pub fn df_versions(&self) -> Result<DataFrame> {
        self.df_of(Versions::All)
    }

    /// The DataFrame of the versions `versions` picks (for example as of a moment).
    pub fn df_of(&self, versions: Versions) -> Result<DataFrame> {
        let table = StashTable::try_new(self.clone(), versions)?;
        to_frame(table.arrow_schema(), table.record_batches()?)
    }
}

/// Record batches of `schema` as one DataFrame, read as they come.
pub fn to_frame(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<DataFrame> {
    let mut frame: Option<DataFrame> = None;
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    let add = |group: &mut Vec<RecordBatch>, frame: &mut Option<DataFrame>| -> Result<()> {
        let joined =
            datafusion::arrow::compute::concat_batches(&schema, group.iter()).map_err(frame_err)?;
        group.clear();
        let part = batch_to_frame(&joined)?;
        match frame {
            Some(frame) => drop(frame.vstack_mut_owned(part).map_err(frame_err)?),
            None => *frame = Some(part),
        }
        Ok(())
    };
    for batch in batches {
        let batch = batch?;
        rows += batch.num_rows();
        group.push(batch);
        if rows >= ROWS_PER_CHUNK {
            add(&mut group, &mut frame)?;
            rows = 0;
        }
    }
    if !group.is_empty() || frame.is_none() {
        add(&mut group, &mut frame)?;
    }
    frame.ok_or_else(|| frame_err("no frame was made"))
}

/// One record batch as a DataFrame, each column moved across the C Data Interface.
fn batch_to_frame(batch: &RecordBatch) -> Result<DataFrame> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            let array = to_polars(array)?;
            let series = Series::from_arrow(PlSmallStr::from(field.name().as_str()), array)
                .map_err(frame_err)?;
            Ok(series.into_column())
        })
        .collect::<Result<Vec<Column>>>()?;
    DataFrame::new(batch.num_rows(), columns).map_err(frame_err)
}

/// An arrow-rs array as a polars-arrow one, sharing its buffers.
fn to_polars(array: &ArrayRef) -> Result<Box<dyn polars_arrow::array::Array>> {
    let (array, schema) = to_ffi(&array.to_data()).map_err(frame_err)?;
    // SAFETY: both crates declare these structs `#[repr(C)]` after the Arrow C Data
    // Interface's `ArrowArray` and `ArrowSchema` (the transmutes check their sizes), and
    // arrow-rs has just filled them in as the interface says. Each value is moved, so its
    // release callback runs once: when polars drops what it imported.
    unsafe {
        let schema: polars_arrow::ffi::ArrowSchema = std::mem::transmute(schema);
        let array: polars_arrow::ffi::ArrowArray = std::mem::transmute(array);
        let field = polars_arrow::ffi::import_field_from_c(&schema).map_err(frame_err)?;
        polars_arrow::ffi::import_array_from_c(array, field.dtype).map_err(frame_err)
    }
}
