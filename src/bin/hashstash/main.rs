//! The `hashstash` command: a stash from the shell, keys and values as JSON text.

mod args;
mod bars;
mod copy;
mod profile;
#[cfg(feature = "sql")]
mod tables;

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
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hashstash: {}", one_line(&e));
            ExitCode::from(if e.is_not_found() { MISSING } else { FAILED })
        }
    }
}

/// The error and its causes, on one line.
fn one_line(e: &Error) -> String {
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
fn parse_json(what: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|j| value::from_json(&j))
        .map_err(|e| Error::InvalidOption {
            option: if what == "KEY" { "KEY" } else { "VALUE" },
            message: format!(
                "{what} must be JSON text ({e}); a string needs quotes, e.g. '\"{}\"'",
                text.replace('"', "")
            ),
        })
}

fn key_bytes(text: &str) -> Result<Vec<u8>, Error> {
    codec::encode_key_value(parse_json("KEY", text)?)
}

fn print_json(out: &mut impl Write, v: &serde_json::Value) -> Result<(), Error> {
    writeln!(out, "{v}").map_err(|e| Error::Io {
        path: "<stdout>".into(),
        source: e,
    })
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    if let Command::Profile(options) = &cli.command {
        profile::run(options)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Copy { src, dst, dry_run } = &cli.command {
        copy::run(&cli.stash, src, dst, *dry_run)?;
        return Ok(ExitCode::SUCCESS);
    }
    let stash = cli.stash.open()?;
    let codec = stash.codec();
    let engine = stash.engine();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.command {
        Command::Set { key, value } => {
            let key = key_bytes(&key)?;
            let value = codec.encode_value_dyn(&parse_json("VALUE", &value)?)?;
            stash.set_raw(&key, &value)?;
        }
        Command::Get {
            key,
            all,
            with_metadata,
        } => {
            let key_text = key;
            let key = key_bytes(&key_text)?;
            if all {
                let versions = engine.versions(&key)?;
                if versions.is_empty() {
                    return Err(Error::KeyNotFound { key: key_text });
                }
                let mut rows = Vec::with_capacity(versions.len());
                for v in versions {
                    let decoded = codec.decode_value_dyn(&v.value);
                    let decoded = value::to_json(&decoded.map_err(naming_key(&key_text))?);
                    rows.push(if with_metadata {
                        serde_json::json!({
                            "_version": v.version,
                            "_timestamp": v.timestamp_micros as f64 / 1e6,
                            "_value": decoded,
                        })
                    } else {
                        decoded
                    });
                }
                print_json(&mut out, &serde_json::Value::Array(rows))?;
            } else {
                let Some(stored) = stash.get_raw(&key)? else {
                    return Err(Error::KeyNotFound { key: key_text });
                };
                let decoded = codec.decode_value_dyn(&stored);
                print_json(
                    &mut out,
                    &value::to_json(&decoded.map_err(naming_key(&key_text))?),
                )?;
            }
        }
        Command::Setdefault { key, value } => {
            let key_text = key;
            let key = key_bytes(&key_text)?;
            let value = codec.encode_value_dyn(&parse_json("VALUE", &value)?)?;
            let stored = stash.setdefault_raw(&key, &value)?;
            let decoded = codec.decode_value_dyn(&stored);
            print_json(
                &mut out,
                &value::to_json(&decoded.map_err(naming_key(&key_text))?),
            )?;
        }
        Command::Del { key } => {
            if !stash.remove_raw(&key_bytes(&key)?)? {
                return Err(Error::KeyNotFound { key });
            }
        }
        Command::Keys(written) => match written.filter()? {
            None => {
                for key in stash.keys_dyn()? {
                    print_json(&mut out, &value::to_json(&key?))?;
                }
            }
            Some(filter) => {
                for item in stash.items_written_dyn(filter)? {
                    print_json(&mut out, &value::to_json(&item?.0))?;
                }
            }
        },
        Command::Items(written) => match written.filter()? {
            None => {
                for item in stash.items_dyn()? {
                    let (k, v) = item?;
                    let line =
                        serde_json::json!({"key": value::to_json(&k), "value": value::to_json(&v)});
                    print_json(&mut out, &line)?;
                }
            }
            Some(filter) => {
                for item in stash.items_written_dyn(filter)? {
                    let (k, v, time) = item?;
                    let line = serde_json::json!({
                        "key": value::to_json(&k),
                        "value": value::to_json(&v),
                        "_timestamp": time,
                    });
                    print_json(&mut out, &line)?;
                }
            }
        },
        Command::Len => print_json(&mut out, &stash.len()?.into())?,
        Command::Info => {
            let info = serde_json::json!({
                "stash": stash.to_string(),
                "path": stash.path().display().to_string(),
                "config": stash.to_dict(),
                "entries": stash.len()?,
                "bytes_on_disk": stash.disk_usage()?,
                "stats": stats_json(&stash.lifetime_stats()?),
            });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&info).unwrap_or_default()
            )
            .map_err(|e| Error::Io {
                path: "<stdout>".into(),
                source: e,
            })?;
        }
        #[cfg(feature = "sql")]
        Command::Sql {
            query,
            tables,
            as_of,
            format,
            out: file,
        } => {
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
        Command::Profile(_) | Command::Copy { .. } => {
            unreachable!("handled before the stash is opened")
        }
        Command::Prune {
            older_than: None, ..
        } => {
            let n = stash.prune_expired()?;
            eprintln!("pruned {n} expired entries from {stash}");
        }
        Command::Prune {
            older_than: Some(time),
            apply,
        } => {
            let older_than: hashstash::Moment = time.parse()?;
            let report = stash.prune(hashstash::Prune::older_than(older_than).dry_run(!apply))?;
            print_json(&mut out, &serde_json::to_value(&report).unwrap_or_default())?;
            eprintln!("{report} (last written before {older_than}) in {stash}");
        }
        Command::Clear => {
            let n = stash.len()?;
            stash.clear()?;
            eprintln!("cleared {n} entries from {stash}");
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
