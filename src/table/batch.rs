//! Decoded entries into Arrow record batches, for a schema from [`super::schema`]: the rows
//! are walked once, each cell going straight to its column.

use super::cell::Cell;
use super::flatten::RowSink;
use super::scan::Decoded;
use super::schema::{list_items, ColumnGuess, SeenSchema};
use crate::codec::msgpack::Scalar;
use crate::error::{Error, Result};
use crate::value::cbor_to_json as to_json;
use datafusion::arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder,
    ListArray, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::sync::Arc;

/// One record batch holding the rows of `entries`, with the columns of `schema` picked by
/// `projection` (all of them if `None`). Missing cells are null. Every cell also goes to
/// `seen`, if given: the schema of these rows, inferred in the same walk.
pub fn entries_to_batch(
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    entries: &Decoded,
    seen: Option<&mut SeenSchema>,
) -> Result<RecordBatch> {
    let output = match projection {
        Some(columns) => Arc::new(
            schema
                .project(columns)
                .map_err(|e| Error::decode("a table", "arrow", e))?,
        ),
        None => schema.clone(),
    };
    let mut slots = vec![None; schema.fields().len()];
    match projection {
        Some(columns) => columns
            .iter()
            .enumerate()
            .for_each(|(out, &column)| slots[column] = Some(out)),
        None => slots.iter_mut().enumerate().for_each(|(i, s)| *s = Some(i)),
    }
    let mut columns = Columns {
        names: schema.fields().iter().map(|f| f.name().as_str()).collect(),
        index: schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().as_str(), i))
            .collect(),
        guess: ColumnGuess::default(),
        slots,
        cells: (0..output.fields().len())
            .map(|_| Vec::with_capacity(entries.rows()))
            .collect(),
        rows: 0,
        seen,
    };
    entries.visit(&mut columns)?;
    let arrays = output
        .fields()
        .iter()
        .zip(&columns.cells)
        .map(|(field, cells)| build_array(field.data_type(), cells))
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new_with_options(
        output,
        arrays,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(columns.rows)),
    )
    .map_err(|e| Error::decode("a table", "arrow", e))
}

/// The cells of each output column, borrowed from the decoded entries: one per row, `None`
/// where the row has no such column.
struct Columns<'s, 'v, 'b> {
    /// Every column of the table, projected or not, so that guesses stay in step.
    names: Vec<&'s str>,
    index: HashMap<&'s str, usize>,
    guess: ColumnGuess,
    /// The output column of each table column, if it is projected.
    slots: Vec<Option<usize>>,
    cells: Vec<Vec<Option<Cell<'v>>>>,
    rows: usize,
    seen: Option<&'b mut SeenSchema>,
}

impl<'v> RowSink<'v> for Columns<'_, 'v, '_> {
    fn start_row(&mut self) {
        self.rows += 1;
        if let Some(seen) = self.seen.as_deref_mut() {
            seen.start_row();
        }
        self.guess.start_row();
        self.cells.iter_mut().for_each(|column| column.push(None));
    }

    fn cell(&mut self, column: &str, value: Cell<'v>) {
        let names = &self.names;
        let index = &self.index;
        let found = self.guess.find(
            column,
            |i| names.get(i).copied(),
            || index.get(column).copied(),
        );
        if let Some(seen) = self.seen.as_deref_mut() {
            match found {
                Some(i) => seen.known(i, value),
                None => seen.unknown(column, value),
            }
        }
        if let Some(slot) = found
            .and_then(|i| self.slots.get(i).copied().flatten())
            .and_then(|out| self.cells.get_mut(out))
            .and_then(|cells| cells.last_mut())
        {
            *slot = Some(value);
        }
    }
}

/// The scalar in a cell, unless it is missing or null (lists and maps give `None` too).
fn scalar<'v>(cell: &Option<Cell<'v>>) -> Option<Scalar<'v>> {
    cell.and_then(Cell::scalar).filter(|s| *s != Scalar::Null)
}

fn int(cell: &Option<Cell<'_>>) -> Option<i64> {
    match scalar(cell)? {
        Scalar::Int(i) => Some(i),
        _ => None,
    }
}

fn float(cell: &Option<Cell<'_>>) -> Option<f64> {
    match scalar(cell)? {
        Scalar::Float(f) => Some(f),
        Scalar::Int(i) => Some(i as f64),
        Scalar::UInt(u) => Some(u as f64),
        _ => None,
    }
}

/// An array of `data_type` from one cell per row (`None`: the row has no such column).
fn build_array(data_type: &DataType, cells: &[Option<Cell<'_>>]) -> Result<ArrayRef> {
    Ok(match data_type {
        DataType::Null => new_null_array(data_type, cells.len()),
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(cells.len());
            cells.iter().for_each(|c| {
                b.append_option(match scalar(c) {
                    Some(Scalar::Bool(v)) => Some(v),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(cells.len());
            cells.iter().for_each(|c| b.append_option(int(c)));
            Arc::new(b.finish())
        }
        DataType::UInt64 => {
            let mut b = UInt64Builder::with_capacity(cells.len());
            cells
                .iter()
                .for_each(|c| b.append_option(int(c).and_then(|i| u64::try_from(i).ok())));
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(cells.len());
            cells.iter().for_each(|c| b.append_option(float(c)));
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(cells.len());
            cells
                .iter()
                .for_each(|c| b.append_option(float(c).map(|s| (s * 1e6).round() as i64)));
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Utf8 => {
            // Text as it is; anything else (in a column of mixed kinds) as JSON.
            let mut b = StringBuilder::with_capacity(cells.len(), cells.len() * 8);
            for cell in cells {
                match (cell, scalar(cell)) {
                    (_, Some(Scalar::Text(t))) => b.append_value(t),
                    (Some(c), _) if !c.is_null() => {
                        b.append_value(to_json(&c.to_value()).to_string())
                    }
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(cells.len(), cells.len() * 8);
            cells.iter().for_each(|c| match scalar(c) {
                Some(Scalar::Bytes(bytes)) => b.append_value(bytes),
                _ => b.append_null(),
            });
            Arc::new(b.finish())
        }
        DataType::List(item_field) => {
            // The items of every list, flattened, with each list's length as its offset step.
            let mut lengths = Vec::with_capacity(cells.len());
            let mut valid = Vec::with_capacity(cells.len());
            let mut flat: Vec<Option<Cell<'_>>> = Vec::new();
            for cell in cells {
                match cell.and_then(list_items) {
                    Some(items) => {
                        let before = flat.len();
                        flat.extend(items.map(Some));
                        lengths.push(flat.len() - before);
                        valid.push(true);
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
