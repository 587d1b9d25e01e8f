//! Reads MessagePack (the `hashstash` serializer's format) into a dynamic [`Value`].
//!
//! A reader of our own rather than serde's generic path, for two reasons: MessagePack
//! extension types must stay recognisable (a DataFrame is extension type
//! [`DATAFRAME_EXT`], read as a [`DATAFRAME_TAG`] tag), and corrupt input must be a plain
//! error: lengths are checked against the bytes that remain before anything is allocated,
//! and nesting is limited so that a hostile value cannot overflow the stack.

use ciborium::Value;

/// The MessagePack extension type of a DataFrame value (Arrow IPC stream bytes).
pub const DATAFRAME_EXT: i8 = 0x44;
/// The CBOR tag a DataFrame reads as in a dynamic [`Value`] (its content: IPC bytes).
pub const DATAFRAME_TAG: u64 = 0x6873_4446;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 512;

/// Decodes one MessagePack value that fills `bytes` exactly.
pub fn to_value(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(0)?;
    if reader.pos != bytes.len() {
        return Err(format!(
            "{} bytes left over after the value",
            bytes.len() - reader.pos
        ));
    }
    Ok(value)
}

#[derive(Clone, Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Steps over one value, checking it as [`Reader::value`] would, without building it.
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let marker = self.take(1)?[0];
        let (items, step) = match marker {
            0x80..=0x8f => (usize::from(marker & 0x0f), 2),
            0xde | 0xdf => (self.uint(if marker == 0xde { 2 } else { 4 })? as usize, 2),
            0x90..=0x9f => (usize::from(marker & 0x0f), 1),
            0xdc | 0xdd => (self.uint(if marker == 0xdc { 2 } else { 4 })? as usize, 1),
            0xc7..=0xc9 => {
                let len = self.uint(1 << (marker - 0xc7))? as usize;
                self.take(len + 1)?;
                return Ok(());
            }
            0xd4..=0xd8 => {
                self.take((1 << (marker - 0xd4)) + 1)?;
                return Ok(());
            }
            0xc1 => return Err("reserved marker 0xc1".into()),
            _ => return scalar_after(self, marker).map(drop),
        };
        for _ in 0..items.saturating_mul(step) {
            self.skip(depth + 1)?;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end =
            end.ok_or_else(|| format!("truncated: {n} bytes wanted at offset {}", self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn uint(&mut self, width: usize) -> Result<u64, String> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn int(&mut self, width: usize) -> Result<i64, String> {
        let raw = self.uint(width)?;
        let shift = 64 - 8 * width as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let marker = self.take(1)?[0];
        Ok(match marker {
            0x00..=0x7f => Value::Integer(u64::from(marker).into()),
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), depth)?,
            0xa0..=0xbf => self.text(usize::from(marker & 0x1f))?,
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let len = self.uint(1 << (marker - 0xc4))? as usize;
                Value::Bytes(self.take(len)?.to_vec())
            }
            0xc7..=0xc9 => {
                let len = self.uint(1 << (marker - 0xc7))? as usize;
                self.ext(len)?
            }
            0xca => Value::Float(f32::from_bits(self.uint(4)? as u32).into()),
            0xcb => Value::Float(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Value::Integer(self.uint(1 << (marker - 0xcc))?.into()),
            0xd0..=0xd3 => Value::Integer(self.int(1 << (marker - 0xd0))?.into()),
            0xd4..=0xd8 => self.ext(1 << (marker - 0xd4))?,
            0xd9..=0xdb => {
                let len = self.uint(1 << (marker - 0xd9))? as usize;
                self.text(len)?
            }
            0xdc | 0xdd => {
                let len = self.uint(if marker == 0xdc { 2 } else { 4 })? as usize;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.uint(if marker == 0xde { 2 } else { 4 })? as usize;
                self.map(len, depth)?
            }
            0xe0..=0xff => Value::Integer(i64::from(marker as i8).into()),
            0xc1 => return Err("reserved marker 0xc1".into()),
        })
    }

    fn text(&mut self, len: usize) -> Result<Value, String> {
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(|s| Value::Text(s.to_owned()))
            .map_err(|e| format!("invalid UTF-8 in a string: {e}"))
    }

    fn ext(&mut self, len: usize) -> Result<Value, String> {
        let kind = self.take(1)?[0] as i8;
        let data = self.take(len)?.to_vec();
        let tag = if kind == DATAFRAME_EXT {
            DATAFRAME_TAG
        } else {
            // Other extension types keep their number, offset out of the way of real tags.
            0x6873_0000 + u64::from(kind as u8)
        };
        Ok(Value::Tag(tag, Box::new(Value::Bytes(data))))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, String> {
        // Every element takes at least one byte: never reserve more than the input can hold.
        let mut items = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, String> {
        let mut entries = Vec::with_capacity(len.min(self.remaining() / 2));
        for _ in 0..len {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

/// A MessagePack scalar, borrowed from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    /// `nil`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer past `i64::MAX` (MessagePack integers reach up to `u64::MAX`); never one
    /// that fits in `i64`, so that each integer has one form.
    UInt(u64),
    /// A float (`float 32` widened).
    Float(f64),
    /// A string (UTF-8 checked).
    Text(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// The shape of one MessagePack value, for walking it without building a [`Value`].
#[derive(Clone, Debug)]
pub enum Shape<'a> {
    /// A map: its entries, key then value, each one encoded value.
    Map(Items<'a>),
    /// An array: its items, each one encoded value.
    Array(Items<'a>),
    /// An extension value: its type (a DataFrame's tells tables to open it).
    Ext(#[cfg_attr(not(feature = "sql"), allow(dead_code))] i8),
    /// Anything else.
    Scalar(Scalar<'a>),
}

/// The encoded items of a map (keys and values in turn) or an array.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl Items<'_> {
    /// How many encoded values are left.
    pub fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<&'a [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let start = self.reader.pos;
        Some(
            self.reader
                .skip(0)
                .map(|()| &self.reader.bytes[start..self.reader.pos]),
        )
    }
}

/// One step of a walk through validated MessagePack, reading each byte once.
#[derive(Clone, Debug)]
pub enum Node<'a> {
    /// A map with this many entries: its keys and values are the next nodes, in turn.
    Map(usize),
    /// A scalar.
    Scalar(Scalar<'a>),
    /// An array or extension value, stepped over whole: its encoded bytes.
    Other(&'a [u8]),
}

/// Walks validated MessagePack node by node (see [`Node`]).
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    reader: Reader<'a>,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor {
            reader: Reader { bytes, pos: 0 },
        }
    }

    /// Whether every byte has been read.
    pub fn at_end(&self) -> bool {
        self.reader.pos == self.reader.bytes.len()
    }

    /// The next node. With `open_maps`, a map with entries is opened ([`Node::Map`]);
    /// otherwise maps are stepped over whole like arrays.
    #[inline]
    pub fn next_node(&mut self, open_maps: bool) -> Result<Node<'a>, String> {
        // The nodes of a typical record (short text, small integers, booleans, small maps)
        // are read here, inline; the rest by the general step below.
        let (bytes, pos) = (self.reader.bytes, self.reader.pos);
        if let Some(&marker) = bytes.get(pos) {
            let node = match marker {
                0xa0..=0xbf => {
                    let end = pos + 1 + usize::from(marker & 0x1f);
                    match bytes.get(pos + 1..end) {
                        Some(raw) => match utf8(raw) {
                            Ok(text) => Some((Node::Scalar(Scalar::Text(text)), end)),
                            Err(_) => None,
                        },
                        None => None,
                    }
                }
                0x00..=0x7f => Some((Node::Scalar(Scalar::Int(marker.into())), pos + 1)),
                0xc2 | 0xc3 => Some((Node::Scalar(Scalar::Bool(marker == 0xc3)), pos + 1)),
                0xc0 => Some((Node::Scalar(Scalar::Null), pos + 1)),
                0x81..=0x8f if open_maps => Some((Node::Map(usize::from(marker & 0x0f)), pos + 1)),
                _ => None,
            };
            if let Some((node, end)) = node {
                self.reader.pos = end;
                return Ok(node);
            }
        }
        self.next_node_general(open_maps)
    }

    fn next_node_general(&mut self, open_maps: bool) -> Result<Node<'a>, String> {
        let start = self.reader.pos;
        let marker = self.reader.take(1)?[0];
        let map_len = match marker {
            0x80..=0x8f => Some(usize::from(marker & 0x0f)),
            0xde | 0xdf => Some(self.reader.uint(if marker == 0xde { 2 } else { 4 })? as usize),
            _ => None,
        };
        Ok(match (marker, map_len) {
            (_, Some(len)) if open_maps && len > 0 => Node::Map(len),
            (0x80..=0x9f | 0xdc..=0xdf | 0xc7..=0xc9 | 0xd4..=0xd8, _) => {
                self.reader.pos = start;
                self.reader.skip(0)?;
                Node::Other(&self.reader.bytes[start..self.reader.pos])
            }
            _ => Node::Scalar(scalar_after(&mut self.reader, marker)?),
        })
    }
}

#[cfg(feature = "sql")]
/// Checks that `bytes` is exactly one well-formed MessagePack value (lengths, UTF-8,
/// nesting), so that walking it with [`shape`] cannot fail.
pub fn validate(bytes: &[u8]) -> Result<(), String> {
    let mut reader = Reader { bytes, pos: 0 };
    reader.skip(0)?;
    if reader.pos != bytes.len() {
        return Err(format!(
            "{} bytes left over after the value",
            bytes.len() - reader.pos
        ));
    }
    Ok(())
}

/// The shape of the encoded value at the start of `bytes`.
pub fn shape(bytes: &[u8]) -> Result<Shape<'_>, String> {
    let mut reader = Reader { bytes, pos: 0 };
    let marker = reader.take(1)?[0];
    fn items(reader: Reader<'_>, left: usize) -> Items<'_> {
        Items { reader, left }
    }
    Ok(match marker {
        0x80..=0x8f => Shape::Map(items(reader, 2 * usize::from(marker & 0x0f))),
        0xde | 0xdf => {
            let len = reader.uint(if marker == 0xde { 2 } else { 4 })? as usize;
            Shape::Map(items(reader, 2 * len))
        }
        0x90..=0x9f => Shape::Array(items(reader, usize::from(marker & 0x0f))),
        0xdc | 0xdd => {
            let len = reader.uint(if marker == 0xdc { 2 } else { 4 })? as usize;
            Shape::Array(items(reader, len))
        }
        0xc7..=0xc9 | 0xd4..=0xd8 => {
            let len = if marker >= 0xd4 {
                1 << (marker - 0xd4)
            } else {
                reader.uint(1 << (marker - 0xc7))? as usize
            };
            let kind = reader.take(1)?[0] as i8;
            reader.take(len)?;
            Shape::Ext(kind)
        }
        _ => Shape::Scalar(scalar_after(&mut reader, marker)?),
    })
}

/// The scalar at the start of `bytes`, or `None` for a map, an array or an extension value.
pub fn scalar(bytes: &[u8]) -> Option<Scalar<'_>> {
    match shape(bytes).ok()? {
        Shape::Scalar(s) => Some(s),
        _ => None,
    }
}

/// `raw` as text if it is UTF-8. Short ASCII text (most keys and labels) is checked inline,
/// which is several times faster than the general check's call for a few bytes.
#[inline]
pub(crate) fn utf8(raw: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if raw.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        std::str::from_utf8(raw)
    }
}

fn scalar_after<'a>(reader: &mut Reader<'a>, marker: u8) -> Result<Scalar<'a>, String> {
    let text = |raw: &'a [u8]| {
        utf8(raw)
            .map(Scalar::Text)
            .map_err(|e| format!("invalid UTF-8 in a string: {e}"))
    };
    Ok(match marker {
        0x00..=0x7f => Scalar::Int(marker.into()),
        0xe0..=0xff => Scalar::Int((marker as i8).into()),
        0xc0 => Scalar::Null,
        0xc2 => Scalar::Bool(false),
        0xc3 => Scalar::Bool(true),
        0xca => Scalar::Float(f32::from_bits(reader.uint(4)? as u32).into()),
        0xcb => Scalar::Float(f64::from_bits(reader.uint(8)?)),
        0xcc..=0xcf => {
            let u = reader.uint(1 << (marker - 0xcc))?;
            i64::try_from(u).map_or(Scalar::UInt(u), Scalar::Int)
        }
        0xd0..=0xd3 => Scalar::Int(reader.int(1 << (marker - 0xd0))?),
        0xa0..=0xbf => text(reader.take(usize::from(marker & 0x1f))?)?,
        0xd9..=0xdb => {
            let len = reader.uint(1 << (marker - 0xd9))? as usize;
            text(reader.take(len)?)?
        }
        0xc4..=0xc6 => {
            let len = reader.uint(1 << (marker - 0xc4))? as usize;
            Scalar::Bytes(reader.take(len)?)
        }
        other => return Err(format!("marker {other:#04x} is not a scalar")),
    })
}

/// Rewrites one MessagePack `bin` value into an extension value of type `kind` with the same
/// bytes (how a DataFrame's IPC bytes are marked as a DataFrame).
pub fn bin_to_ext(msgpack: &[u8], kind: i8) -> Result<Vec<u8>, String> {
    let (data, header) = match msgpack.first() {
        Some(0xc4) => (msgpack.get(2..), 2),
        Some(0xc5) => (msgpack.get(3..), 3),
        Some(0xc6) => (msgpack.get(5..), 5),
        _ => return Err("expected MessagePack bytes".into()),
    };
    let data = data.ok_or("truncated MessagePack bytes")?;
    let mut out = Vec::with_capacity(data.len() + header + 1);
    let len = data.len();
    if len <= 0xff {
        out.extend_from_slice(&[0xc7, len as u8]);
    } else if len <= 0xffff {
        out.push(0xc8);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc9);
        out.extend_from_slice(
            &u32::try_from(len)
                .map_err(|_| "value over 4 GiB")?
                .to_be_bytes(),
        );
    }
    out.push(kind as u8);
    out.extend_from_slice(data);
    Ok(out)
}

/// The reverse of [`bin_to_ext`]: `None` when `msgpack` is not one extension value of `kind`.
pub fn ext_to_bin(msgpack: &[u8], kind: i8) -> Option<Vec<u8>> {
    let mut reader = Reader {
        bytes: msgpack,
        pos: 0,
    };
    let marker = reader.take(1).ok()?[0];
    let len = match marker {
        0xc7..=0xc9 => reader.uint(1 << (marker - 0xc7)).ok()? as usize,
        _ => return None,
    };
    if reader.take(1).ok()?[0] as i8 != kind {
        return None;
    }
    let data = reader.take(len).ok()?;
    let mut out = Vec::with_capacity(len + 5);
    out.push(0xc6);
    out.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
    out.extend_from_slice(data);
    Some(out)
}

/// Writes a dynamic [`Value`] as MessagePack: the reverse of [`to_value`] (a DataFrame tag
/// becomes the DataFrame extension type again). Integers beyond 64 bits have no MessagePack
/// spelling and are an error.
pub fn from_value(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_len(
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<(u8, usize)>,
    markers: [u8; 3],
) -> Result<(), String> {
    match fix {
        Some((base, max)) if len <= max => out.push(base | len as u8),
        _ if len <= 0xff && markers[0] != 0 => out.extend_from_slice(&[markers[0], len as u8]),
        _ if len <= 0xffff => {
            out.push(markers[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(markers[2]);
            let len = u32::try_from(len).map_err(|_| "a value over 4 GiB")?;
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(u) = u64::try_from(i) {
                rmp::encode::write_uint(out, u).map_err(|e| e.to_string())?;
            } else {
                let s = i64::try_from(i).map_err(|_| format!("{i} has no MessagePack spelling"))?;
                rmp::encode::write_sint(out, s).map_err(|e| e.to_string())?;
            }
        }
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Text(s) => {
            write_len(out, s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb])?;
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6])?;
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_len(out, items.len(), Some((0x90, 15)), [0, 0xdc, 0xdd])?;
            for item in items {
                write_value(out, item)?;
            }
        }
        Value::Map(entries) => {
            write_len(out, entries.len(), Some((0x80, 15)), [0, 0xde, 0xdf])?;
            for (k, v) in entries {
                write_value(out, k)?;
                write_value(out, v)?;
            }
        }
        Value::Tag(tag, inner) => match (ext_kind(*tag), inner.as_ref()) {
            (Some(kind), Value::Bytes(data)) => {
                write_len(out, data.len(), None, [0xc7, 0xc8, 0xc9])?;
                out.push(kind as u8);
                out.extend_from_slice(data);
            }
            // Sets and other tags: their content.
            _ => write_value(out, inner)?,
        },
        other => return Err(format!("no MessagePack spelling for {other:?}")),
    }
    Ok(())
}

/// The extension type a tag made by [`to_value`] came from.
fn ext_kind(tag: u64) -> Option<i8> {
    if tag == DATAFRAME_TAG {
        Some(DATAFRAME_EXT)
    } else if (0x6873_0000..=0x6873_00ff).contains(&tag) {
        Some((tag - 0x6873_0000) as u8 as i8)
    } else {
        None
    }
}
