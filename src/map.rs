//! Parallel map through a function stash: `stash.map_named(name, f, items, options)` runs
//! `f` on every item on a rayon pool, in the background, computing only the results not
//! stored yet, each stored under the same key [`Stash::run`](crate::Stash::run) uses, so a
//! map and single runs share their results. The [`StashMap`] it returns hands results over
//! as they finish ([`StashMap::results_iter`]) or all at once ([`StashMap::results`]).
//!
//! Items are computed once across threads, processes and machines, as single runs are:
//! several processes mapping the same items over one Redis or MongoDB stash share the work.
//!
//! [`Stash::try_map_named`] maps a function that can fail, as [`Stash::try_run`] runs one:
//! an item's `Err` is handed back as that item's [`MapError::Failed`] and not stored, so the
//! next map tries it again.

use crate::error::{Error, Result};
use crate::memo::function_name;
use crate::stash::Stash;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

/// Options of [`Stash::map_named`] (the Python original's `stash.map` options).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::map::MapOptions;
///
/// let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// let options = MapOptions { num_threads: Some(2), ordered: true, ..Default::default() };
/// let map = stash.map_named("double", |x: u32| x * 2, vec![3, 1, 2], options)?;
/// let doubled: Vec<u32> = map.results_iter().collect::<Result<_, _>>()?; // as they finish, in order
/// assert_eq!(doubled, [6, 2, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MapOptions {
    /// Threads computing items (`None`: one per core; 1: one item after another).
    pub num_threads: Option<usize>,
    /// Compute every item again, replacing stored results (the Python original's `_force`).
    pub force: bool,
    /// [`StashMap::results_iter`] yields in item order rather than as items finish.
    pub ordered: bool,
    /// Read every stored result up front in one batch (`get_many`), before computing the
    /// missing ones. Without it each item is looked up on its own as it comes to be run.
    pub preload: bool,
    /// Start computing at once, in the background; the map is returned straight away.
    /// Without it nothing is computed until the results are asked for.
    pub precompute: bool,
    /// Where to report progress (the Python original's `progress=True`): one step per item. The
    /// command line draws a bar from it; see [`crate::progress`].
    pub progress: Option<crate::progress::Observer>,
    /// The description given to the observer (default: `Mapping <name> across <n> items`).
    pub desc: Option<String>,
    /// Store each item's result in the function stash (the Python original's `stash_runs`). When false,
    /// results already stored are still read, but new ones are not written.
    pub stash_runs: bool,
    /// Also store the whole list of results under the whole list of items, in the function
    /// stash's `stashed_map` stash (the Python original's `stash_map`): the same map again is then one
    /// read. Stored only when every item succeeded.
    pub stash_map: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            num_threads: None,
            force: false,
            ordered: false,
            preload: true,
            precompute: true,
            progress: None,
            desc: None,
            stash_runs: true,
            stash_map: false,
        }
    }
}

/// Why one item of a [`Stash::try_map_named`] has no result.
#[derive(Debug)]
pub enum MapError<E> {
    /// The function returned this error for the item; nothing was stored.
    Failed(E),
    /// The stash failed for the item (or the function panicked on it).
    Stash(Error),
}

impl<E> From<Error> for MapError<E> {
    fn from(e: Error) -> Self {
        MapError::Stash(e)
    }
}

impl<E: std::fmt::Display> std::fmt::Display for MapError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapError::Failed(e) => write!(f, "the function failed: {e}"),
            MapError::Stash(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for MapError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MapError::Failed(e) => Some(e),
            MapError::Stash(e) => Some(e),
        }
    }
}

/// A map running (or done): each item with its result once it is there. `E` is an item's
/// error: the crate's [`Error`] for [`Stash::map_named`], a [`MapError`] for
/// [`Stash::try_map_named`].
///
/// Dropping it lets a computation already started finish in the background.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::map::MapOptions;
///
/// let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// let map = stash.map_named("len", |s: String| s.len(), vec!["a".into(), "abc".into()], MapOptions::default())?;
/// assert_eq!(map.get(1).transpose()?, Some(3)); // index access: waits for item 1
/// assert_eq!(map.was_cached(1), Some(false)); // computed, not read back
/// for (item, result) in map.items() {
///     assert_eq!(result?, item.len());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StashMap<A, R, E = Error> {
    name: String,
    items: Arc<Vec<A>>,
    state: Arc<State<R, E>>,
    ordered: bool,
    /// The computation, until it is started (without `precompute`).
    start: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// The results so far, shared with the computation.
struct State<R, E> {
    slots: Mutex<Slots<R, E>>,
    changed: Condvar,
}

struct Slots<R, E> {
    results: Vec<Option<std::result::Result<R, E>>>,
    /// Per item, once it has its result: whether it was read back rather than computed.
    cached: Vec<Option<bool>>,
    /// Items finished and not yet handed out by an unordered `results_iter`, in the order
    /// they finished.
    finished: VecDeque<usize>,
    remaining: usize,
    /// Whether the computation has ended, the whole map stored if asked.
    done: bool,
}

impl<R, E> State<R, E> {
    fn new(items: usize) -> Self {
        State {
            slots: Mutex::new(Slots {
                results: (0..items).map(|_| None).collect(),
                cached: vec![None; items],
                finished: VecDeque::new(),
                remaining: items,
                done: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Gives item `index` its result, `cached` if it was read back rather than computed.
    fn put(&self, index: usize, result: std::result::Result<R, E>, cached: bool) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.results[index].is_none() {
            slots.results[index] = Some(result);
            slots.cached[index] = Some(cached);
            slots.finished.push_back(index);
            slots.remaining -= 1;
        }
        self.changed.notify_all();
    }

    fn finish(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        self.changed.notify_all();
    }

    /// The slots once the computation has ended.
    fn wait_all(&self) -> std::sync::MutexGuard<'_, Slots<R, E>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while !slots.done {
            slots = self.changed.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
        slots
    }
}

impl<A, R, E: From<Error>> StashMap<A, R, E> {
    fn ensure_started(&self) {
        let start = self.start.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(start) = start {
            start();
        }
    }

    /// Blocks until every item has its result.
    pub fn wait(&self) {
        self.ensure_started();
        drop(self.state.wait_all());
    }

    /// How many items have their result so far.
    pub fn finished(&self) -> usize {
        let slots = self.state.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.results.len() - slots.remaining
    }

    /// Item `index`'s result, once it is there (this waits for it), as often as asked: the
    /// Python original's `stash_map[index]`. `None` past the last item. An error is handed over once;
    /// later calls get an error with its message.
    pub fn get(&self, index: usize) -> Option<std::result::Result<R, E>>
    where
        R: Clone,
        E: std::fmt::Display,
    {
        if index >= self.items.len() {
            return None;
        }
        self.ensure_started();
        let mut slots = self.state.slots.lock().unwrap_or_else(|e| e.into_inner());
        while slots.results[index].is_none() && slots.cached[index].is_none() {
            slots = self
                .state
                .changed
                .wait(slots)
                .unwrap_or_else(|e| e.into_inner());
        }
        Some(match slots.results[index].take() {
            Some(Ok(result)) => {
                slots.results[index] = Some(Ok(result.clone()));
                Ok(result)
            }
            Some(Err(e)) => {
                let again = Error::engine("map", format!("item {index} failed: {e}"));
                slots.results[index] = Some(Err(E::from(again)));
                Err(e)
            }
            // Taken by `results_iter` or `items_iter`.
            None => Err(handed_out()),
        })
    }

    /// The item at `index`.
    pub fn item(&self, index: usize) -> Option<&A> {
        self.items.get(index)
    }

    /// Whether item `index`'s result was read back from the stash rather than computed;
    /// `None` until it has its result (or past the last item).
    pub fn was_cached(&self, index: usize) -> Option<bool> {
        let slots = self.state.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.cached.get(index).copied().flatten()
    }

    /// Every result in item order, once all are there, or the first item's error.
    pub fn results(self) -> std::result::Result<Vec<R>, E> {
        self.into_results().into_iter().collect()
    }

    /// Each item with its result (an item that failed has its error), in item order, once
    /// all are there.
    pub fn items(self) -> Vec<(A, std::result::Result<R, E>)>
    where
        A: Clone,
    {
        let items = Arc::clone(&self.items);
        items.iter().cloned().zip(self.into_results()).collect()
    }

    /// The results as items finish (in item order with [`MapOptions::ordered`]).
    pub fn results_iter(self) -> impl Iterator<Item = std::result::Result<R, E>>
    where
        A: Clone,
    {
        self.items_iter().map(|(_, result)| result)
    }

    /// Each item with its result, as items finish (in item order with
    /// [`MapOptions::ordered`]).
    pub fn items_iter(self) -> impl Iterator<Item = (A, std::result::Result<R, E>)>
    where
        A: Clone,
    {
        self.ensure_started();
        let mut next_in_order = 0;
        std::iter::from_fn(move || {
            let mut slots = self.state.slots.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let ready = if self.ordered {
                    (next_in_order < slots.results.len() && slots.results[next_in_order].is_some())
                        .then(|| {
                            next_in_order += 1;
                            next_in_order - 1
                        })
                } else {
                    slots.finished.pop_front()
                };
                if let Some(index) = ready {
                    let result = slots.results[index].take()?;
                    return Some((self.items[index].clone(), result));
                }
                let all_handed_out = if self.ordered {
                    next_in_order == slots.results.len()
                } else {
                    slots.remaining == 0
                };
                if all_handed_out {
                    return None;
                }
                slots = self
                    .state
                    .changed
                    .wait(slots)
                    .unwrap_or_else(|e| e.into_inner());
            }
        })
    }

    fn into_results(self) -> Vec<std::result::Result<R, E>> {
        self.ensure_started();
        let mut slots = self.state.wait_all();
        slots
            .results
            .iter_mut()
            .map(|r| r.take().unwrap_or_else(|| Err(handed_out())))
            .collect()
    }

    /// How many items the map runs over.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the map has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn handed_out<E: From<Error>>() -> E {
    E::from(Error::engine("map", "this result was already handed out"))
}

impl<A, R, E: From<Error>> std::fmt::Debug for StashMap<A, R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StashMap")
            .field("function", &self.name)
            .field("items", &self.len())
            .field("finished", &self.finished())
            .finish()
    }
}

impl Stash {
    /// [`Stash::map_named`] for a function item, named by its Rust path as in
    /// [`Stash::run`].
    pub fn map<F, A, R>(&self, f: F, items: Vec<A>, options: MapOptions) -> Result<StashMap<A, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_named(&function_name::<F>()?, f, items, options)
    }

    /// Runs `f` on every item in parallel through the function stash `name` (see
    /// [`Stash::run_named`]): stored results are read, missing ones computed and stored.
    /// A panic or error in one item becomes that item's error, naming its arguments; the
    /// other items' results are still computed and stored.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// use hashstash::map::MapOptions;
    /// let squares = stash.map_named("square", |x: u64| x * x, vec![1, 2, 3], MapOptions::default())?;
    /// assert_eq!(squares.results()?, [1, 4, 9]);
    /// assert_eq!(stash.get_func::<_, u64>("square", &3)?, Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_named<F, A, R>(
        &self,
        name: &str,
        f: F,
        items: Vec<A>,
        options: MapOptions,
    ) -> Result<StashMap<A, R>>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (parent, function) = (self.clone(), name.to_owned());
        let (force, stash_runs) = (options.force, options.stash_runs);
        let call = move |item: A| -> (Result<R>, bool) {
            let computed = std::cell::Cell::new(false);
            let f = |item| {
                computed.set(true);
                f(item)
            };
            let result = match (force, stash_runs) {
                (true, true) => parent.run_forced(&function, f, item),
                (false, true) => parent.run_named(&function, f, item),
                (_, false) => Ok(f(item)),
            };
            (result, !computed.get())
        };
        self.start_map(name, items, options, call)
    }

    /// [`Stash::map_named`] for a function that can fail, as [`Stash::try_run_named`] runs
    /// one: an item's `Ok` is stored, its `Err` handed back as [`MapError::Failed`] and not
    /// stored (the next map computes it again); a stash error or a panic is
    /// [`MapError::Stash`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// use hashstash::map::{MapError, MapOptions};
    /// let parse = |s: String| s.parse::<u32>().map_err(|e| e.to_string());
    /// let items = vec!["1".to_string(), "x".to_string()];
    /// let map = stash.try_map_named("parse", parse, items, MapOptions::default())?;
    /// let results = map.items();
    /// assert_eq!(results[0].1.as_ref().ok(), Some(&1));
    /// assert!(matches!(&results[1].1, Err(MapError::Failed(why)) if why.contains("invalid digit")));
    /// assert_eq!(stash.function_stash("parse")?.len()?, 1); // the error was not stored
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_map_named<F, A, R, E>(
        &self,
        name: &str,
        f: F,
        items: Vec<A>,
        options: MapOptions,
    ) -> Result<StashMap<A, R, MapError<E>>>
    where
        F: Fn(A) -> std::result::Result<R, E> + Send + Sync + 'static,
        A: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
    {
        let results = self.function_stash(name)?;
        let (parent, function) = (self.clone(), name.to_owned());
        let (force, stash_runs) = (options.force, options.stash_runs);
        let call = move |item: A| -> (std::result::Result<R, MapError<E>>, bool) {
            let computed = std::cell::Cell::new(false);
            let f = |item| {
                computed.set(true);
                f(item)
            };
            let result = match (force, stash_runs) {
                (false, true) => parent.try_run_named(&function, f, item),
                (true, true) => results.encode_key(&item).and_then(|key| match f(item) {
                    Ok(result) => {
                        results.set_raw(&key, &results.encode_value(&result)?)?;
                        Ok(Ok(result))
                    }
                    Err(e) => Ok(Err(e)),
                }),
                (_, false) => Ok(f(item)),
            };
            let result = match result {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(e)) => Err(MapError::Failed(e)),
                Err(e) => Err(MapError::Stash(e)),
            };
            (result, !computed.get())
        };
        self.start_map(name, items, options, call)
    }

    /// [`Stash::try_map_named`] for a function item, named by its Rust path.
    pub fn try_map<F, A, R, E>(
        &self,
        f: F,
        items: Vec<A>,
        options: MapOptions,
    ) -> Result<StashMap<A, R, MapError<E>>>
    where
        F: Fn(A) -> std::result::Result<R, E> + Send + Sync + 'static,
        A: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: Send + 'static,
    {
        self.try_map_named(&function_name::<F>()?, f, items, options)
    }

    /// The map both kinds share: reads what is stored (the whole map, or each item's
    /// result), then starts `call` (an item's result, and whether it was read back) on
    /// the items left, in the background or when first asked.
    fn start_map<A, R, E, C>(
        &self,
        name: &str,
        items: Vec<A>,
        options: MapOptions,
        call: C,
    ) -> Result<StashMap<A, R, E>>
    where
        A: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + Send + 'static,
        C: Fn(A) -> (std::result::Result<R, E>, bool) + Send + Sync + 'static,
    {
        let results = self.function_stash(name)?;
        let items = Arc::new(items);
        let state = Arc::new(State::new(items.len()));
        let whole_map = if options.stash_map {
            Some(results.sub("stashed_map")?)
        } else {
            None
        };
        let stored_map = match &whole_map {
            Some(maps) if !options.force => maps.get::<_, Vec<R>>(&*items)?,
            _ => None,
        };
        let mut todo: Vec<usize> = (0..items.len()).collect();
        let mut whole_map = whole_map;
        if let Some(stored) = stored_map.filter(|stored| stored.len() == items.len()) {
            stored
                .into_iter()
                .enumerate()
                .for_each(|(i, r)| state.put(i, Ok(r), true));
            todo.clear();
            whole_map = None;
        } else if options.preload && !options.force {
            todo = preload(&results, &items, &state)?;
        }
        let job = {
            let (name, items, state) = (name.to_owned(), Arc::clone(&items), Arc::clone(&state));
            let options = options.clone();
            move || compute(&name, &call, &items, &state, todo, &options, whole_map)
        };
        let unstarted = Arc::clone(&state);
        let start: Box<dyn FnOnce() + Send> = Box::new(move || {
            let spawned = std::thread::Builder::new()
                .name("hashstash-map".into())
                .spawn(job);
            if let Err(e) = spawned {
                // No thread, no results: every item still waiting gets the error, so that
                // nobody waits for ever.
                let count = unstarted
                    .slots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .results
                    .len();
                for i in 0..count {
                    let why = Error::engine("map", format!("cannot start a map: {e}"));
                    unstarted.put(i, Err(E::from(why)), false);
                }
                unstarted.finish();
            }
        });
        let map = StashMap {
            name: name.to_owned(),
            items,
            state,
            ordered: options.ordered,
            start: Mutex::new(Some(start)),
        };
        if options.precompute {
            map.ensure_started();
        }
        Ok(map)
    }

    /// [`Stash::map_named`] over calls `f(item, keywords)`: `common` keyword arguments for
    /// every item, or an item's own from `per_item` (the Python original's `options`; `None` or a short
    /// list means the common ones). Each result is stored under `(item, keywords)`, the
    /// function stash's `_arg1` and `_arg2` columns.
    pub fn map_with<F, A, K, R>(
        &self,
        name: &str,
        f: F,
        items: Vec<A>,
        common: K,
        per_item: Vec<Option<K>>,
        options: MapOptions,
    ) -> Result<StashMap<(A, K), R>>
    where
        F: Fn(A, K) -> R + Send + Sync + 'static,
        A: Serialize + Clone + Send + Sync + 'static,
        K: Serialize + Clone + Send + Sync + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let mut per_item = per_item.into_iter();
        let calls = items
            .into_iter()
            .map(|item| {
                let keywords = per_item.next().flatten().unwrap_or_else(|| common.clone());
                (item, keywords)
            })
            .collect();
        self.map_named(
            name,
            move |(item, keywords)| f(item, keywords),
            calls,
            options,
        )
    }
}

/// Reads the stored results of `items` in one batch into `state`; returns the indices of
/// the items still to compute.
fn preload<A: Serialize, R: DeserializeOwned, E: From<Error>>(
    results: &Stash,
    items: &[A],
    state: &State<R, E>,
) -> Result<Vec<usize>> {
    let mut keys = Vec::with_capacity(items.len());
    let mut todo = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match results.encode_key(item) {
            Ok(key) => keys.push((i, key)),
            Err(e) => state.put(i, Err(E::from(e)), false),
        }
    }
    let refs: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_slice()).collect();
    let stored = results.engine().get_many(&refs)?;
    for ((i, _), stored) in keys.iter().zip(stored) {
        match stored {
            Some(bytes) => {
                results.counters().lookup(true);
                state.put(*i, results.decode_value(&bytes).map_err(E::from), true)
            }
            // Counted when the item is looked up again to compute it.
            None => todo.push(*i),
        }
    }
    Ok(todo)
}

/// Computes the items `todo` on a pool of `options.num_threads`, putting each result in
/// `state` as it finishes; then stores the whole map if asked to.
fn compute<A, R, E, C>(
    name: &str,
    call: &C,
    items: &[A],
    state: &State<R, E>,
    todo: Vec<usize>,
    options: &MapOptions,
    whole_map: Option<Stash>,
) where
    A: Serialize + Clone + Sync,
    R: Serialize + Send,
    E: From<Error> + Send,
    C: Fn(A) -> (std::result::Result<R, E>, bool) + Sync,
{
    use rayon::prelude::*;
    let observer = options.progress.as_ref();
    if let Some(observer) = observer {
        let (total, to_compute) = (items.len(), todo.len());
        let threads = options
            .num_threads
            .unwrap_or_else(rayon::current_num_threads);
        let desc = options
            .desc
            .clone()
            .unwrap_or_else(|| format!("Mapping {name} across {total} items [{threads}x]"));
        observer.start(&desc, total as u64, (total - to_compute) as u64);
    }
    let run_one = |&i: &usize| {
        let item = &items[i];
        let (result, cached) =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(item.clone())))
                .unwrap_or_else(|panic| {
                    let why = Error::engine(
                        "map",
                        format!(
                            "{name} panicked on {}: {}",
                            serde_json::to_string(item).unwrap_or_else(|_| "its item".into()),
                            panic_message(panic.as_ref())
                        ),
                    );
                    (Err(E::from(why)), false)
                });
        state.put(i, result, cached);
        if let Some(observer) = observer {
            observer.advance(1);
        }
    };
    let pool = match options.num_threads {
        Some(1) => None,
        threads => rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .build()
            .ok(),
    };
    match pool {
        Some(pool) => pool.install(|| todo.par_iter().for_each(run_one)),
        None => todo.iter().for_each(run_one),
    }
    if let Some(observer) = observer {
        observer.finish();
    }
    if let Some(maps) = whole_map {
        store_whole_map(&maps, items, state);
    }
    state.finish();
}

/// Stores the list of results under the list of items, when every item succeeded.
fn store_whole_map<A: Serialize, R: Serialize, E>(maps: &Stash, items: &[A], state: &State<R, E>) {
    let slots = state.slots.lock().unwrap_or_else(|e| e.into_inner());
    let all: Option<Vec<&R>> = slots
        .results
        .iter()
        .map(|r| r.as_ref().and_then(|r| r.as_ref().ok()))
        .collect();
    if let Some(all) = all {
        if let Err(e) = maps.set(items, &all) {
            eprintln!("hashstash: the whole map could not be stored: {e}");
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
