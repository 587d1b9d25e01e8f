//! `hashstash profile`: the standard workload over engines x serializers x compressors.

use crate::args::{names, ProfileArgs};
use crate::errors::CliError;
use hashstash::profile::{combinations, default_engines, measure, table, Measurement};
use hashstash::{Compressor, Error, Serializer};
use std::io::Write;

pub fn run(options: &ProfileArgs) -> Result<(), CliError> {
    let items = options
        .items
        .unwrap_or(if options.quick { 1_000 } else { 10_000 });
    if items == 0 {
        return Err(CliError::Usage {
            argument: "items",
            message: "must be at least 1".into(),
        });
    }
    let engines = names(&options.engines, default_engines())?;
    let serializers = names(&options.serializers, Serializer::ALL.to_vec())?;
    let compressors = names(&options.compressors, Compressor::available().collect())?;
    let base = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("hashstash-profile-")
        .tempdir_in(&base)
        .map_err(|e| Error::Io {
            path: base.clone(),
            source: e,
        })?;
    let all = combinations(&engines, &serializers, &compressors);
    let mut measurements: Vec<Measurement> = Vec::with_capacity(all.len());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| Error::Io {
        path: "<stdout>".into(),
        source: e,
    };
    // Progress on a terminal only: a log file gets the results, not a line per step.
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (n, combination) in all.iter().enumerate() {
        if progress {
            eprint!(
                "\r[{}/{}] {} {} {}        ",
                n + 1,
                all.len(),
                combination.engine,
                combination.serializer,
                combination.compress
            );
        }
        let m = measure(*combination, items, scratch.path())?;
        if options.json {
            let line = serde_json::to_string(&m).unwrap_or_default();
            writeln!(out, "{line}").map_err(io)?;
        }
        measurements.push(m);
    }
    if progress {
        eprintln!();
    }
    if !options.json {
        write!(out, "{}", table(&measurements)).map_err(io)?;
    }
    if let Some(dir) = &options.plot {
        plot(&measurements, dir)?;
    }
    Ok(())
}

#[cfg(feature = "plot")]
fn plot(measurements: &[Measurement], dir: &std::path::Path) -> Result<(), CliError> {
    for file in hashstash::profile::plot::figures(measurements, dir)? {
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

#[cfg(not(feature = "plot"))]
fn plot(_: &[Measurement], _: &std::path::Path) -> Result<(), CliError> {
    Err(CliError::Usage {
        argument: "plot",
        message: "figures need the cargo feature `plot`".into(),
    })
}
