//! The table commands (feature `sql`): `sql`, `export` and `import`.

use crate::args::StashArgs;
use datafusion::arrow::record_batch::RecordBatch;
use hashstash::table::provider::StashTable;
use hashstash::table::sql::{pretty, sql_over, sql_over_as_of};
use hashstash::time_filter::Moment;
use hashstash::{value, Error, Stash, Versions};
use std::io::{BufRead, Write};
use std::path::Path;

/// How query results and exports are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A text table (queries only).
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line (also `jsonl`).
    #[value(alias = "jsonl")]
    Json,
    /// Parquet (needs --out).
    Parquet,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

fn arrow_err(e: impl Into<hashstash::BoxError>) -> Error {
    Error::Engine {
        engine: "sql",
        source: e.into(),
    }
}

/// Opens each `NAME=PATH_OR_URL` as a stash.
fn extra_tables(specs: &[String]) -> Result<Vec<(String, Stash)>, Error> {
    specs
        .iter()
        .map(|spec| {
            let (name, target) = spec.split_once('=').ok_or_else(|| Error::InvalidOption {
                option: "table",
                message: format!("{spec:?} is not NAME=PATH_OR_URL"),
            })?;
            let args = StashArgs {
                path: Some(target.into()),
                ..StashArgs::default()
            };
            Ok((name.to_owned(), args.open()?))
        })
        .collect()
}

/// Writes batches in `format` to `out` (a file) or standard output.
fn write_batches(batches: &[RecordBatch], format: Format, out: Option<&Path>) -> Result<(), Error> {
    let stdout = Path::new("<stdout>");
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::fs::File::create(path).map_err(io_err(path))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let path = out.unwrap_or(stdout);
    match format {
        Format::Table => writeln!(sink, "{}", pretty(batches)?).map_err(io_err(path))?,
        Format::Csv => {
            let mut writer = datafusion::arrow::csv::Writer::new(sink);
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(sink);
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
            writer.finish().map_err(arrow_err)?;
        }
        Format::Parquet => {
            let Some(path) = out else {
                return Err(Error::InvalidOption {
                    option: "format",
                    message: "parquet needs --out FILE".into(),
                });
            };
            let Some(schema) = batches.first().map(|b| b.schema()) else {
                return Err(Error::InvalidOption {
                    option: "format",
                    message: "no rows to write".into(),
                });
            };
            let file = std::fs::File::create(path).map_err(io_err(path))?;
            let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None)
                .map_err(arrow_err)?;
            for batch in batches {
                writer.write(batch).map_err(arrow_err)?;
            }
            writer.close().map_err(arrow_err)?;
        }
    }
    Ok(())
}

/// What `hashstash sql` runs: the query (none: a prompt), the other stashes, and the moment
/// to see them at (none: now).
pub struct Query<'a> {
    pub text: Option<&'a str>,
    pub tables: &'a [String],
    pub as_of: Option<Moment>,
}

/// `--as-of`: an RFC 3339 time with its offset, unix seconds, or an age before now.
pub fn moment(text: &str) -> Result<Moment, Error> {
    text.parse()
}

/// `hashstash sql`: one query, or with none an interactive prompt.
pub fn sql(
    stash: &Stash,
    query: Query<'_>,
    format: Format,
    out: Option<&Path>,
) -> Result<(), Error> {
    let extra = extra_tables(query.tables)?;
    let mut all: Vec<(&str, &Stash)> = vec![("stash", stash)];
    all.extend(extra.iter().map(|(n, s)| (n.as_str(), s)));
    let run = |text: &str| match query.as_of {
        Some(moment) => sql_over_as_of(&all, text, moment),
        None => sql_over(&all, text),
    };
    if let Some(text) = query.text {
        return write_batches(&run(text)?, format, out);
    }
    // The prompt: one query per line; errors are shown and the prompt goes on.
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        eprint!("hashstash> ");
        line.clear();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(io_err(Path::new("<stdin>")))?
            == 0
        {
            return Ok(());
        }
        let query = line.trim().trim_end_matches(';');
        match query {
            "" => continue,
            "exit" | "quit" | "\\q" => return Ok(()),
            _ => match run(query).and_then(|b| write_batches(&b, Format::Table, None)) {
                Ok(()) => {}
                Err(e) => eprintln!("error: {e}"),
            },
        }
    }
}

/// A progress bar on standard error, drawn only when it is a terminal. `total`: how many
/// items the run will handle, if known.
fn progress_bar(total: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::no_length(),
    };
    let template = match total {
        Some(_) => "{bar:40} {pos}/{len} {msg} ({per_sec}, {eta} left)",
        None => "{spinner} {pos} {msg} ({per_sec})",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar
}

/// `hashstash export`: the stash's table as parquet or CSV, or its entries as JSON lines
/// (`{"key": ..., "value": ...}`, what `import` reads). Rows stream from the stash to the
/// file; a progress bar shows on a terminal.
pub fn export(stash: &Stash, format: Format, out: &Path, all_versions: bool) -> Result<(), Error> {
    let file = || std::fs::File::create(out).map_err(io_err(out));
    let versions = if all_versions {
        Versions::All
    } else {
        Versions::Latest
    };
    match format {
        Format::Json if all_versions => Err(Error::InvalidOption {
            option: "all-versions",
            message: "JSON lines hold one value per key (what import reads): export every \
                      version as parquet or csv"
                .into(),
        }),
        Format::Json => {
            let bar = progress_bar(Some(stash.len()? as u64), "entries");
            let mut writer = std::io::BufWriter::new(file()?);
            for item in stash.items_dyn()? {
                let (k, v) = item?;
                let line =
                    serde_json::json!({"key": value::to_json(&k), "value": value::to_json(&v)});
                writeln!(writer, "{line}").map_err(io_err(out))?;
                bar.inc(1);
            }
            bar.finish_and_clear();
            writer.flush().map_err(io_err(out))
        }
        Format::Parquet | Format::Csv => {
            let bar = progress_bar(None, "rows");
            let table = StashTable::try_new(stash.clone(), versions)?;
            let mut batches = table.stream()?;
            let mut parquet = None;
            let mut csv = None;
            if format == Format::Parquet {
                parquet = Some(
                    datafusion::parquet::arrow::ArrowWriter::try_new(
                        file()?,
                        table.arrow_schema(),
                        None,
                    )
                    .map_err(arrow_err)?,
                );
            } else {
                csv = Some(datafusion::arrow::csv::Writer::new(
                    std::io::BufWriter::new(file()?),
                ));
            }
            while let Some(batch) = batches.blocking_next() {
                let batch = batch?;
                if let Some(writer) = parquet.as_mut() {
                    writer.write(&batch).map_err(arrow_err)?;
                }
                if let Some(writer) = csv.as_mut() {
                    writer.write(&batch).map_err(arrow_err)?;
                }
                bar.inc(batch.num_rows() as u64);
            }
            if let Some(writer) = parquet {
                writer.close().map_err(arrow_err)?;
            }
            if let Some(writer) = csv {
                writer.into_inner().flush().map_err(io_err(out))?;
            }
            bar.finish_and_clear();
            Ok(())
        }
        Format::Table => Err(Error::InvalidOption {
            option: "format",
            message: "export writes parquet, json or csv".into(),
        }),
    }
}

/// `hashstash import`: a parquet file (`.parquet`) or JSON lines with `key` and `value`
/// fields; returns how many entries. A progress bar shows on a terminal.
pub fn import(stash: &Stash, file: &Path) -> Result<usize, Error> {
    let bar = progress_bar(None, "entries stored");
    let mut progress = |done: usize| bar.set_position(done as u64);
    let count = if file.extension().is_some_and(|e| e == "parquet") {
        stash.load_parquet_with_progress(file, &mut progress)
    } else {
        stash.load_jsonl_with_progress(file, &mut progress)
    };
    bar.finish_and_clear();
    count
}
