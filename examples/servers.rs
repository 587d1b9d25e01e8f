//! A cache shared through a server (features `redis` and `mongo`): two handles, as two
//! processes or machines would hold them, see each other's writes, and a function mapped by
//! both is computed once per item.
//!
//! Needs `HASHSTASH_REDIS_URL` and `HASHSTASH_MONGO_URL`; `scripts/services.sh start` starts
//! both servers and prints them.
//! `cargo run --features servers --example servers`

use hashstash::map::MapOptions;
use hashstash::{EngineKind, Stash};
use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for (engine, var) in [
        (EngineKind::Redis, "HASHSTASH_REDIS_URL"),
        (EngineKind::Mongo, "HASHSTASH_MONGO_URL"),
    ] {
        let url = std::env::var(var)
            .map_err(|_| format!("{var} is not set: start the servers with scripts/services.sh"))?;
        let open = || {
            Stash::builder()
                .engine(engine)
                .url(url.as_str())
                .root_dir("examples_servers")
                .timeout_ms(5_000)
                .open()
        };
        let (here, there) = (open()?, open()?);
        here.clear()?;
        here.set("greeting", "hello from here")?;
        let seen: Option<String> = there.get("greeting")?;
        println!("{engine}: the other handle reads {seen:?}");

        CALLS.store(0, Ordering::SeqCst);
        let triple = |x: u64| {
            CALLS.fetch_add(1, Ordering::SeqCst);
            x * 3
        };
        let options = MapOptions::default();
        let a = here.map_named("triple", triple, (0..20).collect(), options.clone())?;
        let b = there.map_named("triple", triple, (0..20).collect(), options)?;
        assert_eq!(a.results()?, b.results()?);
        println!(
            "{engine}: 2 maps of 20 items, {} computations",
            CALLS.load(Ordering::SeqCst)
        );
        here.clear()?;
        here.function_stash("triple")?.clear()?;
    }
    Ok(())
}
