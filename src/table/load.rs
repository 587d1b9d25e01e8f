//! Loading files into a stash (feature `sql`): JSON lines of `key` and `value`, and parquet.
//!
//! A parquet file with `key` and `value` columns loads them as they are. Any other parquet
//! file is read as a table made by [`Stash::to_parquet`]: `_key` (or, without it, the row
//! number) is the key, `_value` alone is the value, and otherwise the remaining columns make
//! a map, dotted names nested again (`etc.age` becomes `{"etc": {"age": ...}}`), so that an
//! export loads back into the values it came from. Metadata columns (`_version`,
//! `_timestamp`) are not values and are skipped.

use super::flatten::{KEY_COLUMN, TIMESTAMP_COLUMN, VALUE_COLUMN, VERSION_COLUMN};
use super::location::{io_error, open_input, Location};
use crate::codec;
use crate::engine::EngineExt;
use crate::error::{Error, Result};
use crate::stash::Stash;
use crate::value::cbor_from_json as from_json;
use ciborium::Value;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::BufRead;
use std::path::Path;

const BATCH: usize = 4096;

impl Stash {
    /// Loads JSON lines with `key` and `value` fields; returns how many entries. `path` may
    /// also be an object-store URL (`s3://...`, feature `objectstore`), as for
    /// [`Stash::load_parquet`].
    pub fn load_jsonl(&self, path: impl AsRef<Path>) -> Result<usize> {
        self.load_jsonl_with_progress(path, &mut |_| {})
    }

    /// [`Stash::load_jsonl`], calling `progress` with the number of entries stored so far
    /// after each batch written.
    pub fn load_jsonl_with_progress(
        &self,
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        let path = path.as_ref();
        let file = open_input(path)?;
        // A URL's secrets stay out of errors.
        let shown = Location::of(path).shown();
        let mut loader = Loader::new(self, progress);
        for (n, line) in std::io::BufReader::with_capacity(1 << 20, file)
            .lines()
            .enumerate()
        {
            let line = line.map_err(|e| io_error(&shown, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: String| Error::InvalidOption {
                option: "FILE",
                message: format!("{shown}:{}: {why}", n + 1),
            };
            let record: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let (Some(key), Some(value)) = (record.get("key"), record.get("value")) else {
                return Err(bad("a line needs \"key\" and \"value\" fields".into()));
            };
            loader.push(from_json(key), from_json(value))?;
        }
        loader.finish()
    }

    /// Loads a parquet file (see the module docs for how rows become entries); returns how
    /// many entries. `path` may also be an object-store URL (`s3://bucket/snap.parquet`,
    /// `gs://`, `az://`; feature `objectstore`), read in ranges: the footer, then each row
    /// group's columns.
    pub fn load_parquet(&self, path: impl AsRef<Path>) -> Result<usize> {
        self.load_parquet_with_progress(path, &mut |_| {})
    }

    /// [`Stash::load_parquet`], calling `progress` with the number of entries stored so far
    /// after each batch written.
    pub fn load_parquet_with_progress(
        &self,
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize> {
        let path = path.as_ref();
        let mut loader = Loader::new(self, progress);
        let mut row_number = 0u64;
        for batch in parquet_batches(path)? {
            let batch = batch?;
            let schema = batch.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let column = |name: &str| {
                names
                    .iter()
                    .position(|n| *n == name)
                    .map(|i| batch.column(i))
            };
            for row in 0..batch.num_rows() {
                let cell = |array: &ArrayRef| value_at(array, row);
                let (key, value) = match (column("key"), column("value")) {
                    (Some(k), Some(v)) => (cell(k)?, cell(v)?),
                    _ => {
                        let key = match column(KEY_COLUMN) {
                            Some(k) => cell(k)?,
                            None => Value::Integer(row_number.into()),
                        };
                        let mut entries = Vec::new();
                        for (i, name) in names.iter().enumerate() {
                            if [KEY_COLUMN, VERSION_COLUMN, TIMESTAMP_COLUMN].contains(name) {
                                continue;
                            }
                            let v = cell(batch.column(i))?;
                            if v != Value::Null {
                                entries.push((name.to_string(), v));
                            }
                        }
                        let value = match entries.as_slice() {
                            [(name, v)] if name == VALUE_COLUMN => v.clone(),
                            _ => nest(entries),
                        };
                        (key, value)
                    }
                };
                loader.push(key, value)?;
                row_number += 1;
            }
        }
        loader.finish()
    }
}

/// The record batches of the parquet file or object at `path`, read as they are used.
fn parquet_batches(path: &Path) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>>>> {
    let location = Location::of(path);
    let shown = location.shown();
    match location {
        Location::Local(path) => {
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            batches_of(file, shown)
        }
        #[cfg(feature = "objectstore")]
        Location::Object(url) => Ok(Box::new(
            crate::engine::objectstore_files::ParquetBatches::open(&url, BATCH)?,
        )),
        #[cfg(not(feature = "objectstore"))]
        Location::Object(_) => Err(super::location::not_compiled()),
    }
}

/// The record batches of a local parquet file; its errors name it as `shown`.
fn batches_of(
    file: std::fs::File,
    shown: String,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>>>> {
    let fail =
        move |e: &dyn std::fmt::Display| Error::decode(shown.clone(), "parquet", e.to_string());
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH).build())
        .map_err(|e| fail(&e))?;
    Ok(Box::new(reader.map(move |b| b.map_err(|e| fail(&e)))))
}

/// Writes entries in batches of [`BATCH`].
struct Loader<'a> {
    stash: &'a Stash,
    batch: Vec<(Vec<u8>, Vec<u8>)>,
    count: usize,
    progress: &'a mut dyn FnMut(usize),
}

impl<'a> Loader<'a> {
    fn new(stash: &'a Stash, progress: &'a mut dyn FnMut(usize)) -> Self {
        Loader {
            stash,
            batch: Vec::with_capacity(BATCH),
            count: 0,
            progress,
        }
    }

    fn push(&mut self, key: Value, value: Value) -> Result<()> {
        let key = codec::encode_key_cbor(key)?;
        let value = self.stash.codec().encode_cbor(&value)?;
        self.batch.push((key, value));
        if self.batch.len() == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let refs: Vec<(&[u8], &[u8])> = self
            .batch
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        self.stash.engine().set_many(&refs)?;
        let bytes = refs.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.stash.wrote(refs.len(), bytes)?;
        self.count += self.batch.len();
        self.batch.clear();
        (self.progress)(self.count);
        Ok(())
    }

    fn finish(mut self) -> Result<usize> {
        self.flush()?;
        Ok(self.count)
    }
}

/// Dotted column names nested back into maps.
fn nest(cells: Vec<(String, Value)>) -> Value {
    let mut root: Vec<(Value, Value)> = Vec::new();
    for (name, value) in cells {
        let parts: Vec<&str> = name.split('.').collect();
        insert(&mut root, &parts, value);
    }
    Value::Map(root)
}

fn insert(map: &mut Vec<(Value, Value)>, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let key = Value::Text((*first).to_owned());
    if rest.is_empty() {
        map.push((key, value));
        return;
    }
    if let Some((_, Value::Map(inner))) = map.iter_mut().find(|(k, _)| *k == key) {
        insert(inner, rest, value);
        return;
    }
    let mut inner = Vec::new();
    insert(&mut inner, rest, value);
    map.push((key, Value::Map(inner)));
}

/// One cell of an Arrow array as a dynamic value.
fn value_at(array: &ArrayRef, row: usize) -> Result<Value> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int64 => Value::Integer(array.as_primitive::<Int64Type>().value(row).into()),
        DataType::UInt64 => Value::Integer(array.as_primitive::<UInt64Type>().value(row).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::Float(array.as_primitive::<TimestampMicrosecondType>().value(row) as f64 / 1e6)
        }
        DataType::Utf8 => Value::Text(array.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Value::Text(array.as_string::<i64>().value(row).to_owned()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            Value::Array(
                (0..items.len())
                    .map(|i| value_at(&items, i))
                    .collect::<Result<_>>()?,
            )
        }
        other => {
            // Any other type through Arrow's own display of the cell.
            let shown = datafusion::arrow::util::display::array_value_to_string(array, row)
                .map_err(|e| Error::decode(format!("a {other} cell"), "parquet", e))?;
            Value::Text(shown)
        }
    })
}
