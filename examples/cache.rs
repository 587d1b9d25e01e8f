//! Cache semantics: what a stash has seen (its stats, per handle and over its life) and
//! invalidating entries so that they are computed again.
//!
//! `cargo run --example cache`

use hashstash::Stash;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = Stash::builder().dbname("examples_cache").clear(true);
    let before = builder.clone().open()?.lifetime_stats()?;
    {
        let stash = builder.clone().open()?;
        stash.update([("apples", 3), ("pears", 5), ("plums", 7)])?;
        for key in ["apples", "pears", "kiwis", "apples"] {
            let value: Option<u32> = stash.get(key)?;
            println!("{key}: {value:?}");
        }
        println!("invalidated pears: {}", stash.invalidate("pears")?);
        println!("invalidated pears again: {}", stash.invalidate("pears")?);
        let stats = stash.stats();
        println!("this handle: {stats:?}");
        println!("hit rate: {:.2}", stats.hit_rate().unwrap_or(0.0));
    } // the handle's counts are added to the stash's totals as it drops

    let lifetime = builder.open()?.lifetime_stats()?;
    println!(
        "over the stash's life, this run added {} sets, {} hits, {} misses, {} deletes",
        lifetime.sets - before.sets,
        lifetime.hits - before.hits,
        lifetime.misses - before.misses,
        lifetime.deletes - before.deletes
    );
    Ok(())
}
