//! Function results: `stash.run(f, args)` computes `f(args)` once and reads it back after.
//!
//! Each function has a stash of its own under the parent, as in the seed:
//! `<dbname>/stashed_result/<function>`, with the parent's engine and format. Its keys are
//! the arguments (canonical bytes, as any key) and its values the results, so a function
//! stash is a stash like any other: iterate it, query it with SQL, turn it into a DataFrame.
//! As a table, a function stash's key spreads into argument columns: the items of a tuple
//! (or list) of arguments are `_arg1.._argN`, the fields of a struct (or map) of arguments
//! are columns of their own, and a single other argument is `_arg1`.

use crate::error::{Error, Result};
use crate::stash::Stash;
use serde::{de::DeserializeOwned, Serialize};

/// The folder of function stashes inside a stash's database name.
pub const FUNCTIONS_FOLDER: &str = "stashed_result";

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
        opened.insert(folder, stash.clone());
        Ok(stash)
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
        let results = self.function_stash(name)?;
        if let Some(stored) = results.get(&args)? {
            return Ok(stored);
        }
        // Not stored yet: whoever holds the lock computes; the others wait, then read.
        let key = results.encode_key(&args)?;
        let _lock = ComputeLock::take(&results, &key)?;
        if let Some(stored) = results.engine().get(&key)? {
            return results.decode_value(&stored);
        }
        store(&results, f, args)
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
        if let Some(stored) = results.get(&args)? {
            return Ok(Ok(stored));
        }
        let key = results.encode_key(&args)?;
        let _lock = ComputeLock::take(&results, &key)?;
        if let Some(stored) = results.engine().get(&key)? {
            return results.decode_value(&stored).map(Ok);
        }
        match f(args) {
            Ok(result) => {
                results
                    .engine()
                    .set(&key, &results.encode_value(&result)?)?;
                Ok(Ok(result))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// [`Stash::run_named`], computing again even if a result is stored, and replacing it.
    pub fn run_forced<F, A, R>(&self, name: &str, f: F, args: A) -> Result<R>
    where
        F: FnOnce(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        store(&self.function_stash(name)?, f, args)
    }

    /// The stored result of function `name` for `args`, without computing anything (the
    /// seed's `get_func`).
    pub fn get_func<A: Serialize, R: DeserializeOwned>(
        &self,
        name: &str,
        args: &A,
    ) -> Result<Option<R>> {
        self.function_stash(name)?.get(args)
    }
}

/// Computes `f(args)` and stores it under `args`. The key is encoded before `f` takes the
/// arguments, so a key that cannot be encoded fails before any work is done.
fn store<F, A, R>(results: &Stash, f: F, args: A) -> Result<R>
where
    F: FnOnce(A) -> R,
    A: Serialize,
    R: Serialize + DeserializeOwned,
{
    let key = results.encode_key(&args)?;
    let result = f(args);
    let value = results.encode_value(&result)?;
    results.engine().set(&key, &value)?;
    Ok(result)
}

/// Makes a computation happen once when several threads or processes ask for the same
/// result at the same time: an exclusive lock on a file in the function stash's folder
/// (`locks/NNN.lock`, one of [`LOCK_STRIPES`] picked by the key's hash, so their number stays
/// bounded). File engines only: server engines and memory take no lock.
struct ComputeLock(Option<std::fs::File>);

/// How many lock files a function stash has at most.
const LOCK_STRIPES: u64 = 256;

impl ComputeLock {
    fn take(results: &Stash, key: &[u8]) -> Result<Self> {
        let engine = results.config().engine;
        if engine.is_server() || engine == crate::EngineKind::Memory {
            return Ok(ComputeLock(None));
        }
        let dir = results.stash_dir().join("locks");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let stripe = xxhash_rust::xxh3::xxh3_64(key) % LOCK_STRIPES;
        let path = dir.join(format!("{stripe:03}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // Released when the file is closed, also when the process dies.
        fs4::fs_std::FileExt::lock_exclusive(&file).map_err(|e| Error::io(&path, e))?;
        Ok(ComputeLock(Some(file)))
    }
}

impl Drop for ComputeLock {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            // Closing the file would release it too; this says so where it happens.
            let _ = fs4::fs_std::FileExt::unlock(file);
        }
    }
}
