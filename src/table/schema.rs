//! Arrow schema inference over flattened rows.
//!
//! Every row is looked at, so a column that first appears late still appears, and no column
//! is ever dropped. Cell types widen as rows are seen:
//!
//! | cells seen                        | column type                              |
//! |-----------------------------------|------------------------------------------|
//! | only nulls                        | `Null`                                   |
//! | booleans                          | `Boolean`                                |
//! | integers (within `i64`)           | `Int64`                                  |
//! | integers and floats               | `Float64`                                |
//! | text                              | `Utf8`                                   |
//! | bytes                             | `Binary`                                 |
//! | lists (and sets) of one kind      | `List` of that kind                      |
//! | anything else, or kinds that mix  | `Utf8` holding JSON (text stays as it is)|
//!
//! `_version` is `UInt64` and `_timestamp` a UTC timestamp in microseconds.

use super::cell::{ArrayItems, Cell};
use super::flatten::{RowSink, TIMESTAMP_COLUMN, VERSION_COLUMN};
use crate::codec::key::SET_TAG;
use crate::codec::msgpack::Scalar;
use ciborium::Value;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;

/// The inferred kind of a column (before it is an Arrow type).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// No cell with a value yet.
    Null,
    /// Booleans.
    Bool,
    /// Integers that fit in `i64`.
    Int,
    /// Floats (and integers mixed with floats).
    Float,
    /// Text.
    Text,
    /// Byte strings.
    Bytes,
    /// Lists whose items are of one kind.
    List(Box<Kind>),
    /// Anything else: JSON text.
    Json,
}

impl Kind {
    /// The kind of one cell.
    pub fn of_cell(cell: Cell<'_>) -> Kind {
        if let Some(scalar) = cell.scalar() {
            return match scalar {
                Scalar::Null => Kind::Null,
                Scalar::Bool(_) => Kind::Bool,
                Scalar::Int(_) => Kind::Int,
                Scalar::UInt(_) => Kind::Json,
                Scalar::Float(_) => Kind::Float,
                Scalar::Text(_) => Kind::Text,
                Scalar::Bytes(_) => Kind::Bytes,
            };
        }
        match list_items(cell) {
            Some(items) => Kind::List(Box::new(
                items.map(Kind::of_cell).fold(Kind::Null, Kind::merge),
            )),
            None => Kind::Json,
        }
    }

    /// The narrowest kind holding both.
    pub fn merge(self, other: Kind) -> Kind {
        match (self, other) {
            (a, b) if a == b => a,
            (Kind::Null, k) | (k, Kind::Null) => k,
            (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
            (Kind::List(a), Kind::List(b)) => Kind::List(Box::new(a.merge(*b))),
            _ => Kind::Json,
        }
    }

    /// The Arrow type of a column of this kind.
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Null => DataType::Null,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Bytes => DataType::Binary,
            Kind::List(item) => {
                let item = match item.as_ref() {
                    // A list of nothing but nulls still needs an item type.
                    Kind::Null => DataType::Utf8,
                    k => k.data_type(),
                };
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
        }
    }
}

/// Columns in order of first appearance, each with its kind.
#[derive(Clone, Debug, Default)]
pub struct SchemaBuilder {
    columns: Vec<(String, Kind)>,
    index: HashMap<String, usize>,
    guess: ColumnGuess,
}

impl SchemaBuilder {
    /// Widens the schema to take every column of `other`, in `other`'s order: merging the
    /// builders of consecutive parts of a stash gives the builder of the whole.
    pub fn merge(&mut self, other: SchemaBuilder) {
        for (name, kind) in other.columns {
            self.add_cell(&name, kind);
        }
    }

    fn add_cell(&mut self, name: &str, kind: Kind) {
        match self.index.get(name) {
            Some(&i) => {
                let current = std::mem::replace(&mut self.columns[i].1, Kind::Null);
                self.columns[i].1 = current.merge(kind);
            }
            None => {
                self.index.insert(name.to_owned(), self.columns.len());
                self.columns.push((name.to_owned(), kind));
            }
        }
    }

    /// A builder that has seen these columns, in this order.
    pub fn from_columns(columns: Vec<(String, Kind)>) -> Self {
        let mut builder = SchemaBuilder::default();
        for (name, kind) in columns {
            builder.add_cell(&name, kind);
        }
        builder
    }

    /// The kind of a column, if it has been seen.
    pub fn kind(&self, name: &str) -> Option<&Kind> {
        self.index.get(name).map(|&i| &self.columns[i].1)
    }

    /// The columns and their kinds, in order.
    pub fn columns(&self) -> &[(String, Kind)] {
        &self.columns
    }

    /// The Arrow schema: every column nullable (a row may lack it).
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, kind)| {
                let data_type = match name.as_str() {
                    VERSION_COLUMN if *kind == Kind::Int => DataType::UInt64,
                    TIMESTAMP_COLUMN if *kind == Kind::Float => {
                        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                    }
                    _ => kind.data_type(),
                };
                Field::new(name, data_type, true)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

impl<'v> RowSink<'v> for SchemaBuilder {
    fn start_row(&mut self) {
        self.guess.start_row();
    }

    fn cell(&mut self, column: &str, value: Cell<'v>) {
        let kind = Kind::of_cell(value);
        let columns = &self.columns;
        let index = &self.index;
        match self.guess.find(
            column,
            |i| columns.get(i).map(|(name, _)| name.as_str()),
            || index.get(column).copied(),
        ) {
            Some(i) => {
                let current = std::mem::replace(&mut self.columns[i].1, Kind::Null);
                self.columns[i].1 = current.merge(kind);
            }
            None => self.add_cell(column, kind),
        }
    }
}

/// The schema of the rows a scan read, for a table whose schema (maybe a sample's) is
/// known: the kinds of the table's columns by position, which the scan finds anyway, and
/// the columns the table lacks in order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct SeenSchema {
    kinds: Vec<Kind>,
    extra: SchemaBuilder,
}

impl SeenSchema {
    /// Nothing seen yet, for a table of `columns` columns.
    pub fn new(columns: usize) -> Self {
        SeenSchema {
            kinds: vec![Kind::Null; columns],
            extra: SchemaBuilder::default(),
        }
    }

    /// A new row begins.
    pub fn start_row(&mut self) {
        self.extra.start_row();
    }

    /// A cell of the table's column `index`.
    pub fn known(&mut self, index: usize, cell: Cell<'_>) {
        let kind = Kind::of_cell(cell);
        if let Some(current) = self.kinds.get_mut(index) {
            if *current != kind {
                *current = std::mem::replace(current, Kind::Null).merge(kind);
            }
        }
    }

    /// A cell of a column the table lacks.
    pub fn unknown(&mut self, column: &str, cell: Cell<'_>) {
        self.extra.cell(column, cell);
    }

    /// Takes in what a later part of the scan saw.
    pub fn merge(&mut self, other: SeenSchema) {
        if self.kinds.len() < other.kinds.len() {
            self.kinds.resize(other.kinds.len(), Kind::Null);
        }
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            if *mine != theirs {
                *mine = std::mem::replace(mine, Kind::Null).merge(theirs);
            }
        }
        self.extra.merge(other.extra);
    }

    /// Whether the rows seen have exactly the table's schema `table`.
    pub fn is(&self, table: &SchemaBuilder) -> bool {
        self.extra.columns().is_empty()
            && self.kinds.len() == table.columns().len()
            && table
                .columns()
                .iter()
                .zip(&self.kinds)
                .all(|((_, k), seen)| k == seen)
    }

    /// Whether every row seen fits the table's schema `table`: no column it lacks, and no
    /// kind its column's kind does not hold (a column the rows did not fill is fine).
    pub fn fits(&self, table: &SchemaBuilder) -> bool {
        self.extra.columns().is_empty()
            && self.kinds.len() <= table.columns().len()
            && table
                .columns()
                .iter()
                .zip(&self.kinds)
                .all(|((_, k), seen)| k.clone().merge(seen.clone()) == *k)
    }

    /// The schema of the rows seen: the table's columns with the kinds seen, then the others.
    pub fn schema(&self, table: &SchemaBuilder) -> SchemaBuilder {
        let mut schema = SchemaBuilder::from_columns(
            table
                .columns()
                .iter()
                .zip(&self.kinds)
                .map(|((name, _), kind)| (name.clone(), kind.clone()))
                .collect(),
        );
        schema.merge(self.extra.clone());
        schema
    }
}

/// The items of a list (or set) cell.
pub fn list_items(cell: Cell<'_>) -> Option<ArrayItems<'_>> {
    match cell {
        Cell::Value(Value::Tag(SET_TAG, inner)) => Cell::Value(inner).array(),
        other => other.array(),
    }
}

/// Finds column numbers by name. Rows of a stash mostly share their shape, so it first
/// guesses that a row's n-th cell falls in the same column as the previous row's n-th cell:
/// most lookups then cost one string comparison instead of hashing the name.
#[derive(Clone, Debug, Default)]
pub struct ColumnGuess {
    guesses: Vec<usize>,
    position: usize,
}

impl ColumnGuess {
    /// A new row begins.
    pub fn start_row(&mut self) {
        self.position = 0;
    }

    /// The column of the row's next cell, `name`: the guess if `name_of` confirms it,
    /// otherwise `lookup`'s answer (remembered as the next guess).
    pub fn find<'n>(
        &mut self,
        name: &str,
        name_of: impl Fn(usize) -> Option<&'n str>,
        lookup: impl FnOnce() -> Option<usize>,
    ) -> Option<usize> {
        let position = self.position;
        self.position += 1;
        if let Some(&guess) = self.guesses.get(position) {
            if name_of(guess) == Some(name) {
                return Some(guess);
            }
        }
        let found = lookup()?;
        if let Some(guess) = self.guesses.get_mut(position) {
            *guess = found;
        } else if self.guesses.len() == position {
            self.guesses.push(found);
        }
        Some(found)
    }
}
