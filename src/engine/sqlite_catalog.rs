//! The change counter of the SQLite and diskcache engines (see [`super::catalog`]): one row,
//! raised by every transaction that changes entries, in that transaction, so that it commits
//! (or rolls back) with them. Readers of any process see it as they see the entries.

use super::sqlite::sql_err;
use crate::error::Result;
use rusqlite::{Connection, OptionalExtension};

/// Creates the counter's table (part of the idempotent set-up on open; the row comes with
/// the first write, and no row reads as 0).
pub(crate) fn create_counter(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS generation (
            id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);",
    )
}

/// Raises the counter, inside the caller's write transaction.
pub(crate) fn bump(conn: &Connection) -> Result<()> {
    // An upsert: a counter row deleted by hand comes back rather than staying put.
    conn.prepare_cached(
        "INSERT INTO generation(id, n) VALUES (0, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1",
    )
    .and_then(|mut stmt| stmt.execute([]))
    .map(drop)
    .map_err(sql_err)
}

/// The counter's value (0 if its row is gone).
pub(crate) fn read(conn: &Connection) -> Result<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT n FROM generation WHERE id = 0")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    Ok(n.unwrap_or(0) as u64)
}
