//! The table benchmark of issue 4: a stash of nested animal records, queried with SQL.
//!
//! ```text
//! cargo run --release --features sql --example sql_benchmark -- build DIR [N]
//! cargo run --release --features sql --example sql_benchmark -- query DIR [SQL]
//! cargo run --release --features sql,dataframe --example sql_benchmark -- df DIR
//! ```
//!
//! `build` writes N (default 1,000,000) entries `"Animal {i}"` into a stash `animals` under
//! DIR, on LMDB or on the engine `HASHSTASH_ENGINE` names (server engines find their server
//! as the CLI does: `HASHSTASH_REDIS_URL`, `HASHSTASH_MONGO_URL`).
//! `query` runs the SQL (default: the group-by of the issue) and prints the result and how
//! long it took; `scripts/bench-sql.sh` runs both under `/usr/bin/time -v`, next to DuckDB.
//! `df` makes the stash's polars DataFrame and prints its size (`scripts/bench-stream.sh`).

use hashstash::{EngineKind, Stash};
use serde::Serialize;
use std::time::Instant;

const NAMES: [&str; 6] = ["cat", "dog", "mouse", "horse", "fish", "bird"];
const DEFAULT_QUERY: &str =
    r#"SELECT name, goodness, count(*), avg("etc.age") FROM stash GROUP BY 1, 2 ORDER BY 1, 2"#;

#[derive(Serialize)]
struct GoesTo {
    heaven: bool,
}

#[derive(Serialize)]
struct Etc {
    age: u32,
    goes_to: GoesTo,
}

#[derive(Serialize)]
struct Animal {
    name: &'static str,
    goodness: &'static str,
    etc: Etc,
}

fn animal(i: u64) -> Animal {
    // A cheap deterministic scramble, so groups are not runs of consecutive keys.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
    let good = !(h / 6).is_multiple_of(3);
    Animal {
        name: NAMES[(h % 6) as usize],
        goodness: if good { "good" } else { "bad" },
        etc: Etc {
            age: ((h / 18) % 20) as u32 + 1,
            goes_to: GoesTo {
                heaven: good || h.is_multiple_of(2),
            },
        },
    }
}

fn open(dir: &str) -> Result<Stash, Box<dyn std::error::Error>> {
    let engine = match std::env::var("HASHSTASH_ENGINE") {
        Ok(name) => name.parse::<EngineKind>()?,
        Err(_) => EngineKind::Lmdb,
    };
    Ok(Stash::builder()
        .root_dir(dir)
        .dbname("animals")
        .engine(engine)
        .open()?)
}

/// This process's resident memory in MB (Linux; 0 elsewhere).
#[cfg(feature = "dataframe")]
fn resident_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(command), Some(dir)) = (args.first(), args.get(1)) else {
        return Err("usage: sql_benchmark build DIR [N] | query DIR [SQL]".into());
    };
    let stash = open(dir)?;
    match command.as_str() {
        "build" => {
            let n: u64 = args.get(2).map_or(Ok(1_000_000), |n| n.parse())?;
            let started = Instant::now();
            stash.clear()?;
            let keys: Vec<String> = (0..n).map(|i| format!("Animal {i}")).collect();
            let values: Vec<Animal> = (0..n).map(animal).collect();
            // In slices, so that a server engine's batches stay a sensible size.
            for (keys, values) in keys.chunks(50_000).zip(values.chunks(50_000)) {
                stash.update(keys.iter().zip(values))?;
            }
            println!(
                "built {} entries in {:.2} s ({} MB on disk)",
                stash.len()?,
                started.elapsed().as_secs_f64(),
                stash.disk_usage()? / 1_000_000
            );
        }
        "query" => {
            let query = args.get(2).map_or(DEFAULT_QUERY, String::as_str);
            let started = Instant::now();
            let batches = stash.sql(query)?;
            let elapsed = started.elapsed();
            println!("{}", hashstash::table::sql::pretty(&batches)?);
            println!("query took {:.3} s", elapsed.as_secs_f64());
        }
        #[cfg(feature = "dataframe")]
        "df" => {
            let started = Instant::now();
            let df = stash.df()?;
            println!(
                "df: {} rows x {} columns, {} chunks, estimated_size {} MB, in {:.3} s",
                df.height(),
                df.width(),
                df.first_col_n_chunks(),
                df.estimated_size() / 1_000_000,
                started.elapsed().as_secs_f64()
            );
            let with_frame = resident_mb();
            let size = df.estimated_size();
            drop(df);
            println!(
                "resident {with_frame:.0} MB with the frame, {:.0} MB after dropping it \
                 (estimated_size {:.0} MB)",
                resident_mb(),
                size as f64 / 1e6
            );
            let df = stash.df()?;
            for column in df.columns() {
                println!(
                    "  {}: {}, estimated_size {:.1} MB",
                    column.name(),
                    column.dtype(),
                    column.as_materialized_series().estimated_size() as f64 / 1e6
                );
            }
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}
