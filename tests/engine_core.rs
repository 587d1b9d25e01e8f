//! The `Engine` trait's small core: an engine of another crate writes the eight required
//! methods and gets the rest (the byte conveniences of `EngineExt`, the defaults of
//! `get_with`, `get_many`, `contains`, `scan_each`), and says through `capabilities` what it
//! can do beyond them; every engine of this crate has the capabilities the stash relies on.

use crate::common::{append_stash, stash};
use hashstash::engine::{Capabilities, EngineExt, EntryIter, WriteItem, WriteMeta};
use hashstash::{Engine, EngineKind, Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An engine with the required methods only, as a user of the trait would write one.
#[derive(Debug, Default)]
struct MapEngine(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl MapEngine {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.0.lock().unwrap()
    }
}

impl Engine for MapEngine {
    fn name(&self) -> &'static str {
        "map"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map().get(key).cloned())
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        let mut map = self.map();
        for &(key, value, _) in items {
            map.insert(key.to_vec(), value.to_vec());
        }
        Ok(())
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        let mut map = self.map();
        Ok(keys.iter().filter(|k| map.remove(**k).is_some()).count() as u64)
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        let entries: Vec<_> = self.map().clone().into_iter().map(Ok).collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn len(&self) -> Result<usize> {
        Ok(self.map().len())
    }

    fn clear(&self) -> Result<()> {
        self.map().clear();
        Ok(())
    }

    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::default()
    }
}

#[test]
fn an_engine_of_the_required_methods_gets_the_rest_built_on_them() {
    let engine: Box<dyn Engine> = Box::new(MapEngine::default());
    assert!(engine.is_empty().unwrap());
    engine.set(b"a", b"1").unwrap();
    engine.set_many(&[(b"b", b"2"), (b"c", b"3")]).unwrap();
    assert_eq!(engine.len().unwrap(), 3);

    let mut lent = Vec::new();
    assert!(engine.get_with(b"b", &mut |v| lent = v.to_vec()).unwrap());
    assert_eq!(lent, b"2");
    assert!(!engine.get_with(b"z", &mut |_| panic!("no value")).unwrap());
    assert_eq!(
        engine.get_many(&[b"c", b"z", b"a"]).unwrap(),
        [Some(b"3".to_vec()), None, Some(b"1".to_vec())]
    );
    assert!(engine.contains(b"a").unwrap());
    assert!(!engine.contains(b"z").unwrap());

    let mut seen = Vec::new();
    engine
        .scan_each(&mut |entry| {
            let (k, v) = entry.unwrap();
            seen.push((k.to_vec(), v.to_vec()));
            seen.len() < 2 // stops after two
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );

    assert!(engine.remove(b"a").unwrap());
    assert!(!engine.remove(b"a").unwrap());
    assert_eq!(engine.get(b"a").unwrap(), None);
    engine.clear().unwrap();
    assert!(engine.is_empty().unwrap());
}

#[test]
fn an_engine_without_a_capability_says_which_instead_of_doing_nothing() {
    let engine = MapEngine::default();
    engine.set(b"k", b"v").unwrap();
    let missing = [
        engine.history().map(|_| ()).unwrap_err(),
        engine.atomic_insert().map(|_| ()).unwrap_err(),
        engine.housekeeping().map(|_| ()).unwrap_err(),
    ];
    for error in missing {
        assert!(
            matches!(error, Error::Unsupported { engine: "map", .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("the map engine has no "),
            "{error}"
        );
    }
    assert!(engine.leases().is_none());
    assert!(engine.catalog().is_none());
}

engine_test! {
    pub fn every_engine_here_has_the_capabilities_the_stash_relies_on(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        s.set("k", &1).unwrap();
        s.set("k", &2).unwrap();
        let e = s.engine();
        let key = s.encode_key("k").unwrap();
        let versions = e.history().unwrap().versions(&key).unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
        let found = e.atomic_insert().unwrap().insert_if_absent(&key, b"x", Default::default());
        assert_eq!(found.unwrap(), e.get(&key).unwrap(), "a live key is left alone");
        let long_gone = WriteMeta { timestamp_micros: None, expires_micros: Some(1) };
        e.write_items(&[(b"gone", b"v", long_gone)]).unwrap();
        let now = hashstash::engine::now_micros();
        assert_eq!(e.housekeeping().unwrap().prune_expired(now).unwrap(), 1);
        assert_eq!(e.len().unwrap(), 1);
        assert!(e.catalog().is_some());
        assert_eq!(e.leases().is_some(), engine.is_server(), "servers lease, files lock");
        #[cfg(feature = "async")]
        assert_eq!(
            e.as_async().is_some(),
            matches!(engine, EngineKind::Redis | EngineKind::Mongo)
        );
        let (_d2, plain) = stash(engine);
        assert!(plain.engine().is_empty().unwrap());
    }
}
