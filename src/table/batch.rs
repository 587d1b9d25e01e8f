//! Flattened rows into Arrow record batches, for a schema from [`super::schema`].

use super::flatten::Row;
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

/// One record batch holding `rows`, with the columns of `schema` (missing cells are null).
pub fn rows_to_batch(schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch> {
    let indexed: Vec<HashMap<&str, &Value>> = rows
        .iter()
        .map(|row| row.iter().map(|(c, v)| (c.as_str(), v)).collect())
        .collect();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let cells: Vec<Option<&Value>> = indexed
                .iter()
                .map(|row| row.get(field.name().as_str()).copied())
                .collect();
            build_array(field.data_type(), &cells)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(rows.len())),
    )
    .map_err(|e| Error::decode("a table", "arrow", e))
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
