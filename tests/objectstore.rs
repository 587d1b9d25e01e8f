//! The object-storage engine beyond the conformance suite: a local folder as the store,
//! the store's options in the URL, a dead endpoint, and secrets kept out of what it prints.

use hashstash::engine::EngineExt;
use hashstash::{EngineKind, Error, Stash};
use std::time::{Duration, Instant};

fn file_url(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

/// `file://` keeps a stash as objects in a local folder: one object per entry (or version),
/// created once per version; a removal leaves nothing behind; insert-if-absent and leases
/// are create-only writes.
#[test]
fn a_local_folder_is_a_store() {
    let store = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let open = |append: bool| {
        Stash::builder()
            .engine(EngineKind::ObjectStore)
            .url(file_url(store.path()))
            .root_dir(root.path())
            .append_mode(append)
            .dbname(if append { "versions" } else { "main" })
            .open()
            .unwrap()
    };
    let s = open(false);
    s.set("a", &1).unwrap();
    s.set("a", &2).unwrap();
    s.set("b", &3).unwrap();
    assert_eq!(s.get::<_, i32>("a").unwrap(), Some(2));
    assert_eq!(s.len().unwrap(), 2);
    assert_eq!(s.setdefault("a", 9).unwrap(), 2);
    assert_eq!(s.setdefault("c", 4).unwrap(), 4);
    assert!(s.remove("b").unwrap());
    assert!(!s.remove("b").unwrap(), "removed once");
    let mut keys: Vec<String> = s.keys().unwrap().collect::<Result<_, _>>().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "c"]);

    let objects = |dir: &std::path::Path| -> usize {
        fn walk(dir: &std::path::Path, n: &mut usize) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), n);
                } else {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(dir, &mut n);
        n
    };
    // Two entries, the format record and the change counter.
    assert_eq!(objects(store.path()), 4);

    let v = open(true);
    v.set("k", &1).unwrap();
    v.set("k", &2).unwrap();
    assert_eq!(v.get_all::<_, i32>("k").unwrap(), [1, 2]);
    assert!(v.remove("k").unwrap());
    assert_eq!(v.get::<_, i32>("k").unwrap(), None);

    let leases = s.engine().leases().expect("leases");
    let ttl = Duration::from_secs(60);
    assert!(leases.try_lease(b"job", b"me", ttl).unwrap());
    assert!(!leases.try_lease(b"job", b"you", ttl).unwrap(), "held");
    assert!(leases.renew_lease(b"job", b"me", ttl).unwrap());
    leases.release_lease(b"job", b"me").unwrap();
    assert!(leases.try_lease(b"job", b"you", ttl).unwrap(), "released");
    assert!(leases.try_lease(b"old", b"me", Duration::ZERO).unwrap());
    assert!(
        leases.try_lease(b"old", b"you", ttl).unwrap(),
        "an expired lease is taken over"
    );
}

/// A store that does not answer fails a call with a typed error within the timeout, and
/// neither that error nor the stash's `Debug` shows the secret the client signs with.
#[test]
fn a_dead_endpoint_is_a_typed_error_in_time_and_secrets_stay_hidden() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again: nothing listens there
    let secret = "not-to-be-printed-42";
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let opened = Stash::builder()
        .engine(EngineKind::ObjectStore)
        .url(format!(
            "s3://hashstash/x?endpoint=http://127.0.0.1:{port}&allow_http=true\
             &access_key_id=id&secret_access_key={secret}&region=us-east-1"
        ))
        .root_dir(root.path())
        .timeout_ms(1000)
        .open();
    let error = match opened {
        Ok(stash) => {
            assert!(!format!("{stash:?}").contains(secret));
            stash.set("k", &1).unwrap_err()
        }
        Err(error) => error,
    };
    assert!(
        matches!(
            error,
            Error::Engine {
                engine: "objectstore",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains(secret), "{error}");
    assert!(!format!("{error:?}").contains(secret));
    // Bounded by the timeout and the client's few retries, not by the machine's speed.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A URL the engine cannot use is a typed error naming the option.
#[test]
fn a_bad_url_or_option_is_refused() {
    let root = tempfile::tempdir().unwrap();
    for url in [
        "ftp://host/x",
        "s3://hashstash/x?no_such_option=1",
        "not a url",
    ] {
        let error = Stash::builder()
            .engine(EngineKind::ObjectStore)
            .url(url)
            .root_dir(root.path())
            .open()
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidOption { option: "url", .. }),
            "{url}: {error:?}"
        );
    }
}
