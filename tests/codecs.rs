//! The value path: every serializer x compressor x base64 round-trips; bad bytes are errors.

use hashstash::{
    decode, deserialize, encode, serialize, Codec, Compressor, EngineKind, Error, Serializer, Stash,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Record {
    name: String,
    i: i64,
    vals: Vec<u32>,
    score: Option<f64>,
    tags: std::collections::BTreeMap<String, bool>,
}

fn record() -> Record {
    Record {
        name: "cat".into(),
        i: -42,
        vals: (0..100).collect(),
        score: Some(0.25),
        tags: [("good".to_string(), true)].into(),
    }
}

#[test]
fn every_combination_round_trips() {
    let mut combos = 0;
    for serializer in Serializer::ALL {
        for compress in Compressor::available() {
            for b64 in [false, true] {
                let codec = Codec {
                    serializer,
                    compress,
                    b64,
                };
                let bytes = codec.encode_value(&record()).unwrap();
                let back: Record = codec.decode_value(&bytes).unwrap();
                assert_eq!(back, record(), "{}", codec.describe());
                if b64 {
                    assert!(bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
                }
                if serializer.is_self_describing() {
                    let dynamic = codec.decode_value_dyn(&bytes).unwrap();
                    assert!(dynamic.as_map().is_some(), "{}", codec.describe());
                } else {
                    assert!(matches!(
                        codec.decode_value_dyn(&bytes),
                        Err(Error::Decode { .. })
                    ));
                }
                combos += 1;
            }
        }
    }
    let expected = 3 * Compressor::available().count() * 2;
    assert_eq!(combos, expected);
    #[cfg(all(feature = "zstd", feature = "blosc"))]
    assert_eq!(combos, 42);
}

#[test]
fn every_combination_works_in_a_stash() {
    let dir = tempfile::tempdir().unwrap();
    for serializer in Serializer::ALL {
        for compress in Compressor::available() {
            for b64 in [false, true] {
                let s = Stash::builder()
                    .root_dir(dir.path())
                    .engine(EngineKind::Pairtree)
                    .serializer(serializer)
                    .compress(compress)
                    .b64(b64)
                    .open()
                    .unwrap();
                s.set(&("k", 1), &record()).unwrap();
                assert_eq!(s.get::<_, Record>(&("k", 1)).unwrap(), Some(record()));
                let name = s
                    .stash_dir()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let expected = format!(
                    "pairtree.{serializer}.{compress}{}",
                    if b64 { "+b64" } else { "" }
                );
                assert_eq!(name, expected);
            }
        }
    }
}

#[test]
fn key_bytes_do_not_depend_on_the_value_format() {
    let dir = tempfile::tempdir().unwrap();
    let key = ("bad", vec![1, 2]);
    let mut seen = Vec::new();
    for (compress, b64) in [
        (Compressor::Raw, false),
        (Compressor::Lz4, true),
        (Compressor::Bz2, false),
    ] {
        let s = Stash::builder()
            .root_dir(dir.path())
            .engine(EngineKind::Memory)
            .compress(compress)
            .b64(b64)
            .open()
            .unwrap();
        s.set(&key, "v").unwrap();
        seen.push(s.raw_keys().unwrap().next().unwrap().unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(seen[0], hashstash::codec::encode_key(&key).unwrap());
}

#[test]
fn golden_default_value_format() {
    // hashstash serializer (MessagePack, named fields) + lz4 with the size prepended.
    let codec = Codec::default();
    let bytes = codec.encode_value("cat").unwrap();
    assert_eq!(bytes, [4, 0, 0, 0, 0x40, 0xa3, b'c', b'a', b't']);
    #[derive(Serialize)]
    struct S {
        a: u8,
    }
    let raw = Codec {
        compress: Compressor::Raw,
        ..Codec::default()
    };
    assert_eq!(
        raw.encode_value(&S { a: 1 }).unwrap(),
        [0x81, 0xa1, b'a', 0x01]
    );
    let b64 = Codec {
        b64: true,
        ..Codec::default()
    };
    assert_eq!(b64.encode_value("cat").unwrap(), b"BAAAAECjY2F0");
}

#[test]
fn public_helpers_round_trip() {
    let data = b"Hello, World!".to_vec();
    for compress in Compressor::available() {
        let encoded = encode(&data, compress, true).unwrap();
        assert_eq!(decode(&encoded, compress, true).unwrap(), data);
    }
    for serializer in Serializer::ALL {
        let bytes = serialize(&record(), serializer).unwrap();
        assert_eq!(deserialize::<Record>(&bytes, serializer).unwrap(), record());
    }
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // An lz4 header that claims 4 GB from a few bytes of input.
    let bomb = [0xff, 0xff, 0xff, 0xff, 0x10, b'a'];
    let err = Compressor::Lz4.decompress(&bomb).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("claims"), "{err}");
    assert!(Compressor::Lz4.decompress(&[1, 0]).is_err());
}

#[test]
fn garbage_is_a_decode_error_for_every_step() {
    let garbage = b"\x00\x01not compressed at all \xff\xfe";
    for compress in Compressor::available().filter(|c| *c != Compressor::Raw) {
        let err = compress.decompress(garbage).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{compress}: {err}");
    }
    let err = decode(b"not base64!!", Compressor::Raw, true).unwrap_err();
    assert!(err.to_string().contains("base64"), "{err}");
    for serializer in Serializer::ALL {
        let err = deserialize::<Record>(b"\xc1\xc1\xc1", serializer).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{serializer}: {err}");
    }
}

#[test]
fn names_parse_and_unknown_names_are_errors() {
    for s in Serializer::ALL {
        assert_eq!(s.name().parse::<Serializer>().unwrap(), s);
    }
    for c in Compressor::ALL {
        assert_eq!(c.name().parse::<Compressor>().unwrap(), c);
    }
    for e in EngineKind::ALL {
        assert_eq!(e.name().parse::<EngineKind>().unwrap(), e);
    }
    assert!(matches!(
        "pickle".parse::<Serializer>(),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        "lzma".parse::<Compressor>(),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        "cassandra".parse::<EngineKind>(),
        Err(Error::InvalidOption { .. })
    ));
}

/// MessagePack bytes as a dynamic value, through the codec that stores them as they are.
fn to_value(bytes: &[u8]) -> hashstash::Result<hashstash::Value> {
    plain_messagepack().decode_value_dyn(bytes)
}

/// A dynamic value as MessagePack bytes (the reverse of [`to_value`]).
fn from_value(value: &hashstash::Value) -> hashstash::Result<Vec<u8>> {
    plain_messagepack().encode_value_dyn(value)
}

fn plain_messagepack() -> Codec {
    Codec {
        serializer: Serializer::Hashstash,
        compress: Compressor::Raw,
        b64: false,
    }
}

#[test]
fn dynamic_messagepack_matches_typed_decoding() {
    use hashstash::Value;
    let bytes = rmp_serde::to_vec_named(&record()).unwrap();
    let tree = to_value(&bytes).unwrap();
    let via_serde: Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(tree, via_serde);
    // Every marker family: ints of each width and sign, floats, strings, bins, arrays, maps.
    let sample = (
        (0u8, 200u8, 60_000u16, 4_000_000_000u32, u64::MAX),
        (-1i8, -100i8, -30_000i16, -2_000_000_000i32, i64::MIN),
        (1.5f32, 0.1f64, "x".repeat(40), "y".repeat(300)),
        (
            serde_bytes_like(300),
            vec![1u8; 20],
            std::collections::BTreeMap::from([(1, 2)]),
        ),
        (None::<u8>, true, false, vec![(); 17]),
    );
    let bytes = rmp_serde::to_vec(&sample).unwrap();
    assert_eq!(
        to_value(&bytes).unwrap(),
        rmp_serde::from_slice::<Value>(&bytes).unwrap()
    );
}

fn serde_bytes_like(n: usize) -> impl Serialize {
    struct B(Vec<u8>);
    impl Serialize for B {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    B(vec![7; n])
}

#[test]
fn hostile_messagepack_is_an_error() {
    // Lengths that claim more than the input holds: arrays, maps, strings, bins, exts.
    for bad in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01][..],
        &[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02],
        &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'],
        &[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00],
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x44, 0x00],
        &[0xc1],
        &[0xa2, 0xff, 0xfe],
        &[0x92, 0x01],
        &[0x01, 0x02],
        &[],
    ] {
        assert!(to_value(bad).is_err(), "{bad:02x?}");
    }
    // Nesting deep enough to overflow a naive recursive reader.
    let deep = vec![0x91u8; 1_000_000];
    assert!(to_value(&deep).is_err());
}

#[cfg(feature = "internals")]
mod erased {
    /// A value that appends its MessagePack encoding (to list mixed types in one test).
    pub trait Put {
        fn put(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize> Put for T {
        fn put(&self, out: &mut Vec<u8>) {
            out.extend(rmp_serde::to_vec(self).unwrap());
        }
    }
}

#[cfg(feature = "internals")]
#[test]
fn the_cursor_reads_each_scalar_in_one_form_and_checks_text() {
    use hashstash::codec::msgpack::{Cursor, Node, Scalar};
    fn nodes(bytes: &[u8]) -> Result<Vec<Node<'_>>, String> {
        let mut cursor = Cursor::new(bytes);
        let mut out = Vec::new();
        while !cursor.at_end() {
            out.push(cursor.next_node(true)?);
        }
        Ok(out)
    }
    // Scalars one after another, each in its shortest marker (as rmp_serde writes them).
    let mut bytes = Vec::new();
    let mut put = |v: &dyn erased::Put| v.put(&mut bytes);
    put(&0u8);
    put(&127u8);
    put(&128u8);
    put(&i64::MAX);
    put(&(i64::MAX as u64 + 1));
    put(&u64::MAX);
    put(&-1i8);
    put(&i64::MIN);
    put(&true);
    put(&false);
    put(&None::<u8>);
    put(&"cat");
    put(&"é ünïcode");
    put(&"x".repeat(31));
    put(&"y".repeat(40));
    let scalars: Vec<Scalar> = nodes(&bytes)
        .unwrap()
        .into_iter()
        .filter_map(|n| match n {
            Node::Scalar(s) => Some(s),
            _ => None,
        })
        .collect();
    let (x, y) = ("x".repeat(31), "y".repeat(40));
    assert_eq!(
        scalars,
        [
            Scalar::Int(0),
            Scalar::Int(127),
            Scalar::Int(128),
            Scalar::Int(i64::MAX),
            // Only integers past i64 are unsigned: each integer has one form.
            Scalar::UInt(i64::MAX as u64 + 1),
            Scalar::UInt(u64::MAX),
            Scalar::Int(-1),
            Scalar::Int(i64::MIN),
            Scalar::Bool(true),
            Scalar::Bool(false),
            Scalar::Null,
            Scalar::Text("cat"),
            Scalar::Text("é ünïcode"),
            Scalar::Text(&x),
            Scalar::Text(&y),
        ]
    );
    // A map opens; its short text keys read inline.
    let map = nodes(&[0x81, 0xa1, b'a', 0x05]).unwrap();
    assert!(matches!(
        map[..],
        [
            Node::Map(1),
            Node::Scalar(Scalar::Text("a")),
            Node::Scalar(Scalar::Int(5))
        ]
    ));
    // Text that is not UTF-8, short or long, and text cut short are errors, not text.
    for bad in [
        &[0xa2, 0xc3, 0x28][..],
        &[0xa1, 0xff],
        &[0xd9, 0x02, 0xc3, 0x28],
        &[0xa3, b'a'],
    ] {
        assert!(nodes(bad).is_err(), "{bad:02x?}");
    }
}

#[test]
fn dynamic_values_write_back_as_they_were_read() {
    let bytes = rmp_serde::to_vec_named(&record()).unwrap();
    let tree = to_value(&bytes).unwrap();
    assert_eq!(to_value(&from_value(&tree).unwrap()).unwrap(), tree);
    let back: Record = rmp_serde::from_slice(&from_value(&tree).unwrap()).unwrap();
    assert_eq!(back, record());
    // Extension values keep their type.
    let ext = [0xd4, 0x05, 0xaa];
    assert_eq!(
        from_value(&to_value(&ext).unwrap()).unwrap(),
        [0xc7, 0x01, 0x05, 0xaa]
    );
}

#[test]
fn transcoding_between_every_format() {
    let mut codecs = Vec::new();
    for serializer in Serializer::ALL {
        for compress in [Compressor::Raw, Compressor::Lz4, Compressor::Bz2] {
            for b64 in [false, true] {
                codecs.push(Codec {
                    serializer,
                    compress,
                    b64,
                });
            }
        }
    }
    for from in &codecs {
        for to in &codecs {
            let stored = from.encode_value(&record()).unwrap();
            let moved = to.transcode(from, stored);
            let possible = from.serializer == to.serializer
                || (from.serializer.is_self_describing() && to.serializer != Serializer::Postcard);
            match moved {
                Ok(bytes) => {
                    assert!(possible, "{} -> {}", from.describe(), to.describe());
                    let back: Record = to.decode_value(&bytes).unwrap();
                    assert_eq!(back, record(), "{} -> {}", from.describe(), to.describe());
                }
                Err(e) => assert!(!possible, "{} -> {}: {e}", from.describe(), to.describe()),
            }
        }
    }
}

/// A value a compressor could not give back whole is refused before anything is stored:
/// c-blosc returns nothing for inputs over 2 GiB minus 16 bytes (no error of its own), and
/// the streaming decompressors stop at 4 GiB.
#[test]
fn compressors_refuse_what_they_could_not_give_back() {
    // A zeroed allocation: its pages are not touched by the checks, which come first.
    let limits: Vec<(Compressor, Option<u64>)> = Compressor::ALL
        .iter()
        .map(|c| (*c, c.max_input()))
        .collect();
    assert_eq!(limits[0], (Compressor::Raw, None));
    for (compress, limit) in limits {
        let Some(limit) = limit else { continue };
        if !compress.is_available() || limit > 3 << 30 {
            continue; // 4 GiB inputs are more than a test should allocate
        }
        let over = vec![0u8; limit as usize + 1];
        let err = compress.compress(&over).unwrap_err();
        assert!(
            matches!(err, hashstash::Error::Encode { .. }),
            "{compress}: {err}"
        );
        assert!(err.to_string().contains("give back"), "{compress}: {err}");
    }
    assert_eq!(Compressor::Lz4.max_input(), Some(u64::from(u32::MAX)));
    assert_eq!(Compressor::Zlib.max_input(), Some(4 << 30));
    assert_eq!(Compressor::Blosc.max_input(), Some((2u64 << 30) - 17));
}

/// Through a stash: the blosc value too large to compress is an error and nothing is
/// stored (before, `set` stored 0 bytes and returned `Ok`).
#[cfg(feature = "blosc")]
#[test]
fn a_blosc_stash_refuses_a_value_over_its_limit_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stash = hashstash::Stash::builder()
        .root_dir(dir.path())
        .engine(hashstash::EngineKind::Memory)
        .compress(Compressor::Blosc)
        .open()
        .unwrap();
    stash.set("small", &vec![7u8; 1000]).unwrap();
    let too_big = serde_bytes_value((2usize << 30) - 16);
    let err = stash.set("big", &too_big).unwrap_err();
    assert!(matches!(err, hashstash::Error::Encode { .. }), "{err}");
    assert!(!stash.contains("big").unwrap(), "nothing stored");
    assert_eq!(stash.len().unwrap(), 1);
    assert_eq!(
        stash.get::<_, Vec<u8>>("small").unwrap(),
        Some(vec![7u8; 1000])
    );
}

/// Bytes serialized as one binary string (not a list of numbers), `len` of them.
#[cfg(feature = "blosc")]
fn serde_bytes_value(len: usize) -> impl serde::Serialize {
    struct Bytes(Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    Bytes(vec![0u8; len])
}

/// `hashstash::Value` is the crate's own type (no CBOR crate's in the API): it is stored and
/// read back whole through the typed and the dynamic paths, and integers past CBOR's range
/// become the bignums CBOR writes.
#[test]
fn dynamic_values_round_trip_through_a_stash_and_a_key() {
    use hashstash::codec::{decode_key_dyn, encode_key_value};
    use hashstash::Value;
    let dir = tempfile::tempdir().unwrap();
    let s = hashstash::Stash::builder()
        .root_dir(dir.path())
        .open()
        .unwrap();
    let value = Value::Map(vec![
        ("max".into(), u64::MAX.into()),
        ("min".into(), i64::MIN.into()),
        (
            "xs".into(),
            vec![Value::from(2.5), Value::Null, true.into()].into(),
        ),
        ("bytes".into(), vec![0u8, 255].into()),
        (Value::Integer(7), "a key that is not text".into()),
    ]);
    s.set("v", &value).unwrap();
    assert_eq!(s.get_value("v").unwrap().as_ref(), Some(&value));
    assert_eq!(s.get::<_, Value>("v").unwrap().as_ref(), Some(&value));
    let entries = value.as_map().unwrap();
    assert_eq!(entries[0].1.as_integer(), Some(i128::from(u64::MAX)));
    assert_eq!(entries[4].1.as_text(), Some("a key that is not text"));
    assert!(entries[2].1.as_array().unwrap()[1].is_null());

    // As a key: CBOR. Past its integers, a bignum (tag 2 holds n, tag 3 holds -1 - n).
    let big = Value::Integer(1 << 70);
    let read = decode_key_dyn(&encode_key_value(big.clone()).unwrap()).unwrap();
    assert_eq!(
        read, big,
        "a bignum that fits an i128 reads back as the integer"
    );
    assert_eq!(
        hashstash::value::to_json(&read),
        serde_json::json!("1180591620717411303424")
    );
    let negative = Value::Integer(-(1 << 70) - 1);
    let read = decode_key_dyn(&encode_key_value(negative.clone()).unwrap()).unwrap();
    assert_eq!(read, negative);
    assert_eq!(
        hashstash::value::to_json(&read),
        serde_json::json!("-1180591620717411303425")
    );
    let smallest = Value::Integer(-(1 << 64));
    let read = decode_key_dyn(&encode_key_value(smallest.clone()).unwrap()).unwrap();
    assert_eq!(read, smallest, "CBOR's own integers stay integers");

    // As a value: an integer is a number in every format, never a tag spelled as a map.
    // MessagePack has none past 64 bits: it keeps 16 bytes that a typed read turns back.
    s.set("big", &big).unwrap();
    assert_eq!(s.get::<_, i128>("big").unwrap(), Some(1 << 70));
    s.set("small", &Value::Integer(-7)).unwrap();
    assert_eq!(s.get::<_, i64>("small").unwrap(), Some(-7));
    assert_eq!(
        serde_json::to_value(Value::Integer(-7)).unwrap(),
        serde_json::json!(-7)
    );
    assert!(
        serde_json::to_value(&big).is_err(),
        "JSON has no number past 64 bits: an error, not a map"
    );
}
