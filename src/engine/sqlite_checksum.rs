//! Row checksums of the SQLite and diskcache engines, and the move of older databases to them.
//!
//! SQLite does not checksum its pages, so each row of `entries` carries `sum`, an xxh3
//! checksum of everything a reader hands on: the value and the key, version, write time and
//! expiry beside it. A flipped bit in a value is an error, and so is one in a key: a row
//! whose key changed from `k99` to `k69` would otherwise answer for `k69` with `k99`'s value.
//!
//! `sum = xxh3_64(value) XOR xxh3_64(key, seeded by version, time and expiry)`. The two
//! halves let a database made when `sum` covered the value alone (layout 0) move to this
//! layout (1) by reading only the small columns of each row: its new sum is its old one
//! XOR the key half, so a row whose value was already corrupt stays corrupt, never
//! laundered into a valid one. The layout is kept in SQLite's `user_version` header field;
//! the move happens once, on open, in one write transaction (see [`upgrade_checksums`]).

use crate::error::{Error, Result};
use rusqlite::{params, Connection};

/// The checksum layout this build writes and reads (`PRAGMA user_version`).
const LAYOUT: i64 = 1;

/// Rows moved per statement while a database moves to [`LAYOUT`].
const UPGRADE_PAGE: i64 = 4096;

/// What a row's checksum covers besides its value: every column a reader hands on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowMeta<'a> {
    /// The canonical key bytes.
    pub key: &'a [u8],
    /// The row's version (1 outside append mode).
    pub version: i64,
    /// The write time, µs since the Unix epoch.
    pub ts: i64,
    /// The expiry, µs since the Unix epoch; `None`: never.
    pub expires: Option<i64>,
}

impl RowMeta<'_> {
    /// The key half of the checksum: the key hashed with a seed made of the numbers.
    fn hash(&self) -> u64 {
        let mut numbers = [0u8; 25];
        numbers[..8].copy_from_slice(&self.version.to_le_bytes());
        numbers[8..16].copy_from_slice(&self.ts.to_le_bytes());
        numbers[16] = u8::from(self.expires.is_some());
        numbers[17..].copy_from_slice(&self.expires.unwrap_or(0).to_le_bytes());
        let seed = xxhash_rust::xxh3::xxh3_64(&numbers);
        xxhash_rust::xxh3::xxh3_64_with_seed(self.key, seed)
    }

    /// The checksum stored beside a row holding `value`.
    pub(crate) fn checksum(&self, value: &[u8]) -> i64 {
        (xxhash_rust::xxh3::xxh3_64(value) ^ self.hash()) as i64
    }

    /// `value` if the row matches its stored checksum `sum`, else a decode error naming
    /// the key bytes as stored.
    pub(crate) fn verified(
        &self,
        value: Vec<u8>,
        sum: i64,
        engine: &'static str,
    ) -> Result<Vec<u8>> {
        if self.checksum(&value) == sum {
            return Ok(value);
        }
        let shown: String = self
            .key
            .iter()
            .take(32)
            .map(|b| format!("{b:02x}"))
            .collect();
        Err(Error::decode(
            format!("{engine} entry with key bytes {shown}"),
            engine,
            "checksum mismatch (corrupt key, version, time, expiry or value bytes)",
        ))
    }
}

/// A row as the move reads it: `rowid, key, version, ts, expires, sum`.
type UpgradeRow = (i64, Vec<u8>, i64, i64, Option<i64>, i64);

/// Moves a database whose `sum` covers the value alone to [`LAYOUT`], once: under the write
/// lock, checked again there (another process may have moved it first), every row's sum is
/// XORed with its key half, and the layout recorded, in one transaction, so that a crash
/// leaves the database in one layout or the other. A new (empty) database only records the
/// layout. A database of a later layout is refused: this build would misread its sums.
pub(crate) fn upgrade_checksums(conn: &Connection) -> rusqlite::Result<()> {
    let layout = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    };
    match layout(conn)? {
        LAYOUT => return Ok(()),
        0 => {}
        later => return Err(newer_layout(later)),
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let moved = (|| {
        match layout(conn)? {
            LAYOUT => return Ok(()),
            0 => {}
            later => return Err(newer_layout(later)),
        }
        let mut after = i64::MIN;
        loop {
            let rows: Vec<UpgradeRow> = conn
                .prepare_cached(
                    "SELECT rowid, key, version, ts, expires, sum FROM entries \
                     WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?
                .query_map(params![after, UPGRADE_PAGE], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let mut update = conn.prepare_cached("UPDATE entries SET sum = ?1 WHERE rowid = ?2")?;
            for (rowid, key, version, ts, expires, sum) in &rows {
                let meta = RowMeta {
                    key,
                    version: *version,
                    ts: *ts,
                    expires: *expires,
                };
                update.execute(params![(*sum as u64 ^ meta.hash()) as i64, rowid])?;
            }
        }
        conn.execute_batch(&format!("PRAGMA user_version = {LAYOUT}"))
    })();
    match moved {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The error for a database written by a later build, in rusqlite's terms (the set-up that
/// calls [`upgrade_checksums`] speaks them).
fn newer_layout(layout: i64) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!(
            "the database's row checksums are of layout {layout}, newer than this build's \
             {LAYOUT}: open it with a newer hashstash"
        )
        .into(),
    )
}
