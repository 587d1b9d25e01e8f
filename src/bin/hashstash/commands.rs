//! The commands that read and write entries, one function each (`main.rs` dispatches; the
//! table commands are in `tables.rs`, `copy` and `profile` in their own files).

use crate::args::Written;
use crate::errors::CliError;
use crate::{key_bytes, naming_key, parse_json, print_json, stats_json};
use hashstash::{value, EngineExt, Error, Stash};
use std::io::Write;

/// `set KEY VALUE`.
pub fn set(stash: &Stash, key: &str, value: &str) -> Result<(), CliError> {
    let key = key_bytes(key)?;
    let value = stash
        .codec()
        .encode_value_dyn(&parse_json("VALUE", value)?)?;
    stash.set_raw(&key, &value)?;
    Ok(())
}

/// `get KEY` (`--all` every version, `--with-metadata` with number and time).
pub fn get(
    stash: &Stash,
    out: &mut impl Write,
    key_text: &str,
    all: bool,
    with_metadata: bool,
) -> Result<(), CliError> {
    let codec = stash.codec();
    let key = key_bytes(key_text)?;
    let missing = || {
        CliError::from(Error::KeyNotFound {
            key: key_text.into(),
        })
    };
    if !all {
        let stored = stash.get_raw(&key)?.ok_or_else(missing)?;
        let decoded = codec
            .decode_value_dyn(&stored)
            .map_err(naming_key(key_text))?;
        return print_json(out, &value::to_json(&decoded));
    }
    let versions = stash.engine().history()?.versions(&key)?;
    if versions.is_empty() {
        return Err(missing());
    }
    let mut rows = Vec::with_capacity(versions.len());
    for v in versions {
        let decoded = codec
            .decode_value_dyn(&v.value)
            .map_err(naming_key(key_text))?;
        let decoded = value::to_json(&decoded);
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
    print_json(out, &serde_json::Value::Array(rows))
}

/// `setdefault KEY VALUE`: prints the value under KEY afterwards.
pub fn setdefault(
    stash: &Stash,
    out: &mut impl Write,
    key_text: &str,
    value: &str,
) -> Result<(), CliError> {
    let codec = stash.codec();
    let key = key_bytes(key_text)?;
    let value = codec.encode_value_dyn(&parse_json("VALUE", value)?)?;
    let stored = stash.setdefault_raw(&key, &value)?;
    let decoded = codec
        .decode_value_dyn(&stored)
        .map_err(naming_key(key_text))?;
    print_json(out, &value::to_json(&decoded))
}

/// `del KEY`.
pub fn del(stash: &Stash, key: &str) -> Result<(), CliError> {
    if !stash.remove_raw(&key_bytes(key)?)? {
        return Err(Error::KeyNotFound { key: key.into() }.into());
    }
    Ok(())
}

/// `keys` (`--after`, `--before`: by last write).
pub fn keys(stash: &Stash, out: &mut impl Write, written: &Written) -> Result<(), CliError> {
    match written.filter()? {
        None => {
            for key in stash.keys_dyn()? {
                print_json(out, &value::to_json(&key?))?;
            }
        }
        Some(filter) => {
            for item in stash.items_written_dyn(filter)? {
                print_json(out, &value::to_json(&item?.0))?;
            }
        }
    }
    Ok(())
}

/// `items`: JSON lines of key and value (with `_timestamp` under a time filter).
pub fn items(stash: &Stash, out: &mut impl Write, written: &Written) -> Result<(), CliError> {
    match written.filter()? {
        None => {
            for item in stash.items_dyn()? {
                let (k, v) = item?;
                let line =
                    serde_json::json!({"key": value::to_json(&k), "value": value::to_json(&v)});
                print_json(out, &line)?;
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
                print_json(out, &line)?;
            }
        }
    }
    Ok(())
}

/// `info`: config, path, entries, bytes on disk and lifetime counts, as pretty JSON.
pub fn info(stash: &Stash, out: &mut impl Write) -> Result<(), CliError> {
    let info = serde_json::json!({
        "stash": stash.to_string(),
        "path": stash.path().display().to_string(),
        "config": stash.to_dict(),
        "entries": stash.len()?,
        "bytes_on_disk": stash.disk_usage()?,
        "stats": stats_json(&stash.lifetime_stats()?),
    });
    let text = serde_json::to_string_pretty(&info).unwrap_or_default();
    writeln!(out, "{text}").map_err(|e| {
        CliError::from(Error::Io {
            path: "<stdout>".into(),
            source: e,
        })
    })
}

/// `prune`: expired entries, or (`--older-than`) a report of the entries last written
/// before a time, removed with `--apply`.
pub fn prune(
    stash: &Stash,
    out: &mut impl Write,
    older_than: Option<&str>,
    apply: bool,
) -> Result<(), CliError> {
    let Some(time) = older_than else {
        let n = stash.prune_expired()?;
        eprintln!("pruned {n} expired entries from {stash}");
        return Ok(());
    };
    let older_than: hashstash::Moment = time.parse()?;
    let report = stash.prune(hashstash::Prune::older_than(older_than).dry_run(!apply))?;
    print_json(out, &serde_json::to_value(&report).unwrap_or_default())?;
    eprintln!("{report} (last written before {older_than}) in {stash}");
    Ok(())
}

/// `clear`.
pub fn clear(stash: &Stash) -> Result<(), CliError> {
    let n = stash.len()?;
    stash.clear()?;
    eprintln!("cleared {n} entries from {stash}");
    Ok(())
}
