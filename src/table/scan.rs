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
//! stops it. With a limit (a `LIMIT n` DataFusion pushes down) the reader reads `n` entries,
//! and then more only when the consumer asks for another result: a `LIMIT 10` reads about
//! ten entries. Every entry read counts in the stash's [`Stats::scanned`](crate::Stats).

use super::cell::Cell;
use super::flatten::{
    has_dataframe, open_dataframes, table_key, visit_entry_reusing, MetaCells, RowMeta, RowSink,
};
use super::Versions;
use crate::codec::msgpack::Scalar;
use crate::codec::{self, msgpack, Codec, Serializer};
use crate::engine::EngineExt;
use crate::error::{Error, Result};
use crate::stash::Stash;
use ciborium::Value;
use std::ops::{Range, RangeInclusive};
use std::sync::{mpsc, Arc, Condvar, Mutex};
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
    /// The entries whose latest version was written within the window (a filter on
    /// `_timestamp`, read through [`History::scan_written`](crate::engine::History::scan_written)).
    Written(crate::engine::TimeWindow),
}

/// Which versions of each entry become rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RowVersions {
    /// The latest, every one, or as of a moment.
    pub versions: Versions,
    /// Of those, only the versions numbered within this range: a filter on `_version` (append
    /// mode), applied before any value is decoded.
    pub numbers: RangeInclusive<u64>,
}

/// Every version number: no filter on `_version`.
pub const EVERY_NUMBER: RangeInclusive<u64> = 0..=u64::MAX;

impl From<Versions> for RowVersions {
    fn from(versions: Versions) -> Self {
        RowVersions {
            versions,
            numbers: EVERY_NUMBER,
        }
    }
}

impl RowVersions {
    /// Whether no version is left out by its number.
    pub fn every_number(&self) -> bool {
        self.numbers == EVERY_NUMBER
    }
}

/// One entry as stored: key bytes and the value bytes of each version that becomes rows.
struct RawEntry {
    key: Vec<u8>,
    versions: Vec<(Option<RowMeta>, Vec<u8>)>,
}

/// Raw entries copied into one buffer, so that a chunk is a few allocations, not a few per
/// entry (and the engine's buffers are freed on the thread that made them).
#[derive(Default)]
struct RawChunk {
    bytes: Vec<u8>,
    /// Each entry's key bytes and its versions (a range of `versions`).
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Each version's metadata and value bytes.
    versions: Vec<(Option<RowMeta>, Range<usize>)>,
}

impl RawChunk {
    fn with_capacity(entries: usize) -> Self {
        RawChunk {
            bytes: Vec::with_capacity(entries * 128),
            entries: Vec::with_capacity(entries),
            versions: Vec::with_capacity(entries),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn push<'b>(
        &mut self,
        key: &[u8],
        versions: impl IntoIterator<Item = (Option<RowMeta>, &'b [u8])>,
    ) {
        let first = self.versions.len();
        for (meta, value) in versions {
            let range = self.append(value);
            self.versions.push((meta, range));
        }
        let key = self.append(key);
        self.entries.push((key, first..self.versions.len()));
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

/// A decoded chunk: its entries, and one buffer for all their MessagePack bytes.
pub struct Decoded {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    versions: Vec<(Option<MetaCells>, Payload)>,
}

impl Decoded {
    /// How many rows these entries make (one per version).
    pub fn rows(&self) -> usize {
        self.versions.len()
    }
}

/// One decoded entry: its key and its versions (a range of [`Decoded`]'s).
struct Entry {
    key: TableKey,
    versions: Range<usize>,
}

/// The key of a decoded entry: text (the usual key) in the chunk's buffer, so that a chunk
/// allocates nothing per key, or any other key decoded.
enum TableKey {
    Text(Range<usize>),
    Value(Value),
}

/// A decoded value: MessagePack bytes in the chunk's buffer (walked as they are, checked as
/// they are read), or a [`Value`] with its DataFrames opened.
enum Payload {
    Msgpack(Range<usize>),
    Value(Value),
}

impl Decoded {
    /// Feeds the rows of every entry (every version each carries) to `sink`; an error if
    /// MessagePack bytes turn out to be corrupt.
    pub fn visit<'v>(&'v self, sink: &mut impl RowSink<'v>) -> Result<()> {
        let mut names = String::with_capacity(64);
        for entry in &self.entries {
            let versions = self
                .versions
                .get(entry.versions.clone())
                .unwrap_or_default();
            for (meta, value) in versions {
                let cell = match value {
                    Payload::Msgpack(range) => {
                        Cell::Msgpack(self.bytes.get(range.clone()).unwrap_or_default())
                    }
                    Payload::Value(value) => Cell::Value(value),
                };
                let key = match &entry.key {
                    // The text was checked as UTF-8 when the chunk was decoded.
                    TableKey::Text(range) => Cell::Scalar(Scalar::Text(
                        msgpack::utf8(self.bytes.get(range.clone()).unwrap_or_default())
                            .unwrap_or_default(),
                    )),
                    TableKey::Value(value) => Cell::Value(value),
                };
                visit_entry_reusing(key, cell, meta.as_ref(), sink, &mut names).map_err(|e| {
                    let key = crate::value::cbor_to_json(&key.to_value());
                    Error::decode(format!("value of key {key}"), "hashstash", e)
                })?;
            }
        }
        Ok(())
    }
}

/// The work done on each chunk of decoded entries.
pub type Work<T> = dyn Fn(&Decoded) -> Result<T> + Send + Sync;

/// Results of a running scan, in stash order.
pub struct Pipeline<T> {
    results: ordered::Receiver<oneshot::Receiver<Result<T>>>,
    demand: Option<Arc<Demand>>,
}

/// How many results the consumer of a limited scan has asked for, and whether it is gone:
/// the reader waits on it before reading past its limit.
#[derive(Default)]
struct Demand {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Demand {
    fn update(&self, f: impl FnOnce(&mut (usize, bool))) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_all();
    }

    /// Waits until result `n` (counting from 1) is asked for; false once the consumer is gone.
    fn wait_for(&self, n: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match *state {
                (_, true) => return false,
                (asked, false) if asked >= n => return true,
                _ => state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }
}

impl<T> Drop for Pipeline<T> {
    fn drop(&mut self) {
        if let Some(demand) = &self.demand {
            demand.update(|state| state.1 = true);
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Starts reading `source` from `stash`, applying `work` to each chunk.
    pub fn start(
        stash: Stash,
        source: Source,
        versions: impl Into<RowVersions>,
        work: Arc<Work<T>>,
    ) -> Result<Self> {
        Self::start_limited(stash, source, versions, work, None)
    }

    /// [`Pipeline::start`] for a consumer that needs about `limit` entries' rows: the
    /// reader reads that many, then more only as the consumer asks for more results.
    pub fn start_limited(
        stash: Stash,
        source: Source,
        versions: impl Into<RowVersions>,
        work: Arc<Work<T>>,
        limit: Option<usize>,
    ) -> Result<Self> {
        let versions = versions.into();
        let workers = match (&source, limit) {
            (Source::Keys(_), _) | (_, Some(_)) => 1,
            (Source::All | Source::Written(_), None) => {
                std::thread::available_parallelism().map_or(2, |n| n.get().min(8))
            }
        };
        let demand = limit.map(|_| Arc::new(Demand::default()));
        let (order_tx, results) = ordered::channel(workers * IN_FLIGHT);
        let (work_tx, work_rx) =
            mpsc::sync_channel::<(RawChunk, oneshot::Sender<Result<T>>)>(workers * IN_FLIGHT);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let arguments = crate::memo::is_function_dbname(&stash.config().dbname);
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let work = Arc::clone(&work);
            let stash = stash.clone();
            spawn("hashstash-decode", move || loop {
                // Waiting under the lock is fine: the other workers would wait anyway.
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((chunk, done)) = next else { return };
                let _ =
                    done.send(decode(&stash, arguments, chunk).and_then(|entries| work(&entries)));
            })?;
        }
        let budget = limit.zip(demand.clone());
        spawn("hashstash-read", move || {
            read(&stash, &source, versions, &order_tx, &work_tx, budget);
        })?;
        Ok(Pipeline { results, demand })
    }

    /// Tells a limited scan's reader that one more result is wanted.
    fn ask(&self) {
        if let Some(demand) = &self.demand {
            demand.update(|state| state.0 += 1);
        }
    }

    /// The next result; `None` at the end. Blocks: call it outside async code.
    pub fn blocking_next(&mut self) -> Option<Result<T>> {
        self.ask();
        let result = self.results.blocking_recv()?;
        Some(result.blocking_recv().unwrap_or_else(|_| Err(stopped())))
    }

    /// The next result; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T>> {
        self.ask();
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
    versions: RowVersions,
    order_tx: &ordered::Sender<oneshot::Receiver<Result<T>>>,
    work_tx: &mpsc::SyncSender<(RawChunk, oneshot::Sender<Result<T>>)>,
    budget: Option<(usize, Arc<Demand>)>,
) {
    let first = budget
        .as_ref()
        .map_or(FIRST_CHUNK, |(limit, _)| (*limit).clamp(1, CHUNK));
    let mut chunker = Chunker {
        chunk: RawChunk::with_capacity(first),
        size: first,
        order_tx,
        work_tx,
        stash,
        dispatched: 0,
        budget: budget.map(|(limit, demand)| Budget {
            limit: limit.max(1),
            left: limit.max(1),
            demand,
        }),
    };
    let plain = !stash.config().append_mode && !versions.versions.needs_times();
    let read = if plain && *source == Source::All {
        // The common case: the engine's scan, its bytes copied straight into the chunk.
        let mut failed = None;
        let scanned = stash.engine().scan_each(&mut |entry| match entry {
            Ok((key, value)) => chunker.add(key, [(None, value)]),
            Err(e) => match stash.skip_or_fail(e) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        });
        failed.map_or(scanned, Err)
    } else {
        raw_entries(stash, source, versions).and_then(|entries| {
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) => {
                        stash.skip_or_fail(e)?;
                        continue;
                    }
                };
                let versions = entry.versions.iter().map(|(m, v)| (*m, v.as_slice()));
                if !chunker.add(&entry.key, versions) {
                    break;
                }
            }
            Ok(())
        })
    };
    match read {
        Ok(()) => chunker.finish(),
        Err(e) => chunker.fail(e),
    }
}

/// Gathers raw entries into chunks and hands each full chunk over.
struct Chunker<'a, T> {
    chunk: RawChunk,
    size: usize,
    order_tx: &'a ordered::Sender<oneshot::Receiver<Result<T>>>,
    work_tx: &'a mpsc::SyncSender<(RawChunk, oneshot::Sender<Result<T>>)>,
    stash: &'a Stash,
    /// Chunks handed over so far.
    dispatched: usize,
    budget: Option<Budget>,
}

/// A limited scan's entries still to read before it waits for the consumer.
struct Budget {
    limit: usize,
    left: usize,
    demand: Arc<Demand>,
}

impl<T> Chunker<'_, T> {
    /// Adds one entry; false once the consumer is gone (reading should stop).
    fn add<'b>(
        &mut self,
        key: &[u8],
        versions: impl IntoIterator<Item = (Option<RowMeta>, &'b [u8])>,
    ) -> bool {
        self.chunk.push(key, versions);
        if let Some(budget) = &mut self.budget {
            budget.left -= 1;
            if budget.left == 0 {
                budget.left = budget.limit;
                let demand = Arc::clone(&budget.demand);
                let full = std::mem::replace(&mut self.chunk, RawChunk::with_capacity(self.size));
                // Read on only once the consumer asks for a result beyond those handed over.
                return self.dispatch(full) && demand.wait_for(self.dispatched + 1);
            }
        }
        if self.chunk.len() < self.size {
            return true;
        }
        self.size = (self.size * 4).min(CHUNK);
        let full = std::mem::replace(&mut self.chunk, RawChunk::with_capacity(self.size));
        self.dispatch(full)
    }

    fn dispatch(&mut self, chunk: RawChunk) -> bool {
        self.stash.counters().scanned(chunk.len());
        self.dispatched += 1;
        let (done, result) = oneshot::channel();
        self.order_tx.blocking_send(result).is_ok() && self.work_tx.send((chunk, done)).is_ok()
    }

    /// Hands over what is left.
    fn finish(mut self) {
        if self.chunk.len() > 0 {
            let rest = std::mem::take(&mut self.chunk);
            self.dispatch(rest);
        }
    }

    /// Hands over what was read, then the error, as the last result.
    fn fail(mut self, e: Error) {
        if self.chunk.len() > 0 {
            let rest = std::mem::take(&mut self.chunk);
            if !self.dispatch(rest) {
                return;
            }
        }
        let (done, result) = oneshot::channel();
        let _ = done.send(Err(e));
        let _ = self.order_tx.blocking_send(result);
    }
}

type RawEntries<'a> = Box<dyn Iterator<Item = Result<RawEntry>> + 'a>;

/// The raw entries of `source` (except a full scan outside append mode, which
/// [`Engine::scan_each`](crate::engine::Engine::scan_each) reads): one version each, or in
/// append mode the latest (or every) version with its metadata.
fn raw_entries<'a>(
    stash: &'a Stash,
    source: &'a Source,
    versions: RowVersions,
) -> Result<RawEntries<'a>> {
    let engine = stash.engine();
    let append_mode = stash.config().append_mode;
    if !append_mode && !versions.versions.needs_times() {
        let keys = match source {
            Source::Keys(keys) => keys,
            Source::Written(window) => {
                return Ok(Box::new(engine.history()?.scan_written(*window)?.map(
                    |item| {
                        item.map(|e| RawEntry {
                            key: e.key,
                            versions: vec![(None, e.value)],
                        })
                    },
                )));
            }
            Source::All => {
                return Err(Error::engine("table", "a full scan is read with scan_each"))
            }
        };
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let values = engine.get_many(&refs)?;
        return Ok(Box::new(keys.iter().zip(values).filter_map(
            |(key, value)| {
                value.map(|value| {
                    Ok(RawEntry {
                        key: key.clone(),
                        versions: vec![(None, value)],
                    })
                })
            },
        )));
    }
    let with_versions = move |key: Vec<u8>| -> Option<Result<RawEntry>> {
        let mut stored = match engine.history().and_then(|h| h.versions(&key)) {
            Ok(stored) => stored,
            Err(e) => return Some(Err(e)),
        };
        versions.versions.select(&mut stored);
        if append_mode && !versions.every_number() {
            stored.retain(|v| versions.numbers.contains(&v.version));
        }
        // A key removed since the scan listed it has no versions, and no rows (nor has one
        // first written after an as-of moment).
        (!stored.is_empty()).then(|| {
            let versions = stored
                .into_iter()
                .map(|v| {
                    // Outside append mode (as of a moment) rows have no version columns.
                    let meta = append_mode.then(|| RowMeta {
                        version: v.version,
                        timestamp: v.timestamp_micros as f64 / 1e6,
                    });
                    (meta, v.value)
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
        Source::Written(window) => Box::new(engine.history()?.scan_written(*window)?.filter_map(
            move |item| match item {
                Ok(entry) => with_versions(entry.key),
                Err(e) => Some(Err(e)),
            },
        )),
    })
}

/// Decodes a chunk; `arguments`: the stash holds function results, whose keys become
/// argument columns. An entry that does not decode fails the chunk with an error naming it,
/// or under [`OnCorrupt::Skip`](crate::OnCorrupt::Skip) is left out.
fn decode(stash: &Stash, arguments: bool, chunk: RawChunk) -> Result<Decoded> {
    let codec = stash.codec();
    let check_whole = stash.on_corrupt() == crate::OnCorrupt::Skip;
    let raw = |range: &Range<usize>| chunk.bytes.get(range.clone()).unwrap_or_default();
    let mut decoded = Decoded {
        bytes: Vec::with_capacity(chunk.bytes.len() * 2),
        entries: Vec::with_capacity(chunk.entries.len()),
        versions: Vec::with_capacity(chunk.versions.len()),
    };
    for (key, versions) in &chunk.entries {
        let (first, bytes) = (decoded.versions.len(), decoded.bytes.len());
        let mut entry = || -> Result<TableKey> {
            for (meta, value) in chunk.versions.get(versions.clone()).unwrap_or_default() {
                let payload = decode_value(codec, raw(value), check_whole, &mut decoded.bytes)?;
                decoded.versions.push((meta.map(|m| m.cells()), payload));
            }
            // A text key (not a function stash's arguments) is kept as bytes in the buffer.
            if !arguments {
                if let Some(text) = crate::codec::cbor_text(raw(key)) {
                    let start = decoded.bytes.len();
                    decoded.bytes.extend_from_slice(text.as_bytes());
                    return Ok(TableKey::Text(start..decoded.bytes.len()));
                }
            }
            table_key(raw(key), arguments).map(TableKey::Value)
        };
        match entry() {
            Ok(key) => decoded.entries.push(Entry {
                key,
                versions: first..decoded.versions.len(),
            }),
            Err(e) => {
                stash.skip_or_fail(e.for_entry(raw(key)))?;
                decoded.versions.truncate(first);
                decoded.bytes.truncate(bytes);
            }
        }
    }
    Ok(decoded)
}

/// MessagePack values stay bytes, appended to `buffer`, unless they hold a DataFrame, which
/// is opened; other serializers' values are decoded. `check_whole`: validate every value
/// here, so that a corrupt one can be skipped before any of its rows are made.
fn decode_value(
    codec: Codec,
    stored: &[u8],
    check_whole: bool,
    buffer: &mut Vec<u8>,
) -> Result<Payload> {
    if codec.serializer == Serializer::Hashstash {
        let start = buffer.len();
        codec::decode_append(stored, codec.compress, codec.b64, buffer)?;
        let bytes = &buffer[start..];
        // A map (the usual value) is checked by the walk as it reads it, and holds no
        // DataFrame at its top (a DataFrame is an extension value, or a list of them);
        // anything else is checked here, whole, because its cells are handed out unread.
        let is_map = matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf));
        if check_whole || !is_map {
            msgpack::validate(bytes).map_err(|e| Error::decode("value", "hashstash", e))?;
        }
        if is_map || !has_dataframe(bytes) {
            return Ok(Payload::Msgpack(start..buffer.len()));
        }
        buffer.truncate(start);
    }
    Ok(Payload::Value(open_dataframes(codec.decode_cbor(stored)?)?))
}
