//! Flattening a stash into records: the seed's `assemble_ld`, the first step of every table
//! view (DataFrames, SQL, parquet).
//!
//! Each entry becomes one or more rows of named cells:
//!
//! - **key columns**: a scalar key (text, number, bool) is `_key`; a map key spreads into its
//!   own columns (nested maps dotted, like values); any other key (a list, a set, bytes) is
//!   `_key` as it is;
//! - **value columns**: a map value flattens into dotted columns (`etc.goes_to.heaven`);
//!   lists of scalars stay lists; a list holding records (or DataFrames) becomes one row per
//!   element, each record flattened and each scalar in `_value`; a DataFrame becomes one row
//!   per DataFrame row; any other value is `_value`;
//! - **append mode** adds `_version` (1..n) and `_timestamp` (seconds since the epoch, UTC),
//!   for the latest version of each key or, on request, every version.
//!
//! Column order is the order of first appearance: key columns, value columns, then the
//! metadata columns.

use crate::codec::msgpack::DATAFRAME_TAG;
use crate::error::Result;
use crate::value::Value;

/// One flattened row: `(column, cell)` pairs in column order.
pub type Row = Vec<(String, Value)>;

/// The column of a scalar key (and of a non-map key).
pub const KEY_COLUMN: &str = "_key";
/// The column of a scalar value (and of scalars in a list of records).
pub const VALUE_COLUMN: &str = "_value";
/// The version column of append-mode stashes.
pub const VERSION_COLUMN: &str = "_version";
/// The timestamp column of append-mode stashes.
pub const TIMESTAMP_COLUMN: &str = "_timestamp";

/// Metadata of one stored version, added as columns in append mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowMeta {
    /// The version number (1..n).
    pub version: u64,
    /// When it was written, seconds since the epoch (UTC).
    pub timestamp: f64,
}

/// The metadata cells of one version: `_version` and `_timestamp`.
pub type MetaCells = [Value; 2];

impl RowMeta {
    /// The cells this metadata adds to a row.
    pub fn cells(&self) -> MetaCells {
        [
            Value::Integer(self.version.into()),
            Value::Float(self.timestamp),
        ]
    }
}

/// Receives flattened rows cell by cell, borrowing the cells from the decoded entry, so a
/// table can be built column by column without copying names or values.
pub trait RowSink<'v> {
    /// A new row begins; cells until the next call belong to it.
    fn start_row(&mut self);
    /// One cell of the current row.
    fn cell(&mut self, column: &str, value: &'v Value);
}

/// Feeds the rows of one entry to `sink`. `value` must have had its DataFrames opened by
/// [`open_dataframes`] (unopened ones stay single cells).
pub fn visit_entry<'v>(
    key: &'v Value,
    value: &'v Value,
    meta: Option<&'v MetaCells>,
    sink: &mut impl RowSink<'v>,
) {
    let mut walker = Walker {
        sink,
        key,
        meta,
        name: String::new(),
    };
    walker.value_rows(value);
}

/// The rows of one entry, as owned cells.
pub fn flatten_entry(key: &Value, value: &Value, meta: Option<RowMeta>) -> Result<Vec<Row>> {
    let value = open_dataframes(value.clone())?;
    let meta = meta.map(|m| m.cells());
    let mut rows = OwnedRows(Vec::new());
    visit_entry(key, &value, meta.as_ref(), &mut rows);
    Ok(rows.0)
}

struct OwnedRows(Vec<Row>);

impl<'v> RowSink<'v> for OwnedRows {
    fn start_row(&mut self) {
        self.0.push(Row::new());
    }
    fn cell(&mut self, column: &str, value: &'v Value) {
        if let Some(row) = self.0.last_mut() {
            row.push((column.to_owned(), value.clone()));
        }
    }
}

/// Walks one entry, keeping the dotted column name of the cell at hand in one buffer.
struct Walker<'s, 'v, S> {
    sink: &'s mut S,
    key: &'v Value,
    meta: Option<&'v MetaCells>,
    name: String,
}

impl<'v, S: RowSink<'v>> Walker<'_, 'v, S> {
    /// The rows a value becomes.
    fn value_rows(&mut self, value: &'v Value) {
        match value {
            Value::Tag(OPENED_DATAFRAME_TAG, records) => self.records(records),
            Value::Array(items) if items.iter().any(is_record_like) => {
                for item in items {
                    match item {
                        Value::Tag(OPENED_DATAFRAME_TAG, records) => self.records(records),
                        other => self.row(other),
                    }
                }
            }
            other => self.row(other),
        }
    }

    /// The rows of an opened DataFrame: one per record.
    fn records(&mut self, records: &'v Value) {
        if let Value::Array(records) = records {
            records.iter().for_each(|record| self.row(record));
        }
    }

    /// One row: key cells, then the value's cells (a map spread out, anything else
    /// `_value`), then the metadata.
    fn row(&mut self, value: &'v Value) {
        self.sink.start_row();
        match self.key {
            Value::Map(entries) if !entries.is_empty() => self.map(entries),
            other => self.sink.cell(KEY_COLUMN, other),
        }
        match value {
            Value::Map(entries) => self.map(entries),
            other => self.sink.cell(VALUE_COLUMN, other),
        }
        if let Some([version, timestamp]) = self.meta {
            self.sink.cell(VERSION_COLUMN, version);
            self.sink.cell(TIMESTAMP_COLUMN, timestamp);
        }
    }

    /// Nested maps become dotted column names; everything else is a cell.
    fn map(&mut self, entries: &'v [(Value, Value)]) {
        for (k, v) in entries {
            let outer = self.name.len();
            if outer > 0 {
                self.name.push('.');
            }
            match k {
                Value::Text(t) => self.name.push_str(t),
                other => self
                    .name
                    .push_str(&crate::value::to_json(other).to_string()),
            }
            match v {
                Value::Map(inner) if !inner.is_empty() => self.map(inner),
                cell => self.sink.cell(&self.name, cell),
            }
            self.name.truncate(outer);
        }
    }
}

fn is_record_like(value: &Value) -> bool {
    matches!(value, Value::Map(_) | Value::Tag(OPENED_DATAFRAME_TAG, _))
}

/// Marks a DataFrame already opened into an array of records (never stored; tables only).
const OPENED_DATAFRAME_TAG: u64 = DATAFRAME_TAG + 1;

/// Opens every DataFrame in a value (the value itself, or an item of a list) into its
/// records, so that the walk can borrow them. Without the `dataframe` feature a DataFrame
/// cannot be opened and stays one cell.
pub fn open_dataframes(value: Value) -> Result<Value> {
    Ok(match value {
        Value::Tag(DATAFRAME_TAG, ipc) => open_dataframe(*ipc)?,
        Value::Array(items)
            if items
                .iter()
                .any(|i| matches!(i, Value::Tag(DATAFRAME_TAG, _))) =>
        {
            Value::Array(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::Tag(DATAFRAME_TAG, ipc) => open_dataframe(*ipc),
                        other => Ok(other),
                    })
                    .collect::<Result<_>>()?,
            )
        }
        other => other,
    })
}

fn open_dataframe(ipc: Value) -> Result<Value> {
    #[cfg(feature = "dataframe")]
    if let Value::Bytes(bytes) = &ipc {
        let records = crate::codec::dataframe::ipc_to_json_records(bytes)
            .map_err(|e| crate::error::Error::decode("a DataFrame value", "arrow ipc", e))?;
        let records = match records {
            serde_json::Value::Array(rows) => rows.iter().map(crate::value::from_json).collect(),
            _ => Vec::new(),
        };
        return Ok(Value::Tag(
            OPENED_DATAFRAME_TAG,
            Box::new(Value::Array(records)),
        ));
    }
    Ok(Value::Tag(DATAFRAME_TAG, Box::new(ipc)))
}
