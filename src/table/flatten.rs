//! Flattening a stash into records: the Python original's `assemble_ld`, the first step of every table
//! view (DataFrames, SQL, parquet).
//!
//! The rules are documented on [`crate::table`].

use super::cell::{Cell, Entries};
use crate::codec::msgpack::{shape, Cursor, Node, Scalar, Shape, DATAFRAME_TAG, MAX_DEPTH};
use crate::error::Result;
use ciborium::Value;

/// One flattened row: `(column, cell)` pairs in column order.
pub type Row = Vec<(String, crate::value::Value)>;

/// The column of a scalar key (and of a non-map key).
pub const KEY_COLUMN: &str = "_key";
/// The column of a scalar value (and of scalars in a list of records).
pub const VALUE_COLUMN: &str = "_value";
/// The prefix of a function stash's argument columns (`_arg1`, `_arg2`, ...).
pub const ARG_PREFIX: &str = "_arg";
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
    fn cell(&mut self, column: &str, value: Cell<'v>);
}

/// Feeds the rows of one entry to `sink`. A decoded `value` must have had its DataFrames
/// opened by [`open_dataframes`] (unopened ones stay single cells); a MessagePack one must
/// hold no DataFrame (see [`has_dataframe`]).
pub fn visit_entry<'v>(
    key: &'v Value,
    value: Cell<'v>,
    meta: Option<&'v MetaCells>,
    sink: &mut impl RowSink<'v>,
) -> std::result::Result<(), String> {
    visit_entry_reusing(Cell::Value(key), value, meta, sink, &mut String::new())
}

/// [`visit_entry`] building column names in `names`, a buffer kept from one entry to the
/// next (a chunk's walk then allocates no name), with the key as a cell (a text key need not
/// be a [`Value`]).
pub fn visit_entry_reusing<'v>(
    key: Cell<'v>,
    value: Cell<'v>,
    meta: Option<&'v MetaCells>,
    sink: &mut impl RowSink<'v>,
    names: &mut String,
) -> std::result::Result<(), String> {
    let mut walker = Walker {
        sink,
        key,
        meta,
        name: std::mem::take(names),
        error: None,
    };
    walker.value_rows(value);
    let Walker { name, error, .. } = walker;
    *names = name;
    error.map_or(Ok(()), Err)
}

/// How the key of a function stash's entry (its arguments) becomes columns: the items of a
/// tuple or list are `_arg1.._argN`, a struct's (or map's) fields are columns as they are,
/// and any other single argument is `_arg1`. The result is a map key, spread as map keys are.
pub fn argument_columns(key: Value) -> Value {
    match key {
        Value::Map(fields) if !fields.is_empty() => Value::Map(fields),
        Value::Array(items) => Value::Map(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| (Value::Text(format!("{ARG_PREFIX}{}", i + 1)), item))
                .collect(),
        ),
        other => Value::Map(vec![(Value::Text(format!("{ARG_PREFIX}1")), other)]),
    }
}

/// The key of a stored entry as a table sees it: decoded, and in a function stash
/// (`arguments`) turned into [`argument_columns`].
pub fn table_key(bytes: &[u8], arguments: bool) -> Result<Value> {
    let key = crate::codec::decode_key_cbor(bytes)?;
    Ok(if arguments {
        argument_columns(key)
    } else {
        key
    })
}

/// The rows of one entry, as owned cells.
pub fn flatten_entry(key: &Value, value: &Value, meta: Option<RowMeta>) -> Result<Vec<Row>> {
    let value = open_dataframes(value.clone())?;
    let meta = meta.map(|m| m.cells());
    let mut rows = OwnedRows(Vec::new());
    visit_entry(key, Cell::Value(&value), meta.as_ref(), &mut rows)
        .map_err(|e| crate::error::Error::decode("value", "hashstash", e))?;
    Ok(rows.0)
}

struct OwnedRows(Vec<Row>);

impl<'v> RowSink<'v> for OwnedRows {
    fn start_row(&mut self) {
        self.0.push(Row::new());
    }
    fn cell(&mut self, column: &str, value: Cell<'v>) {
        if let Some(row) = self.0.last_mut() {
            let cell = crate::value::Value::from_cbor(value.to_value().into_owned());
            row.push((column.to_owned(), cell));
        }
    }
}

/// Walks one entry, keeping the dotted column name of the cell at hand in one buffer.
struct Walker<'s, 'v, S> {
    sink: &'s mut S,
    key: Cell<'v>,
    meta: Option<&'v MetaCells>,
    name: String,
    /// What was wrong with MessagePack bytes, if anything: the walk stops there.
    error: Option<String>,
}

impl<'v, S: RowSink<'v>> Walker<'_, 'v, S> {
    /// The rows a value becomes.
    fn value_rows(&mut self, value: Cell<'v>) {
        if let Some(records) = opened_dataframe(value) {
            return self.records(records);
        }
        match value.array() {
            Some(items) if items.clone().any(is_record_like) => {
                for item in items {
                    match opened_dataframe(item) {
                        Some(records) => self.records(records),
                        None => self.row(item),
                    }
                }
            }
            _ => self.row(value),
        }
    }

    /// The rows of an opened DataFrame: one per record.
    fn records(&mut self, records: &'v [Value]) {
        records
            .iter()
            .for_each(|record| self.row(Cell::Value(record)));
    }

    /// One row: key cells, then the value's cells (a map spread out, anything else
    /// `_value`), then the metadata.
    fn row(&mut self, value: Cell<'v>) {
        self.name.clear();
        self.sink.start_row();
        match self.key.map() {
            Some(entries) if !entries.is_empty() => self.map(entries),
            _ => self.sink.cell(KEY_COLUMN, self.key),
        }
        match value {
            Cell::Msgpack(bytes) => {
                // The walk checks the bytes as it reads them (see `decode_value` in scan.rs).
                let mut cursor = Cursor::new(bytes);
                match cursor.next_node(true) {
                    Ok(Node::Map(len)) => self.msgpack_map(&mut cursor, len, 0),
                    // An empty map spreads into no columns.
                    Ok(Node::Other(map)) if matches!(shape(map), Ok(Shape::Map(_))) => {}
                    Ok(_) => self.sink.cell(VALUE_COLUMN, value),
                    Err(e) => self.error = Some(e),
                }
                if self.error.is_none() && !cursor.at_end() {
                    self.error = Some("bytes left over after the value".into());
                }
            }
            _ => match value.map() {
                Some(entries) => self.map(entries),
                None => self.sink.cell(VALUE_COLUMN, value),
            },
        }
        if let Some([version, timestamp]) = self.meta {
            self.sink.cell(VERSION_COLUMN, Cell::Value(version));
            self.sink.cell(TIMESTAMP_COLUMN, Cell::Value(timestamp));
        }
    }

    /// Nested maps become dotted column names; everything else is a cell.
    fn map(&mut self, entries: Entries<'v>) {
        for (k, v) in entries {
            let outer = self.name.len();
            if outer > 0 {
                self.name.push('.');
            }
            match k.scalar() {
                Some(Scalar::Text(t)) => self.name.push_str(t),
                _ => self.push_json_name(k),
            }
            match v.map() {
                Some(inner) if !inner.is_empty() => self.map(inner),
                _ => self.sink.cell(&self.name, v),
            }
            self.name.truncate(outer);
        }
    }
}

impl<'v, S: RowSink<'v>> Walker<'_, 'v, S> {
    /// [`Walker::map`] for a MessagePack map whose header `cursor` has just read: one pass
    /// over the bytes, each scalar read once.
    fn msgpack_map(&mut self, cursor: &mut Cursor<'v>, len: usize, depth: usize) {
        if depth > MAX_DEPTH {
            self.error = Some("nested too deeply".into());
            return;
        }
        for _ in 0..len {
            let outer = self.name.len();
            if outer > 0 {
                self.name.push('.');
            }
            match cursor.next_node(false) {
                Ok(Node::Scalar(Scalar::Text(t))) => self.name.push_str(t),
                Ok(Node::Scalar(s)) => self.push_json_name(Cell::Scalar(s)),
                Ok(Node::Other(bytes)) => self.push_json_name(Cell::Msgpack(bytes)),
                // Keys are read with maps closed: a map key comes back as `Other`.
                Ok(Node::Map(_)) => {}
                Err(e) => return self.error = Some(e),
            }
            match cursor.next_node(true) {
                Ok(Node::Map(inner)) => self.msgpack_map(cursor, inner, depth + 1),
                Ok(Node::Scalar(s)) => self.sink.cell(&self.name, Cell::Scalar(s)),
                Ok(Node::Other(bytes)) => self.sink.cell(&self.name, Cell::Msgpack(bytes)),
                Err(e) => return self.error = Some(e),
            }
            if self.error.is_some() {
                return;
            }
            self.name.truncate(outer);
        }
    }

    fn push_json_name(&mut self, key: Cell<'_>) {
        self.name
            .push_str(&crate::value::cbor_to_json(&key.to_value()).to_string());
    }
}

fn is_record_like(value: Cell<'_>) -> bool {
    value.map().is_some() || opened_dataframe(value).is_some()
}

/// The records of a DataFrame opened by [`open_dataframes`].
fn opened_dataframe(value: Cell<'_>) -> Option<&[Value]> {
    match value {
        Cell::Value(Value::Tag(OPENED_DATAFRAME_TAG, records)) => match records.as_ref() {
            Value::Array(records) => Some(records),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(feature = "sql")]
/// Whether a MessagePack value is, or lists, a DataFrame: such values are decoded and
/// opened with [`open_dataframes`] rather than walked as bytes.
pub fn has_dataframe(msgpack: &[u8]) -> bool {
    use crate::codec::msgpack::DATAFRAME_EXT;
    let is_frame = |bytes: &[u8]| matches!(shape(bytes), Ok(Shape::Ext(DATAFRAME_EXT)));
    match shape(msgpack) {
        Ok(Shape::Array(mut items)) => items.any(|item| item.is_ok_and(is_frame)),
        _ => is_frame(msgpack),
    }
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
            serde_json::Value::Array(rows) => {
                rows.iter().map(crate::value::cbor_from_json).collect()
            }
            _ => Vec::new(),
        };
        return Ok(Value::Tag(
            OPENED_DATAFRAME_TAG,
            Box::new(Value::Array(records)),
        ));
    }
    Ok(Value::Tag(DATAFRAME_TAG, Box::new(ipc)))
}
