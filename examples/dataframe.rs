//! polars DataFrames as values and keys (feature `dataframe`); with `sql` too, any stash
//! becomes a DataFrame (`stash.df()`).
//!
//! `cargo run --features dataframe --example dataframe`

use hashstash::Stash;
use polars::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stash = Stash::builder()
        .dbname("examples_dataframe")
        .clear(true)
        .open()?;
    let frame = df!(
        "name" => ["cat", "dog", "cow"],
        "legs" => [4u32, 4, 4],
        "weight" => [4.5f64, 20.0, 600.0],
    )?;

    // A DataFrame as a value: stored as Arrow IPC, read back equal.
    stash.set("animals", &frame)?;
    let back: DataFrame = stash.require("animals")?;
    assert!(back.equals(&frame));
    println!("{back}");

    // A DataFrame as a key: equal frames are one key, however they were built.
    let rebuilt = df!(
        "name" => ["cat", "dog", "cow"],
        "legs" => [4u32, 4, 4],
        "weight" => [4.5f64, 20.0, 600.0],
    )?;
    stash.set(&frame, "a summary of the animals")?;
    let summary: Option<String> = stash.get(&rebuilt)?;
    println!("under an equal frame: {summary:?}");
    assert!(summary.is_some());
    Ok(())
}
