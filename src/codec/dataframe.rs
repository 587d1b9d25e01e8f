//! polars DataFrames as keys and values (cargo feature `dataframe`).
//!
//! polars serializes a DataFrame as Arrow IPC stream bytes. As a **value** (hashstash
//! serializer) those bytes are stored as MessagePack extension type
//! `0x44`, so a reader without the Rust type still
//! knows it holds a table. As a **key**, the IPC bytes are made canonical first: polars'
//! bytes depend on how the frame was built (chunking, sortedness flags, string buffer
//! layout), so the columns are rebuilt from their values into one chunk before encoding, and
//! equal frames give equal keys.
//!
//! DataFrames are recognised by type name where a value is handed to the codec or, inside a
//! key, where a parent hands it over; a DataFrame nested inside a value is stored as plain
//! IPC bytes.

use polars::prelude::*;
use std::io::Cursor;

/// Whether `T` is polars' `DataFrame`.
pub fn is_dataframe<T: ?Sized>() -> bool {
    let frame = std::any::type_name::<DataFrame>();
    // A frame, or a reference or pointer to one, ends with the frame's name: a cheap test
    // that turns almost every other type away before the name is unwrapped.
    std::any::type_name::<T>()
        .trim_end_matches('>')
        .ends_with(frame)
        && super::key::bare_type_name::<T>() == frame
}

/// Canonical IPC bytes for the frame in `ipc`: same content, same bytes.
pub fn canonical_ipc(ipc: &[u8]) -> Result<Vec<u8>, String> {
    let df =
        DataFrame::deserialize_from_reader(&mut Cursor::new(ipc)).map_err(|e| e.to_string())?;
    let columns = df
        .columns()
        .iter()
        .map(|column| {
            let series = column.as_materialized_series().rechunk();
            let values: Vec<AnyValue> = series.iter().collect();
            Series::from_any_values_and_dtype(series.name().clone(), &values, series.dtype(), true)
                .map(Column::from)
        })
        .collect::<PolarsResult<Vec<Column>>>()
        .map_err(|e| e.to_string())?;
    let mut rebuilt = DataFrame::new(df.height(), columns).map_err(|e| e.to_string())?;
    rebuilt.serialize_to_bytes().map_err(|e| e.to_string())
}

/// The frame in `ipc` as JSON records (`[{"column": value, ...}, ...]`), for display.
pub fn ipc_to_json_records(ipc: &[u8]) -> Result<serde_json::Value, String> {
    let df =
        DataFrame::deserialize_from_reader(&mut Cursor::new(ipc)).map_err(|e| e.to_string())?;
    let columns: Vec<Series> = df
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().rechunk())
        .collect();
    let mut rows = vec![serde_json::Map::new(); df.height()];
    for series in &columns {
        for (row, value) in rows.iter_mut().zip(series.iter()) {
            row.insert(series.name().to_string(), any_value_to_json(&value));
        }
    }
    Ok(serde_json::Value::Array(
        rows.into_iter().map(serde_json::Value::Object).collect(),
    ))
}

fn any_value_to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        AnyValue::Null => J::Null,
        AnyValue::Boolean(b) => J::Bool(*b),
        AnyValue::String(s) => J::String((*s).to_owned()),
        AnyValue::StringOwned(s) => J::String(s.to_string()),
        AnyValue::Int8(v) => J::from(*v),
        AnyValue::Int16(v) => J::from(*v),
        AnyValue::Int32(v) => J::from(*v),
        AnyValue::Int64(v) => J::from(*v),
        AnyValue::UInt8(v) => J::from(*v),
        AnyValue::UInt16(v) => J::from(*v),
        AnyValue::UInt32(v) => J::from(*v),
        AnyValue::UInt64(v) => J::from(*v),
        AnyValue::Float32(v) => {
            serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number)
        }
        AnyValue::Float64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
        other => J::String(other.to_string()),
    }
}
