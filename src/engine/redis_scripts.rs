//! The Lua scripts of the Redis engine: each a check and a write that must happen as one
//! step on the server (an append's next version, an insert only where a key is missing, a
//! prune that spares a key rewritten meanwhile, a lease that only its owner extends).
//! Each one also raises the stash's change counter where it changes entries (see
//! `catalog`).

/// Appends each `(key, record)` of ARGV[2..] as a new version: pushes to the key's list and
/// makes it the latest in the hash. KEYS[1] is the hash, KEYS[i + 1] the list of the i-th
/// pair. A list whose key is not in the hash is a leftover (of a `clear` cut short, say): it
/// is dropped first, so a key's versions always start at 1.
///
/// The last key, KEYS[#KEYS], is the stash's change counter, raised once (see `catalog`).
///
/// ARGV[1] is the batch's native expiry in ms since the epoch ('' for none; given only when
/// the server has hash-field expiry): the field and the list then expire together, all
/// versions with the entry, as a prune would take them. Without it the list is made
/// persistent again (it may carry the expiry of an earlier latest version; `HSET` has already
/// cleared the field's).
pub(super) const APPEND_SCRIPT: &str = r"
for i = 1, (#ARGV - 1) / 2 do
  local field, record, list = ARGV[2 * i], ARGV[2 * i + 1], KEYS[i + 1]
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    redis.call('DEL', list)
  end
  redis.call('RPUSH', list, record)
  redis.call('HSET', KEYS[1], field, record)
  if ARGV[1] == '' then
    redis.call('PERSIST', list)
  else
    redis.call('PEXPIREAT', list, ARGV[1])
    redis.call('HPEXPIREAT', KEYS[1], ARGV[1], 'FIELDS', 1, field)
  end
end
redis.call('INCR', KEYS[#KEYS])
return (#ARGV - 1) / 2
";

/// Sets each `(key, record)` of ARGV[2..] in the hash KEYS[1] and gives the field the native
/// expiry ARGV[1] (ms since the epoch; Redis 7.4+), and raises the change counter KEYS[2].
/// One script, so that no reader (and no prune) ever sees one without the other.
pub(super) const SET_EXPIRING_SCRIPT: &str = r"
for i = 1, (#ARGV - 1) / 2 do
  redis.call('HSET', KEYS[1], ARGV[2 * i], ARGV[2 * i + 1])
  redis.call('HPEXPIREAT', KEYS[1], ARGV[1], 'FIELDS', 1, ARGV[2 * i])
end
redis.call('INCR', KEYS[2])
return (#ARGV - 1) / 2
";

/// Sets each `(field, record)` pair of ARGV in the hash KEYS[1] (`HSET`, which also clears a
/// field's native expiry when it overwrites it) and raises the change counter KEYS[2], in one
/// step. `HSET` takes the pairs a thousand at a time (Lua's `unpack` has a limit).
pub(super) const SET_SCRIPT: &str = r"
for i = 1, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('INCR', KEYS[2])
return #ARGV / 2
";

/// `contains` in one round trip without the value: 0 when field ARGV[1] of KEYS[1] is
/// absent, 1 when its record is format 1 (which never expires), else the record itself, for
/// the client to judge its expiry (the record format is decoded in one place, in Rust).
pub(super) const CONTAINS_SCRIPT: &str = r"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
  return 0
end
if string.byte(stored, 1) == 1 then
  return 1
end
return stored
";

/// Stores the record ARGV[2] under field ARGV[1] of hash KEYS[1] only if the field is absent
/// or holds exactly ARGV[4] (an expired record the client read; '' when it read none: a record
/// is never empty), and returns 0; otherwise returns the stored record, writing nothing. The
/// check and the write are one step, so of several writers racing on a missing key exactly
/// one stores, and an expired entry is replaced only by a writer that saw it expired, never
/// over a live value that another writer stored meanwhile.
///
/// The write is the one `set` makes (see APPEND_SCRIPT and SET_EXPIRING_SCRIPT), and raises
/// the change counter KEYS[2]: with the version list KEYS[3] (append mode), a leftover list of an absent field is dropped, then the
/// record is pushed (its position is its version: 1, or n + 1 over an expired entry) and made
/// the field's. ARGV[3] is the native expiry in ms since the epoch ('' for none), given to
/// the field (and the list) as the normal write gives it; without it the list is made
/// persistent again, and `HSET` has already cleared the field's own.
pub(super) const INSERT_IF_ABSENT_SCRIPT: &str = r"
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored and stored ~= ARGV[4] then
  return stored
end
local field, record, list = ARGV[1], ARGV[2], KEYS[3]
if list then
  if not stored then
    redis.call('DEL', list)
  end
  redis.call('RPUSH', list, record)
end
redis.call('HSET', KEYS[1], field, record)
if ARGV[3] ~= '' then
  if list then
    redis.call('PEXPIREAT', list, ARGV[3])
  end
  redis.call('HPEXPIREAT', KEYS[1], ARGV[3], 'FIELDS', 1, field)
elseif list then
  redis.call('PERSIST', list)
end
redis.call('INCR', KEYS[2])
return 0
";

/// Removes each field ARGV[2i - 1] of hash KEYS[1] whose record still starts with ARGV[2i]
/// (its format byte and checksum, as the prune read it), with its version list KEYS[i + 2]
/// when given; returns how many it removed, and raises the change counter KEYS[2] if any. The check and the removal are one step, so an
/// entry that a writer replaced after the prune read it (a new record, a new checksum) is
/// kept. The 9-byte head stands for the record: its xxh3 checksum covers every other byte,
/// and sending it rather than the record keeps a prune of large values cheap.
pub(super) const PRUNE_SCRIPT: &str = r"
local removed = 0
for i = 1, #ARGV / 2 do
  local stored = redis.call('HGET', KEYS[1], ARGV[2 * i - 1])
  if stored and string.sub(stored, 1, 9) == ARGV[2 * i] then
    redis.call('HDEL', KEYS[1], ARGV[2 * i - 1])
    if KEYS[i + 2] then
      redis.call('DEL', KEYS[i + 2])
    end
    removed = removed + 1
  end
end
if removed > 0 then
  redis.call('INCR', KEYS[2])
end
return removed
";

/// Removes field ARGV[1] of hash KEYS[1] and the version list KEYS[2]; returns 1 if the
/// field was there, and then raises the change counter KEYS[3]. (Scripts rather than MULTI:
/// cluster pipelines cannot be transactions.)
pub(super) const REMOVE_SCRIPT: &str = r"
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if removed > 0 then
  redis.call('INCR', KEYS[3])
end
return removed
";

/// Deletes the hash KEYS[1] and raises the change counter KEYS[2], in one step.
pub(super) const CLEAR_SCRIPT: &str = r"
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
return 0
";

/// Sets KEYS[1] to ARGV[1] unless it is set, and returns what it holds.
pub(super) const FORMAT_SCRIPT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

/// Runs ARGV[2] (`PEXPIRE` milliseconds, or `DEL` when absent) on the lease KEYS[1] if its
/// owner is ARGV[1]; returns 1 if it did. (A check and an action in one step: a lease that
/// expired and was taken by another process is never extended or deleted by its old owner.)
pub(super) const LEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('DEL', KEYS[1])
";

/// The stash's layout (see `redis_shards.rs`), decided once for every client: the record
/// KEYS[1] if there is one; else `whole` if the stash already has a hash KEYS[2] or a change
/// counter KEYS[3] in its own slot (made before shards: the counter outlives a `clear`),
/// else ARGV[1]; recorded, and returned.
pub(super) const LAYOUT_SCRIPT: &str = r"
local layout = redis.call('GET', KEYS[1])
if layout then
  return layout
end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
  layout = 'whole'
else
  layout = ARGV[1]
end
redis.call('SET', KEYS[1], layout)
return layout
";
