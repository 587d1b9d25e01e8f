//! SQLite and diskcache rows are checksummed whole (key, version, time, expiry, value), and
//! databases whose sums covered the value alone move to that layout on open, once.

use hashstash::{EngineKind, Error, Stash};
use rusqlite::Connection;
use std::path::PathBuf;

/// The SQLite file of a stash of `engine` (diskcache keeps its index inside its folder).
fn database(stash: &Stash) -> PathBuf {
    match stash.config().engine {
        EngineKind::Diskcache => stash.path().join("index.db"),
        _ => stash.path(),
    }
}

/// Turns the stash's database back into the layout before row checksums: `sum` of the value
/// alone, `user_version` 0. `victim`'s sum is made wrong, as a corrupt value's would be.
fn make_old_layout(db: &PathBuf, victim: &[u8]) {
    let conn = Connection::open(db).unwrap();
    let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT rowid, key, value FROM entries")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (rowid, key, value) in rows {
        let mut sum = xxhash_rust::xxh3::xxh3_64(&value) as i64;
        if key == victim {
            sum = sum.wrapping_add(1);
        }
        conn.execute("UPDATE entries SET sum = ?1 WHERE rowid = ?2", (sum, rowid))
            .unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 0").unwrap();
}

fn old_databases_move_to_row_checksums(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(engine)
        .append_mode(true)
        .open()
        .unwrap();
    for i in 0..300 {
        stash.set(&format!("k{i}"), &i).unwrap();
    }
    stash.set("k7", &7000).unwrap(); // a second version
    let victim = stash.encode_key("k13").unwrap();
    let (db, stash_dir) = (database(&stash), stash.stash_dir());
    drop(stash);
    make_old_layout(&db, &victim);

    let stash = Stash::builder().path(&stash_dir).open().unwrap();
    for i in (0..300).filter(|i| *i != 13 && *i != 7) {
        assert_eq!(
            stash.get::<_, i32>(&format!("k{i}")).unwrap(),
            Some(i),
            "{engine}"
        );
    }
    assert_eq!(
        stash.get_all::<_, i32>("k7").unwrap(),
        [7, 7000],
        "{engine}"
    );
    // A value that failed its old checksum fails its new one: never laundered.
    let err = stash.get::<_, i32>("k13").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{engine}: {err}");
    assert!(err.to_string().contains("checksum"), "{engine}: {err}");
    let layout: i64 = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(layout, 1, "{engine}: recorded once moved");
    // Writes after the move are read back, and a second open moves nothing again.
    stash.set("new", &1).unwrap();
    drop(stash);
    let stash = Stash::builder().path(&stash_dir).open().unwrap();
    assert_eq!(stash.get::<_, i32>("new").unwrap(), Some(1));
    assert_eq!(stash.get::<_, i32>("k299").unwrap(), Some(299));
    drop(stash);

    // A database of a later layout is refused with a clear error, not misread.
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 9")
        .unwrap();
    let err = Stash::builder().path(&stash_dir).open().unwrap_err();
    assert!(
        err.to_string().contains("newer hashstash"),
        "{engine}: {err}"
    );
}

#[test]
fn old_sqlite_databases_move_to_row_checksums() {
    old_databases_move_to_row_checksums(EngineKind::Sqlite);
}

#[cfg(feature = "diskcache")]
#[test]
fn old_diskcache_databases_move_to_row_checksums() {
    old_databases_move_to_row_checksums(EngineKind::Diskcache);
}
