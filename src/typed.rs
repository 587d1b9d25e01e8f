//! [`Typed`]: a stash seen with one key type and one value type, as heed's
//! `Database<K, V>`: its methods need no turbofish.

use crate::error::Result;
use crate::stash::Stash;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// A stash whose keys are `K` and values are `V` ([`Stash::typed`]). It is the same stash
/// (a cheap handle, like a [`Stash`] clone), so it sees every entry, also those written
/// through other views; an entry whose value is not a `V` is an error when read.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// let ages = stash.typed::<String, u32>();
/// ages.set(&"cat".to_string(), &9)?;
/// assert_eq!(ages.get(&"cat".to_string())?, Some(9));
/// let all: Vec<(String, u32)> = ages.iter()?.collect::<Result<_, _>>()?;
/// assert_eq!(all, [("cat".to_string(), 9)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Typed<K, V> {
    stash: Stash,
    /// Only names the types (a `fn` pointer type: `Send` and `Sync` whatever they are).
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Typed<K, V> {
    fn clone(&self) -> Self {
        Typed {
            stash: self.stash.clone(),
            types: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for Typed<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Typed<{}, {}>({})",
            std::any::type_name::<K>(),
            std::any::type_name::<V>(),
            self.stash
        )
    }
}

impl Stash {
    /// This stash with keys of type `K` and values of type `V`: `get`, `set` and `iter`
    /// without naming the types at each call.
    pub fn typed<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(
        &self,
    ) -> Typed<K, V> {
        Typed {
            stash: self.clone(),
            types: PhantomData,
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Typed<K, V> {
    /// The stash itself, for everything else.
    pub fn stash(&self) -> &Stash {
        &self.stash
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.stash.get(key)
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: &K, value: &V) -> Result<()> {
        self.stash.set(key, value)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.stash.contains(key)
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&self, key: &K) -> Result<bool> {
        self.stash.remove(key)
    }

    /// The values of `keys`, in order, in one engine read.
    pub fn get_many<'a>(&self, keys: impl IntoIterator<Item = &'a K>) -> Result<Vec<Option<V>>>
    where
        K: 'a,
    {
        self.stash.get_many(keys)
    }

    /// Stores every `(key, value)` pair.
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        self.stash.update(items)
    }

    /// Every `(key, value)` pair.
    pub fn iter(&self) -> Result<impl Iterator<Item = Result<(K, V)>> + '_> {
        self.stash.items()
    }

    /// Every key.
    pub fn keys(&self) -> Result<impl Iterator<Item = Result<K>> + '_> {
        self.stash.keys()
    }

    /// Every value.
    pub fn values(&self) -> Result<impl Iterator<Item = Result<V>> + '_> {
        self.stash.values()
    }

    /// The number of keys.
    pub fn len(&self) -> Result<usize> {
        self.stash.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.stash.len()? == 0)
    }
}
