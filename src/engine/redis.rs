//! The Redis engine (the `redis` crate): a stash shared by processes and machines.
//!
//! Every key of a stash carries the stash's namespace in a Redis hash tag, `{<namespace>}`,
//! so two stashes in one Redis database never see each other's entries, and the keys a
//! script touches share one hash slot, which is what lets the multi-key writes below run on
//! **Redis Cluster**: give the seed nodes as a comma-separated list
//! (`redis://a:7000,redis://b:7001`), or one node with `?cluster=true`. On a cluster a
//! stash's entries spread over 64 shards, each under its own tag and so on its own node
//! (see `redis_shards.rs`); on one server there is one shard, the stash's own tag:
//!
//! ```text
//! {ns}:entries     HASH    canonical key bytes -> record (latest value, time)
//! {ns}:v:<key>     LIST    records, oldest first (append mode; version = position + 1)
//! {ns}:generation  STRING  the change counter (one per shard)
//! {ns}:format      STRING  the stash's recorded format (JSON; the stash's own tag)
//! ```
//!
//! **Expiry** lives in the record (format 2, see `record.rs`), so every read path judges it
//! from the bytes it already fetched: an expired entry is a miss without another round trip.
//! [`Housekeeping::prune_expired`] removes expired entries (HSCAN, then a script that removes only
//! fields still holding the record it judged). From Redis 7.4 (hash-field expiry) the server
//! also drops them by itself: the field gets `HPEXPIREAT` and, in append mode, the version
//! list `PEXPIREAT`, at the same time, so an entry goes whole, as a prune takes it (`HSET`
//! clears a field's TTL when it overwrites it; a later write without expiry `PERSIST`s the
//! list). Before 7.4 the list gets no `PEXPIREAT` of its own: the server would drop a key's
//! history while its field stays, and a write after that would restart at version 1 where an
//! unpruned entry continues at `n + 1`. Native expiry is given only to expiries still in the
//! future when written: one already past (a zero TTL) would make the write a delete, where
//! the contract keeps it, counted by `len`, until it is pruned or rewritten.
//!
//! Records carry a checksum (see `record.rs`). Batches are one command (`HSET` with many
//! fields) or one Lua script per shard, so each batch is atomic on one server (on a cluster,
//! within each shard); append mode pushes to the key's list
//! and updates the hash in one script: O(1) per version, numbered by the server, unique and
//! gap-free across processes. Iteration uses `HSCAN`, never `KEYS`.
//!
//! **`insert_if_absent`** (what makes `setdefault` atomic) is one script too: it checks the
//! field and writes, as `set` would, only if the field is absent, or still holds the very
//! expired record the client read before (a compare-and-swap: whether a record has expired is
//! judged in Rust, where records are decoded); otherwise it hands the stored record back.
//!
//! **Connections** come from a small pool; a connection that saw an error is dropped, so a
//! restarted server is reconnected to on the next call. Connecting, reading and writing
//! each wait at most the stash's `timeout_ms` (default 5 s).
//!
//! **Durability** is the server's: with Redis's defaults a write survives a client crash
//! but not a server crash between snapshots; configure `appendonly yes` for more, and
//! `appendfsync always` for a write on disk before it is acknowledged (the stash's `sync`
//! option cannot ask that of Redis per write).

use super::{
    now_micros, Engine, EntryIter, Record, StoredEntry, StoredIter, TimeWindow, Version, WriteItem,
    WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping, Leases};
use crate::config::{redact_url, StashConfig};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[path = "redis_capabilities.rs"]
mod capabilities;

const SCAN_PAGE: usize = 512;
const POOL_SIZE: usize = 8;

#[path = "redis_scripts.rs"]
mod scripts;
use scripts::*;

#[path = "redis_shards.rs"]
mod shards;

#[path = "redis_writes.rs"]
mod writes;
use shards::{scan_in_parallel, Shards, CLUSTER_SHARDS};
use writes::native_expiry_ms;
#[cfg(feature = "async")]
use writes::{has_field_expiry_in, info_request};

/// A client for one server or for a cluster.
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A connection to one server or to a cluster.
enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }
}

/// The seed nodes of a cluster URL (several comma-separated URLs, or one with
/// `cluster=true` in its query), or `None` for a single server.
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    if url.contains(',') {
        let nodes = url
            .split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        return Some(nodes.collect());
    }
    let (base, query) = url.split_once('?')?;
    let is_flag = |p: &&str| p.eq_ignore_ascii_case("cluster=true");
    if !query.split('&').any(|p| is_flag(&p)) {
        return None;
    }
    let rest: Vec<&str> = query.split('&').filter(|p| !is_flag(p)).collect();
    Some(vec![if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    }])
}

/// The Redis engine.
pub struct RedisEngine {
    client: Client,
    pool: Mutex<Vec<Conn>>,
    timeout: Duration,
    /// `{namespace}:`: the stash's own keys (format, catalog, leases) start with it.
    base: Vec<u8>,
    namespace: String,
    /// Where the entries are (see `redis_shards.rs`): known at open on one server, on first
    /// use on a cluster.
    shards: OnceLock<Shards>,
    append_mode: bool,
    shown_url: String,
    append_script: redis::Script,
    set_expiring_script: redis::Script,
    set_script: redis::Script,
    clear_script: redis::Script,
    contains_script: redis::Script,
    insert_if_absent_script: redis::Script,
    prune_script: redis::Script,
    remove_script: redis::Script,
    format_script: redis::Script,
    lease_script: redis::Script,
    layout_script: redis::Script,
    /// Whether the server has hash-field expiry (`HPEXPIREAT`, Redis 7.4+). Asked once, on
    /// the first write with an expiry rather than at open: opening makes no round trip of
    /// its own, and a stash that never expires anything never needs to know.
    field_expiry: OnceLock<bool>,
    /// The async side's connection and the runtime that drives it, made on first use (see
    /// `redis_async.rs`).
    #[cfg(feature = "async")]
    aio: Mutex<Option<(tokio::runtime::Id, redis::aio::MultiplexedConnection)>>,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine")
            .field("url", &self.shown_url)
            .field("prefix", &String::from_utf8_lossy(&self.base))
            .field("append_mode", &self.append_mode)
            .finish()
    }
}

#[cfg(feature = "async")]
#[path = "redis_async.rs"]
mod nonblocking;

fn redis_err(e: redis::RedisError) -> Error {
    Error::engine("redis", e)
}

impl RedisEngine {
    /// Connects to the server of `config` (the connection is made lazily, so a server that
    /// is down fails the first operation, within the timeout, not the open).
    pub fn open(config: &StashConfig) -> Result<Self> {
        let (env, default) = super::EngineKind::Redis
            .server_url_env()
            .unwrap_or_default();
        let url = config.server_url(env, default);
        let shown_url = redact_url(&url);
        let invalid = |e: redis::RedisError| Error::InvalidOption {
            option: "url",
            message: crate::config::scrub(&format!("{shown_url} is not a Redis URL: {e}"), &url),
        };
        let timeout = config.timeout();
        let client = match cluster_nodes(&url) {
            Some(nodes) => Client::Cluster(
                redis::cluster::ClusterClientBuilder::new(nodes)
                    // One retry: the crate's default retries for minutes against a dead node.
                    .retries(1)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .build()
                    .map_err(invalid)?,
            ),
            None => Client::Single(redis::Client::open(url.as_str()).map_err(invalid)?),
        };
        let base = format!("{{{}}}:", config.namespace()).into_bytes();
        let shards = OnceLock::new();
        if matches!(client, Client::Single(_)) {
            let _ = shards.set(Shards::one(base.clone()));
        }
        Ok(RedisEngine {
            client,
            pool: Mutex::new(Vec::new()),
            timeout,
            base,
            namespace: config.namespace(),
            shards,
            append_mode: config.append_mode,
            shown_url,
            append_script: redis::Script::new(APPEND_SCRIPT),
            set_expiring_script: redis::Script::new(SET_EXPIRING_SCRIPT),
            set_script: redis::Script::new(SET_SCRIPT),
            clear_script: redis::Script::new(CLEAR_SCRIPT),
            contains_script: redis::Script::new(CONTAINS_SCRIPT),
            insert_if_absent_script: redis::Script::new(INSERT_IF_ABSENT_SCRIPT),
            prune_script: redis::Script::new(PRUNE_SCRIPT),
            field_expiry: OnceLock::new(),
            #[cfg(feature = "async")]
            aio: Mutex::new(None),
            remove_script: redis::Script::new(REMOVE_SCRIPT),
            format_script: redis::Script::new(FORMAT_SCRIPT),
            lease_script: redis::Script::new(LEASE_SCRIPT),
            layout_script: redis::Script::new(LAYOUT_SCRIPT),
        })
    }

    /// A key of the stash's own (format, catalog, leases), beside its entries.
    fn redis_key(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut key = self.base.clone();
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// The stash's shards: one on a server; on a cluster, as its layout record says (made
    /// on first use by `LAYOUT_SCRIPT`, the same for every client).
    fn shards(&self) -> Result<&Shards> {
        if let Some(shards) = self.shards.get() {
            return Ok(shards);
        }
        let mut invocation = self.layout_script.key(self.redis_key(&[b"layout"]));
        invocation
            .key(self.redis_key(&[b"entries"]))
            .key(self.redis_key(&[b"generation"]))
            .arg(format!("shards:{CLUSTER_SHARDS}"));
        let layout: String = self.with_conn(|c| invocation.invoke(c))?;
        let shards = Shards::of_layout(&layout, &self.base, &self.namespace)?;
        Ok(self.shards.get_or_init(|| shards))
    }

    /// The hash of shard `shard`'s entries.
    fn entries_key(shards: &Shards, shard: usize) -> Vec<u8> {
        shards.key(shard, &[b"entries"])
    }

    /// A shard's change counter, raised by every script that changes its entries (see
    /// `catalog`).
    fn generation_key(shards: &Shards, shard: usize) -> Vec<u8> {
        shards.key(shard, &[b"generation"])
    }

    /// The version list of `key`, in its shard.
    fn versions_key(shards: &Shards, key: &[u8]) -> Vec<u8> {
        shards.key(shards.of(key), &[b"v:", key])
    }

    /// Sends `commands` (one per shard, say) and returns their replies in order: one command
    /// on a pooled connection, several as one cluster pipeline (several only on a cluster).
    fn query_each<T: redis::FromRedisValue>(&self, commands: Vec<redis::Cmd>) -> Result<Vec<T>> {
        if let [one] = commands.as_slice() {
            return Ok(vec![self.with_conn(|c| one.query(c))?]);
        }
        let mut pipe = redis::cluster::cluster_pipe();
        for command in commands {
            pipe.add_command(command);
        }
        self.with_cluster_conn(|c| pipe.query(c))
    }

    /// Runs `f` on a pooled cluster connection (only a cluster has several shards).
    fn with_cluster_conn<T>(
        &self,
        f: impl FnOnce(&mut redis::cluster::ClusterConnection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        self.with_conn_of(|conn| match (conn, f.take()) {
            (Conn::Cluster(c), Some(f)) => f(c),
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "several shards are only ever on a cluster",
            ))),
        })
    }

    /// Runs `f` on a pooled connection; a connection that saw an error is not reused.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T> {
        self.with_conn_of(|conn| f(conn.as_dyn()))
    }

    fn with_conn_of<T>(&self, f: impl FnOnce(&mut Conn) -> redis::RedisResult<T>) -> Result<T> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        match f(&mut conn) {
            Ok(value) => {
                let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                if pool.len() < POOL_SIZE {
                    pool.push(conn);
                }
                Ok(value)
            }
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
                {
                    // The server went away: the other pooled connections are as stale as
                    // this one. Drop them so the next call connects afresh.
                    self.pool.lock().unwrap_or_else(|e| e.into_inner()).clear();
                }
                Err(redis_err(e))
            }
        }
    }

    fn connect(&self) -> Result<Conn> {
        match &self.client {
            Client::Single(client) => {
                let conn = client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(|e| self.unreachable(e))?;
                conn.set_read_timeout(Some(self.timeout))
                    .map_err(redis_err)?;
                conn.set_write_timeout(Some(self.timeout))
                    .map_err(redis_err)?;
                Ok(Conn::Single(conn))
            }
            Client::Cluster(client) => client
                .get_connection()
                .map(|c| Conn::Cluster(Box::new(c)))
                .map_err(|e| self.unreachable(e)),
        }
    }

    fn unreachable(&self, e: redis::RedisError) -> Error {
        Error::Engine {
            engine: "redis",
            source: format!(
                "cannot reach {} within {:?}: {e}",
                self.shown_url, self.timeout
            )
            .into(),
        }
    }

    /// The values of `keys` from what `HMGET` found for them (expired ones are `None`).
    fn live_values(
        &self,
        keys: &[&[u8]],
        stored: Vec<Option<Vec<u8>>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let now = now_micros();
        keys.iter()
            .zip(stored)
            .map(|(k, s)| match s {
                Some(s) => self.live_value(k, &s, now),
                None => Ok(None),
            })
            .collect()
    }

    // The requests of the calls both sides make, built once here: the blocking engine sends
    // them on its pooled connections, the async side (redis_async.rs) on its multiplexed one,
    // and both read the replies with the same functions (live_value, live_values,
    // contains_reply).

    /// The latest record of `key`: one HGET, as before expiry existed (the record says
    /// whether it has expired).
    fn get_request(&self, key: &[u8]) -> Result<redis::Cmd> {
        let shards = self.shards()?;
        let mut cmd = redis::cmd("HGET");
        cmd.arg(Self::entries_key(shards, shards.of(key))).arg(key);
        Ok(cmd)
    }

    /// The latest records of `keys` (not empty): one HMGET per shard that has any, and the
    /// indexes in `keys` each one asks for (see [`gather`]).
    fn get_many_requests(&self, keys: &[&[u8]]) -> Result<(Vec<Vec<usize>>, Vec<redis::Cmd>)> {
        let shards = self.shards()?;
        let mut groups = Vec::new();
        let mut commands = Vec::new();
        for (shard, group) in shards.group(keys.iter()).into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(Self::entries_key(shards, shard));
            for &i in &group {
                cmd.arg(keys[i]);
            }
            commands.push(cmd);
            groups.push(group);
        }
        Ok((groups, commands))
    }

    /// Whether `key` is there, without its value when it never expires.
    fn contains_request(&self, key: &[u8]) -> Result<redis::ScriptInvocation<'_>> {
        let shards = self.shards()?;
        let mut invocation = self
            .contains_script
            .key(Self::entries_key(shards, shards.of(key)));
        invocation.arg(key);
        Ok(invocation)
    }

    /// Removes `key` with its versions; the reply is 1 if it was there.
    fn remove_request(&self, key: &[u8]) -> Result<redis::ScriptInvocation<'_>> {
        let shards = self.shards()?;
        let shard = shards.of(key);
        let mut invocation = self.remove_script.key(Self::entries_key(shards, shard));
        invocation
            .key(Self::versions_key(shards, key))
            .key(Self::generation_key(shards, shard))
            .arg(key);
        Ok(invocation)
    }

    /// What the contains script's reply says: absent (0), present and never expiring (1), or
    /// the record to judge.
    fn contains_reply(&self, key: &[u8], found: redis::Value) -> Result<bool> {
        match found {
            redis::Value::Int(n) => Ok(n != 0),
            redis::Value::BulkString(stored) => {
                Ok(self.live_value(key, &stored, now_micros())?.is_some())
            }
            other => Err(Error::engine(
                "redis",
                format!("unexpected reply to a lookup: {other:?}"),
            )),
        }
    }

    fn record(&self, value: &[u8], timestamp_micros: i64, meta: &WriteMeta) -> Result<Vec<u8>> {
        Record {
            key: &[],
            version: 0,
            timestamp_micros,
            expires_micros: meta.expires_micros,
            value,
        }
        .encode()
    }

    fn describe(&self, key: &[u8]) -> String {
        let shown: String = key.iter().take(32).map(|b| format!("{b:02x}")).collect();
        format!(
            "redis entry {shown} of {}",
            String::from_utf8_lossy(&self.base)
        )
    }

    /// The value of a stored record, or `None` when it has expired at `now`.
    fn live_value(&self, key: &[u8], stored: &[u8], now: i64) -> Result<Option<Vec<u8>>> {
        let record = Record::decode(stored, || self.describe(key))?;
        Ok((!record.is_expired(now)).then(|| record.value.to_vec()))
    }

    /// Every `(key, stored record)` of the stash, each once: one shard's hash read a page at
    /// a time, or the shards of a spread stash read side by side (`scan_in_parallel`).
    fn raw_scan(&self) -> Result<RawScan<'_>> {
        let shards = self.shards()?;
        match &self.client {
            Client::Cluster(client) if shards.count() > 1 => {
                let hashes = (0..shards.count())
                    .map(|shard| Self::entries_key(shards, shard))
                    .collect();
                let pages = scan_in_parallel(client, hashes, SCAN_PAGE)?;
                Ok(Box::new(pages.into_iter().flat_map(|page| {
                    let (pairs, error) = match page {
                        Ok(pairs) => (pairs, None),
                        Err(e) => (Vec::new(), Some(Err(e))),
                    };
                    pairs.into_iter().map(Ok).chain(error)
                })))
            }
            _ => Ok(Box::new(self.hscan(Self::entries_key(shards, 0)))),
        }
    }

    /// Every `(key, stored record)` of one shard's hash `entries`, each once. `HSCAN`
    /// returns every field present for the whole scan at least once, and may repeat one
    /// while the hash is resized: repeats are dropped by their 128-bit digest.
    fn hscan(
        &self,
        entries: Vec<u8>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + Send + '_ {
        let mut cursor: Option<u64> = Some(0);
        let mut seen: HashSet<[u8; 16]> = HashSet::new();
        let mut page: std::vec::IntoIter<Vec<u8>> = Vec::new().into_iter();
        std::iter::from_fn(move || loop {
            if let (Some(key), Some(stored)) = (page.next(), page.next()) {
                if seen.insert(super::key_digest(&key)) {
                    return Some(Ok((key, stored)));
                }
                continue;
            }
            let current = cursor?;
            let fetched: Result<(u64, Vec<Vec<u8>>)> = self.with_conn(|c| {
                redis::cmd("HSCAN")
                    .arg(&entries)
                    .arg(current)
                    .arg("COUNT")
                    .arg(SCAN_PAGE)
                    .query(c)
            });
            match fetched {
                Ok((next, flat)) => {
                    cursor = (next != 0).then_some(next);
                    page = flat.into_iter();
                }
                Err(e) => {
                    cursor = None;
                    return Some(Err(e));
                }
            }
        })
    }
}

impl Engine for RedisEngine {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let request = self.get_request(key)?;
        let stored: Option<Vec<u8>> = self.with_conn(|c| request.query(c))?;
        match stored {
            Some(stored) => self.live_value(key, &stored, now_micros()),
            None => Ok(None),
        }
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (groups, requests) = self.get_many_requests(keys)?;
        let replies: Vec<Vec<Option<Vec<u8>>>> = self.query_each(requests)?;
        self.live_values(keys, gather(keys.len(), &groups, replies)?)
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        super::in_runs_of_one_meta(items, |batch, meta| self.write_batch(batch, meta))
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        let request = self.contains_request(key)?;
        let found: redis::Value = self.with_conn(|c| request.invoke(c))?;
        self.contains_reply(key, found)
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        let mut removed = 0;
        for key in keys {
            let request = self.remove_request(key)?;
            removed += self.with_conn(|c| request.invoke::<u64>(c))?.min(1);
        }
        Ok(removed)
    }

    fn len(&self) -> Result<usize> {
        let shards = self.shards()?;
        let counts = (0..shards.count()).map(|shard| {
            let mut cmd = redis::cmd("HLEN");
            cmd.arg(Self::entries_key(shards, shard));
            cmd
        });
        Ok(self.query_each::<usize>(counts.collect())?.iter().sum())
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        // Expired entries are skipped as they are met (each judged when it is read).
        Ok(Box::new(self.raw_scan()?.filter_map(|item| {
            let (key, stored) = match item {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            self.live_value(&key, &stored, now_micros())
                .transpose()
                .map(|value| value.map(|v| (key, v)))
        })))
    }

    fn clear(&self) -> Result<()> {
        // Shard by shard. The version lists are found through the shard's hash (SCAN would
        // search one node of a cluster only; a shard's keys are all in its hash's slot).
        let shards = self.shards()?;
        for shard in 0..shards.count() {
            let entries = Self::entries_key(shards, shard);
            if self.append_mode {
                let mut lists = Vec::with_capacity(SCAN_PAGE);
                for item in self.hscan(entries.clone()) {
                    lists.push(Self::versions_key(shards, &item?.0));
                    if lists.len() == SCAN_PAGE {
                        self.with_conn(|c| redis::cmd("DEL").arg(&lists).query::<()>(c))?;
                        lists.clear();
                    }
                }
                if !lists.is_empty() {
                    self.with_conn(|c| redis::cmd("DEL").arg(&lists).query::<()>(c))?;
                }
            }
            let mut invocation = self.clear_script.key(entries);
            invocation.key(Self::generation_key(shards, shard));
            self.with_conn(|c| invocation.invoke::<()>(c))?;
        }
        Ok(())
    }

    // Without the `async` feature the update fills in the missing async side.
    #[allow(clippy::needless_update)]
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            history: Some(self),
            atomic_insert: Some(self),
            housekeeping: Some(self),
            catalog: Some(self),
            leases: Some(self),
            // The async side speaks to one server; a cluster's calls stay blocking.
            #[cfg(feature = "async")]
            async_side: matches!(self.client, Client::Single(_))
                .then_some(self as &dyn super::async_engine::AsyncEngine),
            ..Capabilities::default()
        }
    }
}

/// The entries of a scan, as stored.
type RawScan<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + Send + 'a>;

/// The replies of [`RedisEngine::get_many_requests`] put back in the order of the `n` keys
/// asked for: `groups[i]` holds the indexes `replies[i]` answers.
fn gather(
    n: usize,
    groups: &[Vec<usize>],
    replies: Vec<Vec<Option<Vec<u8>>>>,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut stored = vec![None; n];
    for (group, reply) in groups.iter().zip(replies) {
        if reply.len() != group.len() {
            let why = format!("{} values came back for {} keys", reply.len(), group.len());
            return Err(Error::engine("redis", why));
        }
        for (&i, value) in group.iter().zip(reply) {
            stored[i] = value;
        }
    }
    Ok(stored)
}

fn lease_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
