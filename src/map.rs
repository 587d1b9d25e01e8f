//! Parallel map through a function stash: `stash.map_named(name, f, items, options)` runs
//! `f` on every item on a rayon pool, computing only the results not stored yet, each stored
//! under the same key [`Stash::run`](crate::Stash::run) uses, so a map and single runs share
//! their results.

use crate::error::{Error, Result};
use crate::stash::Stash;
use serde::{de::DeserializeOwned, Serialize};

/// Options of [`Stash::map_named`].
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    /// Threads computing items (`None`: one per core; 1: one item after another).
    pub num_threads: Option<usize>,
    /// Compute every item again, replacing stored results.
    pub force: bool,
}

/// The outcome of a map: each item with its result, in the order the items were given.
#[derive(Debug)]
pub struct StashMap<A, R> {
    items: Vec<A>,
    results: Vec<Result<R>>,
}

impl<A, R> StashMap<A, R> {
    /// Every result in item order, or the first item's error.
    pub fn results(self) -> Result<Vec<R>> {
        self.results.into_iter().collect()
    }

    /// Each item with its result (an item that failed has its error), in item order.
    pub fn items(self) -> Vec<(A, Result<R>)> {
        self.items.into_iter().zip(self.results).collect()
    }

    /// How many items the map ran over.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the map had no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Stash {
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
        F: Fn(A) -> R + Sync,
        A: Serialize + Clone + Send + Sync,
        R: Serialize + DeserializeOwned + Send,
    {
        use rayon::prelude::*;
        // Opened once here, so that the workers share one function stash.
        self.function_stash(name)?;
        let run_one = |item: &A| -> Result<R> {
            let call = || {
                if options.force {
                    self.run_forced(name, &f, item.clone())
                } else {
                    self.run_named(name, &f, item.clone())
                }
            };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
                Ok(result) => result,
                Err(panic) => Err(Error::engine(
                    "map",
                    format!(
                        "{name} panicked on {}: {}",
                        serde_json::to_string(item).unwrap_or_else(|_| "its item".into()),
                        panic_message(panic.as_ref())
                    ),
                )),
            }
        };
        let results = match options.num_threads {
            Some(1) => items.iter().map(run_one).collect(),
            threads => rayon::ThreadPoolBuilder::new()
                .num_threads(threads.unwrap_or(0))
                .build()
                .map_err(|e| Error::engine("map", e))?
                .install(|| items.par_iter().map(run_one).collect()),
        };
        Ok(StashMap { items, results })
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
