//! History as a table: `stash_versions` beside `stash`, `NAME_versions` beside each table of
//! `sql_over`, time travel (`Versions::AsOf`, `sql_as_of`, `hashstash sql --as-of`), every
//! version in DataFrames and parquet, and server stashes named by `URL#root/dbname`.

use crate::common::{append_stash, engine_available, stash};
use hashstash::table::sql::{pretty, sql_over, sql_over_as_of};
use hashstash::time_filter::Moment;
use hashstash::{EngineKind, Stash, Versions};
use serde_json::json;
use std::time::Duration;

fn engines() -> impl Iterator<Item = EngineKind> {
    EngineKind::available().filter(|e| engine_available(*e))
}

fn shown(s: &Stash, query: &str) -> String {
    pretty(&s.sql(query).unwrap()).unwrap()
}

/// A pause that puts later writes at a later microsecond on every engine's clock.
fn tick() {
    std::thread::sleep(Duration::from_millis(5));
}

/// An append-mode stash where `price` was 10 at the first moment returned, 12 at the second,
/// and `pear` was written after the first; then `price` became 15.
fn priced(engine: EngineKind) -> (tempfile::TempDir, Stash, Moment, Moment) {
    let (dir, s) = append_stash(engine);
    s.set("price", &json!({"p": 10})).unwrap();
    tick();
    let first = Moment::now();
    tick();
    s.set("price", &json!({"p": 12})).unwrap();
    s.set("pear", &json!({"p": 3})).unwrap();
    tick();
    let second = Moment::now();
    tick();
    s.set("price", &json!({"p": 15})).unwrap();
    (dir, s, first, second)
}

#[test]
fn stash_versions_holds_every_version_beside_the_latest() {
    for engine in engines() {
        let (_d, s, _, _) = priced(engine);
        let latest = shown(&s, "SELECT _key, p FROM stash ORDER BY _key");
        assert!(
            latest.contains("| 15 ") && !latest.contains("| 12 "),
            "{engine}: {latest}"
        );
        let all = shown(
            &s,
            "SELECT _key, _version, p FROM stash_versions ORDER BY _key, _version",
        );
        for row in [
            "| pear  | 1        | 3 ",
            "| price | 1        | 10 ",
            "| price | 3        | 15 ",
        ] {
            assert!(all.contains(row), "{engine}: {row} in {all}");
        }
        let counted = shown(&s, "SELECT count(*) AS n FROM stash_versions");
        assert!(counted.contains("| 4 "), "{engine}: {counted}");
        // Both in one query: the latest beside its history.
        let joined = shown(
            &s,
            "SELECT count(*) AS n FROM stash s JOIN stash_versions v ON s._key = v._key",
        );
        assert!(joined.contains("| 4 "), "{engine}: {joined}");
    }
}

#[test]
fn filters_on_version_numbers_skip_the_other_versions_and_answer_the_same() {
    for engine in engines() {
        let (_d, s) = append_stash(engine);
        // Key `k{i}` has i + 1 versions.
        for i in 0..5 {
            for v in 1..=i + 1 {
                s.set(&format!("k{i}"), &json!({"n": i, "v": v})).unwrap();
            }
        }
        let count = |filter: &str| {
            let out = shown(
                &s,
                &format!("SELECT count(*) AS n FROM stash_versions WHERE {filter}"),
            );
            out.lines()
                .nth(3)
                .and_then(|l| l.trim_matches(|c| c == '|' || c == ' ').parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{engine}: {filter}: {out}"))
        };
        // What each filter keeps, counted by hand from the versions above.
        for (filter, expected) in [
            ("_version = 2", 4),
            ("_version >= 2 AND _version < 4", 7),
            ("_version BETWEEN 4 AND 100", 3),
            ("3 > _version", 9),
            ("_version <= 1", 5),
            ("_version = -1", 0),
            ("_version > 5", 0),
            ("_version = 2 AND _key = 'k4'", 1),
            ("_version = 2 OR _version = 5", 5),
        ] {
            assert_eq!(count(filter), expected, "{engine}: {filter}");
        }
        // The version column of each row matches the filter (and `v` was written with it).
        let rows = shown(
            &s,
            "SELECT _key, _version, v FROM stash_versions WHERE _version = 2 ORDER BY _key",
        );
        for i in 1..5 {
            assert!(
                rows.contains(&format!("| k{i}   | 2        | 2 |")),
                "{engine}: {rows}"
            );
        }
        // On the latest table the filter applies to each key's latest version.
        let latest = shown(&s, "SELECT _key FROM stash WHERE _version = 3");
        assert!(
            latest.contains("| k2 ") && latest.lines().count() == 5,
            "{engine}: {latest}"
        );
        // The scan itself keeps only those versions.
        let plan = shown(
            &s,
            "EXPLAIN SELECT _key FROM stash_versions WHERE _version >= 2 AND _version <= 3",
        );
        assert!(plan.contains("versions [2, 3]"), "{engine}: {plan}");
        // A later query sees the whole table again (a filtered scan is not the whole table).
        s.set("k0", &json!({"n": 0, "v": 2, "late": true})).unwrap();
        assert_eq!(count("_version = 2"), 5, "{engine}");
        let late = shown(&s, "SELECT _key, late FROM stash_versions WHERE late");
        assert!(late.contains("| k0 "), "{engine}: {late}");
    }
}

#[test]
fn a_stash_outside_append_mode_answers_stash_versions_with_its_one_version() {
    for engine in engines() {
        let (_d, s) = stash(engine);
        s.set("a", &json!({"n": 1})).unwrap();
        s.set("a", &json!({"n": 2})).unwrap();
        let all = shown(&s, "SELECT _key, n FROM stash_versions");
        assert!(all.contains("| a    | 2 "), "{engine}: {all}");
        assert!(!all.contains("| 1 "), "{engine}: {all}");
    }
}

#[test]
fn sql_over_registers_name_versions_beside_each_name() {
    for engine in engines() {
        let (_d, s, _, _) = priced(engine);
        let (_e, other) = stash(engine);
        other.set("price", &json!({"shop": "corner"})).unwrap();
        let batches = sql_over(
            &[("prices", &s), ("shops", &other)],
            "SELECT v.p, shops.shop FROM prices_versions v JOIN shops ON v._key = shops._key \
             ORDER BY v.p",
        )
        .unwrap();
        let text = pretty(&batches).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            3,
            "{engine}: {text}"
        );
        assert!(
            text.contains("| 10 ") && text.contains("corner"),
            "{engine}: {text}"
        );
    }
}

#[test]
fn time_travel_shows_each_key_as_it_stood() {
    for engine in engines() {
        let (_d, s, first, second) = priced(engine);
        let at_first = pretty(&s.sql_as_of("SELECT _key, p FROM stash", first).unwrap()).unwrap();
        assert!(at_first.contains("| 10 "), "{engine}: {at_first}");
        assert!(
            !at_first.contains("pear"),
            "{engine}: pear came later: {at_first}"
        );
        let at_second = pretty(
            &s.sql_as_of("SELECT _key, p FROM stash ORDER BY _key", second)
                .unwrap(),
        )
        .unwrap();
        assert!(
            at_second.contains("| 12 ")
                && at_second.contains("| 3 ")
                && !at_second.contains("| 15 "),
            "{engine}: {at_second}"
        );
        // The history as it stood: the versions written by then.
        let history = pretty(
            &s.sql_as_of("SELECT count(*) AS n FROM stash_versions", second)
                .unwrap(),
        )
        .unwrap();
        assert!(history.contains("| 3 "), "{engine}: {history}");
        // A key lookup as of a moment, and through sql_over.
        let lookup = pretty(
            &sql_over_as_of(&[("t", &s)], "SELECT p FROM t WHERE _key = 'price'", first).unwrap(),
        )
        .unwrap();
        assert!(lookup.contains("| 10 "), "{engine}: {lookup}");
        // Before anything was written: no rows.
        let before = s
            .sql_as_of("SELECT * FROM stash", Moment::from_unix_seconds(1.0))
            .unwrap();
        assert_eq!(
            before.iter().map(|b| b.num_rows()).sum::<usize>(),
            0,
            "{engine}"
        );
        // A registered table as of a moment.
        let ctx = datafusion::prelude::SessionContext::new();
        hashstash::table::sql::register(&ctx, "then", &s, Versions::AsOf(first)).unwrap();
        let rows = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { ctx.sql("SELECT p FROM then").await?.collect().await })
            .unwrap();
        assert!(pretty(&rows).unwrap().contains("| 10 "), "{engine}");
    }
}

#[test]
fn time_travel_outside_append_mode_keeps_the_entries_written_by_then() {
    for engine in engines() {
        let (_d, s) = stash(engine);
        s.set("early", &json!({"n": 1})).unwrap();
        tick();
        let then = Moment::now();
        tick();
        s.set("late", &json!({"n": 2})).unwrap();
        let text = pretty(&s.sql_as_of("SELECT _key FROM stash", then).unwrap()).unwrap();
        assert!(
            text.contains("early") && !text.contains("late"),
            "{engine}: {text}"
        );
    }
}

#[cfg(feature = "dataframe")]
#[test]
fn every_version_as_a_dataframe_and_as_parquet() {
    let (dir, s, first, _) = priced(EngineKind::default_engine());
    let frame = s.df_versions().unwrap();
    assert_eq!(frame.height(), 4);
    assert!(frame.column("_version").is_ok() && frame.column("_timestamp").is_ok());
    assert_eq!(s.df().unwrap().height(), 2);
    assert_eq!(s.df_of(Versions::AsOf(first)).unwrap().height(), 1);
    let path = dir.path().join("all.parquet");
    assert_eq!(s.to_parquet_of(&path, Versions::All).unwrap(), 4);
    let (_e, back) = stash(EngineKind::Memory);
    back.load_parquet(&path).unwrap();
    assert_eq!(back.len().unwrap(), 2, "one entry per key");
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_queries_history_and_time_travels() {
    let root = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hashstash"))
            .env("HASHSTASH_ROOT_DIR", root.path())
            .args(["--append-mode", "--dbname", "prices"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    };
    assert!(cli(&["set", "\"price\"", "{\"p\": 10}"]).0);
    tick();
    let then = Moment::now().to_string();
    tick();
    assert!(cli(&["set", "\"price\"", "{\"p\": 12}"]).0);
    let (ok, out, err) = cli(&["sql", "SELECT p FROM stash", "--as-of", &then]);
    assert!(
        ok && out.contains("| 10 ") && !out.contains("| 12 "),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&["sql", "SELECT count(*) AS n FROM stash_versions"]);
    assert!(ok && out.contains("| 2 "), "{out}{err}");
    let (ok, _, err) = cli(&["sql", "SELECT 1", "--as-of", "yesterday-ish"]);
    assert!(!ok && err.starts_with("hashstash: "), "{err}");
    // Every version exported.
    let path = root.path().join("all.parquet");
    let path_text = path.to_str().unwrap();
    let (ok, _, err) = cli(&["export", "--all-versions", path_text]);
    assert!(ok, "{err}");
    let (_e, back) = stash(EngineKind::Memory);
    assert_eq!(
        back.load_parquet(&path).unwrap(),
        2,
        "{path_text}: two versions"
    );
    let (ok, _, err) = cli(&["export", "--all-versions", "--format", "json", path_text]);
    assert!(!ok && err.contains("parquet or csv"), "{err}");
}

#[cfg(feature = "redis")]
#[cfg(feature = "cli")]
#[test]
fn a_server_table_names_any_stash_on_its_server() {
    let Ok(url) = std::env::var("HASHSTASH_REDIS_URL") else {
        assert!(engine_available(EngineKind::Redis));
        return;
    };
    let unique = format!("history-{}", std::process::id());
    let open = |dbname: &str| {
        Stash::builder()
            .engine(EngineKind::Redis)
            .url(&url)
            .root_dir(&unique)
            .dbname(dbname)
            .open()
            .unwrap()
    };
    let (people, pets) = (open("people"), open("pets"));
    people.set("ann", &json!({"pet": "rex"})).unwrap();
    pets.set("rex", &json!({"kind": "dog"})).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hashstash"))
        .args(["--path", &format!("{url}#{unique}/people"), "sql"])
        .arg("SELECT pets.kind FROM stash JOIN pets ON stash.pet = pets._key")
        .args(["--table", &format!("pets={url}#{unique}/pets")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("dog"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    people.clear().unwrap();
    pets.clear().unwrap();
}
