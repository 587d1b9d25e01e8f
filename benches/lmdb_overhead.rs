//! What a stash get on LMDB costs over a raw heed get plus the same decode (issue 7's
//! target: at most 1.5x), measured A/B: the two run in alternating rounds over the same
//! 10,000 items, so that a slow minute on a shared machine slows both and not one.
//!
//! `cargo bench --all-features --bench lmdb_overhead` (it reads the stored record, so it needs
//! the `internals` feature) prints, per read order, the median
//! ns per get of each side and their ratio. `HASHSTASH_BENCH_DIR` picks the folder (a tmpfs
//! such as `/dev/shm` keeps the disk out of it). Under `cargo test --benches` it runs two
//! short rounds, which only shows that it works.

#[cfg(all(feature = "lmdb", feature = "internals"))]
fn main() {
    use hashstash::{Codec, EngineKind, Stash};
    use serde::{Deserialize, Serialize};
    use std::hint::black_box;
    use std::time::Instant;

    #[derive(Serialize, Deserialize)]
    struct Item {
        name: String,
        i: u64,
        vals: Vec<u32>,
    }
    const N: usize = 10_000;
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 2 } else { 31 };

    let dir = match std::env::var_os("HASHSTASH_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("bench dir");
    let keys: Vec<String> = (0..N).map(|i| format!("key{i}")).collect();
    let item = |i: usize| Item {
        name: "cat".into(),
        i: i as u64,
        vals: (0..10).collect(),
    };
    let stash = Stash::builder()
        .root_dir(dir.path().join("stash"))
        .engine(EngineKind::Lmdb)
        .open()
        .expect("open stash");
    stash
        .update(keys.iter().enumerate().map(|(i, k)| (k.clone(), item(i))))
        .expect("fill stash");

    // The raw side stores the very bytes the stash stores: the encoded key as the LMDB key
    // and the encoded value, decoded by the same codec. Two more raw layouts split what the
    // stash adds: read transactions without thread-local reader slots (as the stash opens
    // them), and then also the stash's record around the value (checksum verified, stored
    // key compared).
    let codec = Codec::default();
    let raw_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| hashstash::codec::encode_key(k).expect("key"))
        .collect();
    let values: Vec<Vec<u8>> = (0..N)
        .map(|i| codec.encode_value(&item(i)).expect("value"))
        .collect();
    let raw = RawLayout::create(&dir.path().join("raw"), |i| {
        (raw_keys[i].clone(), values[i].clone())
    });
    let notls = RawLayout::create(&dir.path().join("notls"), |i| {
        (raw_keys[i].clone(), values[i].clone())
    })
    .without_tls();
    let recorded = RawLayout::create(&dir.path().join("recorded"), |i| {
        let record = hashstash::engine::record::Record {
            key: &raw_keys[i],
            version: 1,
            timestamp_micros: 0,
            expires_micros: None,
            value: &values[i],
        };
        (raw_keys[i].clone(), record.encode().expect("record"))
    })
    .without_tls();

    let in_order: Vec<usize> = (0..N).collect();
    // 7,919 is prime and does not divide N: a fixed permutation of every index.
    let scattered: Vec<usize> = (0..N).map(|i| i * 7_919 % N).collect();
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let time = |f: &mut dyn FnMut(usize), order: &[usize]| {
        let start = Instant::now();
        order.iter().for_each(|&i| f(i));
        start.elapsed().as_nanos() as f64 / order.len() as f64
    };
    println!("median ns per get, {rounds} alternating rounds of {N} gets each");
    println!("order       stash  raw heed  raw, no TLS  raw, no TLS, record  stash/raw heed");
    for (name, order) in [("key order", &in_order), ("scattered", &scattered)] {
        let mut figures = [(); 4].map(|_| Vec::new());
        for _ in 0..rounds {
            figures[0].push(time(
                &mut |i| {
                    let got: Option<Item> = stash.get(&keys[i]).expect("stash get");
                    black_box(got.expect("stored"));
                },
                order,
            ));
            figures[1].push(time(
                &mut |i| {
                    black_box(raw.get(&raw_keys[i], |b| decode::<Item>(&codec, b)));
                },
                order,
            ));
            figures[2].push(time(
                &mut |i| {
                    black_box(notls.get(&raw_keys[i], |b| decode::<Item>(&codec, b)));
                },
                order,
            ));
            figures[3].push(time(
                &mut |i| {
                    black_box(recorded.get(&raw_keys[i], |bytes| {
                        let record = hashstash::engine::record::Record::decode(bytes, String::new)
                            .expect("record");
                        assert_eq!(record.key, &raw_keys[i][..]);
                        decode::<Item>(&codec, record.value)
                    }));
                },
                order,
            ));
        }
        let [ours, raw, notls, recorded] = figures.map(median);
        println!(
            "{name:<10} {ours:>6.0} {raw:>9.0} {notls:>12.0} {recorded:>19.0} {:>14.2}x",
            ours / raw
        );
    }
}

#[cfg(all(feature = "lmdb", feature = "internals"))]
fn decode<T: serde::de::DeserializeOwned>(codec: &hashstash::Codec, bytes: &[u8]) -> T {
    codec.decode_value(bytes).expect("decode")
}

/// A raw heed database of 10,000 entries, read with or without thread-local reader slots.
#[cfg(all(feature = "lmdb", feature = "internals"))]
enum RawLayout {
    Tls(
        heed::Env,
        heed::Database<heed::types::Bytes, heed::types::Bytes>,
    ),
    NoTls(
        heed::Env<heed::WithoutTls>,
        heed::Database<heed::types::Bytes, heed::types::Bytes>,
    ),
}

#[cfg(all(feature = "lmdb", feature = "internals"))]
impl RawLayout {
    fn create(dir: &std::path::Path, entry: impl Fn(usize) -> (Vec<u8>, Vec<u8>)) -> Self {
        std::fs::create_dir_all(dir).expect("raw dir");
        // SAFETY: a fresh folder that only this process opens, and only once at a time.
        let env =
            unsafe { heed::EnvOpenOptions::new().map_size(1 << 30).open(dir) }.expect("raw env");
        let mut wtxn = env.write_txn().expect("write txn");
        let db: heed::Database<heed::types::Bytes, heed::types::Bytes> =
            env.create_database(&mut wtxn, None).expect("db");
        for i in 0..10_000 {
            let (k, v) = entry(i);
            db.put(&mut wtxn, &k[..], &v[..]).expect("put");
        }
        wtxn.commit().expect("commit");
        RawLayout::Tls(env, db)
    }

    /// The same folder reopened without thread-local reader slots.
    fn without_tls(self) -> Self {
        let RawLayout::Tls(env, _) = self else {
            return self;
        };
        let dir = env.path().to_owned();
        env.prepare_for_closing().wait();
        // SAFETY: as in `create`; the first environment is closed.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(1 << 30)
                .open(&dir)
        }
        .expect("raw env");
        let rtxn = env.read_txn().expect("read txn");
        let db = env
            .open_database(&rtxn, None)
            .expect("open db")
            .expect("db");
        drop(rtxn);
        RawLayout::NoTls(env, db)
    }

    fn get<T>(&self, key: &[u8], decode: impl FnOnce(&[u8]) -> T) -> T {
        let found = match self {
            RawLayout::Tls(env, db) => {
                let rtxn = env.read_txn().expect("read txn");
                decode(db.get(&rtxn, key).expect("get").expect("stored"))
            }
            RawLayout::NoTls(env, db) => {
                let rtxn = env.read_txn().expect("read txn");
                decode(db.get(&rtxn, key).expect("get").expect("stored"))
            }
        };
        found
    }
}

#[cfg(not(all(feature = "lmdb", feature = "internals")))]
fn main() {
    println!("the lmdb and internals features are off: nothing to compare");
}
