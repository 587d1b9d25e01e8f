//! The README walk-through: create a stash, store anything under anything, use it like a
//! dictionary, stash function results and map functions, assemble tables, keep versions, use
//! the codec on its own, and meet a corrupt entry.
//!
//! Run with `cargo run --release --features best --example readme` (the default engine,
//! LMDB): `best` has `sql` and `dataframe`, with which it also assembles DataFrames, queries
//! them with SQL and writes a parquet snapshot; without them it skips that part. Set
//! `HASHSTASH_ROOT_DIR` to keep its stashes somewhere other than `~/.cache/hashstash`.
//! `notebooks/README.ipynb` holds the same cells, run by the evcxr Jupyter kernel.

use hashstash::engine::EngineExt;
use hashstash::map::MapOptions;
use hashstash::{Compressor, EngineKind, OnCorrupt, Serializer, Stash, Value};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Serialize)]
struct FuncKey {
    module: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
enum Lambda {
    Arity(u8),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Animal {
    name: String,
    goodness: String,
    etc: Etc,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Etc {
    age: u32,
    goes_to: GoesTo,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct GoesTo {
    heaven: bool,
}

/// The seed's expensive function, made repeatable: every name meets every goodness.
fn expensive_computation((names, goodnesses): (Vec<String>, Vec<String>)) -> Vec<Animal> {
    std::thread::sleep(Duration::from_millis(300)); // the expensive part
    let mut animals = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (j, goodness) in goodnesses.iter().enumerate() {
            animals.push(Animal {
                name: name.clone(),
                goodness: goodness.clone(),
                etc: Etc {
                    age: (3 * i + 5 * j) as u32 % 10 + 1,
                    goes_to: GoesTo {
                        heaven: goodness == "good",
                    },
                },
            });
        }
    }
    animals
}

/// One item of a map: an animal's age in a year's time, slowly.
fn older(animal: Animal) -> u32 {
    std::thread::sleep(Duration::from_millis(50));
    animal.etc.age + 1
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ----- Creating a stash -----
    let stash = Stash::builder()
        .root_dir("project_stash") // under ~/.cache/hashstash (or $HASHSTASH_ROOT_DIR)
        .dbname("sub_stash")
        .engine(EngineKind::default_engine()) // lmdb, or pairtree, sqlite, memory
        .serializer(Serializer::Hashstash) // or json, postcard
        .compress(Compressor::Lz4) // or raw, zlib, gzip, bz2, zstd, blosc
        .b64(false)
        .append_mode(false)
        .clear(true)
        .open()?;
    println!("{stash}");
    println!("{}", serde_json::to_string_pretty(&stash.to_dict())?);

    // ----- Stashing objects: any serde value is a key -----
    let map_key = HashMap::from([("goodness", "bad")]);
    let list_key = vec!["bad", "good", "ugly"];
    let set_key = HashSet::from(["bad", "good"]);
    let struct_key = FuncKey {
        module: "readme",
        name: "func_key",
    };
    let enum_key = Lambda::Arity(1);
    let bytes_key = (b"\x00bytes".to_vec(), u128::MAX);
    stash.set("bad", "cat")?; // string key
    stash.set(&("bad", "good"), "cat")?; // tuple key
    stash.set(&map_key, "cat")?; // map key
    stash.set(&list_key, "cat")?; // list key
    stash.set(&set_key, "cat")?; // set key
    stash.set(&struct_key, "cat")?; // struct key
    stash.set(&enum_key, "cat")?; // enum key
    stash.set(&bytes_key, "cat")?; // a byte vector and a u128
    let hits: Vec<Option<String>> = vec![
        stash.get("bad")?,
        stash.get(&("bad", "good"))?,
        stash.get(&map_key)?,
        stash.get(&list_key)?,
        stash.get(&HashSet::from(["good", "bad"]))?, // any order
        stash.get(&struct_key)?,
        stash.get(&enum_key)?,
        stash.get(&bytes_key)?,
    ];
    println!("{:?}", hits.iter().flatten().collect::<Vec<_>>());

    // ----- Works like a dictionary -----
    assert_eq!(stash.get::<_, String>(&map_key)?.as_deref(), Some("cat"));
    assert_eq!(stash.get::<_, String>("fake_key")?, None);
    assert!(stash.contains(&map_key)?);
    assert_eq!(stash.len()?, 8);
    for (i, item) in stash.items_dyn()?.enumerate() {
        let (key, value) = item?;
        println!(
            "Item #{}: {} >>> {}",
            i + 1,
            hashstash::value::to_json(&key),
            hashstash::value::to_json(&value)
        );
    }
    assert_eq!(stash.pop::<_, String>(&map_key)?.as_deref(), Some("cat"));
    assert!(!stash.contains(&map_key)?);
    assert_eq!(
        stash.setdefault(&map_key, "new_cat_default".to_string())?,
        "new_cat_default"
    );
    stash.update(HashMap::from([("new_key_of_badness", "cat")]))?;
    let another = Stash::builder()
        .engine(EngineKind::Memory)
        .dbname("another")
        .clear(true)
        .open()?;
    another.set(&[1, 2, 3], "cat")?;
    stash.update_from(&another)?;
    assert_eq!(stash.get::<_, String>(&[1, 2, 3])?.as_deref(), Some("cat"));
    println!(
        "len after pop, setdefault and two updates: {}",
        stash.len()?
    );

    // ----- Under the hood -----
    for item in stash.raw_items()?.take(1) {
        let (raw_key, raw_value) = item?;
        println!("{raw_key:?} is the canonical key for the stored value {raw_value:?}");
        println!(
            "{} is the decoded key for {}",
            hashstash::value::to_json(&hashstash::codec::decode_key_dyn(&raw_key)?),
            hashstash::value::to_json(&stash.codec().decode_value_dyn(&raw_value)?)
        );
    }

    // ----- Stashing function results -----
    let functions = Stash::builder()
        .root_dir("functions_stash")
        .clear(true)
        .open()?;
    let names: Vec<String> = ["Jim", "Bob", "Ken"].map(String::from).into();
    let goodnesses: Vec<String> = ["good", "bad"].map(String::from).into();
    let args = (names, goodnesses);
    for call in 1..=3 {
        let start = Instant::now();
        let animals = functions.run(expensive_computation, args.clone())?;
        let how = if start.elapsed() >= Duration::from_millis(300) {
            "computed"
        } else {
            "read back"
        };
        println!("call {call}: {} animals, {how}", animals.len());
    }
    let name = hashstash::memo::name_of(&expensive_computation)?;
    let results = functions.function_stash(&name)?;
    println!("{name}: {} stored result(s)", results.len()?);
    let stored: Option<Vec<Animal>> = functions.get_func(&name, &args)?;
    println!("first stored animal: {:?}", stored.map(|a| a[0].clone()));

    // ----- Mapping functions -----
    let animals = functions.run(expensive_computation, args.clone())?;
    let options = MapOptions {
        num_threads: Some(2),
        ..Default::default()
    };
    let ages = functions
        .map(older, animals.clone(), options.clone())?
        .results()?;
    println!("map: {ages:?}");
    let start = Instant::now();
    let again = functions.map(older, animals.clone(), options)?.results()?;
    let fast = start.elapsed() < Duration::from_millis(50);
    println!(
        "map again: the same results: {}, all read back: {fast}",
        again == ages
    );

    // ----- Assembling DataFrames -----
    #[cfg(all(feature = "sql", feature = "dataframe"))]
    {
        let zoo = Stash::builder().dbname("zoo").clear(true).open()?;
        for (i, animal) in animals.iter().enumerate() {
            zoo.set(&format!("animal{i}"), animal)?;
        }
        let records = zoo.ld()?; // flattened records: _key, name, goodness, etc.age, ...
        let first: Vec<String> = records[0]
            .iter()
            .map(|(column, cell)| format!("{column}={}", hashstash::value::to_json(cell)))
            .collect();
        println!("{} records; the first: {}", records.len(), first.join(", "));
        println!("{}", zoo.df()?);
        println!("{}", results.df()?); // a function's results: its arguments, then the result

        // ----- SQL and parquet -----
        let query = r#"SELECT goodness, count(*) AS n, avg("etc.age") AS mean_age
                       FROM stash GROUP BY goodness ORDER BY goodness"#;
        println!("{}", hashstash::table::sql::pretty(&zoo.sql(query)?)?);
        let file = zoo.stash_dir().join("zoo.parquet");
        println!("{} rows written to zoo.parquet", zoo.to_parquet(&file)?);
    }

    // ----- Append mode -----
    let append = Stash::builder()
        .root_dir("readme_append_mode")
        .engine(EngineKind::Pairtree)
        .append_mode(true)
        .clear(true)
        .open()?;
    let key = HashMap::from([("name", "cat")]);
    append.set(&key, &HashMap::from([("goodness", "good")]))?;
    append.set(&key, &HashMap::from([("goodness", "bad")]))?;
    let latest: Option<HashMap<String, String>> = append.get(&key)?;
    let all: Vec<HashMap<String, String>> = append.get_all(&key)?;
    println!("Latest value: {latest:?}");
    println!("All values: {all:?}");
    let meta = append.get_all_with_metadata::<_, HashMap<String, String>>(&key)?;
    println!(
        "All values with metadata: {}",
        serde_json::to_string(&meta)?
    );

    // ----- Temporary stashes -----
    let folder = {
        let tmp = stash.tmp()?;
        tmp.set("key", "value")?;
        println!("key in tmp stash: {}", tmp.contains("key")?);
        tmp.stash_dir()
    };
    println!("tmp stash folder still there: {}", folder.exists());

    // ----- Utilities -----
    let data = HashMap::from([("name", vec!["cat", "dog"])]);
    let bytes = hashstash::serialize(&data, Serializer::Hashstash)?;
    let back: HashMap<String, Vec<String>> = hashstash::deserialize(&bytes, Serializer::Hashstash)?;
    println!(
        "serialize/deserialize round trip: {}",
        back["name"] == ["cat", "dog"]
    );
    let encoded = hashstash::encode(b"Hello, World!", Compressor::Lz4, true)?;
    let decoded = hashstash::decode(&encoded, Compressor::Lz4, true)?;
    println!(
        "encode/decode round trip: {} ({})",
        decoded == b"Hello, World!",
        String::from_utf8_lossy(&encoded)
    );

    // ----- Reliability: durability, corrupt entries -----
    let careful = Stash::builder()
        .root_dir("readme_reliability")
        .sync(true) // fsync each write before it returns (default: off)
        .on_corrupt(OnCorrupt::Skip) // scans leave out entries that do not decode (default: Fail)
        .clear(true)
        .open()?;
    careful.set("fine", &1)?;
    // Garbage written past the codec, as a damaged disk could return it:
    careful
        .engine()
        .set(&careful.encode_key("damaged")?, b"not lz4")?;
    println!("get: {}", careful.get_value("damaged").unwrap_err());
    let items: Vec<(Value, Value)> = careful.items_dyn()?.collect::<Result<_, _>>()?;
    println!("items read: {}", items.len());
    for error in careful.skipped_corrupt() {
        println!("left out: {error}"); // one message per entry, naming its key
    }
    Ok(())
}
