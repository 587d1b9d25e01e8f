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

/// The rows of one entry.
pub fn flatten_entry(key: &Value, value: &Value, meta: Option<RowMeta>) -> Result<Vec<Row>> {
    let mut key_cells = Row::new();
    flatten_key(key, &mut key_cells);
    let mut rows = Vec::new();
    for value_cells in flatten_value(value)? {
        let mut row = key_cells.clone();
        row.extend(value_cells);
        if let Some(meta) = meta {
            row.push((VERSION_COLUMN.into(), Value::Integer(meta.version.into())));
            row.push((TIMESTAMP_COLUMN.into(), Value::Float(meta.timestamp)));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn flatten_key(key: &Value, out: &mut Row) {
    match key {
        Value::Map(entries) if !entries.is_empty() => flatten_map("", entries, out),
        other => out.push((KEY_COLUMN.into(), other.clone())),
    }
}

/// The cells of each row a value becomes.
fn flatten_value(value: &Value) -> Result<Vec<Row>> {
    Ok(match value {
        Value::Map(entries) => {
            let mut row = Row::new();
            flatten_map("", entries, &mut row);
            vec![row]
        }
        Value::Tag(DATAFRAME_TAG, ipc) => dataframe_rows(ipc)?,
        Value::Array(items) if items.iter().any(is_record_like) => {
            let mut rows = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Map(entries) => {
                        let mut row = Row::new();
                        flatten_map("", entries, &mut row);
                        rows.push(row);
                    }
                    Value::Tag(DATAFRAME_TAG, ipc) => rows.extend(dataframe_rows(ipc)?),
                    scalar => rows.push(vec![(VALUE_COLUMN.into(), scalar.clone())]),
                }
            }
            rows
        }
        other => vec![vec![(VALUE_COLUMN.into(), other.clone())]],
    })
}

fn is_record_like(value: &Value) -> bool {
    matches!(value, Value::Map(_) | Value::Tag(DATAFRAME_TAG, _))
}

/// Nested maps become dotted column names; everything else is a cell.
fn flatten_map(prefix: &str, entries: &[(Value, Value)], out: &mut Row) {
    for (k, v) in entries {
        let name = match k {
            Value::Text(t) => t.clone(),
            other => crate::value::to_json(other).to_string(),
        };
        let column = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        match v {
            Value::Map(inner) if !inner.is_empty() => flatten_map(&column, inner, out),
            cell => out.push((column, cell.clone())),
        }
    }
}

/// The rows of a DataFrame value (Arrow IPC bytes).
fn dataframe_rows(ipc: &Value) -> Result<Vec<Row>> {
    #[cfg(feature = "dataframe")]
    if let Value::Bytes(bytes) = ipc {
        let records = crate::codec::dataframe::ipc_to_json_records(bytes)
            .map_err(|e| crate::error::Error::decode("a DataFrame value", "arrow ipc", e))?;
        let rows = match records {
            serde_json::Value::Array(rows) => rows,
            _ => Vec::new(),
        };
        return Ok(rows
            .iter()
            .map(|row| match crate::value::from_json(row) {
                Value::Map(entries) => {
                    let mut cells = Row::new();
                    flatten_map("", &entries, &mut cells);
                    cells
                }
                other => vec![(VALUE_COLUMN.into(), other)],
            })
            .collect());
    }
    // Without the `dataframe` feature the frame cannot be opened: it stays one cell.
    Ok(vec![vec![(
        VALUE_COLUMN.into(),
        Value::Tag(DATAFRAME_TAG, Box::new(ipc.clone())),
    )]])
}
