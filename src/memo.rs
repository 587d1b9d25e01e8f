//! Function results: `stash.run(f, args)` computes `f(args)` once and reads it back after.
//!
//! Each function has a stash of its own under the parent, as in the Python original:
//! `<dbname>/stashed_result/<function>`, with the parent's engine and format. Its keys are
//! the arguments (canonical bytes, as any key) and its values the results, so a function
//! stash is a stash like any other: iterate it, query it with SQL, turn it into a DataFrame.
//! As a table, a function stash's key spreads into argument columns: the items of a tuple
//! (or list) of arguments are `_arg1.._argN`, the fields of a struct (or map) of arguments
//! are columns of their own, and a single other argument is `_arg1`.

use crate::engine::EngineExt;
use crate::engine::KeyLock;
use crate::error::{Error, Result};
use crate::stash::Stash;
use serde::{de::DeserializeOwned, Serialize};

/// The folder of function stashes inside a stash's database name.
pub const FUNCTIONS_FOLDER: &str = "stashed_result";

/// The side stash, `<dbname>/_functions`, in which a stash on a server records the names of
/// its function stashes (a server has no folder to list; see [`Stash::function_names`]).
pub const FUNCTION_NAMES_DBNAME: &str = "_functions";

/// Whether a database name is a function stash's (`.../stashed_result/<function>`).
pub fn is_function_dbname(dbname: &str) -> bool {
    let mut parts = dbname.rsplit('/');
    parts.next().is_some_and(|f| !f.is_empty()) && parts.next() == Some(FUNCTIONS_FOLDER)
}

/// The name a function item is known by: its Rust path (`my_crate::module::function`).
/// Closures have no name that survives a rebuild: they are refused.
pub fn function_name<F>() -> Result<String> {
    let name = std::any::type_name::<F>();
    if name.contains("{{closure}}") || name.contains('<') {
        return Err(Error::InvalidOption {
            option: "function",
            message: format!(
                "{name} has no stable name (a closure or a generic function): \
                 give it one with run_named"
            ),
        });
    }
    Ok(name.to_owned())
}

/// [`function_name`] of the function `f`.
pub fn name_of<F>(_f: &F) -> Result<String> {
    function_name::<F>()
}

impl Stash {
    /// The stash of the results of function `name`: `<dbname>/stashed_result/<name>`, with
    /// this stash's engine and format (opened once, then shared).
    pub fn function_stash(&self, name: &str) -> Result<Stash> {
        let folder = name.replace("::", ".");
        if folder.is_empty() || folder.contains(['/', '\\']) || folder.starts_with('.') {
            return Err(Error::InvalidOption {
                option: "function",
                message: format!("{name:?} cannot name a function stash"),
            });
        }
        let mut opened = self
            .function_stashes()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(stash) = opened.get(&folder) {
            return Ok(stash.clone());
        }
        let stash = self.sub(&format!("{FUNCTIONS_FOLDER}/{folder}"))?;
        if self.config().engine.is_server() {
            // Once per handle and function, so that `clear` and `function_names` find it;
            // through the engine, so that the registry's handle counts no stats to flush.
            let registry = self.sub(FUNCTION_NAMES_DBNAME)?;
            let (name, mark) = (registry.encode_key(&folder)?, registry.encode_value(&true)?);
            registry.engine().atomic_insert()?.insert_if_absent(
                &name,
                &mark,
                Default::default(),
            )?;
        }
        opened.insert(folder, stash.clone());
        Ok(stash)
    }

    /// The names of this stash's function stashes, as [`Stash::function_stash`] names their
    /// folders (`my_crate.module.function`), whichever process wrote them: on disk the
    /// folders below `<dbname>/stashed_result/`, in memory the stores there, on a server the
    /// names function stashes record in `<dbname>/_functions` when first opened. Sorted.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// stash.run_named("squares", |x: u64| x * x, 3)?;
    /// stash.run_named("cubes", |x: u64| x * x * x, 3)?;
    /// assert_eq!(stash.function_names()?, ["cubes", "squares"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn function_names(&self) -> Result<Vec<String>> {
        let config = self.config();
        let mut names: Vec<String> = if config.engine.is_server() {
            let registry = self.sub(FUNCTION_NAMES_DBNAME)?;
            let names: Result<Vec<String>> = registry.keys::<String>()?.collect();
            names?
        } else {
            // A function stash's folder is `<functions>/<name>/<engine>.<codec>`.
            let leaf = config.stash_dir().file_name().map(|l| l.to_os_string());
            let mut functions = config.clone();
            functions.dbname = format!("{}/{FUNCTIONS_FOLDER}", config.dbname);
            let functions = functions.stash_dir();
            let functions = functions.parent().unwrap_or(&functions);
            let leaf = leaf.unwrap_or_default();
            let candidates: Vec<std::path::PathBuf> = if config.engine == crate::EngineKind::Memory
            {
                crate::engine::memory::stores_below(functions)
                    .into_iter()
                    .filter_map(|store| {
                        let rest = store.strip_prefix(functions).ok()?;
                        let parts: Vec<_> = rest.iter().collect();
                        (parts.len() == 3 && parts[1] == leaf.as_os_str())
                            .then(|| functions.join(parts[0]).join(&leaf))
                    })
                    .collect()
            } else {
                match std::fs::read_dir(functions) {
                    Ok(entries) => entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.path().join(&leaf))
                        .filter(|dir| dir.is_dir())
                        .collect(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(Error::io(functions, e)),
                }
            };
            candidates
                .iter()
                .filter_map(|dir| dir.parent()?.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect()
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Empties every function stash of this stash (and theirs), for [`Stash::clear`].
    pub(crate) fn clear_function_stashes(&self) -> Result<()> {
        for name in self.function_names()? {
            let results = self.function_stash(&name)?;
            let stored = results.len()?;
            results.clear()?;
            results.counters().deleted_many(stored);
        }
        Ok(())
    }

    /// `f(args)`, computed once: the result is stored in `f`'s function stash under `args`
    /// and read back on later calls, in this process or any other. `f` must be a function
    /// item (its Rust path names its stash); closures need [`Stash::run_named`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// fn slow_square((x,): (u64,)) -> u64 {
    ///     x * x
    /// }
    /// assert_eq!(stash.run(slow_square, (12,))?, 144); // computed and stored
    /// assert_eq!(stash.run(slow_square, (12,))?, 144); // read back
    /// let name = hashstash::memo::name_of(&slow_square)?;
    /// assert_eq!(stash.get_func::<_, u64>(&name, &(12,))?, Some(144));
    /// assert_eq!(stash.function_stash(&name)?.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<F, A, R>(&self, f: F, args: A) -> Result<R>
    where
        F: FnOnce(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        self.run_named(&function_name::<F>()?, f, args)
    }

    /// [`Stash::run`] with the function stash named by the caller (closures, or a name that
    /// should outlive a renamed function).
    pub fn run_named<F, A, R>(&self, name: &str, f: F, args: A) -> Result<R>
    where
        F: FnOnce(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        let infallible = |args| Ok::<R, std::convert::Infallible>(f(args));
        match self.try_run_named(name, infallible, args)? {
            Ok(result) => Ok(result),
            Err(never) => match never {},
        }
    }

    /// [`Stash::run`] for a function that can fail: an `Ok` result is stored, an `Err` is
    /// handed back and not stored (the next call tries again).
    pub fn try_run<F, A, R, E>(&self, f: F, args: A) -> Result<std::result::Result<R, E>>
    where
        F: FnOnce(A) -> std::result::Result<R, E>,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        self.try_run_named(&function_name::<F>()?, f, args)
    }

    /// [`Stash::try_run`] with the function stash named by the caller.
    pub fn try_run_named<F, A, R, E>(
        &self,
        name: &str,
        f: F,
        args: A,
    ) -> Result<std::result::Result<R, E>>
    where
        F: FnOnce(A) -> std::result::Result<R, E>,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        let results = self.function_stash(name)?;
        match lookup(&results, &args)? {
            Lookup::Stored(result) => Ok(Ok(result)),
            Lookup::Missing(key, _lock) => match f(args) {
                Ok(result) => {
                    save(&results, &key, &result)?;
                    Ok(Ok(result))
                }
                Err(e) => Ok(Err(e)),
            },
        }
    }

    /// [`Stash::try_run_named`] for callers that encode keys and values themselves (the
    /// Python package): `key` is the canonical key bytes of the arguments and `compute`
    /// returns the encoded result (as [`Codec::encode_value_dyn`](crate::Codec::encode_value_dyn)
    /// writes it), which is stored. Returns the stored bytes, found or computed, under the
    /// same compute-once lock as [`Stash::run`].
    pub fn try_run_encoded<E>(
        &self,
        name: &str,
        key: Vec<u8>,
        compute: impl FnOnce() -> std::result::Result<Vec<u8>, E>,
    ) -> Result<std::result::Result<Vec<u8>, E>> {
        let results = self.function_stash(name)?;
        match lookup_encoded(&results, key)? {
            Lookup::Stored(stored) => Ok(Ok(stored)),
            Lookup::Missing(key, _lock) => match compute() {
                Ok(stored) => {
                    results.set_raw(&key, &stored)?;
                    Ok(Ok(stored))
                }
                Err(e) => Ok(Err(e)),
            },
        }
    }

    /// [`Stash::run_named`], computing again even if a result is stored, and replacing it.
    pub fn run_forced<F, A, R>(&self, name: &str, f: F, args: A) -> Result<R>
    where
        F: FnOnce(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        let results = self.function_stash(name)?;
        // The key is encoded before `f` takes the arguments: a key that cannot be encoded
        // fails before any work is done.
        let key = results.encode_key(&args)?;
        let result = f(args);
        save(&results, &key, &result)?;
        Ok(result)
    }

    /// Drops the stored result of function `name` for `args`, so that the next call computes
    /// it again; true if there was one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// fn double((x,): (u64,)) -> u64 {
    ///     2 * x
    /// }
    /// let name = hashstash::memo::name_of(&double)?;
    /// stash.run(double, (1,))?;
    /// stash.run(double, (2,))?;
    /// assert!(stash.invalidate_call(&name, &(1,))?);
    /// assert!(!stash.invalidate_call(&name, &(1,))?); // already gone
    /// assert_eq!(stash.get_func::<_, u64>(&name, &(2,))?, Some(4)); // others stay
    /// assert_eq!(stash.invalidate_func(&name)?, 1); // every result
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn invalidate_call<A: Serialize + ?Sized>(&self, name: &str, args: &A) -> Result<bool> {
        self.function_stash(name)?.invalidate(args)
    }

    /// Drops every stored result of function `name`; returns how many there were.
    pub fn invalidate_func(&self, name: &str) -> Result<usize> {
        let results = self.function_stash(name)?;
        let stored = results.len()?;
        results.clear()?;
        results.counters().deleted_many(stored);
        Ok(stored)
    }

    /// The stored result of function `name` for `args`, without computing anything (the
    /// Python original's `get_func`).
    pub fn get_func<A: Serialize, R: DeserializeOwned>(
        &self,
        name: &str,
        args: &A,
    ) -> Result<Option<R>> {
        self.function_stash(name)?.get(args)
    }
}

/// Used by `#[stashed_result]`: the trait its `invalidate(args)` asks of its arguments.
#[doc(hidden)]
pub use serde::Serialize as __Serialize;

/// Where a `#[stashed_result]` function's result is stored: its function stash and key,
/// or why there is none (the function then runs without its stash).
#[doc(hidden)]
pub struct StashedKey {
    name: String,
    found: Result<(Stash, Vec<u8>)>,
}

impl StashedKey {
    /// The function's stash name, and its stash and the key bytes (or why there are none).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn into_parts(self) -> (String, Result<(Stash, Vec<u8>)>) {
        (self.name, self.found)
    }
}

/// Used by `#[stashed_result]`: the function stash `name` under `parent()`, and the key of
/// `args` in it.
#[doc(hidden)]
pub fn __stashed_key<A: Serialize + ?Sized>(
    name: String,
    parent: fn() -> Result<Stash>,
    args: &A,
) -> StashedKey {
    let found = parent()
        .and_then(|parent| parent.function_stash(&name))
        .and_then(|results| {
            let key = results.encode_key(args)?;
            Ok((results, key))
        });
    StashedKey { name, found }
}

/// Used by `#[stashed_result]`: the stored result under `key`, or `compute()` stored there
/// if `Ok`. A stash that fails (a disk or server error) never stops the function: it is
/// reported on stderr and the function computed without it.
#[doc(hidden)]
pub fn __call_stashed<R, E>(
    key: StashedKey,
    compute: impl FnOnce() -> std::result::Result<R, E>,
) -> std::result::Result<R, E>
where
    R: Serialize + DeserializeOwned,
{
    let StashedKey { name, found } = key;
    let warn = |e: &Error| eprintln!("hashstash: {name}: {e}; computed without its stash");
    let (results, bytes) = match found {
        Ok(found) => found,
        Err(e) => {
            warn(&e);
            return compute();
        }
    };
    match lookup_key(&results, bytes) {
        Ok(Lookup::Stored(result)) => Ok(result),
        Ok(Lookup::Missing(bytes, _lock)) => {
            let result = compute()?;
            if let Err(e) = save(&results, &bytes, &result) {
                warn(&e);
            }
            Ok(result)
        }
        Err(e) => {
            warn(&e);
            compute()
        }
    }
}

/// What a function stash holds for some arguments.
pub(crate) enum Lookup<R> {
    /// Their result.
    Stored(R),
    /// Nothing yet: their key bytes, and the lock under which the caller computes the result
    /// (held until it is stored, so that others wait for it rather than compute it too).
    Missing(Vec<u8>, ComputeLock),
}

/// The stored result for `args`, or the key and lock to compute it under. The stash is read
/// again once the lock is held: whoever held it before may have stored the result.
fn lookup<A: Serialize, R: DeserializeOwned>(results: &Stash, args: &A) -> Result<Lookup<R>> {
    lookup_key(results, results.encode_key(args)?)
}

/// [`lookup`] of encoded key bytes.
pub(crate) fn lookup_key<R: DeserializeOwned>(results: &Stash, key: Vec<u8>) -> Result<Lookup<R>> {
    Ok(match lookup_encoded(results, key)? {
        Lookup::Stored(stored) => Lookup::Stored(results.decode_value(&stored)?),
        Lookup::Missing(key, lock) => Lookup::Missing(key, lock),
    })
}

/// [`lookup_key`] without decoding: the stored bytes.
fn lookup_encoded(results: &Stash, key: Vec<u8>) -> Result<Lookup<Vec<u8>>> {
    if let Some(stored) = results.engine().get(&key)? {
        results.counters().lookup(true);
        return Ok(Lookup::Stored(stored));
    }
    let lock = ComputeLock::take(results, &key)?;
    let stored = results.engine().get(&key)?;
    // One lookup, counted by its outcome: found if whoever held the lock stored it.
    results.counters().lookup(stored.is_some());
    match stored {
        Some(stored) => Ok(Lookup::Stored(stored)),
        None => Ok(Lookup::Missing(key, lock)),
    }
}

/// Stores `result` under the key bytes `key`.
fn save<R: Serialize>(results: &Stash, key: &[u8], result: &R) -> Result<()> {
    results.set_raw(key, &results.encode_value(result)?)
}

/// Makes a computation happen once when several threads or processes ask for the same
/// result at the same time; one lock per key, so that a memoized function may call others
/// (or itself on other arguments) while it holds its own.
///
/// - File engines: an exclusive lock on `locks/<key hash>.lock` in the function stash's
///   folder, covering threads and processes. Whoever computed removes the file before
///   releasing it: a waiter still locking the removed file, or a newcomer making a new one,
///   reads the stash again first and finds the result.
/// - Memory and server engines: a lock in this process for its threads, and on a server a
///   lease ([`Leases::try_lease`](crate::engine::Leases::try_lease)) for processes and machines. The lease lasts the
///   stash's `lease_ms` and is renewed by a thread while the computation runs, so a process
///   that dies lets another take over once its lease expires. Waiters poll the stash for the
///   result meanwhile.
pub(crate) struct ComputeLock {
    // Fields drop in this order: the lease goes before this process's own lock.
    _lease: Option<Lease>,
    _file: Option<KeyLock>,
    _thread: Option<ThreadLock>,
}

/// Keys being computed in this process (their function stash's namespace, then the key).
fn in_flight() -> &'static (
    std::sync::Mutex<std::collections::HashSet<Vec<u8>>>,
    std::sync::Condvar,
) {
    static IN_FLIGHT: std::sync::OnceLock<(
        std::sync::Mutex<std::collections::HashSet<Vec<u8>>>,
        std::sync::Condvar,
    )> = std::sync::OnceLock::new();
    IN_FLIGHT.get_or_init(Default::default)
}

impl ComputeLock {
    fn take(results: &Stash, key: &[u8]) -> Result<Self> {
        let engine = results.config().engine;
        if !engine.is_server() && engine != crate::EngineKind::Memory {
            return Ok(ComputeLock {
                _lease: None,
                // The folder memoization has always locked in (`locks/<key hash>.lock`).
                _file: Some(KeyLock::take(
                    &results.stash_dir().join("locks"),
                    key,
                    ".lock",
                )?),
                _thread: None,
            });
        }
        let thread = ThreadLock::take(results, key);
        let name = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key)).into_bytes();
        let owner = lease_owner();
        let ttl = std::time::Duration::from_millis(results.config().lease_ms.max(3));
        let mut pause = std::time::Duration::from_millis(10);
        loop {
            let taken = match results.engine().leases() {
                Some(leases) => Some(leases.try_lease(&name, &owner, ttl)?),
                None => None,
            };
            match taken {
                Some(true) => {
                    return Ok(ComputeLock {
                        _lease: Some(Lease::hold(results, name, owner, ttl)),
                        _file: None,
                        _thread: Some(thread),
                    })
                }
                // Another process computes it: wait for its result (the caller reads it) or
                // for its lease to expire.
                Some(false) if !results.engine().contains(key)? => {
                    std::thread::sleep(pause);
                    pause = (pause * 2)
                        .min(std::time::Duration::from_millis(200))
                        .min(ttl);
                }
                _ => {
                    return Ok(ComputeLock {
                        _lease: None,
                        _file: None,
                        _thread: Some(thread),
                    })
                }
            }
        }
    }
}

/// A key being computed by a thread of this process.
struct ThreadLock(Vec<u8>);

impl ThreadLock {
    fn take(results: &Stash, key: &[u8]) -> Self {
        let mut id = results.config().namespace().into_bytes();
        id.push(0);
        id.extend_from_slice(key);
        let (keys, changed) = in_flight();
        let mut keys = keys.lock().unwrap_or_else(|e| e.into_inner());
        while keys.contains(&id) {
            keys = changed.wait(keys).unwrap_or_else(|e| e.into_inner());
        }
        keys.insert(id.clone());
        ThreadLock(id)
    }
}

impl Drop for ThreadLock {
    fn drop(&mut self) {
        let (keys, changed) = in_flight();
        keys.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
        changed.notify_all();
    }
}

/// A name for this holder of a lease, unique across processes and machines.
fn lease_owner() -> Vec<u8> {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    format!(
        "{host}/{}/{}/{count}",
        std::process::id(),
        crate::engine::now_micros()
    )
    .into_bytes()
}

/// A lease held on a server, renewed every third of its time by a thread of its own until
/// it is released.
struct Lease {
    results: Stash,
    name: Vec<u8>,
    owner: Vec<u8>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn hold(results: &Stash, name: Vec<u8>, owner: Vec<u8>, ttl: std::time::Duration) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let renewer = {
            let (results, name, owner) = (results.clone(), name.clone(), owner.clone());
            std::thread::Builder::new()
                .name("hashstash-lease".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(ttl / 3)
                    {
                        // A lease that could not be renewed may pass to another process,
                        // which then computes the same result: wasted work, never a wrong
                        // one. This one keeps computing.
                        let renewed = (results.engine().leases())
                            .map(|leases| leases.renew_lease(&name, &owner, ttl));
                        if !matches!(renewed, Some(Ok(true))) {
                            break;
                        }
                    }
                })
                .ok()
        };
        Lease {
            results: results.clone(),
            name,
            owner,
            stop: Some(stop),
            renewer,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        // Best effort: a lease left behind expires by itself.
        if let Some(leases) = self.results.engine().leases() {
            let _ = leases.release_lease(&self.name, &self.owner);
        }
    }
}
