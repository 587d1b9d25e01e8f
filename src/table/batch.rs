//! Decoded entries into Arrow record batches, for a schema from [`super::schema`]: the rows
//! are walked once, each cell going straight to its column.

use super::flatten::RowSink;
use super::scan::Entry;
use crate::codec::key::SET_TAG;
use crate::error::{Error, Result};
use crate::value::{to_json, Value};
use datafusion::arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder,
    ListArray, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::Arc;

/// One record batch holding the rows of `entries`, with the columns of `schema` (missing
/// cells are null; columns not in `schema` are skipped).
pub fn entries_to_batch(schema: &SchemaRef, entries: &[Entry]) -> Result<RecordBatch> {
    let mut columns = Columns {
        index: schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().as_str(), i))
            .collect(),
        cells: vec![Vec::new(); schema.fields().len()],
        rows: 0,
    };
    entries.iter().for_each(|entry| entry.visit(&mut columns));
    let arrays = schema
        .fields()
        .iter()
        .zip(&columns.cells)
        .map(|(field, cells)| build_array(field.data_type(), cells))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(columns.rows)),
    )
    .map_err(|e| Error::decode("a table", "arrow", e))
}

/// The cells of each column, borrowed from the decoded entries: one per row, `None` where
/// the row has no such column.
struct Columns<'s, 'v> {
    index: HashMap<&'s str, usize>,
    cells: Vec<Vec<Option<&'v Value>>>,
    rows: usize,
}

impl<'v> RowSink<'v> for Columns<'_, 'v> {
    fn start_row(&mut self) {
        self.rows += 1;
        self.cells.iter_mut().for_each(|column| column.push(None));
    }

    fn cell(&mut self, column: &str, value: &'v Value) {
        if let Some(&i) = self.index.get(column) {
            if let Some(slot) = self.cells[i].last_mut() {
                *slot = Some(value);
            }
        }
    }
}

/// The cell as the text a JSON-text column holds: text as it is, anything else as JSON.
fn json_text(value: &Value) -> String {
    match value {
        Value::Text(t) => t.clone(),
        other => to_json(other).to_string(),
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Float(f) => Some(*f),
        Value::Integer(i) => Some(i128::from(*i) as f64),
        _ => None,
    }
}

fn items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        Value::Tag(SET_TAG, inner) => items(inner),
        _ => None,
    }
}

/// The cell, unless it is missing or null.
fn present<'a>(cell: &Option<&'a Value>) -> Option<&'a Value> {
    (*cell).filter(|v| !matches!(v, Value::Null))
}

/// An array of `data_type` from one cell per row (`None`: the row has no such column).
fn build_array(data_type: &DataType, cells: &[Option<&Value>]) -> Result<ArrayRef> {
    Ok(match data_type {
        DataType::Null => new_null_array(data_type, cells.len()),
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(cells.len());
            cells
                .iter()
                .for_each(|c| b.append_option(present(c).and_then(Value::as_bool)));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(cells.len());
            cells
                .iter()
                .for_each(|c| b.append_option(present(c).and_then(int)));
            Arc::new(b.finish())
        }
        DataType::UInt64 => {
            let mut b = UInt64Builder::with_capacity(cells.len());
            cells.iter().for_each(|c| {
                b.append_option(present(c).and_then(int).and_then(|i| u64::try_from(i).ok()))
            });
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(cells.len());
            cells
                .iter()
                .for_each(|c| b.append_option(present(c).and_then(float)));
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(cells.len());
            cells.iter().for_each(|c| {
                b.append_option(present(c).and_then(float).map(|s| (s * 1e6).round() as i64))
            });
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(cells.len(), cells.len() * 8);
            cells
                .iter()
                .for_each(|c| b.append_option(present(c).map(json_text)));
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(cells.len(), cells.len() * 8);
            cells.iter().for_each(|c| match present(c) {
                Some(Value::Bytes(bytes)) => b.append_value(bytes),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::List(item_field) => {
            // The items of every list, flattened, with each list's length as its offset step.
            let mut lengths = Vec::with_capacity(cells.len());
            let mut valid = Vec::with_capacity(cells.len());
            let mut flat: Vec<Option<&Value>> = Vec::new();
            for cell in cells {
                match present(cell).and_then(items) {
                    Some(list) => {
                        lengths.push(list.len());
                        valid.push(true);
                        flat.extend(list.iter().map(Some));
                    }
                    None => {
                        lengths.push(0);
                        valid.push(false);
                    }
                }
            }
            let values = build_array(item_field.data_type(), &flat)?;
            let list = ListArray::try_new(
                item_field.clone(),
                OffsetBuffer::from_lengths(lengths),
                values,
                Some(NullBuffer::from(valid)),
            )
            .map_err(|e| Error::decode("a list column", "arrow", e))?;
            Arc::new(list)
        }
        other => {
            return Err(Error::decode(
                "a table",
                "arrow",
                format!("no conversion into {other} columns"),
            ))
        }
    })
}
