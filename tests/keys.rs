//! Canonical keys: golden bytes pin the encoding; content, not iteration order, decides.

use hashstash::codec::{decode_key, decode_key_dyn, encode_key, encode_key_value};
use hashstash::value::from_json;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn golden_key_bytes() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (encode_key("bad").unwrap(), "63626164"),
        (encode_key(&1u8).unwrap(), "01"),
        (encode_key(&1i64).unwrap(), "01"),
        (encode_key(&-1i32).unwrap(), "20"),
        (encode_key(&1000u32).unwrap(), "1903e8"),
        (encode_key(&1.5f64).unwrap(), "f93e00"),
        (encode_key(&1.5f32).unwrap(), "f93e00"),
        (encode_key(&0.1f64).unwrap(), "fb3fb999999999999a"),
        (encode_key(&true).unwrap(), "f5"),
        (encode_key(&Option::<u8>::None).unwrap(), "f6"),
        (
            encode_key(&("bad", "good")).unwrap(),
            "826362616464676f6f64",
        ),
        (
            encode_key(&HashMap::from([("b", 2), ("a", 1)])).unwrap(),
            "a2616101616202",
        ),
        (
            encode_key(&HashSet::from(["good", "bad"])).unwrap(),
            "d90102826362616464676f6f64",
        ),
        (
            encode_key(&u128::MAX).unwrap(),
            "c250ffffffffffffffffffffffffffffffff",
        ),
        (
            encode_key(&i128::MIN).unwrap(),
            "c3507fffffffffffffffffffffffffffffff",
        ),
    ];
    for (bytes, golden) in cases {
        assert_eq!(hex(&bytes), golden);
    }
}

#[test]
fn hash_collections_are_order_independent() {
    // Different capacities and insertion orders give different iteration orders.
    let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    let mut a: HashSet<String> = HashSet::with_capacity(1000);
    a.extend(words.iter().cloned());
    let b: HashSet<String> = words.iter().rev().cloned().collect();
    assert_eq!(encode_key(&a).unwrap(), encode_key(&b).unwrap());
    let bt: BTreeSet<String> = words.iter().cloned().collect();
    assert_eq!(
        encode_key(&a).unwrap(),
        encode_key(&bt).unwrap(),
        "HashSet and BTreeSet agree"
    );
    let ma: HashMap<String, usize> = words.iter().cloned().zip(0..).collect();
    let mut mb: HashMap<String, usize> = HashMap::with_capacity(4096);
    mb.extend(
        words
            .iter()
            .cloned()
            .zip(0..)
            .collect::<Vec<_>>()
            .into_iter()
            .rev(),
    );
    let mc: BTreeMap<String, usize> = words.iter().cloned().zip(0..).collect();
    assert_eq!(encode_key(&ma).unwrap(), encode_key(&mb).unwrap());
    assert_eq!(encode_key(&ma).unwrap(), encode_key(&mc).unwrap());
    // Nested inside other values, and behind references and boxes.
    let nested_a = (1, vec![a.clone()], Some(&a));
    let nested_b = (1, vec![b.clone()], Some(&b));
    assert_eq!(
        encode_key(&nested_a).unwrap(),
        encode_key(&nested_b).unwrap()
    );
    assert_eq!(
        encode_key(&Box::new(a.clone())).unwrap(),
        encode_key(&b).unwrap()
    );
}

#[test]
fn sets_and_lists_are_different_keys() {
    let set = HashSet::from(["bad", "good"]);
    let list = vec!["bad", "good"];
    assert_ne!(encode_key(&set).unwrap(), encode_key(&list).unwrap());
    // ... but tuples, arrays, slices and Vecs are one kind: sequences.
    assert_eq!(
        encode_key(&("bad", "good")).unwrap(),
        encode_key(&list).unwrap()
    );
    assert_eq!(
        encode_key(&["bad", "good"]).unwrap(),
        encode_key(&list).unwrap()
    );
    assert_eq!(encode_key(&list[..]).unwrap(), encode_key(&list).unwrap());
}

#[test]
fn structs_equal_maps_and_json() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Query {
        b: u32,
        a: String,
    }
    let q = Query {
        b: 2,
        a: "x".into(),
    };
    let json = serde_json::json!({"a": "x", "b": 2});
    assert_eq!(encode_key(&q).unwrap(), encode_key(&json).unwrap());
    assert_eq!(
        encode_key(&q).unwrap(),
        encode_key_value(from_json(&json)).unwrap()
    );
    let back: Query = decode_key(&encode_key(&q).unwrap()).unwrap();
    assert_eq!(back, q);
}

#[test]
fn floats_have_one_spelling() {
    assert_eq!(encode_key(&-0.0f64).unwrap(), encode_key(&0.0f64).unwrap());
    assert_eq!(
        encode_key(&f64::NAN).unwrap(),
        encode_key(&(-f64::NAN)).unwrap()
    );
    assert_eq!(
        encode_key(&f32::NAN).unwrap(),
        encode_key(&f64::NAN).unwrap()
    );
    assert_ne!(
        encode_key(&f64::INFINITY).unwrap(),
        encode_key(&f64::NEG_INFINITY).unwrap()
    );
    let inf: f64 = decode_key(&encode_key(&f64::INFINITY).unwrap()).unwrap();
    assert_eq!(inf, f64::INFINITY);
    assert!(decode_key::<f64>(&encode_key(&f64::NAN).unwrap())
        .unwrap()
        .is_nan());
    assert_ne!(
        encode_key(&1.0f64).unwrap(),
        encode_key(&1u8).unwrap(),
        "1.0 and 1 differ"
    );
}

#[test]
fn every_serde_shape_round_trips() {
    #[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Hash, Clone)]
    enum E {
        Unit,
        New(i8),
        Tuple(u8, String),
        Struct { x: i64 },
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Wrapper(Vec<E>);
    fn rt<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = encode_key(&v).unwrap();
        assert_eq!(decode_key::<T>(&bytes).unwrap(), v, "{}", hex(&bytes));
    }
    rt(u128::MAX);
    rt(i128::MIN);
    rt(i128::MAX);
    rt(u64::MAX);
    rt(i64::MIN);
    rt('x');
    rt(String::from("unicode ✓"));
    rt(Some(3u8));
    rt((1u8, "a".to_string(), vec![1.5f64]));
    rt(HashSet::from([E::Unit, E::New(-1)]));
    rt(BTreeSet::from([3, 1, 2]));
    rt(HashMap::from([((1, 2), "tuple keys".to_string())]));
    rt(Wrapper(vec![
        E::Unit,
        E::New(-3),
        E::Tuple(1, "t".into()),
        E::Struct { x: -9 },
    ]));
    assert_eq!(encode_key(&E::Unit).unwrap(), encode_key("Unit").unwrap());
}

#[test]
fn dynamic_keys_keep_sets_tagged() {
    let bytes = encode_key(&HashSet::from([2, 1])).unwrap();
    match decode_key_dyn(&bytes).unwrap() {
        hashstash::Value::Tag(258, inner) => assert_eq!(inner.as_array().map(<[_]>::len), Some(2)),
        other => panic!("not a set: {other:?}"),
    }
}

#[test]
fn bad_key_bytes_are_a_decode_error() {
    for bad in [&b""[..], &[0x82, 0x01][..], &[0xff][..], &[0x7f, 0x61][..]] {
        let err = decode_key::<hashstash::Value>(bad).unwrap_err();
        assert!(matches!(err, hashstash::Error::Decode { .. }), "{err}");
    }
    // A wrong type is an error, not garbage.
    let err = decode_key::<u32>(&encode_key("text").unwrap()).unwrap_err();
    assert!(matches!(err, hashstash::Error::Decode { .. }), "{err}");
}

#[test]
fn sets_behind_wrappers_are_still_sets() {
    use std::borrow::Cow;
    use std::sync::{Arc, Mutex, RwLock};
    let words: Vec<String> = (0..50).map(|i| format!("w{i}")).collect();
    let forward: HashSet<String> = words.iter().cloned().collect();
    let mut backward: HashSet<String> = HashSet::with_capacity(500);
    backward.extend(words.iter().rev().cloned());
    let expected = encode_key(&forward).unwrap();
    assert_eq!(encode_key(&Arc::new(backward.clone())).unwrap(), expected);
    assert_eq!(encode_key(&Mutex::new(backward.clone())).unwrap(), expected);
    assert_eq!(
        encode_key(&RwLock::new(backward.clone())).unwrap(),
        expected
    );
    assert_eq!(
        encode_key(&vec![Cow::Borrowed(&backward)]).unwrap(),
        encode_key(&vec![&forward]).unwrap()
    );
    assert_eq!(
        encode_key(&std::cell::RefCell::new(backward)).unwrap(),
        expected
    );
}

/// A bignum has one spelling in a key: with leading zeros, or small enough to be an integer,
/// it is the integer (found by fuzzing: such a tree was not a fixed point of encoding).
#[test]
fn bignum_spellings_are_one_key() {
    use hashstash::codec::encode_key_value;
    use hashstash::Value;
    let bignum = |tag: u64, bytes: &[u8]| Value::Tag(tag, Box::new(Value::Bytes(bytes.to_vec())));
    let int = |i: i64| encode_key_value(Value::Integer(i.into())).unwrap();
    assert_eq!(encode_key_value(bignum(2, &[])).unwrap(), int(0));
    assert_eq!(encode_key_value(bignum(2, &[0, 0, 5])).unwrap(), int(5));
    assert_eq!(encode_key_value(bignum(3, &[1])).unwrap(), int(-2));
    let big = u128::MAX.to_be_bytes();
    let mut padded = vec![0, 0];
    padded.extend(big);
    assert_eq!(
        encode_key_value(bignum(2, &padded)).unwrap(),
        hashstash::codec::encode_key(&u128::MAX).unwrap()
    );
    assert_eq!(
        encode_key_value(bignum(2, &[1, 0, 0, 0, 0, 0, 0, 0, 0])).unwrap(),
        hashstash::codec::encode_key(&(1u128 << 64)).unwrap()
    );
    // What is encoded decodes, and encodes to the same bytes again (beyond 128 bits too).
    for tree in [
        bignum(2, &[1; 17]),
        bignum(3, &[1; 17]),
        bignum(3, &[0x7f; 16]),
    ] {
        let bytes = encode_key_value(tree).unwrap();
        let back = hashstash::codec::decode_key_dyn(&bytes).unwrap();
        assert_eq!(encode_key_value(back).unwrap(), bytes);
    }
    // Below i128::MIN in 16 bytes: CBOR readers cannot read it back, so it is refused.
    assert!(encode_key_value(bignum(3, &[0x80; 16])).is_err());
}

/// Text keys take a fast path that writes their CBOR straight; it must give the general
/// path's bytes at every length boundary of the CBOR header, for strings, chars and wrappers.
#[test]
fn text_keys_fast_path_matches_the_general_path() {
    // The general path: a key tree, made canonical, written as CBOR.
    let general = |text: &str| encode_key_value(hashstash::Value::Text(text.into())).unwrap();
    for len in [
        0, 1, 23, 24, 25, 255, 256, 257, 65_535, 65_536, 65_537, 100_000,
    ] {
        let text = "k".repeat(len);
        let fast = encode_key(&text).unwrap();
        assert_eq!(fast, general(&text), "a text key of {len} bytes");
        assert_eq!(encode_key(&text.as_str()).unwrap(), fast);
        assert_eq!(
            encode_key(&std::borrow::Cow::Borrowed(&*text)).unwrap(),
            fast
        );
        // Point reads take the bytes from a buffer kept per thread: the same bytes.
        let lent = hashstash::codec::with_key_bytes(&text, |b| Ok(b.to_vec())).unwrap();
        assert_eq!(lent, fast, "a text key of {len} bytes, lent");
    }
    // A key read while another is lent (the buffer is taken), and a key of another shape.
    let nested = hashstash::codec::with_key_bytes("outer", |outer| {
        let inner = hashstash::codec::with_key_bytes("inner", |b| Ok(b.to_vec()))?;
        Ok((outer.to_vec(), inner))
    })
    .unwrap();
    assert_eq!(nested, (general("outer"), general("inner")));
    let tuple = hashstash::codec::with_key_bytes(&("a", 1), |b| Ok(b.to_vec())).unwrap();
    assert_eq!(tuple, encode_key(&("a", 1)).unwrap());
    for text in ["é", "日本語のキー", "🐈 cat", "a\u{0}b"] {
        assert_eq!(encode_key(text).unwrap(), general(text), "{text:?}");
    }
    for c in ['a', 'é', '🐈'] {
        assert_eq!(encode_key(&c).unwrap(), general(&c.to_string()), "{c:?}");
    }
    // Every other shape still takes the general path, and the text inside them too.
    assert_eq!(encode_key(&Some("x")).unwrap(), general("x"));
    assert_eq!(
        hex(&encode_key(&("a", 1)).unwrap()),
        hex(&encode_key_value(hashstash::Value::Array(vec!["a".into(), 1.into()])).unwrap())
    );
}

/// `stash.typed::<K, V>()`: the same stash, read and written without turbofish; a value of
/// another type is an error when read through it, not a wrong value.
#[test]
fn a_typed_view_reads_and_writes_without_naming_types() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
    struct Point {
        x: i32,
        y: i32,
    }
    let (_d, s) = crate::common::stash(hashstash::EngineKind::default_engine());
    let points = s.typed::<(String, u8), Point>();
    let a = ("a".to_string(), 1u8);
    points.set(&a, &Point { x: 1, y: 2 }).unwrap();
    points
        .update([(("b".to_string(), 2u8), Point { x: 3, y: 4 })])
        .unwrap();
    assert_eq!(points.get(&a).unwrap(), Some(Point { x: 1, y: 2 }));
    assert!(points.contains(&a).unwrap());
    assert_eq!(points.len().unwrap(), 2);
    let b = ("b".to_string(), 2u8);
    let missing = ("c".to_string(), 3u8);
    assert_eq!(
        points.get_many([&a, &missing, &b]).unwrap(),
        [Some(Point { x: 1, y: 2 }), None, Some(Point { x: 3, y: 4 })]
    );
    let mut all: Vec<((String, u8), Point)> = points.iter().unwrap().map(|r| r.unwrap()).collect();
    all.sort_by(|l, r| l.0.cmp(&r.0));
    assert_eq!(all[1], (b.clone(), Point { x: 3, y: 4 }));
    // The same entries as the stash's own.
    assert_eq!(s.get::<_, Point>(&b).unwrap(), Some(Point { x: 3, y: 4 }));
    // Another view of the same stash: a value that is not its type is an error.
    s.set(&("d".to_string(), 4u8), "not a point").unwrap();
    assert!(points.get(&("d".to_string(), 4u8)).is_err());
    assert!(points.remove(&a).unwrap());
    assert_eq!(points.get(&a).unwrap(), None);
}
