//! The fuzz targets' checks (`fuzz/checks.rs`) on stable Rust: every input of the committed
//! corpus (`fuzz/corpus/<target>/`: the seeds plus what fuzzing found, minimised) and of
//! `fuzz/regressions/<target>/` (inputs that once failed, fixed since), then a short run of
//! pseudo-random inputs from a fixed seed.
//! Long fuzzing sessions: see "Fuzzing" in RELIABILITY.md.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Pseudo-random inputs per target in the short run (`HASHSTASH_LONG=1`: 20 times more).
fn random_inputs() -> usize {
    if std::env::var_os("HASHSTASH_LONG").is_some() {
        20_000
    } else {
        1_000
    }
}

/// The files of `fuzz/<folder>/<target>/` (none if it does not exist).
fn inputs(folder: &str, target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    // The corpus (what fuzzing kept, minimised) and the regressions (inputs that once
    // failed, kept apart so that minimising the corpus never drops them).
    let mut files = inputs("corpus", target);
    files.extend(inputs("regressions", target));
    assert!(files.len() >= 10, "{target}: only {} inputs", files.len());
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
    // Inputs of every length up to 256 bytes, biased to small bytes (short op codes, keys
    // that meet) half the time.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..random_inputs() {
        let len = (next() % 257) as usize;
        let small = round % 2 == 0;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                let b = next() as u8;
                if small {
                    b % 24
                } else {
                    b
                }
            })
            .collect();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: fails on {data:?}");
    }
}

#[test]
fn decode_corpus_and_random_inputs() {
    replay("decode", checks::decode);
}

#[test]
fn key_corpus_and_random_inputs() {
    replay("key", checks::key);
}

#[test]
fn model_corpus_and_random_inputs() {
    replay("model", checks::model);
}

/// Writes the seed inputs of `fuzz/corpus/` (run by hand when the checks change:
/// `cargo test --all-features -- fuzz::write_seed_corpus --ignored`).
#[test]
#[ignore = "writes fuzz/corpus/*/seed-*"]
fn write_seed_corpus() {
    use hashstash::Serializer;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let write = |target: &str, name: String, data: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };
    // decode: the choice byte of every codec, then values it wrote, and hostile bytes.
    let values = [
        serde_json::json!({"name": "cat", "i": 7, "vals": [1, 2.5, null], "nested": {"a": true}}),
        serde_json::json!("text"),
        serde_json::json!([]),
        serde_json::json!(-1),
    ];
    let mut seen = Vec::new();
    for choice in 0..=255u8 {
        let codec = checks::codec_of(choice);
        if seen.contains(&codec) {
            continue;
        }
        seen.push(codec);
        let name = codec.describe().replace(['.', '+'], "-");
        for (i, value) in values.iter().enumerate() {
            let mut data = vec![choice];
            if codec.serializer == Serializer::Postcard {
                data.extend(
                    codec
                        .encode_value(&("cat", vec![1u64, 2], Some(2.5)))
                        .unwrap(),
                );
            } else {
                data.extend(codec.encode_value(value).unwrap());
            }
            write("decode", format!("{name}-{i}"), &data);
        }
        // A size header that claims 4 GB, and truncated input.
        let mut huge = vec![choice];
        huge.extend([0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02]);
        write("decode", format!("{name}-huge-claim"), &huge);
        let full = codec.encode_value(&values[0]).unwrap_or_default();
        let mut cut = vec![choice];
        cut.extend(&full[..full.len() / 2]);
        write("decode", format!("{name}-truncated"), &cut);
    }
    // key: JSON texts of every shape, and canonical key bytes.
    let texts = [
        r#"{"b": 2, "a": [1, 2.5, null], "c": {"y": true, "x": "s"}}"#,
        r#"[["a", 1], {"z": -0.0}]"#,
        r#""text""#,
        "18446744073709551615",
        "-9223372036854775808",
        "1e308",
        r#"{"": {"": []}}"#,
        "null",
        "true",
        r#"[1, [2, [3, [4]]]]"#,
    ];
    for (i, text) in texts.iter().enumerate() {
        write("key", format!("json-{i}"), text.as_bytes());
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        write(
            "key",
            format!("bytes-{i}"),
            &hashstash::codec::encode_key(&json).unwrap(),
        );
    }
    let set: std::collections::BTreeSet<u8> = [3, 1, 2].into();
    write(
        "key",
        "set".into(),
        &hashstash::codec::encode_key(&set).unwrap(),
    );
    // model: the setup byte (engine, append bit), then operations.
    let ops: &[&[u8]] = &[
        &[0, 0, 1, 5, 0, 3, 1, 8, 0],
        &[1, 0, 1, 5, 0, 1, 1, 6, 0, 3, 1, 5, 1, 3, 1, 8, 0],
        &[2, 2, 3, 1, 1, 0, 2, 2, 0, 1, 1, 0, 8, 0, 10, 0, 8, 0],
        &[0x80, 0, 4, 1, 0, 0, 4, 2, 0, 7, 4, 3, 4, 6, 4, 7, 4],
        &[
            0x81, 0, 9, 1, 0, 2, 9, 2, 2, 0, 0, 9, 3, 0, 7, 9, 10, 0, 7, 9,
        ],
        &[
            0x82, 1, 20, 1, 0, 10, 0, 7, 20, 9, 0, 8, 0, 1, 20, 2, 0, 7, 20,
        ],
        &[1, 2, 0, 4, 5, 1, 0, 5, 2, 0, 8, 0, 10, 0, 3, 5],
        &[2, 0, 16, 1, 1, 0, 17, 2, 2, 5, 16, 4, 16, 4, 17, 8, 0],
        &[0x82, 2, 0, 3, 1, 1, 0, 1, 2, 0, 1, 3, 0, 7, 1, 6, 1, 7, 1],
        &[
            0, 0, 1, 1, 0, 0, 1, 2, 0, 0, 1, 3, 0, 3, 1, 8, 0, 9, 0, 8, 0,
        ],
    ];
    for (i, data) in ops.iter().enumerate() {
        write("model", format!("ops-{i}"), data);
    }
}
