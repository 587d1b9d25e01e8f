//! An entry's life in time, on every engine (stamped out by `conformance.rs`): writes that
//! keep given times, time filters, pruning by age.

use crate::common::{append_stash, stash};
use hashstash::engine::EngineExt;
use hashstash::engine::{TimeWindow, WriteMeta};
use hashstash::{EngineKind, Moment, Prune, Stash, TimeFilter};

/// `SECOND` seconds after the epoch, in µs.
const SECOND: i64 = 1_000_000;

fn at(seconds: i64) -> WriteMeta {
    WriteMeta {
        timestamp_micros: Some(seconds * SECOND),
        expires_micros: None,
    }
}

/// Writes `(key, value, written at second)` through the engine, one batch.
fn write_at(s: &Stash, items: &[(&str, i64, i64)]) {
    let encoded: Vec<(Vec<u8>, Vec<u8>, WriteMeta)> = items
        .iter()
        .map(|(k, v, t)| {
            let key = s.encode_key(k).unwrap();
            (key, s.encode_value(v).unwrap(), at(*t))
        })
        .collect();
    let refs: Vec<(&[u8], &[u8], WriteMeta)> = encoded
        .iter()
        .map(|(k, v, m)| (k.as_slice(), v.as_slice(), *m))
        .collect();
    s.engine().write_items(&refs).unwrap();
}

fn sorted_keys(s: &Stash, filter: TimeFilter) -> Vec<String> {
    let mut keys: Vec<String> = s
        .keys_written(filter)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    keys.sort();
    keys
}

engine_test! {
    pub fn write_items_keep_each_entry_s_time(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        write_at(&s, &[("k", 1, 10), ("j", 2, 20), ("k", 3, 30)]);
        let key = s.encode_key("k").unwrap();
        let versions = s.engine().history()
            .unwrap()
            .versions(&key).unwrap();
        let times: Vec<i64> = versions.iter().map(|v| v.timestamp_micros).collect();
        assert_eq!(
            times,
            [10 * SECOND, 30 * SECOND],
            "each version keeps its own time"
        );
        assert_eq!(s.get_all::<_, i64>("k").unwrap(), [1, 3]);
        assert_eq!(s.get::<_, i64>("j").unwrap(), Some(2));
        // A batch without times gets now.
        let before = Moment::now().unix_micros();
        s.set("now", &0).unwrap();
        let now_key = s.encode_key("now").unwrap();
        let written = s.engine().history()
            .unwrap()
            .versions(&now_key).unwrap()[0].timestamp_micros;
        assert!(written >= before, "{written} < {before}");
    }
}

engine_test! {
    pub fn time_filters_pick_entries_by_their_latest_write(engine: EngineKind) {
        let (_d, s) = stash(engine);
        write_at(&s, &[("a", 1, 1000), ("b", 2, 2000), ("c", 3, 3000)]);
        let t = |seconds: i64| Moment::from(seconds);
        let all = TimeFilter::new();
        assert_eq!(sorted_keys(&s, all), ["a", "b", "c"]);
        assert_eq!(sorted_keys(&s, all.after(t(2000))), ["c"]);
        assert_eq!(
            sorted_keys(&s, all.after(t(2000)).inclusive(true)),
            ["b", "c"]
        );
        assert_eq!(sorted_keys(&s, all.before(t(2000))), ["a"]);
        assert_eq!(sorted_keys(&s, all.after(t(1000)).before(t(3000))), ["b"]);
        assert_eq!(
            sorted_keys(&s, all.after(t(1000)).before(t(3000)).inclusive(true)),
            ["a", "b", "c"]
        );
        assert!(sorted_keys(&s, all.after(t(3000)).before(t(1000))).is_empty());
        // Any timezone-aware time, and unix seconds as a float: the same moment.
        let paris = chrono::DateTime::parse_from_rfc3339("1970-01-01T01:33:20+01:00").unwrap();
        assert_eq!(Moment::from(paris), t(2000));
        assert_eq!(sorted_keys(&s, all.after(paris)), ["c"]);
        assert_eq!(sorted_keys(&s, all.before(1999.5_f64)), ["a"]);
        // Values and items, decoded.
        let values: Vec<i64> = s
            .values_written(all.after(t(2000)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(values, [3]);
        let items: Vec<(String, i64)> = s
            .items_written(all.before(t(2000)).inclusive(true))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut items = items;
        items.sort();
        assert_eq!(items, [("a".to_string(), 1), ("b".to_string(), 2)]);
        // Rewriting an entry moves it to its new time.
        write_at(&s, &[("a", 10, 4000)]);
        assert_eq!(sorted_keys(&s, all.after(t(3000))), ["a"]);
        assert_eq!(sorted_keys(&s, all.before(t(2000))), Vec::<String>::new());
        // An expired entry is in no window.
        s.set_with_ttl("gone", &0, std::time::Duration::ZERO)
            .unwrap();
        assert!(!sorted_keys(&s, all).contains(&"gone".to_string()));
        // The engine's window, with its metadata.
        let key = s.encode_key("b").unwrap();
        let window = TimeWindow {
            after: Some(1999 * SECOND),
            before: Some(2001 * SECOND),
            inclusive: false,
        };
        let found: Vec<_> = s
            .engine()
            .history()
            .unwrap()
            .scan_written(window)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, key);
        assert_eq!(found[0].timestamp_micros, 2000 * SECOND);
        assert_eq!(found[0].value, s.encode_value(&2).unwrap());
    }
}

engine_test! {
    pub fn time_filters_judge_append_mode_entries_by_their_latest_version(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        write_at(&s, &[("a", 1, 1000), ("a", 2, 3000), ("b", 3, 2000)]);
        let all = TimeFilter::new();
        assert_eq!(sorted_keys(&s, all.after(2500_i64)), ["a"]);
        assert_eq!(
            sorted_keys(&s, all.before(2500_i64)),
            ["b"],
            "a's first version is old, its latest is not"
        );
        let items: Vec<(String, i64)> = s
            .items_written(all.after(2500_i64))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(items, [("a".to_string(), 2)], "the latest value");
    }
}

engine_test! {
    pub fn prune_reports_by_default_and_removes_when_asked(engine: EngineKind) {
        let (_d, s) = stash(engine);
        write_at(&s, &[("a", 1, 1000), ("b", 2, 2000), ("c", 3, 3000)]);
        let stored = |k: &str, v: i64| {
            (s.encode_key(k).unwrap().len() + s.encode_value(&v).unwrap().len()) as u64
        };
        let report = s.prune(Prune::older_than(2500_i64)).unwrap();
        assert!(report.dry_run);
        assert_eq!(report.entries, 2);
        assert_eq!(report.bytes, stored("a", 1) + stored("b", 2));
        assert_eq!((report.oldest, report.newest), (Some(1000.0), Some(2000.0)));
        assert!(
            report.to_string().contains("would remove 2 entries"),
            "{report}"
        );
        assert_eq!(s.len().unwrap(), 3, "a dry run removes nothing");
        assert_eq!(s.stats().deletes, 0);

        let report = s.prune(Prune::older_than(2500_i64).dry_run(false)).unwrap();
        assert!(!report.dry_run);
        assert_eq!(report.entries, 2);
        assert!(
            report.to_string().starts_with("removed 2 entries"),
            "{report}"
        );
        assert_eq!(s.len().unwrap(), 1);
        assert_eq!(s.get::<_, i64>("c").unwrap(), Some(3));
        assert_eq!(s.get::<_, i64>("a").unwrap(), None);
        assert_eq!(s.stats().deletes, 2);
        let again = s.prune(Prune::older_than(2500_i64).dry_run(false)).unwrap();
        assert_eq!((again.entries, again.oldest), (0, None));
    }
}

engine_test! {
    pub fn prune_in_append_mode_removes_every_version(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        write_at(
            &s,
            &[
                ("a", 1, 1000),
                ("a", 2, 1500),
                ("b", 3, 1000),
                ("b", 4, 3000),
            ],
        );
        let report = s.prune(Prune::older_than(2000_i64).dry_run(false)).unwrap();
        assert_eq!(report.entries, 1);
        assert!(s.get_all::<_, i64>("a").unwrap().is_empty());
        assert_eq!(
            s.get_all::<_, i64>("b").unwrap(),
            [3, 4],
            "b was rewritten since"
        );
    }
}

#[test]
fn moments_read_from_text() {
    let utc: Moment = "2026-11-25T09:00:00Z".parse().unwrap();
    assert_eq!(utc, Moment::from(1_795_597_200_i64));
    let offset: Moment = "2026-11-25T10:00:00.5+01:00".parse().unwrap();
    assert_eq!(offset.unix_micros(), utc.unix_micros() + 500_000);
    let seconds: Moment = "1795597200.25".parse().unwrap();
    assert_eq!(seconds.unix_micros(), utc.unix_micros() + 250_000);
    assert_eq!(utc.to_string(), "2026-11-25T09:00:00Z");
    // An age: now minus it.
    let week: Moment = "7d".parse().unwrap();
    let expected = Moment::now().unix_micros() - 7 * 86_400 * SECOND;
    assert!((week.unix_micros() - expected).abs() < 60 * SECOND);
    for bad in ["2026-11-25T10:00:00", "yesterday", "", "7x", "NaN"] {
        let err = bad.parse::<Moment>().unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{bad:?}: {err}");
    }
}

/// `(value, time, expiry)` of every version under `key`.
fn history(s: &Stash, key: &str) -> Vec<(i64, i64, Option<i64>)> {
    let key = s.encode_key(key).unwrap();
    s.engine()
        .history()
        .unwrap()
        .versions(&key)
        .unwrap()
        .into_iter()
        .map(|v| {
            (
                s.decode_value(&v.value).unwrap(),
                v.timestamp_micros,
                v.expires_micros,
            )
        })
        .collect()
}

engine_test! {
    pub fn copy_moves_every_version_with_its_time(engine: EngineKind) {
        use hashstash::{Compressor, CopyOptions, Serializer};
        let (_s, source) = append_stash(EngineKind::Pairtree);
        source.set("k", &1_i64).unwrap();
        source.set("k", &2_i64).unwrap();
        source
            .set_with_ttl("j", &3_i64, std::time::Duration::from_secs(3600))
            .unwrap();
        source
            .set_with_ttl("gone", &4_i64, std::time::Duration::ZERO)
            .unwrap();
        let (_d, b) = crate::common::builder(engine);
        let dest = b
            .serializer(Serializer::Json)
            .compress(Compressor::Zlib)
            .append_mode(true)
            .open()
            .unwrap();

        let plan = source
            .copy_to(&dest, CopyOptions::new().dry_run(true))
            .unwrap();
        assert!(plan.dry_run);
        assert_eq!(
            (plan.entries, plan.versions),
            (2, 3),
            "the expired entry stays"
        );
        assert_eq!((plan.destination_before, plan.destination_after), (0, 2));
        assert_eq!(dest.len().unwrap(), 0, "a dry run writes nothing");

        // The observer hears of every entry copied, then the end.
        struct Steps(std::sync::Mutex<(u64, u64, bool)>);
        impl hashstash::progress::Progress for Steps {
            fn start(&self, _what: &str, total: u64, _done: u64) {
                self.0.lock().unwrap().0 = total;
            }
            fn advance(&self, steps: u64) {
                self.0.lock().unwrap().1 += steps;
            }
            fn finish(&self) {
                self.0.lock().unwrap().2 = true;
            }
        }
        let steps = std::sync::Arc::new(Steps(Default::default()));
        let observer = hashstash::progress::Observer::shared(steps.clone());
        let report = source
            .copy_to(&dest, CopyOptions::new().progress(observer))
            .unwrap();
        assert!(!report.dry_run);
        assert_eq!(
            (report.entries, report.versions, report.destination_after),
            (2, 3, 2)
        );
        let (total, advanced, finished) = *steps.0.lock().unwrap();
        assert_eq!((advanced, finished), (2, true));
        assert!(total >= 2, "the source's entry count: {total}");
        assert_eq!(
            history(&dest, "k"),
            history(&source, "k"),
            "values, times, order"
        );
        assert_eq!(
            history(&dest, "j"),
            history(&source, "j"),
            "with its expiry"
        );
        assert_eq!(dest.get::<_, i64>("gone").unwrap(), None);
        assert_eq!(dest.stats().sets, 3);

        // Back into one version per key, in another format: the latest moves.
        let (_e, b) = crate::common::builder(EngineKind::Pairtree);
        let latest = b.compress(Compressor::Raw).open().unwrap();
        let report = dest.copy_to(&latest, CopyOptions::new()).unwrap();
        assert_eq!((report.entries, report.versions), (2, 2));
        assert_eq!(latest.get::<_, i64>("k").unwrap(), Some(2));
        assert_eq!(history(&latest, "k")[0].1, history(&source, "k")[1].1);
    }
}

#[test]
fn postcard_values_move_between_compressors_but_not_serializers() {
    use hashstash::{Compressor, CopyOptions, Serializer};
    let (_a, b) = crate::common::builder(EngineKind::Memory);
    let postcard = b.serializer(Serializer::Postcard).open().unwrap();
    postcard.set("k", &(1_u8, "x".to_string())).unwrap();
    let (_b, b) = crate::common::builder(EngineKind::Pairtree);
    let zlib = b
        .serializer(Serializer::Postcard)
        .compress(Compressor::Zlib)
        .open()
        .unwrap();
    postcard.copy_to(&zlib, CopyOptions::new()).unwrap();
    assert_eq!(
        zlib.get::<_, (u8, String)>("k").unwrap(),
        Some((1, "x".into()))
    );
    // Postcard values cannot be read without their type: into JSON they fail, clearly,
    // and nothing is written.
    let (_c, b) = crate::common::builder(EngineKind::Memory);
    let json = b.serializer(Serializer::Json).open().unwrap();
    let err = postcard.copy_to(&json, CopyOptions::new()).unwrap_err();
    assert!(err.to_string().contains("postcard"), "{err}");
    assert_eq!(json.len().unwrap(), 0);
    // A stash is not copied into itself.
    let err = zlib.copy_to(&zlib.clone(), CopyOptions::new()).unwrap_err();
    assert!(
        err.to_string().contains("is the stash being copied"),
        "{err}"
    );
}

/// Every live entry's stored key and value bytes.
fn stored_bytes(s: &Stash) -> u64 {
    s.raw_items()
        .unwrap()
        .map(|r| r.map(|(k, v)| (k.len() + v.len()) as u64).unwrap())
        .sum()
}

engine_test! {
    pub fn max_entries_evicts_the_oldest_first(engine: EngineKind) {
        let (_d, b) = crate::common::builder(engine);
        let s = b.max_entries(20).open().unwrap();
        for i in 0..60_i64 {
            s.set(&i, &i).unwrap();
            assert!(
                s.len().unwrap() <= 20,
                "after write {i}: {}",
                s.len().unwrap()
            );
            // Distinct write times, so that "oldest" is one order.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let len = s.len().unwrap() as u64;
        assert!(len >= 18, "evicts down to 90%, not below: {len}");
        assert_eq!(s.stats().evictions, 60 - len);
        let mut kept: Vec<i64> = s.keys().unwrap().collect::<Result<_, _>>().unwrap();
        kept.sort();
        let newest: Vec<i64> = (60 - len as i64..60).collect();
        assert_eq!(kept, newest, "the newest stay, the oldest went first");
        // Sub-stashes inherit the limit, each on its own.
        let sub = s.sub("part").unwrap();
        assert_eq!(sub.config().max_entries, Some(20));
        for i in 0..30_i64 {
            sub.set(&i, &i).unwrap();
        }
        assert!(sub.len().unwrap() <= 20);
        assert_eq!(s.len().unwrap() as u64, len, "the parent is untouched");
    }
}

engine_test! {
    pub fn max_bytes_keeps_the_stored_size_within(engine: EngineKind) {
        let (_d, b) = crate::common::builder(engine);
        let s = b
            .compress(hashstash::Compressor::Raw)
            .max_bytes(10_000)
            .open()
            .unwrap();
        let value = "x".repeat(1000);
        for i in 0..50_i64 {
            s.set(&i, &value).unwrap();
            assert!(stored_bytes(&s) <= 10_000, "after write {i}");
        }
        assert!(s.len().unwrap() >= 8, "about 9 values of 1 KB fit");
        assert!(s.contains(&49_i64).unwrap());
        assert!(!s.contains(&0_i64).unwrap());
        assert!(s.stats().evictions > 30);
    }
}

engine_test! {
    pub fn expired_entries_are_evicted_before_live_ones(engine: EngineKind) {
        let (_d, b) = crate::common::builder(engine);
        let s = b.max_entries(10).open().unwrap();
        for i in 0..5_i64 {
            s.set_with_ttl(&("gone", i), &i, std::time::Duration::ZERO)
                .unwrap();
        }
        for i in 0..9_i64 {
            s.set(&i, &i).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(s.len().unwrap() <= 10);
        let live: Vec<i64> = s.keys().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            live.len(),
            9,
            "every live entry stays: the expired ones made room"
        );
        assert!(s.stats().evictions >= 4);
        let report = s.enforce_limits().unwrap();
        assert_eq!(
            (report.entries, report.evicted),
            (9, 0),
            "nothing more to evict"
        );
        assert!(hashstash::Stash::builder().max_entries(0).open().is_err());
    }
}
