//! The dynamic value tree, for reading a stash without the Rust types that wrote it.
//!
//! [`Value`] is CBOR's data model (`ciborium::Value`): null, booleans, integers up to 64 bits
//! (and bignums), floats, text, bytes, arrays, maps with any keys, and tags (a set is tag 258).
//! It can hold everything the key encoding and the self-describing serializers write.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::value::{to_json, Value};
//! use std::collections::HashSet;
//!
//! let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
//! stash.set(&HashSet::from(["a"]), &(1, "one"))?;
//! // Read back without the Rust types that wrote it: a set key is CBOR tag 258.
//! let (key, value): (Value, Value) = stash.items_dyn()?.next().ok_or("empty")??;
//! assert!(matches!(key, Value::Tag(258, _)));
//! assert_eq!(to_json(&key).to_string(), r#"["a"]"#);
//! assert_eq!(to_json(&value).to_string(), r#"[1,"one"]"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use ciborium::Value;

/// Converts a [`Value`] into JSON for display: bytes become arrays of numbers, non-text map
/// keys become their JSON text, NaN and infinities become `null` (JSON has no spelling for them),
/// DataFrames become lists of records, and other tags (sets) become their content.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(u) = u64::try_from(i) {
                J::from(u)
            } else if let Ok(s) = i64::try_from(i) {
                J::from(s)
            } else {
                J::String(i.to_string())
            }
        }
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(s) => s.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Tag(2, inner) | Value::Tag(3, inner) => match inner.as_ref() {
            Value::Bytes(b) if b.len() <= 16 => {
                let mut buf = [0u8; 16];
                buf[16 - b.len()..].copy_from_slice(b);
                let n = u128::from_be_bytes(buf);
                if matches!(value, Value::Tag(2, _)) {
                    J::String(n.to_string())
                } else {
                    J::String(format!("-{}", n.saturating_add(1)))
                }
            }
            other => to_json(other),
        },
        Value::Tag(crate::codec::msgpack::DATAFRAME_TAG, inner) => dataframe_to_json(inner),
        Value::Tag(_, inner) => to_json(inner),
        _ => J::Null,
    }
}

/// A DataFrame (Arrow IPC bytes) as JSON records, or, without the `dataframe` feature, a
/// note of its size.
fn dataframe_to_json(inner: &Value) -> serde_json::Value {
    let Value::Bytes(ipc) = inner else {
        return to_json(inner);
    };
    #[cfg(feature = "dataframe")]
    if let Ok(records) = crate::codec::dataframe::ipc_to_json_records(ipc) {
        return records;
    }
    serde_json::json!({ "_dataframe_ipc_bytes": ipc.len() })
}

/// Converts JSON into a [`Value`]: objects become maps with text keys, numbers become
/// integers where they are whole and in range, else floats.
pub fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                Value::Integer(i.into())
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::Text(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        J::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::Text(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}
