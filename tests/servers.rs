//! Server faults: a stopped, frozen or restarted server gives errors within the timeout, and
//! the same handle works again when the server is back. Each test runs a server of its own,
//! from the binaries `scripts/services.sh` names (`$HASHSTASH_REDIS_SERVER`,
//! `$HASHSTASH_MONGO_SERVER`, and for object storage `$HASHSTASH_S3FS_SERVER`: s3s-fs, an
//! S3 server that keeps its objects in files, where moto keeps them in memory).

use hashstash::{EngineKind, Stash};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private server of `engine` on `port`, keeping its data in `dir`.
fn start_server(engine: EngineKind, port: u16, dir: &Path) -> Server {
    start_server_with(engine, port, dir, false)
}

/// `durable`: the server writes and fsyncs its log before it answers (Redis's append-only
/// file, the MongoDB server's write-ahead log), so that a server killed and restarted keeps
/// every write it acknowledged.
fn start_server_with(engine: EngineKind, port: u16, dir: &Path, durable: bool) -> Server {
    let port_arg = port.to_string();
    let mut command = match engine {
        EngineKind::Redis => {
            let bin =
                std::env::var("HASHSTASH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
            let mut c = Command::new(bin);
            c.args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port_arg,
                "--save",
                "",
                "--appendonly",
                if durable { "yes" } else { "no" },
                "--appendfsync",
                "always",
                "--dir",
            ]);
            c.arg(dir);
            c
        }
        EngineKind::Mongo => {
            let bin = std::env::var("HASHSTASH_MONGO_SERVER").expect("HASHSTASH_MONGO_SERVER");
            let mut c = Command::new(bin);
            c.args([
                "--host",
                "127.0.0.1",
                "--port",
                &port_arg,
                "--cache-size",
                "64M",
                "--log-file-max",
                "16MB",
            ]);
            if durable {
                // Its write-ahead log fsynced on every commit, as mongod's journal would be.
                c.arg("--sync-on-commit");
            }
            c.arg("--storage-path").arg(dir.join("mongo"));
            c
        }
        EngineKind::ObjectStore => {
            // Objects are files, written before the server answers: always durable against
            // a killed server.
            let bin = std::env::var("HASHSTASH_S3FS_SERVER").expect("HASHSTASH_S3FS_SERVER");
            std::fs::create_dir_all(dir.join("s3").join("hashstash")).unwrap();
            let mut c = Command::new(bin);
            c.args(["--host", "127.0.0.1", "--port", &port_arg])
                .args(["--access-key", S3_KEY, "--secret-key", S3_KEY])
                .arg(dir.join("s3"));
            c
        }
        other => panic!("{other} has no server"),
    };
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{engine} server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child)
}

/// The key and secret of the tests' own S3 servers.
const S3_KEY: &str = "hashstash-test";

fn url(engine: EngineKind, port: u16) -> String {
    match engine {
        EngineKind::Redis => format!("redis://127.0.0.1:{port}/0"),
        EngineKind::ObjectStore => s3_url(port, S3_KEY),
        _ => format!("mongodb://127.0.0.1:{port}/hashstash"),
    }
}

/// The test bucket on an S3 server on `port`, signed with `secret` (the URL's options over
/// the environment's, which name the shared test server).
fn s3_url(port: u16, secret: &str) -> String {
    format!(
        "s3://hashstash/tests?endpoint=http://127.0.0.1:{port}&allow_http=true\
         &access_key_id={S3_KEY}&secret_access_key={secret}&region=us-east-1"
    )
}

/// A test's own server process, killed when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` and, for SIGSTOP, waits until the process is really stopped (a signal is
/// delivered asynchronously).
fn signal(server: &Server, sig: &str) {
    let pid = server.0.id();
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    if sig == "-STOP" {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if state == Some('T') || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How long an operation against a dead or frozen server may take: the timeout, plus
/// generous slack for a slow machine. What is tested is that it ends, with an error.
fn bound(timeout: Duration) -> Duration {
    timeout * 10 + Duration::from_secs(10)
}

/// Retries `f` for a while: a server that was just resumed or restarted may refuse the
/// first attempts.
fn eventually<T>(mut f: impl FnMut() -> hashstash::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("never recovered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The timeout of the stashes on a test's own server.
const TIMEOUT: Duration = Duration::from_millis(1000);

/// A server of the test's own (on a free port, its data in a temporary folder) and a stash
/// on it with [`TIMEOUT`].
fn stash_on_own_server(
    engine: EngineKind,
    durable: bool,
    append: bool,
) -> (tempfile::TempDir, u16, Server, Stash) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start_server_with(engine, port, dir.path(), durable);
    let stash = eventually(|| {
        Stash::builder()
            .root_dir(dir.path())
            .engine(engine)
            .url(url(engine, port))
            .timeout_ms(TIMEOUT.as_millis() as u64)
            .append_mode(append)
            .open()
    });
    (dir, port, server, stash)
}

fn faults_are_errors_within_the_timeout_and_the_handle_recovers(engine: EngineKind) {
    let (dir, port, server, stash) = stash_on_own_server(engine, false, false);
    let timeout = TIMEOUT;
    stash.set("before", &1).unwrap();

    // Frozen: the server accepts nothing and answers nothing.
    signal(&server, "-STOP");
    let start = Instant::now();
    let err = stash.get::<_, i32>("before").unwrap_err();
    assert!(
        start.elapsed() < bound(timeout),
        "took {:?}",
        start.elapsed()
    );
    assert!(matches!(err, hashstash::Error::Engine { .. }), "{err}");
    signal(&server, "-CONT");
    assert_eq!(
        eventually(|| stash.get::<_, i32>("before")),
        Some(1),
        "works again after the freeze"
    );

    // Killed: an error, within the timeout; then the same handle works on the restarted server.
    drop(server);
    let start = Instant::now();
    assert!(stash.set("during", &2).is_err());
    assert!(stash.len().is_err());
    assert!(
        start.elapsed() < bound(timeout) * 2,
        "took {:?}",
        start.elapsed()
    );
    let _server = start_server(engine, port, dir.path());
    eventually(|| stash.set("after", &3));
    assert_eq!(stash.get::<_, i32>("after").unwrap(), Some(3));
}

/// Dropping a handle does no I/O: on a frozen server it returns at once (it used to write
/// the handle's counts to the stash's totals, waiting up to the timeout), and the counts
/// are written once the server answers again.
fn dropping_a_handle_on_a_frozen_server_returns_at_once(engine: EngineKind) {
    let (dir, port, server, _stash) = stash_on_own_server(engine, false, false);
    let slow = Duration::from_secs(60);
    let builder = Stash::builder()
        .root_dir(dir.path())
        .engine(engine)
        .url(url(engine, port))
        .dbname("dropped")
        .timeout_ms(slow.as_millis() as u64);
    let stash = builder.clone().open().unwrap();
    stash.set("counted", &1).unwrap();
    signal(&server, "-STOP");
    let start = Instant::now();
    drop(stash);
    assert!(
        start.elapsed() < slow / 4,
        "the drop waited {:?}",
        start.elapsed()
    );
    signal(&server, "-CONT");
    let again = eventually(|| builder.clone().open());
    assert_eq!(eventually(|| again.lifetime_stats()).sets, 1);
}

fn unreachable_server_fails_within_the_timeout(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let with_password = match engine {
        EngineKind::Redis => format!("redis://:secret-password@127.0.0.1:{port}/0"),
        EngineKind::ObjectStore => s3_url(port, "secret-password"),
        _ => format!("mongodb://user:secret-password@127.0.0.1:{port}/hashstash"),
    };
    let start = Instant::now();
    let opened = Stash::builder()
        .root_dir(dir.path())
        .engine(engine)
        .url(with_password)
        .timeout_ms(300)
        .open();
    // Opening checks the recorded format on the server, so it is what fails here.
    let err = opened.unwrap_err();
    assert!(
        start.elapsed() < bound(Duration::from_millis(300)),
        "took {:?}",
        start.elapsed()
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains(&port.to_string()), "{shown}");
    assert!(
        !shown.contains("secret-password"),
        "the password leaked: {shown}"
    );
}

fn namespaces_keep_stashes_apart(engine: EngineKind) {
    let (_a, one) = crate::common::stash(engine);
    let (_b, two) = crate::common::stash(engine);
    one.set("shared key", "one").unwrap();
    two.set("shared key", "two").unwrap();
    assert_eq!(
        one.get::<_, String>("shared key").unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(
        two.get::<_, String>("shared key").unwrap().as_deref(),
        Some("two")
    );
    one.clear().unwrap();
    assert_eq!(two.len().unwrap(), 1);
    let shown = one.to_string();
    assert!(
        shown.starts_with(&format!("{}Stash(", engine.display_name())),
        "{shown}"
    );
}

/// A writer that keeps writing (single sets, batches of 20, or appends to one key) while
/// the server is killed with SIGKILL and restarted: each failed call fails within the
/// timeout, the writer's handle works again once the server is back, and every write it
/// saw succeed is there afterwards, appends numbered without gaps.
fn killed_mid_batch_loses_nothing_acknowledged(engine: EngineKind, append: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let (dir, port, server, stash) = stash_on_own_server(engine, true, append);
    let timeout = TIMEOUT;
    let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stash, acked, stop) = (stash.clone(), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut failures, mut slowest_failure) = (0, Duration::ZERO);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let keys: Vec<(u64, u64)> = if append || i % 10 != 5 {
                    vec![(i, 0)]
                } else {
                    (0..20).map(|j| (i, j)).collect()
                };
                let written = if append {
                    stash.set("log", &i)
                } else if keys.len() == 1 {
                    stash.set(&keys[0], &format!("value {i}"))
                } else {
                    stash.update(keys.iter().map(|k| (*k, format!("value {}.{}", k.0, k.1))))
                };
                match written {
                    Ok(()) => acked.lock().unwrap().extend(keys),
                    Err(_) => {
                        failures += 1;
                        slowest_failure = slowest_failure.max(started.elapsed());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                i += 1;
            }
            (failures, slowest_failure)
        })
    };
    let acked_count = || acked.lock().unwrap().len();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked_count() < n {
            assert!(
                Instant::now() < deadline,
                "{engine}: the writer is stuck at {}",
                acked_count()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(200);
    drop(server); // SIGKILL, mid-write
    let at_kill = acked_count();
    // Down for longer than a call's timeout: the object-store client retries a refused
    // connection until then, and would ride out a shorter outage without an error.
    std::thread::sleep(timeout * 3);
    let _server = start_server_with(engine, port, dir.path(), true);
    wait_for(at_kill + 200);
    stop.store(true, Ordering::Relaxed);
    let (failures, slowest_failure) = writer.join().unwrap();
    assert!(
        failures > 0,
        "{engine}: no write failed while the server was down"
    );
    assert!(
        slowest_failure < bound(timeout),
        "{engine}: a failure took {slowest_failure:?}"
    );
    let acked = acked.lock().unwrap().clone();
    if append {
        let versions = stash.get_all_with_metadata::<_, u64>("log").unwrap();
        let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
        assert_eq!(
            numbers,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "{engine}: gaps"
        );
        let values: Vec<u64> = versions.iter().map(|v| v.value).collect();
        let mut seen = std::collections::HashSet::new();
        assert!(
            values.iter().all(|v| seen.insert(*v)),
            "{engine}: an append stored twice"
        );
        let kept: Vec<u64> = values
            .iter()
            .copied()
            .filter(|v| acked.iter().any(|a| a.0 == *v))
            .collect();
        assert_eq!(
            kept,
            acked.iter().map(|a| a.0).collect::<Vec<_>>(),
            "{engine}: acknowledged appends lost or out of order"
        );
    } else {
        let keys: Vec<(u64, u64)> = acked.clone();
        let found: Vec<Option<String>> = stash.get_many(&keys).unwrap();
        for (key, value) in keys.iter().zip(found) {
            // Batches are the writes numbered 5, 15, 25, ...
            let wanted = if key.0 % 10 == 5 {
                format!("value {}.{}", key.0, key.1)
            } else {
                format!("value {}", key.0)
            };
            assert_eq!(value, Some(wanted), "{engine}: acknowledged {key:?} lost");
        }
    }
    eprintln!(
        "{engine} (append: {append}): {} acknowledged writes kept across a SIGKILL and restart; \
         {failures} calls failed meanwhile, the slowest in {slowest_failure:?}",
        acked.len()
    );
}

macro_rules! server_tests {
    ($($name:ident => $engine:expr),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn faults_are_errors_within_the_timeout_and_the_handle_recovers() {
                    if crate::common::engine_available($engine) {
                        super::faults_are_errors_within_the_timeout_and_the_handle_recovers($engine);
                    }
                }
                #[test]
                fn dropping_a_handle_on_a_frozen_server_returns_at_once() {
                    if crate::common::engine_available($engine) {
                        super::dropping_a_handle_on_a_frozen_server_returns_at_once($engine);
                    }
                }
                #[test]
                fn unreachable_server_fails_within_the_timeout() {
                    if crate::common::engine_available($engine) {
                        super::unreachable_server_fails_within_the_timeout($engine);
                    }
                }
                #[test]
                fn killed_mid_batch_loses_nothing_acknowledged() {
                    if crate::common::engine_available($engine) {
                        super::killed_mid_batch_loses_nothing_acknowledged($engine, false);
                    }
                }
                #[test]
                fn killed_mid_append_loses_nothing_acknowledged() {
                    if crate::common::engine_available($engine) {
                        super::killed_mid_batch_loses_nothing_acknowledged($engine, true);
                    }
                }
                #[test]
                fn namespaces_keep_stashes_apart() {
                    if crate::common::engine_available($engine) {
                        super::namespaces_keep_stashes_apart($engine);
                    }
                }
            }
        )*
    };
}

#[cfg(feature = "redis")]
server_tests!(redis => hashstash::EngineKind::Redis);
#[cfg(feature = "mongo")]
server_tests!(mongo => hashstash::EngineKind::Mongo);
#[cfg(feature = "objectstore")]
server_tests!(objectstore => hashstash::EngineKind::ObjectStore);

/// Clearing a stash larger than one clear request (10,000 documents) empties it, and the
/// stash takes writes again. (Versions are cleared by the same paging; the conformance
/// suite clears append-mode stashes.)
#[cfg(feature = "mongo")]
#[test]
fn mongo_clears_a_stash_larger_than_one_request() {
    if !crate::common::engine_available(EngineKind::Mongo) {
        return;
    }
    let (_d, stash) = crate::common::stash(EngineKind::Mongo);
    stash.update((0..25_000u32).map(|i| (i, i))).unwrap();
    assert_eq!(stash.len().unwrap(), 25_000);
    stash.clear().unwrap();
    assert_eq!(stash.len().unwrap(), 0);
    assert_eq!(stash.keys::<u32>().unwrap().count(), 0);
    stash.set(&7u32, &1u32).unwrap();
    assert_eq!(stash.get::<_, u32>(&7u32).unwrap(), Some(1));
    assert_eq!(stash.len().unwrap(), 1);
}

#[cfg(feature = "mongo")]
#[test]
fn mongo_refuses_values_over_the_document_limit() {
    if !crate::common::engine_available(EngineKind::Mongo) {
        return;
    }
    let (_d, stash) = crate::common::stash(EngineKind::Mongo);
    let (_d2, raw) = crate::common::builder(EngineKind::Mongo);
    let raw = raw.compress(hashstash::Compressor::Raw).open().unwrap();
    // Compressible values fit once compressed; what counts is the stored size.
    stash
        .set("big but compressible", &vec![0u8; 20 << 20])
        .unwrap();
    assert_eq!(
        stash
            .get::<_, Vec<u8>>("big but compressible")
            .unwrap()
            .map(|v| v.len()),
        Some(20 << 20)
    );
    let err = raw.set("too big", &serde_bytes_like(17 << 20)).unwrap_err();
    assert!(
        matches!(
            err,
            hashstash::Error::ValueTooLarge {
                engine: "mongo",
                ..
            }
        ),
        "{err}"
    );
    assert!(!raw.contains("too big").unwrap(), "nothing half-written");
    raw.set("just fits", &serde_bytes_like(15 << 20)).unwrap();
    assert_eq!(raw.get::<_, serde_json::Value>("missing").unwrap(), None);
}

#[cfg(feature = "mongo")]
fn serde_bytes_like(n: usize) -> impl serde::Serialize {
    struct Bytes(Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    // Incompressible: every byte differs from its neighbours in a long cycle.
    Bytes(
        (0..n)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    )
}

#[test]
fn host_and_port_options_build_the_url() {
    let config = hashstash::StashConfig {
        engine: EngineKind::Redis,
        host: Some("cache.example".into()),
        port: Some(7000),
        ..Default::default()
    };
    assert_eq!(
        config.server_url("UNSET_VARIABLE_FOR_TEST", "redis://127.0.0.1:6379/0"),
        "redis://cache.example:7000/0"
    );
    let port_only = hashstash::StashConfig {
        port: Some(27018),
        ..Default::default()
    };
    assert_eq!(
        port_only.server_url(
            "UNSET_VARIABLE_FOR_TEST",
            "mongodb://127.0.0.1:27017/hashstash"
        ),
        "mongodb://127.0.0.1:27018/hashstash"
    );
    let url_wins = hashstash::StashConfig {
        url: Some("redis://u:p@h:1/2".into()),
        port: Some(3),
        ..Default::default()
    };
    assert_eq!(
        url_wins.server_url("UNSET_VARIABLE_FOR_TEST", "redis://127.0.0.1:6379/0"),
        "redis://u:p@h:1/2"
    );
    assert_eq!(
        hashstash::config::redact_url("redis://u:p@h:1/2"),
        "redis://u:***@h:1/2"
    );
    assert_eq!(
        hashstash::config::redact_url("redis://:p@h:1/2"),
        "redis://:***@h:1/2"
    );
    assert_eq!(
        hashstash::config::redact_url("mongodb://h:1/db"),
        "mongodb://h:1/db"
    );
}

/// A free port whose cluster bus port (port + 10000) is free too.
#[cfg(feature = "redis")]
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_cluster_routes_every_stash_to_its_slot() {
    if !crate::common::engine_available(EngineKind::Redis) {
        return;
    }
    let server_bin =
        std::env::var("HASHSTASH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let cli_bin = Path::new(&server_bin).with_file_name("redis-cli");
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_cluster_port()).collect();
    let _nodes: Vec<Server> = ports
        .iter()
        .map(|port| {
            let p = port.to_string();
            let child = Command::new(&server_bin)
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &p,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{p}.conf"),
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("start a cluster node");
            let node = Server(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(Instant::now() < deadline, "a cluster node did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            node
        })
        .collect();
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new(&cli_bin)
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(created.success());
    let url = format!("redis://127.0.0.1:{}/?cluster=true", ports[0]);
    // The cluster takes a moment to agree on its slots.
    let stashes: Vec<Stash> = (0..12)
        .map(|i| {
            eventually(|| {
                Stash::builder()
                    .root_dir("cluster_test")
                    .dbname(format!("db{i}"))
                    .engine(EngineKind::Redis)
                    .url(url.clone())
                    .open()
            })
        })
        .collect();
    for (i, stash) in stashes.iter().enumerate() {
        stash.update((0..200).map(|k| (k, i * 1000 + k))).unwrap();
        stash.set("append me", &i).unwrap();
        assert!(stash.remove(&0).unwrap());
    }
    for (i, stash) in stashes.iter().enumerate() {
        assert_eq!(stash.len().unwrap(), 200);
        assert_eq!(stash.get::<_, usize>(&199).unwrap(), Some(i * 1000 + 199));
        assert_eq!(stash.keys::<serde_json::Value>().unwrap().count(), 200);
    }
    // Append mode and clearing work through the cluster client too.
    let versions = Stash::builder()
        .root_dir("cluster_test")
        .dbname("versions")
        .engine(EngineKind::Redis)
        .url(url.clone())
        .append_mode(true)
        .open()
        .unwrap();
    for v in 0..5 {
        versions.set("k", &v).unwrap();
    }
    let numbers: Vec<u64> = versions
        .get_all_with_metadata::<_, i32>("k")
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    versions.clear().unwrap();
    assert_eq!(versions.len().unwrap(), 0);
    assert!(versions.get_all::<_, i32>("k").unwrap().is_empty());
    // The stashes spread over more than one node.
    let used = ports
        .iter()
        .filter(|p| {
            let out = Command::new(&cli_bin)
                .args(["-p", &p.to_string(), "DBSIZE"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
                > 0
        })
        .count();
    assert!(used >= 2, "all stashes landed on one node");

    // Emptied, so that the one stash below is all there is.
    for stash in &stashes {
        stash.clear().unwrap();
    }
    one_stash_spreads_over_every_node(&url, &ports, &cli_bin);
    a_stash_kept_in_one_slot_stays_there(&url, &ports, &cli_bin);
}

/// `redis-cli -p <port> ...` on one node; its output.
#[cfg(feature = "redis")]
fn on_node(cli_bin: &Path, port: u16, args: &[&str]) -> String {
    let out = Command::new(cli_bin)
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many entries of spread stashes node `port` holds (the fields of the shards' hashes
/// there, tagged `{hs<digest of the namespace>.<shard>.<n>}`).
#[cfg(feature = "redis")]
fn entries_on_node(cli_bin: &Path, port: u16) -> u64 {
    on_node(cli_bin, port, &["--scan", "--pattern", "{hs*:entries"])
        .lines()
        .filter(|hash| !hash.is_empty())
        .map(|hash| {
            on_node(cli_bin, port, &["HLEN", hash])
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// One stash's entries on all three nodes, `len` their sum, and every operation working
/// across its shards.
#[cfg(feature = "redis")]
fn one_stash_spreads_over_every_node(url: &str, ports: &[u16], cli_bin: &Path) {
    let open = |append: bool| {
        Stash::builder()
            .root_dir("cluster_spread")
            .dbname(if append { "versions" } else { "main" })
            .engine(EngineKind::Redis)
            .url(url)
            .append_mode(append)
            .open()
            .unwrap()
    };
    let s = open(false);
    s.clear().unwrap();
    s.update((0..3000).map(|k| (k, k * 2))).unwrap();
    let per_node: Vec<u64> = ports.iter().map(|&p| entries_on_node(cli_bin, p)).collect();
    // Each node holds a third of the slots, and so about a third of the shards and
    // entries (64 shards, each in its own 64th of the slots).
    assert!(
        per_node.iter().all(|&n| n > 750),
        "entries per node: {per_node:?}"
    );
    assert_eq!(per_node.iter().sum::<u64>(), 3000);
    assert_eq!(s.len().unwrap(), 3000);

    // Reads, batches, removal, insert-if-absent, scans, across the shards.
    assert_eq!(s.get::<_, i64>(&2999).unwrap(), Some(5998));
    let keys: Vec<i64> = (0..3000).collect();
    let got = s.get_many::<_, i64, _>(&keys).unwrap();
    assert!(got
        .iter()
        .enumerate()
        .all(|(k, v)| *v == Some(k as i64 * 2)));
    assert!(s.contains(&17).unwrap());
    assert!(s.remove(&17).unwrap());
    assert!(!s.contains(&17).unwrap());
    assert_eq!(s.setdefault(&17, -1).unwrap(), -1);
    assert_eq!(s.setdefault(&18, -1).unwrap(), 36);
    let mut scanned: Vec<i64> = s.keys().unwrap().collect::<Result<_, _>>().unwrap();
    scanned.sort_unstable();
    assert_eq!(scanned, keys);
    #[cfg(feature = "sql")]
    {
        let shown = hashstash::table::sql::pretty(
            &s.sql("SELECT count(*) AS n, sum(_value) AS total FROM stash")
                .unwrap(),
        )
        .unwrap();
        let total: i64 = (0..3000).map(|k| k * 2).sum::<i64>() - 34 - 1;
        assert!(shown.contains(&format!("| 3000 | {total} |")), "{shown}");
    }
    // Expired entries go, from every shard.
    let expiring = Stash::builder()
        .root_dir("cluster_spread")
        .dbname("main")
        .engine(EngineKind::Redis)
        .url(url)
        .ttl_ms(1)
        .open()
        .unwrap();
    expiring.update((5000..5300).map(|k| (k, k))).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(s.prune_expired().unwrap(), 300);
    assert_eq!(s.len().unwrap(), 3000);

    // Append mode: each key's versions in its shard.
    let v = open(true);
    v.clear().unwrap();
    for round in 0..3 {
        v.update((0..200).map(|k| (k, k + round))).unwrap();
    }
    assert_eq!(v.get_all::<_, i32>(&150).unwrap(), [150, 151, 152]);
    assert_eq!(v.len().unwrap(), 200);
    v.clear().unwrap();
    assert_eq!(v.len().unwrap(), 0);
    assert!(v.get_all::<_, i32>(&150).unwrap().is_empty());
    s.clear().unwrap();
    let left: u64 = ports.iter().map(|&p| entries_on_node(cli_bin, p)).sum();
    assert_eq!(left, 0);
}

/// A stash a cluster holds whole in one slot (as before shards) is read where it is.
#[cfg(feature = "redis")]
fn a_stash_kept_in_one_slot_stays_there(url: &str, ports: &[u16], cli_bin: &Path) {
    let builder = || {
        Stash::builder()
            .root_dir("cluster_whole")
            .engine(EngineKind::Redis)
            .url(url)
    };
    let namespace = builder().open().unwrap().config().namespace();
    let whole = format!("{{{namespace}}}:entries");
    // The node that owns its slot takes the write (the others answer MOVED).
    let written = ports
        .iter()
        .filter(|&&p| on_node(cli_bin, p, &["HSET", &whole, "field", "record"]).trim() == "1")
        .count();
    assert_eq!(written, 1);
    let s = builder().open().unwrap();
    assert_eq!(s.len().unwrap(), 1, "the old hash is the stash");
    s.clear().unwrap();
    // The layout is recorded: emptied, the stash stays in its slot for every new handle.
    let again = builder().open().unwrap();
    again.set("k", &1).unwrap();
    let in_the_old_hash: u64 = ports
        .iter()
        .filter_map(|&p| {
            on_node(cli_bin, p, &["HLEN", &whole])
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(in_the_old_hash, 1);
    again.clear().unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_over_tls() {
    if !crate::common::engine_available(EngineKind::Redis) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        panic!("openssl could not make a test certificate");
    }
    let port = free_port();
    let server_bin =
        std::env::var("HASHSTASH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(server_bin)
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--save",
            "",
        ])
        .args(["--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key-file")
        .arg(dir.path().join("key.pem"))
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server with TLS");
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server with TLS did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A self-signed certificate: `#insecure` skips verification (never do that in production).
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Redis)
        .url(format!("rediss://127.0.0.1:{port}/0#insecure"))
        .open()
        .unwrap();
    stash.set("over tls", &[1, 2, 3]).unwrap();
    assert_eq!(
        stash.get::<_, Vec<i32>>("over tls").unwrap(),
        Some(vec![1, 2, 3])
    );
    // Verification is on by default: the self-signed certificate is refused.
    let verified = Stash::builder()
        .root_dir(dir.path())
        .dbname("verified")
        .engine(EngineKind::Redis)
        .url(format!("rediss://127.0.0.1:{port}/0"))
        .timeout_ms(2000)
        .open();
    assert!(verified.is_err());
}

#[test]
fn secrets_never_show() {
    use hashstash::config::redact_url;
    let cases = [
        ("redis://:pw1@a:7000,redis://:pw2@b:7001", "redis://:***@a:7000,redis://:***@b:7001"),
        ("redis://user:pa/ss?x@h:1/0", "redis://user:***@h:1/0"),
        (
            "mongodb://u:p@h/db?tlsCertificateKeyFilePassword=k&authMechanismProperties=AWS_SESSION_TOKEN:t&w=1",
            "mongodb://u:***@h/db?tlsCertificateKeyFilePassword=***&authMechanismProperties=***&w=1",
        ),
        ("redis+unix:///run/redis.sock?pass=pw&db=1", "redis+unix:///run/redis.sock?pass=***&db=1"),
        ("redis://h:1/0", "redis://h:1/0"),
    ];
    for (url, shown) in cases {
        assert_eq!(redact_url(url), shown);
    }
    // Nor in Debug or Display of a stash, or its dict.
    let dir = tempfile::tempdir().unwrap();
    let config = hashstash::StashConfig {
        root_dir: dir.path().into(),
        engine: EngineKind::Memory,
        url: Some("redis://:hunter2@h:1/0".into()),
        ..Default::default()
    };
    let stash = Stash::open_config(config, false).unwrap();
    let shown = format!("{stash} {stash:?} {:?} {}", stash.config(), stash.to_dict());
    assert!(!shown.contains("hunter2"), "{shown}");
}
