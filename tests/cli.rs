//! The `hashstash` binary, run as a user would.

use hashstash::engine::EngineExt;
use std::process::{Command, Output};

struct Cli {
    root: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hashstash"))
            .env("HASHSTASH_ROOT_DIR", self.root.path())
            .env_remove("HOME")
            .args(args)
            .output()
            .expect("run hashstash")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure with `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

fn one_line(stderr: &str) {
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("hashstash: "), "{stderr}");
}

#[test]
fn set_get_with_canonical_json_keys() {
    let cli = Cli::new();
    cli.ok(&[
        "set",
        r#"{"b":2,"a":1}"#,
        r#"{"name":"cat","vals":[1,2.5,null]}"#,
    ]);
    assert_eq!(
        cli.ok(&["get", r#"{"a":1,"b":2}"#]).trim(),
        r#"{"name":"cat","vals":[1,2.5,null]}"#
    );
    assert_eq!(
        cli.ok(&["get", r#"{ "b" : 2, "a" : 1 }"#]).trim(),
        r#"{"name":"cat","vals":[1,2.5,null]}"#
    );
    cli.ok(&["set", r#""bad""#, r#""cat""#]);
    assert_eq!(cli.ok(&["len"]).trim(), "2");
    let mut keys: Vec<String> = cli.ok(&["keys"]).lines().map(String::from).collect();
    keys.sort();
    assert_eq!(keys, [r#""bad""#, r#"{"a":1,"b":2}"#]);
    let items = cli.ok(&["items"]);
    let rows: Vec<serde_json::Value> = items
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows
        .iter()
        .any(|r| r["key"] == "bad" && r["value"] == "cat"));
}

#[test]
fn missing_keys_exit_one_with_one_line() {
    let cli = Cli::new();
    let err = cli.fails(&["get", r#""nope""#], 1);
    one_line(&err);
    assert!(err.contains("not found"), "{err}");
    one_line(&cli.fails(&["del", r#""nope""#], 1));
    one_line(&cli.fails(&["get", "--all", r#""nope""#], 1));
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let cli = Cli::new();
    let err = cli.fails(&["get", "nope"], 2);
    one_line(&err);
    assert!(err.contains("JSON") && err.contains(r#"'"nope"'"#), "{err}");
    one_line(&cli.fails(&["set", r#""k""#, "{broken"], 2));
    let err = cli.fails(&["--engine", "cassandra", "len"], 2);
    assert!(err.contains("unknown engine"), "{err}");
    let err = cli.fails(&["--compress", "lzma", "len"], 2);
    assert!(err.contains("unknown compressor"), "{err}");
    // clap's own usage errors exit 2 as well.
    cli.fails(&["frobnicate"], 2);
}

#[test]
fn rust_keys_are_found_from_json() {
    #[derive(serde::Serialize)]
    struct Query {
        page: u32,
        term: &'static str,
    }
    let cli = Cli::new();
    let stash = hashstash::Stash::builder()
        .root_dir(cli.root.path().join("default_stash"))
        .engine(hashstash::EngineKind::Pairtree)
        .open()
        .unwrap();
    stash
        .set(
            &Query {
                page: 2,
                term: "cats",
            },
            &vec![1, 2, 3],
        )
        .unwrap();
    stash.set(&("a", 1), "tuple").unwrap();
    let out = cli.ok(&["--engine", "pairtree", "get", r#"{"term":"cats","page":2}"#]);
    assert_eq!(out.trim(), "[1,2,3]");
    assert_eq!(
        cli.ok(&["--engine", "pairtree", "get", r#"["a",1]"#])
            .trim(),
        r#""tuple""#
    );
    cli.ok(&[
        "--engine",
        "pairtree",
        "set",
        r#"{"term":"dogs","page":1}"#,
        "7",
    ]);
    let got: Option<i64> = stash
        .get(&Query {
            page: 1,
            term: "dogs",
        })
        .unwrap();
    assert_eq!(got, Some(7));
}

#[test]
fn append_mode_all_versions() {
    let cli = Cli::new();
    // Servers have their own CLI test, in a namespace of their own.
    let engines = hashstash::EngineKind::available()
        .filter(|e| *e != hashstash::EngineKind::Memory && !e.is_server());
    for engine in engines {
        let e = engine.name();
        cli.ok(&[
            "--engine",
            e,
            "--append-mode",
            "set",
            r#"{"name":"cat"}"#,
            r#"{"goodness":"good"}"#,
        ]);
        cli.ok(&[
            "--engine",
            e,
            "--append-mode",
            "set",
            r#"{"name":"cat"}"#,
            r#"{"goodness":"bad"}"#,
        ]);
        let latest = cli.ok(&["--engine", e, "--append-mode", "get", r#"{"name":"cat"}"#]);
        assert_eq!(latest.trim(), r#"{"goodness":"bad"}"#, "{e}");
        let all = cli.ok(&[
            "--engine",
            e,
            "--append-mode",
            "get",
            "--all",
            r#"{"name":"cat"}"#,
        ]);
        assert_eq!(
            all.trim(),
            r#"[{"goodness":"good"},{"goodness":"bad"}]"#,
            "{e}"
        );
        let meta: serde_json::Value = serde_json::from_str(&cli.ok(&[
            "--engine",
            e,
            "--append-mode",
            "get",
            "--all",
            "--with-metadata",
            r#"{"name":"cat"}"#,
        ]))
        .unwrap();
        assert_eq!(meta[0]["_version"], 1, "{e}");
        assert_eq!(meta[1]["_version"], 2, "{e}");
        assert!(meta[1]["_timestamp"].as_f64().unwrap() > 1.7e9);
        assert_eq!(meta[1]["_value"]["goodness"], "bad");
        // Opening the same stash without append mode is a format conflict.
        let err = cli.fails(&["--engine", e, "get", r#"{"name":"cat"}"#], 2);
        assert!(err.contains("format conflict"), "{err}");
        one_line(&err);
    }
}

#[test]
fn path_del_info_clear() {
    let cli = Cli::new();
    cli.ok(&[
        "--engine",
        "pairtree",
        "--compress",
        "zlib",
        "set",
        "1",
        "\"one\"",
    ]);
    cli.ok(&[
        "--engine",
        "pairtree",
        "--compress",
        "zlib",
        "set",
        "2",
        "\"two\"",
    ]);
    let dir = cli
        .root
        .path()
        .join("default_stash/main/pairtree.hashstash.zlib");
    let path = dir.to_str().unwrap();
    assert_eq!(cli.ok(&["--path", path, "get", "1"]).trim(), r#""one""#);
    let data_db = dir.join("data.db");
    assert_eq!(
        cli.ok(&["--path", data_db.to_str().unwrap(), "len"]).trim(),
        "2"
    );
    let err = cli.fails(&["--path", path, "--serializer", "json", "len"], 2);
    assert!(
        err.contains("serializer=hashstash") && err.contains("serializer=json"),
        "{err}"
    );
    let err = cli.fails(&["--path", "/nonexistent/stash", "len"], 2);
    one_line(&err);
    cli.ok(&["--path", path, "del", "1"]);
    let info: serde_json::Value = serde_json::from_str(&cli.ok(&["--path", path, "info"])).unwrap();
    assert_eq!(info["entries"], 1);
    assert_eq!(info["config"]["engine"], "pairtree");
    assert_eq!(info["config"]["compress"], "zlib");
    assert!(info["bytes_on_disk"].as_u64().unwrap() > 0);
    assert!(info["stash"]
        .as_str()
        .unwrap()
        .starts_with("PairtreeStash("));
    cli.ok(&["--path", path, "clear"]);
    assert_eq!(cli.ok(&["--path", path, "len"]).trim(), "0");
}

#[test]
fn default_engine_and_layout() {
    let cli = Cli::new();
    cli.ok(&["set", "\"k\"", "1"]);
    let engine = hashstash::EngineKind::default_engine().name();
    let dir = cli
        .root
        .path()
        .join(format!("default_stash/main/{engine}.hashstash.lz4"));
    assert!(dir.join("data.db").exists(), "{}", dir.display());
    assert!(dir.join("format.json").exists());
    cli.ok(&[
        "--root-dir",
        "project_stash",
        "--dbname",
        "sub_stash",
        "set",
        "\"k\"",
        "1",
    ]);
    assert!(cli
        .root
        .path()
        .join(format!(
            "project_stash/sub_stash/{engine}.hashstash.lz4/data.db"
        ))
        .exists());
}

/// Every CLI command against a server engine, addressed by `--url` or by the URL as `--path`.
#[cfg(any(feature = "redis", feature = "mongo"))]
fn server_from_the_command_line(engine: hashstash::EngineKind, env: &str, dead: &str) {
    if !crate::common::engine_available(engine) {
        return;
    }
    let url = std::env::var(env).unwrap();
    let cli = Cli::new();
    let db = cli
        .root
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    cli.ok(&[
        "--engine",
        engine.name(),
        "--url",
        &url,
        "--dbname",
        &db,
        "set",
        r#"{"b":2,"a":1}"#,
        "[1,2]",
    ]);
    assert_eq!(
        cli.ok(&["--path", &url, "--dbname", &db, "get", r#"{"a":1,"b":2}"#])
            .trim(),
        "[1,2]"
    );
    assert_eq!(
        cli.ok(&["--path", &url, "--dbname", &db, "len"]).trim(),
        "1"
    );
    assert_eq!(
        cli.ok(&["--path", &url, "--dbname", &db, "keys"]).trim(),
        r#"{"a":1,"b":2}"#
    );
    let info: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--path", &url, "--dbname", &db, "info"])).unwrap();
    assert_eq!(info["config"]["engine"], engine.name());
    assert!(info["stash"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}Stash(", engine.display_name())));
    cli.ok(&["--path", &url, "--dbname", &db, "del", r#"{"a":1,"b":2}"#]);
    cli.fails(
        &["--path", &url, "--dbname", &db, "get", r#"{"a":1,"b":2}"#],
        1,
    );
    cli.ok(&["--path", &url, "--dbname", &db, "clear"]);
    // A dead server: a one-line error within the timeout, not a hang or a panic.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = cli.fails(
        &[
            "--path",
            &dead.replace("PORT", &port.to_string()),
            "--timeout-ms",
            "300",
            "len",
        ],
        2,
    );
    one_line(&err);
}

#[cfg(feature = "redis")]
#[test]
fn redis_from_the_command_line() {
    server_from_the_command_line(
        hashstash::EngineKind::Redis,
        "HASHSTASH_REDIS_URL",
        "redis://127.0.0.1:PORT/0",
    );
}

#[cfg(feature = "mongo")]
#[test]
fn mongo_from_the_command_line() {
    server_from_the_command_line(
        hashstash::EngineKind::Mongo,
        "HASHSTASH_MONGO_URL",
        "mongodb://127.0.0.1:PORT/hashstash",
    );
}

#[cfg(feature = "sql")]
#[test]
fn sql_export_import_from_the_command_line() {
    let cli = Cli::new();
    for (key, value) in [
        ("a", r#"{"name":"cat","age":9}"#),
        ("b", r#"{"name":"dog","age":3}"#),
        ("c", r#"{"name":"cat","age":5}"#),
    ] {
        cli.ok(&["--engine", "pairtree", "set", &format!("\"{key}\""), value]);
    }
    let table = cli.ok(&[
        "--engine",
        "pairtree",
        "sql",
        "SELECT name, count(*) AS n FROM stash GROUP BY name ORDER BY name",
    ]);
    assert!(
        table.contains("| cat  | 2 |") && table.contains("| dog  | 1 |"),
        "{table}"
    );
    let csv = cli.ok(&[
        "--engine",
        "pairtree",
        "sql",
        "--format",
        "csv",
        "SELECT _key, age FROM stash ORDER BY _key",
    ]);
    assert_eq!(csv.trim(), "_key,age\na,9\nb,3\nc,5");
    let json = cli.ok(&[
        "--engine",
        "pairtree",
        "sql",
        "--format",
        "json",
        "SELECT _key FROM stash WHERE age > 4 ORDER BY _key",
    ]);
    assert_eq!(json.trim(), "{\"_key\":\"a\"}\n{\"_key\":\"c\"}");
    let err = cli.fails(
        &["--engine", "pairtree", "sql", "SELECT nope FROM stash"],
        2,
    );
    one_line(&err);
    // Another stash joins by path.
    cli.ok(&[
        "--engine",
        "pairtree",
        "--dbname",
        "owners",
        "set",
        "\"cat\"",
        r#"{"owner":"ann"}"#,
    ]);
    let owners = cli
        .root
        .path()
        .join("default_stash/owners/pairtree.hashstash.lz4");
    let joined = cli.ok(&[
        "--engine",
        "pairtree",
        "sql",
        "--table",
        &format!("owners={}", owners.display()),
        "SELECT stash._key, owners.owner FROM stash JOIN owners ON stash.name = owners._key ORDER BY 1",
    ]);
    assert!(joined.contains("| a    | ann"), "{joined}");
    // Export as JSON lines, import into another stash, same entries.
    let out = cli.root.path().join("export.jsonl");
    cli.ok(&[
        "--engine",
        "pairtree",
        "export",
        "--format",
        "jsonl",
        out.to_str().unwrap(),
    ]);
    // `json` is the same format under its other name.
    let same = cli.root.path().join("export.json");
    cli.ok(&[
        "--engine",
        "pairtree",
        "export",
        "--format",
        "json",
        same.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&same).unwrap(), std::fs::read(&out).unwrap());
    cli.ok(&["--engine", "memory", "import", out.to_str().unwrap()]);
    cli.ok(&[
        "--engine",
        "lmdb",
        "--dbname",
        "copy",
        "import",
        out.to_str().unwrap(),
    ]);
    let original = cli.ok(&["--engine", "pairtree", "get", "\"b\""]);
    let copied = cli.ok(&["--engine", "lmdb", "--dbname", "copy", "get", "\"b\""]);
    assert_eq!(copied, original);
    assert!(original.contains("dog"));
    assert_eq!(
        cli.ok(&["--engine", "lmdb", "--dbname", "copy", "len"])
            .trim(),
        "3"
    );
    // Parquet and CSV exports.
    let parquet = cli.root.path().join("export.parquet");
    cli.ok(&["--engine", "pairtree", "export", parquet.to_str().unwrap()]);
    assert!(std::fs::read(&parquet).unwrap().starts_with(b"PAR1"));
    cli.ok(&[
        "--engine",
        "pairtree",
        "--dbname",
        "from_parquet",
        "import",
        parquet.to_str().unwrap(),
    ]);
    let reloaded = cli.ok(&[
        "--engine",
        "pairtree",
        "--dbname",
        "from_parquet",
        "get",
        "\"a\"",
    ]);
    assert_eq!(reloaded, cli.ok(&["--engine", "pairtree", "get", "\"a\""]));
    let csv_out = cli.root.path().join("export.csv");
    cli.ok(&[
        "--engine",
        "pairtree",
        "export",
        "--format",
        "csv",
        csv_out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&csv_out).unwrap().lines().count(),
        4
    );
    // A bad import line is a clear error naming the line.
    let bad = cli.root.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"key\": 1, \"value\": 2}\n{\"nokey\": 1}\n").unwrap();
    let err = cli.fails(
        &[
            "--engine",
            "pairtree",
            "--dbname",
            "bad",
            "import",
            bad.to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("bad.jsonl:2"), "{err}");
}

#[test]
fn corrupt_entries_fail_a_scan_or_are_skipped_and_reported() {
    let cli = Cli::new();
    cli.ok(&["set", r#""good""#, r#"{"i": 1}"#]);
    // The stash the command line opens: the default root folder under $HASHSTASH_ROOT_DIR.
    let stash = hashstash::Stash::builder()
        .root_dir(cli.root.path().join("default_stash"))
        .open()
        .unwrap();
    assert_eq!(stash.len().unwrap(), 1);
    let key = stash.encode_key("bad").unwrap();
    stash.engine().set(&key, b"garbage bytes").unwrap();
    drop(stash);
    let stderr = cli.fails(&["items"], 2);
    one_line(&stderr);
    assert!(stderr.contains(r#"key "bad""#), "{stderr}");
    let stderr = cli.fails(&["get", r#""bad""#], 2);
    assert!(stderr.contains(r#"key "bad""#), "{stderr}");
    let out = cli.run(&["--on-corrupt", "skip", "items"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim(), r#"{"key":"good","value":{"i":1}}"#);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("skipped 1 corrupt entries"), "{stderr}");
    assert!(stderr.contains(r#"key "bad""#), "{stderr}");
    let stderr = cli.fails(&["--on-corrupt", "maybe", "items"], 2);
    assert!(stderr.contains("expected fail or skip"), "{stderr}");
}

#[test]
fn profile_measures_every_combination_asked_for() {
    let cli = Cli::new();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_str().unwrap();
    let out = cli.ok(&[
        "profile",
        "--items",
        "50",
        "--engines",
        "memory,pairtree",
        "--serializers",
        "hashstash,json",
        "--compressors",
        "raw,lz4",
        "--dir",
        dir,
        "--json",
    ]);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 8, "{out}");
    for r in &records {
        assert_eq!(r["items"], 50);
        for field in ["set_per_s", "get_per_s", "update_per_s", "set_mb_per_s"] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field}: {r}");
        }
    }
    // Compression changes the size, and JSON text is larger than MessagePack.
    let size = |e: &str, s: &str, c: &str| {
        records
            .iter()
            .find(|r| r["engine"] == e && r["serializer"] == s && r["compress"] == c)
            .unwrap()["bytes_per_item"]
            .as_f64()
            .unwrap()
    };
    assert!(size("memory", "json", "raw") > size("memory", "hashstash", "raw"));
    assert_eq!(
        size("memory", "json", "raw"),
        size("pairtree", "json", "raw")
    );
    // Its stashes are gone afterwards.
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
    // The table, and errors for unknown names.
    let table = cli.ok(&[
        "profile",
        "--items",
        "20",
        "--engines",
        "memory",
        "--dir",
        dir,
    ]);
    assert!(table.starts_with("engine "), "{table}");
    assert!(table.lines().count() > 3);
    let stderr = cli.fails(&["profile", "--engines", "nosuch", "--dir", dir], 2);
    one_line(&stderr);
}

#[cfg(feature = "plot")]
#[test]
fn profile_draws_the_four_figures() {
    let cli = Cli::new();
    let scratch = tempfile::tempdir().unwrap();
    let figures = scratch.path().join("figures");
    cli.ok(&[
        "profile",
        "--quick",
        "--items",
        "30",
        "--engines",
        "memory,pairtree",
        "--dir",
        scratch.path().to_str().unwrap(),
        "--plot",
        figures.to_str().unwrap(),
    ]);
    for name in [
        "fig.comparing_engines.png",
        "fig.comparing_serializers_size_speed.png",
        "fig.comparing_encodings_size_speed.png",
        "fig.comparing_engines_serializers_encodings.png",
    ] {
        let bytes = std::fs::read(figures.join(name)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}");
        assert!(bytes.len() > 10_000, "{name}: {} bytes", bytes.len());
    }
}

#[test]
fn arguments_that_are_not_json_or_flags_that_clash_say_what_to_give() {
    let cli = Cli::new();
    // An unquoted string: the error names the argument and shows it quoted.
    let stderr = cli.fails(&["set", "cat", "1"], 2);
    one_line(&stderr);
    assert!(stderr.contains("KEY must be JSON text"), "{stderr}");
    assert!(stderr.contains(r#"'"cat"'"#), "{stderr}");
    let stderr = cli.fails(&["set", r#""cat""#, "{oops"], 2);
    assert!(stderr.contains("VALUE must be JSON text"), "{stderr}");
    assert_eq!(
        cli.fails(&["get", r#""cat""#], 1).trim(),
        r#"hashstash: key not found: "cat""#
    );
    // A format a command does not write.
    let out = cli.root.path().join("x.out");
    let stderr = cli.fails(&["export", "--format", "table", out.to_str().unwrap()], 2);
    one_line(&stderr);
    assert!(stderr.starts_with("hashstash: invalid format"), "{stderr}");
    // A bad query is an SQL error.
    let stderr = cli.fails(&["sql", "SELECT nonsense FROM stash"], 2);
    assert!(stderr.starts_with("hashstash: SQL failed: "), "{stderr}");
}

#[test]
fn info_shows_what_the_stash_has_seen() {
    let cli = Cli::new();
    cli.ok(&["set", r#""a""#, "1"]);
    cli.ok(&["set", r#""b""#, "2"]);
    cli.ok(&["get", r#""a""#]);
    cli.fails(&["get", r#""missing""#], 1);
    cli.ok(&["del", r#""b""#]);
    cli.ok(&["keys"]);
    let info: serde_json::Value = serde_json::from_str(&cli.ok(&["info"])).unwrap();
    let stats = &info["stats"];
    assert_eq!(stats["sets"], 2, "{info}");
    assert_eq!(stats["hits"], 1, "{info}");
    assert_eq!(stats["misses"], 1, "{info}");
    assert_eq!(stats["deletes"], 1, "{info}");
    assert_eq!(stats["evictions"], 0, "{info}");
    assert_eq!(stats["hit_rate"], 0.5, "{info}");
    assert!(stats["bytes_written"].as_u64().unwrap() > 4, "{info}");
    assert_eq!(info["entries"], 1, "the totals are not entries");
    // Opened by its folder, the stash finds the same totals.
    let dir = cli.root.path().join("default_stash/main");
    let folder = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("data.db").exists())
        .unwrap();
    let by_path: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--path", folder.to_str().unwrap(), "info"])).unwrap();
    assert_eq!(by_path["stats"], info["stats"]);
}

#[test]
fn a_ttl_makes_entries_expire_and_prune_removes_them() {
    let cli = Cli::new();
    cli.ok(&["--ttl-ms", "0", "set", r#""gone""#, "1"]);
    cli.ok(&["--ttl-ms", "3600000", "set", r#""kept""#, "2"]);
    cli.ok(&["set", r#""plain""#, "3"]);
    cli.fails(&["get", r#""gone""#], 1);
    assert_eq!(cli.ok(&["get", r#""kept""#]).trim(), "2");
    assert_eq!(cli.ok(&["keys"]).lines().count(), 2);
    assert_eq!(cli.ok(&["len"]).trim(), "3", "counted until pruned");
    let out = cli.run(&["prune"]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pruned 1 expired entries"), "{said}");
    assert_eq!(cli.ok(&["len"]).trim(), "2");
}

#[test]
fn time_filters_and_prune_by_age() {
    let cli = Cli::new();
    cli.ok(&["set", r#""old""#, "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cut = hashstash::Moment::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    cli.ok(&["set", r#""new""#, "2"]);
    let cut_text = cut.to_string();
    let cut_seconds = format!("{}", cut.unix_seconds());
    assert_eq!(cli.ok(&["keys", "--after", &cut_text]).trim(), r#""new""#);
    assert_eq!(
        cli.ok(&["keys", "--before", &cut_seconds]).trim(),
        r#""old""#
    );
    assert_eq!(cli.ok(&["keys", "--after", "1h"]).lines().count(), 2);
    let line = cli.ok(&["items", "--before", &cut_text]);
    let item: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(item["key"], "old");
    assert_eq!(item["value"], 1);
    assert!(item["_timestamp"].as_f64().unwrap() < cut.unix_seconds());
    let err = cli.run(&["keys", "--after", "2026-11-25 10:00"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("RFC 3339"));

    // A dry run by default, with a report; --apply removes.
    let report: serde_json::Value =
        serde_json::from_str(cli.ok(&["prune", "--older-than", &cut_text]).trim()).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["entries"], 1);
    assert_eq!(cli.ok(&["len"]).trim(), "2");
    let out = cli.run(&["prune", "--older-than", &cut_text, "--apply"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("removed 1 entries"));
    assert_eq!(cli.ok(&["keys"]).trim(), r#""new""#);
    assert!(
        !cli.run(&["prune", "--apply"]).status.success(),
        "--apply needs --older-than"
    );
}

#[test]
fn copy_moves_a_stash_into_another_format() {
    let cli = Cli::new();
    cli.ok(&["--append-mode", "set", r#""k""#, "1"]);
    cli.ok(&["--append-mode", "set", r#""k""#, "2"]);
    cli.ok(&["--append-mode", "set", r#""j""#, r#"{"a": [1, 2]}"#]);
    let info: serde_json::Value =
        serde_json::from_str(&cli.ok(&["--append-mode", "info"])).unwrap();
    let src = info["path"].as_str().unwrap().to_string();
    let src = std::path::Path::new(&src).parent().unwrap().to_path_buf();
    let out_dir = tempfile::tempdir().unwrap();
    let dst = out_dir.path().join("copies/main/pairtree.json.zlib");
    let dst_text = dst.to_str().unwrap();
    let src_text = src.to_str().unwrap();

    let plan: serde_json::Value =
        serde_json::from_str(&cli.ok(&["copy", src_text, dst_text, "--dry-run"])).unwrap();
    assert_eq!(
        (plan["entries"].as_u64(), plan["versions"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(plan["dry_run"], true);
    let out = cli.run(&["copy", src_text, dst_text]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["destination_after"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("copied 2 entries"));
    let all = cli.ok(&["--path", dst_text, "get", r#""k""#, "--all"]);
    assert_eq!(all.trim(), "[1,2]");
    assert_eq!(
        cli.ok(&["--path", dst_text, "get", r#""j""#]).trim(),
        r#"{"a":[1,2]}"#
    );
    // Bad destinations are refused with a reason.
    let bad = cli.run(&[
        "copy",
        src_text,
        out_dir.path().join("x/y/not-a-format").to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ENGINE.SERIALIZER.COMPRESS"));
    let same = cli.run(&["copy", src_text, src_text]);
    assert!(String::from_utf8_lossy(&same.stderr).contains("the destination is the source"));
}

#[test]
fn max_entries_from_the_command_line() {
    let cli = Cli::new();
    for i in 0..15 {
        cli.ok(&["--max-entries", "10", "set", &i.to_string(), "1"]);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let len: u64 = cli.ok(&["len"]).trim().parse().unwrap();
    assert!((9..=10).contains(&len), "{len}");
    let keys = cli.ok(&["keys"]);
    assert!(keys.lines().any(|k| k == "14"), "the newest stays: {keys}");
    assert!(!keys.lines().any(|k| k == "0"), "the oldest went: {keys}");
    let info: serde_json::Value = serde_json::from_str(&cli.ok(&["info"])).unwrap();
    assert!(info["stats"]["evictions"].as_u64().unwrap() >= 5, "{info}");
    let zero = cli.run(&["--max-entries", "0", "set", "1", "1"]);
    assert!(String::from_utf8_lossy(&zero.stderr).contains("max_entries"));
}

#[cfg(feature = "sql")]
#[test]
fn sql_writes_every_column_and_streams_to_files() {
    let cli = Cli::new();
    cli.ok(&["set", "\"a\"", r#"{"name":"cat","age":9}"#]);
    cli.ok(&["set", "\"b\"", r#"{"name":"dog"}"#]);
    // JSON lines: every row has every column, a missing cell as an explicit null.
    let json = cli.ok(&[
        "sql",
        "--format",
        "json",
        "SELECT _key, name, age FROM stash ORDER BY _key",
    ]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            serde_json::json!({"_key": "a", "name": "cat", "age": 9}),
            serde_json::json!({"_key": "b", "name": "dog", "age": null}),
        ]
    );
    // Parquet to a file; a result with no rows still writes a file with its columns.
    let dir = tempfile::tempdir().unwrap();
    for (query, rows) in [
        ("SELECT * FROM stash", 2),
        ("SELECT _key, age FROM stash WHERE age > 100", 0),
    ] {
        let path = dir.path().join("out.parquet");
        cli.ok(&[
            "sql",
            query,
            "--format",
            "parquet",
            "--out",
            path.to_str().unwrap(),
        ]);
        let file = std::fs::File::open(&path).unwrap();
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                file,
            )
            .unwrap();
        assert!(reader.schema().field_with_name("_key").is_ok());
        let read: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(read, rows, "{query}");
    }
    // Parquet needs a file.
    one_line(&cli.fails(&["sql", "SELECT 1", "--format", "parquet"], 2));
}

/// A reader that stops early (`hashstash sql ... | head -1`) ends the command with an
/// error, never a panic, in every text format.
#[cfg(feature = "sql")]
#[test]
fn a_closed_pipe_ends_a_query_without_a_panic() {
    use std::io::BufRead;
    let cli = Cli::new();
    let file = cli.root.path().join("many.jsonl");
    let lines: Vec<String> = (0..50_000)
        .map(|i| format!(r#"{{"key": {i}, "value": {{"n": {i}, "text": "row {i}"}}}}"#))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    cli.ok(&["import", &file.display().to_string()]);
    for format in ["csv", "json", "table"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hashstash"))
            .env("HASHSTASH_ROOT_DIR", cli.root.path())
            .env_remove("HOME")
            .args(["sql", "--format", format, "SELECT * FROM stash"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
        // The pipe closes here, with most rows still to come.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty(), "{format}: {stderr}");
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{format}: {stderr}");
    }
}
