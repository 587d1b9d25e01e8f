//! The conformance suite: every dictionary behaviour, each defined once with
//! `engine_test!` (tests.rs) and run on every engine compiled in as `NAME::ENGINE`. The
//! cache semantics (`cache.rs`), an entry's life in time (`lifecycle.rs`) and one-step
//! setdefault (`insert_and_clear.rs`) are defined the same way.

use crate::common::{append_stash, builder, stash};
use hashstash::{EngineKind, Error, Stash, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Animal {
    name: String,
    i: u64,
    vals: Vec<u32>,
}

fn animal(i: u64) -> Animal {
    Animal {
        name: "cat".into(),
        i,
        vals: (0..10).collect(),
    }
}

engine_test! {
    pub fn get_set_contains_remove(engine: EngineKind) {
        let (_d, s) = stash(engine);
        assert_eq!(s.get::<_, String>("bad").unwrap(), None);
        assert!(!s.contains("bad").unwrap());
        s.set("bad", "cat").unwrap();
        assert_eq!(s.get::<_, String>("bad").unwrap().as_deref(), Some("cat"));
        assert!(s.contains("bad").unwrap());
        s.set("bad", "dog").unwrap();
        assert_eq!(s.get::<_, String>("bad").unwrap().as_deref(), Some("dog"));
        assert_eq!(s.len().unwrap(), 1);
        assert!(s.remove("bad").unwrap());
        assert!(!s.remove("bad").unwrap());
        assert!(!s.contains("bad").unwrap());
        assert!(s.is_empty().unwrap());
    }
}

engine_test! {
    pub fn defaults_require_pop_setdefault(engine: EngineKind) {
        let (_d, s) = stash(engine);
        assert_eq!(s.get_or("missing", 7u32).unwrap(), 7);
        let err = s.require::<_, u32>("missing").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(matches!(err, Error::KeyNotFound { ref key } if key == "\"missing\""));
        assert_eq!(s.setdefault("k", 1u32).unwrap(), 1);
        assert_eq!(s.setdefault("k", 2u32).unwrap(), 1);
        assert_eq!(s.pop::<_, u32>("k").unwrap(), Some(1));
        assert_eq!(s.pop::<_, u32>("k").unwrap(), None);
        assert!(!s.contains("k").unwrap());
    }
}

engine_test! {
    pub fn eight_kinds_of_keys(engine: EngineKind) {
        #[derive(Serialize)]
        struct Func {
            name: &'static str,
            module: &'static str,
        }
        #[derive(Serialize)]
        enum Shape {
            Lambda { arity: u8 },
        }
        let (_d, s) = stash(engine);
        let map_key = HashMap::from([("goodness", "bad")]);
        let list_key = vec!["bad", "good", "ugly"];
        let set_key: HashSet<&str> = HashSet::from(["bad", "good"]);
        let struct_key = Func {
            name: "func_key",
            module: "readme",
        };
        let enum_key = Shape::Lambda { arity: 1 };
        let bytes_key = serde_bytes_key(b"\x00\xffbad");
        let big_key = u128::MAX;
        s.set("bad", "cat").unwrap();
        s.set(&("bad", "good"), "cat").unwrap();
        s.set(&map_key, "cat").unwrap();
        s.set(&list_key, "cat").unwrap();
        s.set(&set_key, "cat").unwrap();
        s.set(&struct_key, "cat").unwrap();
        s.set(&enum_key, "cat").unwrap();
        s.set(&(bytes_key.clone(), big_key), "cat").unwrap();
        assert_eq!(s.len().unwrap(), 8);
        let set_other_order: HashSet<&str> = ["good", "bad", "good"].into_iter().collect();
        let hits: Vec<Option<String>> = vec![
            s.get("bad").unwrap(),
            s.get(&["bad", "good"]).unwrap(),
            s.get(&BTreeMap::from([("goodness", "bad")])).unwrap(),
            s.get(&list_key).unwrap(),
            s.get(&set_other_order).unwrap(),
            s.get(&struct_key).unwrap(),
            s.get(&Shape::Lambda { arity: 1 }).unwrap(),
            s.get(&(bytes_key, big_key)).unwrap(),
        ];
        assert!(hits.iter().all(|h| h.as_deref() == Some("cat")), "{hits:?}");
        assert!(s.values::<String>().unwrap().all(|v| v.unwrap() == "cat"));
    }
}

fn serde_bytes_key(b: &[u8]) -> serde_bytes_like::Bytes {
    serde_bytes_like::Bytes(b.to_vec())
}

/// A byte string key without pulling in serde_bytes.
mod serde_bytes_like {
    #[derive(Clone, Debug, PartialEq)]
    pub struct Bytes(pub Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
}

engine_test! {
    pub fn iteration_typed_and_dynamic(engine: EngineKind) {
        let (_d, s) = stash(engine);
        for i in 0..1300u64 {
            s.set(&format!("key{i}"), &animal(i)).unwrap();
        }
        assert_eq!(s.len().unwrap(), 1300);
        let mut keys: Vec<String> = s.keys().unwrap().map(Result::unwrap).collect();
        keys.sort();
        let mut expected: Vec<String> = (0..1300).map(|i| format!("key{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
        let mut seen = 0;
        for item in s.items::<String, Animal>().unwrap() {
            let (k, v) = item.unwrap();
            assert_eq!(k, format!("key{}", v.i));
            seen += 1;
        }
        assert_eq!(seen, 1300);
        let values: Vec<Animal> = s.values().unwrap().map(Result::unwrap).collect();
        assert_eq!(values.len(), 1300);
        let (k, v) = s.items_dyn().unwrap().next().unwrap().unwrap();
        assert!(matches!(k, Value::Text(ref t) if t.starts_with("key")));
        let map = v.as_map().expect("a map value");
        assert!(map
            .iter()
            .any(|(k, v)| k.as_text() == Some("name") && v.as_text() == Some("cat")));
        assert_eq!(s.keys_dyn().unwrap().count(), 1300);
        assert_eq!(s.values_dyn().unwrap().count(), 1300);
    }
}

engine_test! {
    pub fn raw_items_decode(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let key = HashSet::from(["good", "bad"]);
        s.set(&key, "cat").unwrap();
        let (raw_key, raw_value) = s.raw_items().unwrap().next().unwrap().unwrap();
        assert_eq!(raw_key, s.encode_key(&key).unwrap());
        assert_eq!(raw_value, s.encode_value("cat").unwrap());
        let decoded: HashSet<String> = s.decode_key(&raw_key).unwrap();
        assert_eq!(
            decoded,
            HashSet::from(["good".to_string(), "bad".to_string()])
        );
        assert_eq!(s.decode_value::<String>(&raw_value).unwrap(), "cat");
        assert_eq!(s.raw_keys().unwrap().count(), 1);
        assert_eq!(s.raw_values().unwrap().count(), 1);
    }
}

engine_test! {
    pub fn update_and_batches(engine: EngineKind) {
        let (_d, s) = stash(engine);
        s.update(HashMap::from([("a", 1), ("b", 2)])).unwrap();
        s.update(vec![("c".to_string(), 3)]).unwrap();
        s.update((0..5000).map(|i| (i, i * 2))).unwrap();
        assert_eq!(s.len().unwrap(), 5003);
        assert_eq!(s.get::<_, i32>("c").unwrap(), Some(3));
        assert_eq!(s.get::<_, i32>(&4999).unwrap(), Some(9998));
        s.set_many([(&"x", &10), (&"y", &20)]).unwrap();
        let got: Vec<Option<i32>> = s.get_many([&"x", &"missing", &"y"]).unwrap();
        assert_eq!(got, vec![Some(10), None, Some(20)]);
    }
}

engine_test! {
    pub fn update_from_other_stashes(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let (_d2, other) = builder(EngineKind::Memory);
        let other = other
            .dbname("other")
            .serializer(hashstash::Serializer::Json)
            .compress(hashstash::Compressor::Zlib)
            .open()
            .unwrap();
        other.set(&vec![1, 2, 3], "cat").unwrap();
        other.set("nested", &animal(5)).unwrap();
        s.update_from(&other).unwrap();
        assert_eq!(
            s.get::<_, String>(&[1, 2, 3]).unwrap().as_deref(),
            Some("cat")
        );
        assert_eq!(s.get::<_, Animal>("nested").unwrap(), Some(animal(5)));
        // And back, same codec: raw bytes are copied.
        let (_d3, again) = stash(engine);
        again.update_from(&s).unwrap();
        assert_eq!(again.len().unwrap(), 2);
        assert_eq!(again.get::<_, Animal>("nested").unwrap(), Some(animal(5)));
    }
}

engine_test! {
    pub fn clear_and_reopen(engine: EngineKind) {
        let (dir, b) = builder(engine);
        let s = b.clone().open().unwrap();
        s.set("k", &animal(1)).unwrap();
        drop(s);
        let s = b.clone().open().unwrap();
        assert_eq!(
            s.get::<_, Animal>("k").unwrap(),
            Some(animal(1)),
            "persists across handles"
        );
        s.clear().unwrap();
        assert_eq!(s.len().unwrap(), 0);
        s.set("k", &1).unwrap();
        let s = b.clear(true).open().unwrap();
        assert_eq!(s.len().unwrap(), 0, "clear option empties on open");
        drop(dir);
    }
}

engine_test! {
    pub fn append_mode_versions(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        let key = HashMap::from([("name", "cat")]);
        s.set(&key, &HashMap::from([("goodness", "good")])).unwrap();
        s.set(&key, &HashMap::from([("goodness", "bad")])).unwrap();
        s.set(&key, &HashMap::from([("goodness", "ugly")])).unwrap();
        let latest: HashMap<String, String> = s.get(&key).unwrap().unwrap();
        assert_eq!(latest["goodness"], "ugly");
        assert_eq!(s.len().unwrap(), 1);
        let all: Vec<HashMap<String, String>> = s.get_all(&key).unwrap();
        let goodness: Vec<&str> = all.iter().map(|m| m["goodness"].as_str()).collect();
        assert_eq!(goodness, ["good", "bad", "ugly"]);
        let meta = s
            .get_all_with_metadata::<_, HashMap<String, String>>(&key)
            .unwrap();
        assert_eq!(
            meta.iter().map(|v| v.version).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(meta.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - meta[0].timestamp).abs() < 600.0,
            "timestamp is unix seconds"
        );
        let json = serde_json::to_value(&meta[0]).unwrap();
        assert!(
            json.get("_version").is_some()
                && json.get("_timestamp").is_some()
                && json.get("_value").is_some()
        );
        // The scan sees the latest version only.
        let items: Vec<(Value, HashMap<String, String>)> = s
            .raw_items()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (
                    hashstash::codec::decode_key_dyn(&k).unwrap(),
                    s.decode_value(&v).unwrap(),
                )
            })
            .collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].1["goodness"], "ugly");
        // Removing drops every version; a new write starts again at 1.
        assert!(s.remove(&key).unwrap());
        assert!(s.get_all::<_, String>(&key).unwrap().is_empty());
        s.set(&key, "again").unwrap();
        let meta = s.get_all_with_metadata::<_, String>(&key).unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].version, 1);
    }
}

engine_test! {
    pub fn append_mode_many_versions_and_batches(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        for i in 0..300u32 {
            s.set("counter", &i).unwrap();
        }
        s.update((0..10u32).map(|i| ("counter", 300 + i))).unwrap();
        let versions = s.get_all_with_metadata::<_, u32>("counter").unwrap();
        assert_eq!(versions.len(), 310);
        for (n, v) in versions.iter().enumerate() {
            assert_eq!(v.version, n as u64 + 1);
            assert_eq!(v.value, n as u32);
        }
        assert_eq!(s.get::<_, u32>("counter").unwrap(), Some(309));
    }
}

engine_test! {
    pub fn not_append_mode_keeps_one_version(engine: EngineKind) {
        let (_d, s) = stash(engine);
        s.set("k", &1).unwrap();
        s.set("k", &2).unwrap();
        let meta = s.get_all_with_metadata::<_, i32>("k").unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!((meta[0].version, meta[0].value), (1, 2));
    }
}

engine_test! {
    pub fn format_conflict_is_refused(engine: EngineKind) {
        let (_d, b) = builder(engine);
        let s = b.clone().append_mode(true).open().unwrap();
        s.set("k", &1).unwrap();
        let err = b.append_mode(false).open().unwrap_err();
        assert!(matches!(err, Error::FormatConflict { .. }), "{err}");
        assert!(err.to_string().contains("append_mode=true"), "{err}");
        if engine == EngineKind::Memory || engine.is_server() {
            return; // no folder to open by path
        }
        // Opening by path takes the recorded format.
        let by_path = Stash::builder().path(s.stash_dir()).open().unwrap();
        assert!(by_path.config().append_mode);
        assert_eq!(by_path.get::<_, i32>("k").unwrap(), Some(1));
    }
}

engine_test! {
    pub fn tmp_and_sub(engine: EngineKind) {
        let (_d, s) = stash(engine);
        s.set("outer", &1).unwrap();
        let dir = {
            let tmp = s.tmp().unwrap();
            tmp.set("key", "value").unwrap();
            assert!(tmp.contains("key").unwrap());
            assert!(!tmp.contains("outer").unwrap());
            assert!(tmp.config().is_tmp);
            tmp.stash_dir()
        };
        assert!(!dir.exists(), "tmp folder removed");
        let again = Stash::open_config(
            hashstash::StashConfig {
                dbname: format!("{}/tmp/x", s.config().dbname),
                ..s.config().clone()
            },
            false,
        )
        .unwrap();
        assert!(!again.contains("key").unwrap());
        let sub = s.sub("child").unwrap();
        assert_eq!(sub.config().dbname, "main/child");
        assert!(!sub.contains("outer").unwrap());
        sub.set("inner", &2).unwrap();
        assert!(!s.contains("inner").unwrap());
        assert!(sub
            .stash_dir()
            .starts_with(s.config().root_dir.join("main").join("child")));
    }
}

engine_test! {
    pub fn threads_lose_nothing(engine: EngineKind) {
        let (_d, s) = stash(engine);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let s = s.clone();
                scope.spawn(move || {
                    for i in 0..250 {
                        s.set(&(t, i), &animal(i)).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.len().unwrap(), 1000);
        for t in 0..4 {
            for i in (0..250).step_by(17) {
                assert_eq!(s.get::<_, Animal>(&(t, i)).unwrap(), Some(animal(i)));
            }
        }
    }
}

engine_test! {
    /// The scan contract: a key that exists for the whole scan is met exactly once, however
    /// often it is rewritten meanwhile (here growing from a few bytes to 4 KB, which moves a
    /// record in engines that move grown records), and no key is met twice.
    pub fn scan_meets_each_key_once_while_writers_run(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let n = 3000u32;
        s.update((0..n).map(|i| (i, vec![0u8; 1]))).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let met = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let mut round = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    round += 1;
                    for i in (0..n).step_by(7) {
                        s.set(&i, &vec![round as u8; 4096]).unwrap();
                    }
                    // New keys, which may or may not be met.
                    s.set(&(n + round), &vec![0u8; 1]).unwrap();
                }
            });
            let mut met: Vec<u32> = Vec::new();
            for _ in 0..3 {
                met = s.keys::<u32>().unwrap().map(|k| k.unwrap()).collect();
                let unique: HashSet<u32> = met.iter().copied().collect();
                assert_eq!(unique.len(), met.len(), "{engine}: a key met twice");
                assert!(
                    (0..n).all(|i| unique.contains(&i)),
                    "{engine}: a key missed"
                );
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
            met
        });
        assert!(met.len() >= n as usize);
    }
}

engine_test! {
    pub fn values_of_every_shape(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let big = vec![7u8; 3 << 20];
        s.set("big", &big).unwrap();
        s.set("empty", &Vec::<u8>::new()).unwrap();
        s.set("unit", &()).unwrap();
        s.set("none", &Option::<u8>::None).unwrap();
        s.set("float", &f64::NAN).unwrap();
        s.set("nested", &BTreeMap::from([("a", vec![Some(1.5), None])]))
            .unwrap();
        assert_eq!(s.get::<_, Vec<u8>>("big").unwrap(), Some(big));
        assert_eq!(s.get::<_, Vec<u8>>("empty").unwrap(), Some(vec![]));
        assert_eq!(s.get::<_, ()>("unit").unwrap(), Some(()));
        assert_eq!(s.get::<_, Option<u8>>("none").unwrap(), Some(None));
        assert!(s.get::<_, f64>("float").unwrap().unwrap().is_nan());
        let nested: BTreeMap<String, Vec<Option<f64>>> = s.get("nested").unwrap().unwrap();
        assert_eq!(nested["a"], vec![Some(1.5), None]);
        // The wrong type is a typed decode error, not garbage.
        let err = s.get::<_, Animal>("nested").unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err}");
    }
}

engine_test! {
    pub fn display_and_dict(engine: EngineKind) {
        let (_d, b) = builder(engine);
        let s = b
            .dbname("sub_stash")
            .compress(hashstash::Compressor::Lz4)
            .b64(true)
            .open()
            .unwrap();
        let shown = s.to_string();
        let prefix = format!("{}Stash(", engine.display_name());
        assert!(shown.starts_with(&prefix), "{shown}");
        let folder = format!("sub_stash/{}.hashstash.lz4+b64", engine.name());
        if engine.is_server() {
            assert!(shown.ends_with(&format!("{folder})")), "{shown}");
            assert!(
                s.config().namespace().ends_with(&folder),
                "{}",
                s.config().namespace()
            );
            assert!(!s.path().exists(), "a server stash makes no folder");
        } else {
            assert!(shown.ends_with(&format!("{folder}/data.db)")), "{shown}");
        }
        let dict = s.to_dict();
        assert_eq!(dict["engine"], engine.name());
        assert_eq!(dict["b64"], true);
        let back = hashstash::StashConfig::from_dict(&dict).unwrap();
        assert_eq!(&back, s.config());
    }
}
