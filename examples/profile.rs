//! The profiler (feature `plot` for the figures): the standard workload over a few engines,
//! serializers and compressors, as a table and as the four PNG figures of the README.
//!
//! `cargo run --release --features plot --example profile -- [OUT_DIR]`
//! (`hashstash profile --quick --plot DIR` does the same from the shell.)

use hashstash::profile::plot::figures;
use hashstash::profile::{combinations, measure, table};
use hashstash::{Compressor, EngineKind, Serializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join("examples_profile"),
    };
    let work = tempfile::tempdir()?;
    let mut measurements = Vec::new();
    for combination in combinations(
        &[EngineKind::default(), EngineKind::Memory],
        &[Serializer::Hashstash, Serializer::Json],
        &[Compressor::Raw, Compressor::Lz4],
    ) {
        measurements.push(measure(combination, 1_000, work.path())?);
    }
    println!("{}", table(&measurements));
    for figure in figures(&measurements, &out)? {
        println!("wrote {}", figure.display());
    }
    Ok(())
}
