//! The `hashstash` command: a stash from the shell, keys and values as JSON text.

mod args;
mod bars;
mod commands;
mod copy;
mod errors;
mod profile;
#[cfg(feature = "sql")]
mod tables;

use crate::errors::CliError;
use args::{Cli, Command};
use clap::Parser;
use hashstash::{codec, value, Error, Value};
use std::io::Write;
use std::process::ExitCode;

/// Exit status when the key asked for is not there.
const MISSING: u8 = 1;
/// Exit status for every other failure (bad input, format conflict, I/O, ...).
const FAILED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = run(cli);
    // The stash was dropped at the end of `run`; its counts (for `info`) are written here,
    // before the process ends. Statistics, not data: a failure to write them is not one of
    // the command's.
    let _ = hashstash::stats::flush_dropped();
    match outcome {
        Ok(code) => code,
        // A closed pipe (`hashstash keys | head`) is the reader's choice, not a failure.
        Err(CliError::Stash(Error::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hashstash: {}", one_line(&e));
            ExitCode::from(if e.is_not_found() { MISSING } else { FAILED })
        }
    }
}

/// The error and its causes, on one line.
fn one_line(e: &CliError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg.replace('\n', " ")
}

/// Parses JSON text given on the command line.
fn parse_json(what: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|j| value::from_json(&j))
        .map_err(|source| CliError::NotJson {
            argument: if what == "KEY" { "KEY" } else { "VALUE" },
            hint: text.replace('"', ""),
            source,
        })
}

fn key_bytes(text: &str) -> Result<Vec<u8>, CliError> {
    Ok(codec::encode_key_value(parse_json("KEY", text)?)?)
}

fn print_json(out: &mut impl Write, v: &serde_json::Value) -> Result<(), CliError> {
    writeln!(out, "{v}").map_err(|e| {
        CliError::from(Error::Io {
            path: "<stdout>".into(),
            source: e,
        })
    })
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    // Commands that open stashes of their own.
    match &cli.command {
        Command::Profile(options) => {
            profile::run(options)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Copy { src, dst, dry_run } => {
            copy::run(&cli.stash, src, dst, *dry_run)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let stash = cli.stash.open()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::Set { key, value } => commands::set(&stash, &key, &value)?,
        Command::Get {
            key,
            all,
            with_metadata,
        } => commands::get(&stash, &mut out, &key, all, with_metadata)?,
        Command::Setdefault { key, value } => commands::setdefault(&stash, &mut out, &key, &value)?,
        Command::Del { key } => commands::del(&stash, &key)?,
        Command::Keys(written) => commands::keys(&stash, &mut out, &written)?,
        Command::Items(written) => commands::items(&stash, &mut out, &written)?,
        Command::Len => print_json(&mut out, &stash.len()?.into())?,
        Command::Info => commands::info(&stash, &mut out)?,
        #[cfg(feature = "sql")]
        Command::Sql {
            query,
            tables,
            as_of,
            format,
            out: file,
        } => {
            // Rows go straight to standard output (or the file), batch by batch.
            drop(out);
            let as_of = as_of.as_deref().map(tables::moment).transpose()?;
            let query = tables::Query {
                text: query.as_deref(),
                tables: &tables,
                as_of,
            };
            tables::sql(&stash, query, format, file.as_deref())?;
            report_skipped(&stash);
            return Ok(ExitCode::SUCCESS);
        }
        #[cfg(feature = "sql")]
        Command::Export {
            out: file,
            format,
            all_versions,
        } => tables::export(&stash, format, &file, all_versions)?,
        #[cfg(feature = "sql")]
        Command::Snapshot => {
            let rows = stash.snapshot()?;
            eprintln!("kept a snapshot of {rows} rows beside {stash}");
        }
        #[cfg(feature = "sql")]
        Command::Import { file } => {
            let n = tables::import(&stash, &file)?;
            eprintln!("imported {n} entries into {stash}");
        }
        Command::Prune { older_than, apply } => {
            commands::prune(&stash, &mut out, older_than.as_deref(), apply)?
        }
        Command::Clear => commands::clear(&stash)?,
        Command::Profile(_) | Command::Copy { .. } => {
            unreachable!("handled before the stash is opened")
        }
    }
    out.flush().map_err(|e| Error::Io {
        path: "<stdout>".into(),
        source: e,
    })?;
    report_skipped(&stash);
    Ok(ExitCode::SUCCESS)
}

/// A stash's lifetime counts, with its hit rate.
fn stats_json(stats: &hashstash::Stats) -> serde_json::Value {
    let mut json = serde_json::to_value(stats).unwrap_or_default();
    json["hit_rate"] = stats.hit_rate().into();
    json
}

/// Under `--on-corrupt skip`: how many entries were left out, and the first few by name.
fn report_skipped(stash: &hashstash::Stash) {
    const SHOWN: usize = 10;
    let skipped = stash.skipped_corrupt();
    if skipped.is_empty() {
        return;
    }
    eprintln!(
        "hashstash: skipped {} corrupt entries (--on-corrupt skip)",
        skipped.len()
    );
    for error in skipped.iter().take(SHOWN) {
        eprintln!("  {error}");
    }
    if skipped.len() > SHOWN {
        eprintln!("  ... and {} more", skipped.len() - SHOWN);
    }
}

/// A decoding error of the value under the key given as `key_text`, naming that key.
fn naming_key(key_text: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Decode {
            what,
            format,
            source,
        } => Error::Decode {
            what: format!("{what} of key {key_text}"),
            format,
            source,
        },
        other => other,
    }
}
