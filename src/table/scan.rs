//! Reading a stash for a table, in parallel and in order, with bounded memory.
//!
//! ```text
//! reader thread --chunks of raw entries--> worker threads --results--> consumer, in stash order
//! ```
//!
//! One reader thread walks the engine (its scan, or point lookups for given keys) and hands
//! chunks of raw entries to worker threads, which decode them and turn them into a result (a
//! part of the schema, a record batch). Results come out in the order the reader read them,
//! so a parallel scan gives the same rows in the same order as a sequential one. At most a
//! few chunks are in flight: a slow consumer slows the reader, and a consumer that stops
//! (a `LIMIT`) stops it.

use super::flatten::{open_dataframes, visit_entry, MetaCells, RowMeta, RowSink};
use super::Versions;
use crate::codec::{self, Codec};
use crate::error::{Error, Result};
use crate::stash::Stash;
use crate::value::Value;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{mpsc as ordered, oneshot};

/// Entries in the first chunk: small, so that a `LIMIT 10` decodes little.
const FIRST_CHUNK: usize = 64;
/// Entries per chunk once a scan is under way (chunks grow 4x from the first).
pub const CHUNK: usize = 4096;
/// Chunks in flight per worker.
const IN_FLIGHT: usize = 2;

/// Which entries a scan reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Every entry.
    All,
    /// The entries of these canonical key bytes, those that exist, in this order.
    Keys(Vec<Vec<u8>>),
}

/// One entry as stored: key bytes and the value bytes of each version that becomes rows.
struct RawEntry {
    key: Vec<u8>,
    versions: Vec<(Option<RowMeta>, Vec<u8>)>,
}

/// One decoded entry, with its DataFrames opened.
pub struct Entry {
    key: Value,
    versions: Vec<(Option<MetaCells>, Value)>,
}

impl Entry {
    /// Feeds the entry's rows (every version it carries) to `sink`.
    pub fn visit<'v>(&'v self, sink: &mut impl RowSink<'v>) {
        for (meta, value) in &self.versions {
            visit_entry(&self.key, value, meta.as_ref(), sink);
        }
    }
}

/// The work done on each chunk of decoded entries.
pub type Work<T> = dyn Fn(&[Entry]) -> Result<T> + Send + Sync;

/// Results of a running scan, in stash order.
pub struct Pipeline<T> {
    results: ordered::Receiver<oneshot::Receiver<Result<T>>>,
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts reading `source` from `stash`, applying `work` to each chunk.
    pub fn start(
        stash: Stash,
        source: Source,
        versions: Versions,
        work: Arc<Work<T>>,
    ) -> Result<Self> {
        let workers = match source {
            Source::All => std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
            Source::Keys(_) => 1,
        };
        let (order_tx, results) = ordered::channel(workers * IN_FLIGHT);
        let (work_tx, work_rx) =
            mpsc::sync_channel::<(Vec<RawEntry>, oneshot::Sender<Result<T>>)>(workers * IN_FLIGHT);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let codec = stash.codec();
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let work = Arc::clone(&work);
            spawn("hashstash-decode", move || loop {
                // Waiting under the lock is fine: the other workers would wait anyway.
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((chunk, done)) = next else { return };
                let _ = done.send(decode(codec, chunk).and_then(|entries| work(&entries)));
            })?;
        }
        spawn("hashstash-read", move || {
            read(&stash, &source, versions, &order_tx, &work_tx);
        })?;
        Ok(Pipeline { results })
    }

    /// The next result; `None` at the end. Blocks: call it outside async code.
    pub fn blocking_next(&mut self) -> Option<Result<T>> {
        let result = self.results.blocking_recv()?;
        Some(result.blocking_recv().unwrap_or_else(|_| Err(stopped())))
    }

    /// The next result; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T>> {
        let result = self.results.recv().await?;
        Some(result.await.unwrap_or_else(|_| Err(stopped())))
    }
}

fn stopped() -> Error {
    Error::engine("table", "a worker reading the stash stopped")
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| Error::engine("table", e))
}

/// The reader thread: chunks of raw entries to the workers, one result slot per chunk to
/// the consumer. Returns when the entries end, on an error (passed on as the last result),
/// or when the consumer is gone.
fn read<T>(
    stash: &Stash,
    source: &Source,
    versions: Versions,
    order_tx: &ordered::Sender<oneshot::Receiver<Result<T>>>,
    work_tx: &mpsc::SyncSender<(Vec<RawEntry>, oneshot::Sender<Result<T>>)>,
) {
    let dispatch = |chunk: Vec<RawEntry>| {
        let (done, result) = oneshot::channel();
        order_tx.blocking_send(result).is_ok() && work_tx.send((chunk, done)).is_ok()
    };
    let fail = |e: Error| {
        let (done, result) = oneshot::channel();
        let _ = done.send(Err(e));
        let _ = order_tx.blocking_send(result);
    };
    let entries = match raw_entries(stash, source, versions) {
        Ok(entries) => entries,
        Err(e) => return fail(e),
    };
    let mut size = FIRST_CHUNK;
    let mut chunk = Vec::with_capacity(size);
    for entry in entries {
        match entry {
            Ok(entry) => chunk.push(entry),
            Err(e) => {
                if !chunk.is_empty() && !dispatch(chunk) {
                    return;
                }
                return fail(e);
            }
        }
        if chunk.len() >= size {
            if !dispatch(chunk) {
                return;
            }
            size = (size * 4).min(CHUNK);
            chunk = Vec::with_capacity(size);
        }
    }
    if !chunk.is_empty() {
        dispatch(chunk);
    }
}

type RawEntries<'a> = Box<dyn Iterator<Item = Result<RawEntry>> + 'a>;

/// The raw entries of `source`: one version each, or in append mode the latest (or every)
/// version with its metadata.
fn raw_entries<'a>(
    stash: &'a Stash,
    source: &'a Source,
    versions: Versions,
) -> Result<RawEntries<'a>> {
    let engine = stash.engine();
    if !stash.config().append_mode {
        return Ok(match source {
            Source::All => Box::new(engine.scan()?.map(|item| {
                item.map(|(key, value)| RawEntry {
                    key,
                    versions: vec![(None, value)],
                })
            })),
            Source::Keys(keys) => {
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let values = engine.get_many(&refs)?;
                Box::new(keys.iter().zip(values).filter_map(|(key, value)| {
                    value.map(|value| {
                        Ok(RawEntry {
                            key: key.clone(),
                            versions: vec![(None, value)],
                        })
                    })
                }))
            }
        });
    }
    let with_versions = move |key: Vec<u8>| -> Option<Result<RawEntry>> {
        let mut stored = match engine.versions(&key) {
            Ok(stored) => stored,
            Err(e) => return Some(Err(e)),
        };
        if versions == Versions::Latest && stored.len() > 1 {
            stored.drain(..stored.len() - 1);
        }
        // A key removed since the scan listed it has no versions, and no rows.
        (!stored.is_empty()).then(|| {
            let versions = stored
                .into_iter()
                .map(|v| {
                    let meta = RowMeta {
                        version: v.version,
                        timestamp: v.timestamp_micros as f64 / 1e6,
                    };
                    (Some(meta), v.value)
                })
                .collect();
            Ok(RawEntry { key, versions })
        })
    };
    Ok(match source {
        Source::All => Box::new(engine.scan()?.filter_map(move |item| match item {
            Ok((key, _latest)) => with_versions(key),
            Err(e) => Some(Err(e)),
        })),
        Source::Keys(keys) => Box::new(keys.iter().filter_map(move |k| with_versions(k.clone()))),
    })
}

fn decode(codec: Codec, chunk: Vec<RawEntry>) -> Result<Vec<Entry>> {
    chunk
        .into_iter()
        .map(|raw| {
            let versions = raw
                .versions
                .into_iter()
                .map(|(meta, bytes)| {
                    let value = open_dataframes(codec.decode_value_dyn(&bytes)?)?;
                    Ok((meta.map(|m| m.cells()), value))
                })
                .collect::<Result<_>>()?;
            Ok(Entry {
                key: codec::decode_key_dyn(&raw.key)?,
                versions,
            })
        })
        .collect()
}
