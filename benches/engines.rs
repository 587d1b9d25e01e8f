//! Set and get per engine for the standard workload, next to the raw engine.
//!
//! The standard workload: 10,000 items, key `"key{i}"`, value
//! `{"name": "cat", "i": i, "vals": [0..9]}`, default serializer (hashstash), lz4.
//!
//! `HASHSTASH_BENCH_DIR` picks the folder (default: the system temp folder); point it at a
//! tmpfs (`/dev/shm`) and at a disk to see both. Throughput is reported per item. Redis,
//! MongoDB and object storage are measured when `HASHSTASH_REDIS_URL` /
//! `HASHSTASH_MONGO_URL` / `HASHSTASH_OBJECTSTORE_URL` are set.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hashstash::{EngineKind, Stash};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

const N: usize = 10_000;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    name: String,
    i: u64,
    vals: Vec<u32>,
}

fn workload() -> Vec<(String, Item)> {
    (0..N)
        .map(|i| {
            let item = Item {
                name: "cat".into(),
                i: i as u64,
                vals: (0..10).collect(),
            };
            (format!("key{i}"), item)
        })
        .collect()
}

/// The item indices in a scattered order (a fixed permutation), for reads that do not walk
/// the keys in the order they sort in: `key1`, `key2`, ... sit next to each other in a raw
/// LMDB, which favours it over a stash that addresses entries by a hash.
fn scattered() -> Vec<usize> {
    // 7,919 is prime and does not divide N: i -> i * 7,919 mod N visits every index once.
    (0..N).map(|i| i * 7_919 % N).collect()
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("HASHSTASH_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn open(dir: &std::path::Path, engine: EngineKind) -> Stash {
    Stash::builder()
        .root_dir(dir)
        .engine(engine)
        .clear(true)
        .open()
        .expect("open")
}

fn engines(c: &mut Criterion) {
    let items = workload();
    let dir = bench_dir();
    for engine in EngineKind::available() {
        // Server engines need their server (`eval "$(bash scripts/services.sh start)"`).
        if let Some((env, _)) = engine.server_url_env() {
            if std::env::var_os(env).is_none() {
                eprintln!("skipping {engine}: {env} is not set");
                continue;
            }
        }
        let stash = open(dir.path(), engine);
        let mut group = c.benchmark_group(engine.name());
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("set", |b| {
            b.iter(|| {
                let (k, v) = &items[i % N];
                i += 1;
                stash.set(k, v).expect("set")
            })
        });
        stash
            .update(items.iter().map(|(k, v)| (k, v)))
            .expect("fill");
        let mut i = 0;
        group.bench_function("get", |b| {
            b.iter(|| {
                let (k, _) = &items[i % N];
                i += 1;
                black_box(stash.get::<_, Item>(k).expect("get").expect("present"))
            })
        });
        let order = scattered();
        let mut i = 0;
        group.bench_function("get_scattered", |b| {
            b.iter(|| {
                let (k, _) = &items[order[i % N]];
                i += 1;
                black_box(stash.get::<_, Item>(k).expect("get").expect("present"))
            })
        });
        group.throughput(Throughput::Elements(N as u64));
        group.sample_size(10);
        let keys: Vec<&String> = items.iter().map(|(k, _)| k).collect();
        group.bench_function("get_many_10k", |b| {
            b.iter(|| {
                let got: Vec<Option<Item>> =
                    stash.get_many(keys.iter().copied()).expect("get_many");
                black_box(got)
            })
        });
        group.bench_function("update_10k", |b| {
            b.iter_batched(
                || stash.clear().expect("clear"),
                |()| {
                    stash
                        .update(items.iter().map(|(k, v)| (k, v)))
                        .expect("update")
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

/// The floor under the LMDB engine: heed put/get of the same bytes the stash stores
/// (the encoded key as the LMDB key, and the encoded value), plus the same decode.
#[cfg(feature = "lmdb")]
fn raw_heed(c: &mut Criterion) {
    use heed::types::Bytes;
    let items = workload();
    let codec = hashstash::Codec::default();
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = items
        .iter()
        .map(|(k, v)| {
            (
                hashstash::codec::encode_key(k).unwrap(),
                codec.encode_value(v).unwrap(),
            )
        })
        .collect();
    let dir = bench_dir();
    // SAFETY: a fresh folder that only this benchmark opens.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(1 << 30)
            .open(dir.path())
    }
    .expect("env");
    let mut wtxn = env.write_txn().unwrap();
    let db: heed::Database<Bytes, Bytes> = env.create_database(&mut wtxn, None).unwrap();
    // Every item stored up front, so that the reads find them whichever benches run.
    for (k, v) in &encoded {
        db.put(&mut wtxn, k, v).unwrap();
    }
    wtxn.commit().unwrap();
    let mut group = c.benchmark_group("raw_heed");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("put_commit", |b| {
        b.iter(|| {
            let (k, v) = &encoded[i % N];
            i += 1;
            let mut wtxn = env.write_txn().unwrap();
            db.put(&mut wtxn, k, v).unwrap();
            wtxn.commit().unwrap();
        })
    });
    let mut i = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            let (k, _) = &encoded[i % N];
            i += 1;
            let rtxn = env.read_txn().unwrap();
            black_box(db.get(&rtxn, k).unwrap().map(<[u8]>::to_vec));
        })
    });
    let mut i = 0;
    group.bench_function("get_and_decode", |b| {
        b.iter(|| {
            let (k, _) = &encoded[i % N];
            i += 1;
            let rtxn = env.read_txn().unwrap();
            let bytes = db.get(&rtxn, k).unwrap().unwrap();
            black_box(codec.decode_value::<Item>(bytes).unwrap())
        })
    });
    let order = scattered();
    let mut i = 0;
    group.bench_function("get_and_decode_scattered", |b| {
        b.iter(|| {
            let (k, _) = &encoded[order[i % N]];
            i += 1;
            let rtxn = env.read_txn().unwrap();
            let bytes = db.get(&rtxn, k).unwrap().unwrap();
            black_box(codec.decode_value::<Item>(bytes).unwrap())
        })
    });
    let mut i = 0;
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            let (_, v) = &encoded[i % N];
            i += 1;
            black_box(codec.decode_value::<Item>(v).unwrap())
        })
    });
    group.finish();
}

/// A memoized function with small arguments.
fn memo_square((x, label): (u64, String)) -> (u64, String) {
    (x * x, label)
}

/// A `run` whose result is stored (the cache hit of issue 5), on LMDB.
#[cfg(feature = "lmdb")]
fn memo(c: &mut Criterion) {
    let dir = bench_dir();
    let stash = open(dir.path(), EngineKind::Lmdb);
    stash.run(memo_square, (12, "cat".to_owned())).expect("run");
    let mut group = c.benchmark_group("memo");
    group.bench_function("run_hit_lmdb", |b| {
        b.iter(|| {
            let hit: (u64, String) = stash.run(memo_square, (12, "cat".to_owned())).expect("run");
            std::hint::black_box(hit)
        })
    });
    // A map over 10,000 items whose results are all stored: the overhead per item.
    let items: Vec<u64> = (0..10_000).collect();
    let square = |x: u64| x * x;
    let options = hashstash::map::MapOptions::default();
    stash
        .map_named("square", square, items.clone(), options.clone())
        .expect("map");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("map_10k_stored_lmdb", |b| {
        b.iter(|| {
            stash
                .map_named("square", square, items.clone(), options.clone())
                .expect("map")
        })
    });
    group.finish();
}

/// The whole command-line process on a stash of 100 entries of the default engine:
/// `hashstash len` and `hashstash get '"key7"'` (the target is under 20 ms each).
fn cli(c: &mut Criterion) {
    let dir = bench_dir();
    let stash = open(dir.path(), EngineKind::default());
    stash
        .update(workload().into_iter().take(100))
        .expect("fill");
    drop(stash);
    let bin = env!("CARGO_BIN_EXE_hashstash");
    let mut group = c.benchmark_group("cli");
    group.sample_size(20);
    for (name, args) in [("len", &["len"][..]), ("get", &["get", "\"key7\""][..])] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = std::process::Command::new(bin)
                    .arg("--root-dir")
                    .arg(dir.path())
                    .args(args)
                    .output()
                    .expect("run hashstash");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            })
        });
    }
    group.finish();
}

/// The floor under the objectstore engine: object_store's own put and get of the same
/// bytes the stash stores, one object per key, with the engine's concurrency for the 10,000
/// (`$HASHSTASH_OBJECTSTORE_URL` and the `AWS_*` variables, as `scripts/services.sh` sets).
#[cfg(feature = "objectstore")]
fn raw_objectstore(c: &mut Criterion) {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutPayload};
    let Ok(url) = std::env::var("HASHSTASH_OBJECTSTORE_URL") else {
        eprintln!("skipping raw_objectstore: HASHSTASH_OBJECTSTORE_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let store: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(
        object_store::aws::AmazonS3Builder::from_env()
            .with_url(&url)
            .build()
            .expect("store"),
    );
    let dir = bench_dir();
    let stash = open(dir.path(), EngineKind::Memory);
    let items: Vec<(Path, Vec<u8>)> = workload()
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let bytes = stash.encode_value(v).expect("encode");
            (Path::from(format!("raw-bench/{i:05}")), bytes)
        })
        .collect();
    let mut group = c.benchmark_group("raw_objectstore");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("put", |b| {
        b.iter(|| {
            let (path, bytes) = &items[i % N];
            i += 1;
            runtime
                .block_on(store.put(path, PutPayload::from(bytes.clone())))
                .expect("put")
        })
    });
    runtime.block_on(async {
        stream::iter(&items)
            .map(|(p, b)| store.put(p, PutPayload::from(b.clone())))
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .expect("fill")
    });
    let mut i = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            let (path, _) = &items[i % N];
            i += 1;
            runtime
                .block_on(async { store.get(path).await?.bytes().await })
                .expect("get")
        })
    });
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.bench_function("get_many_10k", |b| {
        b.iter(|| {
            runtime.block_on(async {
                stream::iter(&items)
                    .map(|(p, _)| async { store.get(p).await?.bytes().await })
                    .buffered(32)
                    .try_collect::<Vec<_>>()
                    .await
                    .expect("get")
            })
        })
    });
    group.bench_function("put_10k", |b| {
        b.iter(|| {
            runtime.block_on(async {
                stream::iter(&items)
                    .map(|(p, b)| store.put(p, PutPayload::from(b.clone())))
                    .buffer_unordered(32)
                    .try_collect::<Vec<_>>()
                    .await
                    .expect("put")
            })
        })
    });
    group.finish();
}

#[cfg(not(feature = "objectstore"))]
fn raw_objectstore(_: &mut Criterion) {}

#[cfg(feature = "lmdb")]
criterion_group!(benches, engines, raw_heed, raw_objectstore, memo, cli);
#[cfg(not(feature = "lmdb"))]
criterion_group!(benches, engines, raw_objectstore, cli);
criterion_main!(benches);
