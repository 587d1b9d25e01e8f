//! The Redis engine's writes: a batch as one script per shard, and the server's own expiry
//! (hash-field expiry, Redis 7.4+) where it has it (see the engine's module docs).

use super::*;

impl RedisEngine {
    /// Whether the server has hash-field expiry, asked once (see `field_expiry`). A cluster
    /// answers `INFO` from every primary: the oldest one decides.
    pub(super) fn has_field_expiry(&self) -> Result<bool> {
        if let Some(&known) = self.field_expiry.get() {
            return Ok(known);
        }
        let request = info_request();
        let info: redis::Value = self.with_conn(|c| request.query(c))?;
        Ok(*self.field_expiry.get_or_init(|| has_field_expiry_in(&info)))
    }

    /// Writes a batch whose entries share one [`WriteMeta`].
    pub(super) fn write_batch(&self, items: &[(&[u8], &[u8])], meta: WriteMeta) -> Result<()> {
        let native = self.native_expiry_for(&meta)?;
        for invocation in self.write_calls(items, meta, native)? {
            self.with_conn(|c| invocation.invoke::<()>(c))?;
        }
        Ok(())
    }

    /// Whether a write of `meta` gets native expiry: only an expiry still to come asks the
    /// server (once) whether it has hash-field expiry.
    pub(super) fn native_expiry_for(&self, meta: &WriteMeta) -> Result<bool> {
        match meta.expires_micros {
            Some(at) if at > now_micros() => self.has_field_expiry(),
            _ => Ok(false),
        }
    }

    /// The script calls that write a batch sharing `meta`, one per shard it touches (each
    /// atomic: a batch within one shard, as every batch on one server, is all or nothing),
    /// for the blocking and the async connection alike. `native`: the server has hash-field
    /// expiry (asked only when an expiry still to come is written).
    pub(super) fn write_calls(
        &self,
        items: &[(&[u8], &[u8])],
        meta: WriteMeta,
        native: bool,
    ) -> Result<Vec<redis::ScriptInvocation<'_>>> {
        let shards = self.shards()?;
        let mut calls = Vec::new();
        for (shard, group) in shards
            .group(items.iter().map(|(k, _)| k))
            .into_iter()
            .enumerate()
        {
            if group.is_empty() {
                continue;
            }
            let batch: Vec<(&[u8], &[u8])> = group.iter().map(|&i| items[i]).collect();
            calls.push(self.write_call(shards, shard, &batch, meta, native)?);
        }
        Ok(calls)
    }

    /// The one script call that writes the items of one shard and raises its change counter.
    fn write_call(
        &self,
        shards: &Shards,
        shard: usize,
        items: &[(&[u8], &[u8])],
        meta: WriteMeta,
        native: bool,
    ) -> Result<redis::ScriptInvocation<'_>> {
        let entries = Self::entries_key(shards, shard);
        let generation = Self::generation_key(shards, shard);
        let timestamp = meta.timestamp_or_now();
        let records = items
            .iter()
            .map(|(k, v)| Ok((*k, self.record(v, timestamp, &meta)?)))
            .collect::<Result<Vec<_>>>()?;
        let native_ms = native_expiry_ms(&meta, native);
        if !self.append_mode {
            if let Some(at) = native_ms {
                let mut invocation = self.set_expiring_script.key(&entries);
                invocation.key(&generation).arg(at);
                for (k, r) in &records {
                    invocation.arg(*k).arg(r);
                }
                return Ok(invocation);
            }
            // Without native field expiry, an expiring record is judged on read.
            let mut invocation = self.set_script.key(&entries);
            invocation.key(&generation);
            for (k, r) in &records {
                invocation.arg(*k).arg(r);
            }
            return Ok(invocation);
        }
        let mut invocation = self.append_script.key(&entries);
        match native_ms {
            Some(at) => invocation.arg(at),
            None => invocation.arg(""),
        };
        for (k, r) in &records {
            invocation.key(Self::versions_key(shards, k)).arg(*k).arg(r);
        }
        invocation.key(&generation);
        Ok(invocation)
    }
}

/// The server's description, where its version says whether it has hash-field expiry.
pub(super) fn info_request() -> redis::Cmd {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server");
    cmd
}

/// Whether the servers an `INFO server` reply describes all have hash-field expiry (7.4+).
pub(super) fn has_field_expiry_in(info: &redis::Value) -> bool {
    let mut oldest: Option<(u32, u32)> = None;
    visit_text(info, &mut |text| {
        for version in text.lines().filter_map(parse_redis_version) {
            oldest = Some(oldest.map_or(version, |o| o.min(version)));
        }
    });
    // A server that does not say (a lookalike) gets lazy expiry only: safe everywhere.
    oldest.is_some_and(|v| v >= (7, 4))
}

/// The server's own expiry of a write of `meta` (see the module docs), in its unit (ms,
/// rounded up so that it never comes before the record's): for an expiry still to come, on a
/// server with hash-field expiry (`native`).
pub(super) fn native_expiry_ms(meta: &WriteMeta, native: bool) -> Option<i64> {
    match meta.expires_micros {
        Some(at) if native && at > now_micros() => Some(micros_to_millis_ceil(at)),
        _ => None,
    }
}

/// µs since the epoch as ms, rounded up: the server drops an entry no earlier than its
/// record says it expires. (Only expiries still to come get here.)
fn micros_to_millis_ceil(micros: i64) -> i64 {
    micros / 1000 + i64::from(micros % 1000 > 0)
}

/// Calls `f` with every piece of text in a reply (a cluster's `INFO` is a map of node to
/// text).
fn visit_text(value: &redis::Value, f: &mut dyn FnMut(&str)) {
    match value {
        redis::Value::BulkString(bytes) => f(&String::from_utf8_lossy(bytes)),
        redis::Value::SimpleString(text) | redis::Value::VerbatimString { text, .. } => f(text),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().for_each(|item| visit_text(item, f));
        }
        redis::Value::Map(pairs) => pairs.iter().for_each(|(_, item)| visit_text(item, f)),
        _ => {}
    }
}

/// `(major, minor)` of an `INFO` line `redis_version:7.4.1`.
fn parse_redis_version(line: &str) -> Option<(u32, u32)> {
    let version = line.trim().strip_prefix("redis_version:")?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}
