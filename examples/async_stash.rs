//! The async face (feature `async`): an `AsyncStash` in a tokio program, and an `async fn`
//! memoized with `#[stashed_result]`.
//!
//! `cargo run --features async --example async_stash`

use hashstash::{stashed_result, AsyncStash, Stash};
use std::time::{Duration, Instant};

/// A slow async lookup, say a web request; its results are stored under its argument.
#[stashed_result("examples_async")]
async fn fetch_page(id: u32) -> String {
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("<html>page {id}</html>")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let stash = AsyncStash::new(
            Stash::builder()
                .dbname("examples_async")
                .clear(true)
                .open()?,
        );
        stash.set("visits", &41).await?;
        let visits: Option<u32> = stash.get("visits").await?;
        println!("visits: {visits:?}");

        fetch_page::invalidate_all()?;
        for call in 1..=2 {
            let start = Instant::now();
            let page = fetch_page(7).await;
            let how = if start.elapsed() >= Duration::from_millis(200) {
                "fetched"
            } else {
                "read back"
            };
            println!("call {call}: {page} ({how})");
        }
        // Ten tasks asking for one new page at once: it is fetched once.
        let tasks: Vec<_> = (0..10).map(|_| tokio::spawn(fetch_page(8))).collect();
        for task in tasks {
            task.await?;
        }
        println!("stored pages: {}", fetch_page::stash()?.len()?);
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
