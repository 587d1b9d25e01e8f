//! Server faults: a stopped, frozen or restarted server gives errors within the timeout, and
//! the same handle works again when the server is back. Each test runs a server of its own.

use hashstash::{EngineKind, Stash};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private redis-server on `port`, from `$HASHSTASH_REDIS_SERVER` or the PATH.
fn start_redis(port: u16, dir: &std::path::Path) -> Child {
    let bin = std::env::var("HASHSTASH_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let child = Command::new(bin)
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// How long an operation against a dead or frozen server may take: the timeout, plus
/// generous slack for a slow machine. What is tested is that it ends, with an error.
fn bound(timeout: Duration) -> Duration {
    timeout * 10 + Duration::from_secs(10)
}

#[test]
fn redis_faults_are_errors_within_the_timeout_and_the_handle_recovers() {
    if !crate::common::engine_available(EngineKind::Redis) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_redis(port, dir.path());
    let timeout = Duration::from_millis(500);
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Redis)
        .url(format!("redis://127.0.0.1:{port}/0"))
        .timeout_ms(timeout.as_millis() as u64)
        .open()
        .unwrap();
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
    assert!(
        matches!(
            err,
            hashstash::Error::Engine {
                engine: "redis",
                ..
            }
        ),
        "{err}"
    );
    signal(&server, "-CONT");
    let mut recovered = None;
    for _ in 0..50 {
        if let Ok(v) = stash.get::<_, i32>("before") {
            recovered = v;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(recovered, Some(1), "works again after the freeze");

    // Killed: errors at once (connection refused), then recovery on restart.
    server.kill().unwrap();
    server.wait().unwrap();
    let start = Instant::now();
    assert!(stash.set("during", &2).is_err());
    assert!(stash.len().is_err());
    assert!(
        start.elapsed() < bound(timeout) * 2,
        "took {:?}",
        start.elapsed()
    );
    let mut server = start_redis(port, dir.path());
    stash.set("after", &3).unwrap();
    assert_eq!(stash.get::<_, i32>("after").unwrap(), Some(3));
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn redis_unreachable_server_fails_within_the_timeout() {
    if !crate::common::engine_available(EngineKind::Redis) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Redis)
        .url(format!("redis://:secret-password@127.0.0.1:{port}/0"))
        .timeout_ms(300)
        .open();
    // Opening checks the recorded format on the server, so it is what fails here.
    let err = stash.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains(&port.to_string()), "{shown}");
    assert!(
        !shown.contains("secret-password"),
        "the password leaked: {shown}"
    );
}

#[test]
fn redis_namespaces_keep_stashes_apart() {
    if !crate::common::engine_available(EngineKind::Redis) {
        return;
    }
    let (_a, one) = crate::common::stash(EngineKind::Redis);
    let (_b, two) = crate::common::stash(EngineKind::Redis);
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
    assert!(shown.starts_with("RedisStash(redis://"), "{shown}");
}
