//! How one stash's entries spread over a Redis Cluster: shards, each its own hash tag.
//!
//! On one server a stash is one shard, tagged `{<namespace>}` as ever. On a cluster a stash
//! made by this version has [`CLUSTER_SHARDS`] shards; shard `i`'s tag is
//! `{hs<digest>.<i>.<j>}`, where `<digest>` is the namespace's xxh3-128 in hex (a namespace
//! is a path: it may hold `{`, `}` or look like another tag; a digest never does) and `j` is
//! the first number that puts the tag's slot in the `i`-th of `CLUSTER_SHARDS` equal ranges
//! of the 16,384 slots. A cluster gives each node
//! ranges of slots, so the shards spread over every node (up to `CLUSTER_SHARDS` nodes), in
//! proportion to the slots each holds, and one stash can outgrow one node's memory. A key's
//! shard is fixed by its digest: its entry and its version list live together, and every
//! script still touches one slot. Which layout a stash has is recorded once, in
//! `{<namespace>}:layout` (see `LAYOUT_SCRIPT`): a stash a cluster held whole in one slot
//! before shards (its hash or change counter exists) keeps that layout, every other stash
//! made on a cluster gets the shards, and every client reads the same record.
//!
//! Each shard has its own change counter; the stash's is their sum (each only grows, so the
//! sum moves whenever any shard changes). The format, catalog and leases stay under the
//! stash's own tag `{<namespace>}`.

use super::{Error, Result};
use std::sync::mpsc;

/// The shards of a stash made on a cluster.
pub(super) const CLUSTER_SHARDS: usize = 64;

/// The layout record of a stash kept whole in one slot.
pub(super) const WHOLE: &str = "whole";

/// The slots of a Redis Cluster.
const SLOTS: u32 = 16_384;

/// The threads a scan of a spread stash reads its shards with (the shards are spread over
/// the nodes, so each thread asks them all).
const SCAN_THREADS: usize = 4;

/// A stash's shards: the key prefix (`{tag}:`) of each.
#[derive(Debug)]
pub(super) struct Shards {
    prefixes: Vec<Vec<u8>>,
}

impl Shards {
    /// One shard under `prefix` (one server, or a stash kept in one slot).
    pub(super) fn one(prefix: Vec<u8>) -> Self {
        Shards {
            prefixes: vec![prefix],
        }
    }

    /// `count` shards (1 to 16,384) of the stash `namespace`, each in its own range of slots.
    pub(super) fn spread(namespace: &str, count: usize) -> Result<Self> {
        if !(1..=SLOTS as usize).contains(&count) {
            let why = format!("a stash cannot have {count} shards (1 to {SLOTS})");
            return Err(Error::engine("redis", why));
        }
        let digest = xxhash_rust::xxh3::xxh3_128(namespace.as_bytes());
        let prefixes = (0..count)
            .map(|i| {
                let low = i as u32 * SLOTS / count as u32;
                let high = (i as u32 + 1) * SLOTS / count as u32;
                // About `SLOTS / (high - low)` tries on average: a tag's slot is as good as
                // random. The bound only guards the loop.
                (0u32..1 << 24)
                    .map(|j| format!("{{hs{digest:032x}.{i}.{j}}}:").into_bytes())
                    .find(|prefix| (low..high).contains(&u32::from(slot(prefix))))
                    .ok_or_else(|| Error::engine("redis", format!("no tag for shard {i}")))
            })
            .collect::<Result<_>>()?;
        Ok(Shards { prefixes })
    }

    /// The shards a layout record names (see `LAYOUT_SCRIPT`): `whole` (one shard under
    /// `base`) or `shards:<count>`.
    pub(super) fn of_layout(layout: &str, base: &[u8], namespace: &str) -> Result<Self> {
        if layout == WHOLE {
            return Ok(Shards::one(base.to_vec()));
        }
        match layout.strip_prefix("shards:").map(str::parse::<usize>) {
            Some(Ok(count)) => Shards::spread(namespace, count),
            _ => Err(Error::engine(
                "redis",
                format!("the stash's layout is {layout:?}, which this version does not know"),
            )),
        }
    }

    pub(super) fn count(&self) -> usize {
        self.prefixes.len()
    }

    /// The shard of `key` (by its digest, so the same on every client).
    pub(super) fn of(&self, key: &[u8]) -> usize {
        if self.prefixes.len() == 1 {
            return 0;
        }
        let digest = super::super::key_digest(key);
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(head) % self.prefixes.len() as u64) as usize
    }

    /// The Redis key `<shard's prefix><parts...>`.
    pub(super) fn key(&self, shard: usize, parts: &[&[u8]]) -> Vec<u8> {
        let mut key = self.prefixes[shard].clone();
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// The indexes of `keys` grouped by shard, shards in order (each once, if it has any).
    pub(super) fn group(&self, keys: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.prefixes.len()];
        for (i, key) in keys.enumerate() {
            groups[self.of(key.as_ref())].push(i);
        }
        groups
    }
}

/// The cluster slot of a key, as Redis computes it: CRC16 (XMODEM) of its hash tag (what
/// lies between its first `{` and the next `}`, if not empty) or else of the whole key,
/// modulo 16,384.
pub(super) fn slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tag.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// A page of a scan: `(key, stored record)` pairs.
pub(super) type Page = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads the hashes `entries` (one per shard) on [`SCAN_THREADS`] threads, each with its own
/// connection from `client`, `page` fields at a time; the pages come out of the returned
/// channel as they are read (a few waiting at most), each field once per hash. Dropping the
/// receiver stops the threads after their current page.
pub(super) fn scan_in_parallel(
    client: &redis::cluster::ClusterClient,
    entries: Vec<Vec<u8>>,
    page: usize,
) -> Result<mpsc::Receiver<Result<Page>>> {
    let (sender, receiver) = mpsc::sync_channel(SCAN_THREADS * 2);
    for first in 0..SCAN_THREADS.min(entries.len()) {
        let (client, to_reader) = (client.clone(), sender.clone());
        let mine: Vec<Vec<u8>> = entries
            .iter()
            .skip(first)
            .step_by(SCAN_THREADS)
            .cloned()
            .collect();
        let spawned = std::thread::Builder::new()
            .name("hashstash-redis-scan".into())
            .spawn(move || scan_hashes(&client, &mine, page, &to_reader));
        // Threads already started end when the receiver is dropped with this error.
        spawned.map_err(|e| Error::engine("redis", e))?;
    }
    Ok(receiver)
}

/// One scan thread's work: each hash of `hashes` in turn, pages sent to `sender` (until it
/// is dropped) with repeats within a hash dropped.
fn scan_hashes(
    client: &redis::cluster::ClusterClient,
    hashes: &[Vec<u8>],
    page: usize,
    sender: &mpsc::SyncSender<Result<Page>>,
) {
    let fail = |e: redis::RedisError| Error::engine("redis", e);
    let mut conn = match client.get_connection() {
        Ok(conn) => conn,
        Err(e) => {
            let _ = sender.send(Err(fail(e)));
            return;
        }
    };
    for hash in hashes {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        loop {
            let fetched: redis::RedisResult<(u64, Vec<Vec<u8>>)> = redis::cmd("HSCAN")
                .arg(hash)
                .arg(cursor)
                .arg("COUNT")
                .arg(page)
                .query(&mut conn);
            let (next, flat) = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    let _ = sender.send(Err(fail(e)));
                    return;
                }
            };
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(key), Some(stored)) = (flat.next(), flat.next()) {
                if seen.insert(super::super::key_digest(&key)) {
                    pairs.push((key, stored));
                }
            }
            if !pairs.is_empty() && sender.send(Ok(pairs)).is_err() {
                return; // the reader is gone
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}
