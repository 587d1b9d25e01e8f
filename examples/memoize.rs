//! Memoization (feature `macros`, on by default): `stash.run`, `#[stashed_result]` and a
//! parallel map, each result computed once and then read back; invalidating results.
//!
//! `cargo run --example memoize`

use hashstash::map::MapOptions;
use hashstash::{stashed_result, Stash};
use std::time::{Duration, Instant};

/// Every call of this function is stored under its arguments, in a stash of its own under
/// the root `examples_memoize`.
#[stashed_result("examples_memoize")]
fn slow_add(a: u64, b: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    a + b
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

/// Runs `f` and says whether it took long enough to have computed anything.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let verb = if start.elapsed() >= Duration::from_millis(15) {
        "computed"
    } else {
        "read back"
    };
    println!("{what}: {verb}");
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stash = Stash::builder()
        .dbname("examples_memoize")
        .clear(true)
        .open()?;

    // stash.run: the function's result is stored under its arguments.
    let first = timed("run(slow_square, 12)", || stash.run(slow_square, 12))?;
    let again = timed("run(slow_square, 12)", || stash.run(slow_square, 12))?;
    assert_eq!((first, again), (144, 144));

    // #[stashed_result]: the function itself is memoized.
    slow_add::stash()?.clear()?;
    let sum = timed("slow_add(2, 3)", || slow_add(2, 3));
    let same = timed("slow_add(2, 3)", || slow_add(2, 3));
    assert_eq!((sum, same), (5, 5));
    println!(
        "slow_add has {} stored result(s)",
        slow_add::stash()?.len()?
    );
    // Invalidation: one call's result (by its arguments), then the next call computes again.
    println!(
        "invalidated slow_add(2, 3): {}",
        slow_add::invalidate(&(2, 3))?
    );
    timed("slow_add(2, 3)", || slow_add(2, 3));
    println!(
        "dropped all {} of slow_add's results",
        slow_add::invalidate_all()?
    );

    // A parallel map: only the items without a stored result are computed.
    let options = MapOptions {
        num_threads: Some(2),
        ..Default::default()
    };
    let squares = timed("map over 0..50", || {
        stash
            .map(slow_square, (0..50).collect(), options.clone())?
            .results()
    })?;
    let more = timed("map over 0..50 again", || {
        stash
            .map(slow_square, (0..50).collect(), options)?
            .results()
    })?;
    assert_eq!(squares, more);
    println!(
        "squares[7] = {}; sum = {}",
        squares[7],
        squares.iter().sum::<u64>()
    );
    Ok(())
}
