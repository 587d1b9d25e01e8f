//! `hashstash copy SRC DST`: a stash into another engine, serializer or compressor.

use crate::args::StashArgs;
use crate::errors::CliError;
use hashstash::{Compressor, CopyOptions, EngineKind, Error, Serializer, Stash, StashConfig};
use std::path::{Path, PathBuf};

/// Opens SRC (as `--path` would), opens or creates DST, and copies.
pub fn run(args: &StashArgs, src: &Path, dst: &Path, dry_run: bool) -> Result<(), CliError> {
    let source = StashArgs {
        path: Some(src.to_path_buf()),
        ..args.clone()
    }
    .open()?;
    let destination = open_destination(args, dst, source.config().append_mode)?;
    if source.stash_dir() == destination.stash_dir()
        && source.config().engine == destination.config().engine
    {
        return Err(CliError::Usage {
            argument: "DST",
            message: "the destination is the source".into(),
        });
    }
    let bar = hashstash::progress::Observer::new(crate::bars::TerminalBar::default());
    let options = CopyOptions::new().dry_run(dry_run).progress(bar);
    let report = source.copy_to(&destination, options)?;
    println!("{}", serde_json::to_value(&report).unwrap_or_default());
    eprintln!("{report}: {source} -> {destination}");
    Ok(())
}

/// DST: a server URL (its namespace from --root-dir and --dbname, its format from the
/// flags), an existing stash folder, or a new folder named as stash folders are
/// (`ROOT/DBNAME/<engine>.<serializer>.<compress>[+b64]`). A new destination keeps the
/// source's append mode, so that every version can move.
fn open_destination(args: &StashArgs, dst: &Path, append_mode: bool) -> Result<Stash, CliError> {
    let as_path = StashArgs {
        path: Some(dst.to_path_buf()),
        append_mode: args.append_mode || append_mode,
        ..args.clone()
    };
    let is_url = dst.to_str().is_some_and(|s| s.contains("://"));
    if is_url || dst.join(hashstash::config::FORMAT_FILENAME).exists() {
        return as_path.open();
    }
    let config = new_folder_config(dst, append_mode)?;
    let config = Stash::builder().config(config).resolved_config()?;
    Ok(Stash::open_config(config, false)?)
}

/// The config of a stash folder yet to be made, from its name.
fn new_folder_config(dst: &Path, append_mode: bool) -> Result<StashConfig, CliError> {
    let bad = |why: &str| CliError::Usage {
        argument: "DST",
        message: format!(
            "{} {why}: name a new destination ROOT/DBNAME/ENGINE.SERIALIZER.COMPRESS, \
             e.g. cache/main/sqlite.hashstash.zstd (or give a server URL)",
            dst.display()
        ),
    };
    let name = dst
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("has no folder name"))?;
    let (name, b64) = match name.strip_suffix("+b64") {
        Some(name) => (name, true),
        None => (name, false),
    };
    let mut parts = name.split('.');
    let (Some(engine), Some(serializer), Some(compress), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not named ENGINE.SERIALIZER.COMPRESS"));
    };
    let engine: EngineKind = engine.parse()?;
    let dbdir = dst.parent().filter(|p| !p.as_os_str().is_empty());
    let dbname = dbdir
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("has no DBNAME folder above it"))?;
    let root = dbdir
        .and_then(|d| d.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // A path, not a name under the default root folder.
    let root = match root.is_relative() {
        true => std::env::current_dir()
            .map_err(|source| Error::Io {
                path: ".".into(),
                source,
            })?
            .join(root),
        false => root,
    };
    Ok(StashConfig {
        root_dir: root,
        dbname: dbname.to_string(),
        engine,
        serializer: serializer.parse::<Serializer>()?,
        compress: compress.parse::<Compressor>()?,
        b64,
        append_mode,
        ..StashConfig::default()
    })
}
