//! What the fuzz targets check. Shared by the libFuzzer targets (`fuzz_targets/*.rs`, run with
//! `cargo +nightly fuzz run <target>`) and by the corpus replay in the test suite
//! (`tests/fuzz.rs`, stable Rust), so a crash found once is checked on every CI run.
//!
//! A panic here is a finding: a property failed, or hashstash panicked on its input.

use hashstash::codec::{decode_key_dyn, encode_key, encode_key_value};
use hashstash::{Codec, Compressor, EngineKind, Serializer, Stash, Value};
use std::collections::BTreeMap;

/// The codec a byte picks: serializer, compressor (of those compiled in) and base64.
pub fn codec_of(choice: u8) -> Codec {
    let serializers = [
        Serializer::Hashstash,
        Serializer::Json,
        Serializer::Postcard,
    ];
    let compressors: Vec<Compressor> = Compressor::available().collect();
    Codec {
        serializer: serializers[usize::from(choice % 3)],
        compress: compressors[usize::from((choice / 3) & 0x1f) % compressors.len()],
        b64: choice & 0x80 != 0,
    }
}

/// Stored value bytes, as a disk or a server could return them: decoding (base64, then
/// decompression, then deserialization) is an error or a value, never a panic, and never an
/// allocation the input cannot justify (libFuzzer's `-malloc_limit_mb` turns one into a
/// crash). A value that decodes encodes again, and that encoding is stable.
pub fn decode(data: &[u8]) {
    let Some((&choice, stored)) = data.split_first() else {
        return;
    };
    let codec = codec_of(choice);
    let _ = hashstash::decode(stored, codec.compress, codec.b64);
    let _ = codec.decode_value::<serde_json::Value>(stored);
    let _ = codec.decode_value::<(String, Vec<u64>, Option<f64>)>(stored);
    if let Ok(value) = codec.decode_value_dyn(stored) {
        let encoded = codec
            .encode_value_dyn(&value)
            .expect("a value that decoded encodes again");
        let back = codec
            .decode_value_dyn(&encoded)
            .expect("what hashstash encoded decodes");
        let again = codec.encode_value_dyn(&back).expect("encodes again");
        assert_eq!(again, encoded, "encoding a decoded value is stable");
    }
}

/// Key bytes and key values: decoding any bytes as a key is an error or a value, never a
/// panic; a key value's canonical bytes decode to a value with the same canonical bytes;
/// and JSON text gives the same key bytes whatever the order of its objects' fields.
pub fn key(data: &[u8]) {
    if let Ok(value) = decode_key_dyn(data) {
        canonical_bytes_are_a_fixed_point(value);
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        let bytes = encode_key(&json).expect("JSON is a valid key");
        let value = hashstash::value::from_json(&json);
        assert_eq!(encode_key_value(value.clone()).expect("key"), bytes);
        assert_eq!(
            encode_key_value(reversed(value)).expect("key"),
            bytes,
            "field order changed the key"
        );
        canonical_bytes_are_a_fixed_point(decode_key_dyn(&bytes).expect("key bytes decode"));
    }
}

fn canonical_bytes_are_a_fixed_point(value: Value) {
    if let Ok(bytes) = encode_key_value(value) {
        let back = decode_key_dyn(&bytes).expect("canonical key bytes decode");
        assert_eq!(
            encode_key_value(back).expect("a decoded key encodes"),
            bytes,
            "canonical key bytes are a fixed point"
        );
    }
}

/// `value` with the entries of every map, at every depth, in reverse order.
fn reversed(value: Value) -> Value {
    match value {
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .rev()
                .map(|(k, v)| (reversed(k), reversed(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(reversed).collect()),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(reversed(*inner))),
        other => other,
    }
}

/// Keys of three shapes (integer, text, array), few enough that operations meet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Key {
    Int(u8),
    Text(String),
    Pair(u8, String),
}

fn key_of(byte: u8) -> Key {
    match byte % 24 {
        k @ 0..=7 => Key::Int(k),
        k @ 8..=15 => Key::Text(format!("k{k}")),
        k => Key::Pair(k, "p".into()),
    }
}

/// Reads the operation stream.
struct Input<'a>(std::slice::Iter<'a, u8>);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        self.0.next().copied()
    }
    fn value(&mut self) -> Option<i64> {
        Some(i64::from(i16::from_le_bytes([self.byte()?, self.byte()?])))
    }
}

/// A stash and a `BTreeMap` driven by the same operations (set, batch, get, contains,
/// remove, pop, every version, len, items, clear, reopen) must agree after every one, on
/// the memory, pairtree and LMDB engines, in both modes.
pub fn model(data: &[u8]) {
    let mut input = Input(data.iter());
    let Some(setup) = input.byte() else {
        return;
    };
    let engines: Vec<EngineKind> = [EngineKind::Memory, EngineKind::Pairtree, EngineKind::Lmdb]
        .into_iter()
        .filter(|e| e.is_available())
        .collect();
    let engine = engines[usize::from(setup) % engines.len()];
    let append = setup & 0x80 != 0;
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        Stash::builder()
            .root_dir(dir.path())
            .engine(engine)
            .append_mode(append)
            .open()
            .expect("open")
    };
    let mut stash = open();
    // Every version of every key, oldest first (one outside append mode).
    let mut model: BTreeMap<Key, Vec<i64>> = BTreeMap::new();
    let store = |model: &mut BTreeMap<Key, Vec<i64>>, key: Key, value: i64| {
        let versions = model.entry(key).or_default();
        if !append {
            versions.clear();
        }
        versions.push(value);
    };
    while let Some(op) = input.byte() {
        let Some(key) = input.byte().map(key_of) else {
            break;
        };
        let context = || format!("{engine}, append {append}, op {op}, key {key:?}");
        match op % 11 {
            0 | 1 => {
                let Some(value) = input.value() else { break };
                stash.set(&key, &value).expect("set");
                store(&mut model, key, value);
            }
            2 => {
                let n = input.byte().unwrap_or(0) % 5;
                let mut batch = Vec::new();
                for _ in 0..n {
                    let (Some(k), Some(v)) = (input.byte().map(key_of), input.value()) else {
                        break;
                    };
                    batch.push((k, v));
                }
                stash.update(batch.clone()).expect("update");
                for (k, v) in batch {
                    store(&mut model, k, v);
                }
            }
            3 => {
                let found: Option<i64> = stash.get(&key).expect("get");
                let wanted = model.get(&key).and_then(|v| v.last().copied());
                assert_eq!(found, wanted, "get: {}", context());
            }
            4 => {
                let found = stash.contains(&key).expect("contains");
                assert_eq!(found, model.contains_key(&key), "contains: {}", context());
            }
            5 => {
                let removed = stash.remove(&key).expect("remove");
                assert_eq!(
                    removed,
                    model.remove(&key).is_some(),
                    "remove: {}",
                    context()
                );
            }
            6 => {
                let popped: Option<i64> = stash.pop(&key).expect("pop");
                let wanted = model.remove(&key).and_then(|v| v.last().copied());
                assert_eq!(popped, wanted, "pop: {}", context());
            }
            7 => {
                let all: Vec<i64> = stash.get_all(&key).expect("get_all");
                let wanted = model.get(&key).cloned().unwrap_or_default();
                assert_eq!(all, wanted, "get_all: {}", context());
            }
            8 => {
                assert_eq!(stash.len().expect("len"), model.len(), "len: {}", context());
                let mut items: Vec<(Key, i64)> = stash
                    .items()
                    .expect("items")
                    .collect::<hashstash::Result<_>>()
                    .expect("items decode");
                items.sort();
                let wanted: Vec<(Key, i64)> = model
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), *v.last()?)))
                    .collect();
                assert_eq!(items, wanted, "items: {}", context());
            }
            9 if key == Key::Int(0) => {
                stash.clear().expect("clear");
                model.clear();
            }
            10 if engine != EngineKind::Memory => {
                // A memory stash lives only while a handle does; the others reopen from disk.
                drop(stash);
                stash = open();
            }
            _ => {}
        }
    }
    assert_eq!(
        stash.len().expect("len"),
        model.len(),
        "{engine}: final len"
    );
}
