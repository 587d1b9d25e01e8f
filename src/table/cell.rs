//! [`Cell`]: one value of a flattened row, decoded or still MessagePack.
//!
//! Values of the `hashstash` serializer are walked straight from their MessagePack bytes:
//! column names and scalar cells are borrowed from the stored bytes, and only lists and
//! other compound cells are ever built into a [`Value`]. Other serializers' values are
//! decoded into a [`Value`] first. Both read alike through this type.

use crate::codec::msgpack::{self, Items, Scalar, Shape};
use ciborium::Value;
use std::borrow::Cow;

/// One value in a decoded entry.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'v> {
    /// A decoded value.
    Value(&'v Value),
    /// One MessagePack value, already checked (by [`msgpack::validate`], or by the walk that
    /// stepped over it).
    Msgpack(&'v [u8]),
    /// A scalar read from MessagePack.
    Scalar(Scalar<'v>),
}

impl<'v> Cell<'v> {
    /// The cell as a scalar; `None` for lists, maps and tagged values.
    pub fn scalar(self) -> Option<Scalar<'v>> {
        match self {
            Cell::Scalar(scalar) => Some(scalar),
            Cell::Msgpack(bytes) => msgpack::scalar(bytes),
            Cell::Value(value) => Some(match value {
                Value::Null => Scalar::Null,
                Value::Bool(b) => Scalar::Bool(*b),
                // CBOR integers below `i64::MIN` have no scalar form: JSON text, like a map.
                Value::Integer(i) => {
                    let i = i128::from(*i);
                    match (i64::try_from(i), u64::try_from(i)) {
                        (Ok(i), _) => Scalar::Int(i),
                        (_, Ok(u)) => Scalar::UInt(u),
                        _ => return None,
                    }
                }
                Value::Float(f) => Scalar::Float(*f),
                Value::Text(t) => Scalar::Text(t),
                Value::Bytes(b) => Scalar::Bytes(b),
                _ => return None,
            }),
        }
    }

    /// The cell as a [`Value`] (built only for MessagePack cells).
    pub fn to_value(self) -> Cow<'v, Value> {
        match self {
            Cell::Value(value) => Cow::Borrowed(value),
            // The bytes were validated when the entry was decoded: this cannot fail.
            Cell::Msgpack(bytes) => Cow::Owned(msgpack::to_value(bytes).unwrap_or(Value::Null)),
            Cell::Scalar(scalar) => Cow::Owned(match scalar {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(b),
                // MessagePack integers are within i64..=u64, which `Integer` holds.
                Scalar::Int(i) => Value::Integer(i.into()),
                Scalar::UInt(u) => Value::Integer(u.into()),
                Scalar::Float(f) => Value::Float(f),
                Scalar::Text(t) => Value::Text(t.to_owned()),
                Scalar::Bytes(b) => Value::Bytes(b.to_vec()),
            }),
        }
    }

    /// Whether the cell is null.
    #[cfg(feature = "sql")]
    pub fn is_null(self) -> bool {
        matches!(self.scalar(), Some(Scalar::Null))
    }

    /// The entries of a map cell.
    pub fn map(self) -> Option<Entries<'v>> {
        match self {
            Cell::Value(Value::Map(entries)) => Some(Entries::Value(entries.iter())),
            Cell::Msgpack(bytes) => match msgpack::shape(bytes) {
                Ok(Shape::Map(items)) => Some(Entries::Msgpack(items)),
                _ => None,
            },
            Cell::Value(_) | Cell::Scalar(_) => None,
        }
    }

    /// The items of a list cell.
    pub fn array(self) -> Option<ArrayItems<'v>> {
        match self {
            Cell::Value(Value::Array(items)) => Some(ArrayItems::Value(items.iter())),
            Cell::Msgpack(bytes) => match msgpack::shape(bytes) {
                Ok(Shape::Array(items)) => Some(ArrayItems::Msgpack(items)),
                _ => None,
            },
            Cell::Value(_) | Cell::Scalar(_) => None,
        }
    }
}

/// The entries of a map cell, as key and value cells.
#[derive(Clone, Debug)]
pub enum Entries<'v> {
    /// Of a decoded map.
    Value(std::slice::Iter<'v, (Value, Value)>),
    /// Of a MessagePack map.
    Msgpack(Items<'v>),
}

impl Entries<'_> {
    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        match self {
            Entries::Value(entries) => entries.len() == 0,
            Entries::Msgpack(items) => items.remaining() == 0,
        }
    }
}

impl<'v> Iterator for Entries<'v> {
    type Item = (Cell<'v>, Cell<'v>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Entries::Value(entries) => entries
                .next()
                .map(|(k, v)| (Cell::Value(k), Cell::Value(v))),
            // Validated bytes: an error here cannot happen, and would end the map.
            Entries::Msgpack(items) => {
                let key = items.next()?.ok()?;
                let value = items.next()?.ok()?;
                Some((Cell::Msgpack(key), Cell::Msgpack(value)))
            }
        }
    }
}

/// The items of a list cell.
#[derive(Clone, Debug)]
pub enum ArrayItems<'v> {
    /// Of a decoded list.
    Value(std::slice::Iter<'v, Value>),
    /// Of a MessagePack array.
    Msgpack(Items<'v>),
}

impl<'v> Iterator for ArrayItems<'v> {
    type Item = Cell<'v>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ArrayItems::Value(items) => items.next().map(Cell::Value),
            ArrayItems::Msgpack(items) => items.next()?.ok().map(Cell::Msgpack),
        }
    }
}
