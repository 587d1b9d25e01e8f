//! The table commands (feature `sql`): `sql`, `export` and `import`.

use crate::args::StashArgs;
use crate::bars::progress_bar;
use crate::errors::CliError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use hashstash::table::location::{io_error, Location, Output};
use hashstash::table::parquet_tables::ParquetTables;
use hashstash::table::provider::StashTable;
use hashstash::table::sql::{pretty, sql_over_stream_with, ParquetSink};
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

/// An I/O error on `path`: a URL shown with its secrets redacted, and an object store's
/// own error (carried through `std::io`) given back as it was.
fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| io_error(&Location::of(path).shown(), e)
}

fn arrow_err(e: impl Into<hashstash::BoxError>) -> Error {
    Error::Sql { source: e.into() }
}

/// The `--table NAME=PATH_OR_URL` tables: each parquet file (a name ending in `.parquet`,
/// local or in object storage) a table read as it is, any other target opened as a stash.
fn extra_tables(specs: &[String]) -> Result<(Vec<(String, Stash)>, ParquetTables), CliError> {
    let mut stashes = Vec::new();
    let mut files = ParquetTables::new();
    for spec in specs {
        let (name, target) = spec.split_once('=').ok_or_else(|| CliError::Usage {
            argument: "table",
            message: format!("{spec:?} is not NAME=PATH_OR_URL"),
        })?;
        if Location::of(Path::new(target)).is_parquet() {
            files = files.with(name, target);
            continue;
        }
        let args = StashArgs {
            path: Some(target.into()),
            ..StashArgs::default()
        };
        stashes.push((name.to_owned(), args.open()?));
    }
    Ok((stashes, files))
}

/// Where text goes: standard output, or a file or object (complete only once finished).
///
/// Its first write error is returned, and every write after it is dropped, and `flush` does
/// nothing (`finish` flushes): the writers over it flush when they are taken apart, and
/// arrow's CSV writer panics if that fails.
struct Sink {
    to: SinkTo,
    failed: bool,
}

enum SinkTo {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File(Output),
}

impl Sink {
    fn new(to: SinkTo) -> Self {
        Sink { to, failed: false }
    }

    /// Flushes standard output, or completes the file or object (not after a failed write).
    fn finish(self) -> Result<(), CliError> {
        if self.failed {
            self.abort();
            let failed = std::io::Error::other("an earlier write failed");
            return Err(io_err(Path::new("<output>"))(failed).into());
        }
        match self.to {
            SinkTo::Stdout(mut out) => Ok(out.flush().map_err(io_err(Path::new("<stdout>")))?),
            SinkTo::File(file) => Ok(file.finish()?),
        }
    }

    /// Gives up on a file: an object is not made.
    fn abort(self) {
        if let SinkTo::File(mut file) = self.to {
            // The error that ended the output is the one reported.
            let _ = file.abort();
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Ok(buf.len());
        }
        let written = match &mut self.to {
            SinkTo::Stdout(out) => out.write(buf),
            SinkTo::File(file) => file.write(buf),
        };
        self.failed = written.is_err();
        written
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where rows go, batch by batch: a file or standard output in one of the formats.
enum BatchWriter {
    /// A text table: the rows are kept and drawn at the end (column widths need them all).
    Table(Sink, Vec<RecordBatch>),
    Csv(datafusion::arrow::csv::Writer<Sink>),
    /// One object per row with every column, nulls written as `null`, so that every line
    /// has the same keys.
    Json(datafusion::arrow::json::Writer<Sink, datafusion::arrow::json::writer::LineDelimited>),
    Parquet(ParquetSink),
}

impl BatchWriter {
    /// A writer of rows of `schema` in `format` to `out` (a file) or standard output.
    fn create(format: Format, out: Option<&Path>, schema: SchemaRef) -> Result<Self, CliError> {
        if let (Format::Parquet, Some(path)) = (format, out) {
            return Ok(BatchWriter::Parquet(ParquetSink::create(path, schema)?));
        }
        let sink = Sink::new(match out {
            Some(path) => SinkTo::File(Output::create(path)?),
            None => SinkTo::Stdout(std::io::BufWriter::new(std::io::stdout().lock())),
        });
        Ok(match format {
            Format::Table => BatchWriter::Table(sink, Vec::new()),
            Format::Csv => BatchWriter::Csv(datafusion::arrow::csv::Writer::new(sink)),
            Format::Json => BatchWriter::Json(
                datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(sink),
            ),
            Format::Parquet => {
                return Err(CliError::Usage {
                    argument: "format",
                    message: "parquet needs --out FILE".into(),
                })
            }
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<(), CliError> {
        match self {
            BatchWriter::Table(_, kept) => kept.push(batch),
            BatchWriter::Csv(writer) => writer.write(&batch).map_err(arrow_err)?,
            BatchWriter::Json(writer) => writer.write(&batch).map_err(arrow_err)?,
            BatchWriter::Parquet(sink) => sink.write(&batch)?,
        }
        Ok(())
    }

    /// Finishes the output (a parquet footer, a drawn table) and completes it; on an
    /// error, gives it up (an object is not made).
    fn finish(self, out: Option<&Path>) -> Result<(), CliError> {
        let path = out.unwrap_or(Path::new("<stdout>"));
        let (sink, last) = match self {
            BatchWriter::Table(mut sink, kept) => {
                let drawn = pretty(&kept)
                    .map_err(CliError::from)
                    .and_then(|table| Ok(writeln!(sink, "{table}").map_err(io_err(path))?));
                (sink, drawn)
            }
            BatchWriter::Csv(writer) => (writer.into_inner(), Ok(())),
            BatchWriter::Json(mut writer) => {
                let footer = writer.finish().map_err(|e| arrow_err(e).into());
                (writer.into_inner(), footer)
            }
            BatchWriter::Parquet(sink) => return Ok(sink.close().map(drop)?),
        };
        match last {
            Ok(()) => sink.finish(),
            Err(e) => {
                sink.abort();
                Err(e)
            }
        }
    }

    /// Gives up on the output: a file in object storage is not made.
    fn abort(self) {
        match self {
            BatchWriter::Table(sink, _) => sink.abort(),
            BatchWriter::Csv(writer) => writer.into_inner().abort(),
            BatchWriter::Json(writer) => writer.into_inner().abort(),
            BatchWriter::Parquet(sink) => {
                // The error that ended the output is the one reported.
                let _ = sink.abort();
            }
        }
    }
}

/// Writes every batch of `batches` in `format` to `out` (a file) or standard output, as
/// they come; counts the rows on `bar`.
fn write_stream(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, Error>>,
    format: Format,
    out: Option<&Path>,
    bar: &indicatif::ProgressBar,
) -> Result<(), CliError> {
    let mut writer = BatchWriter::create(format, out, schema)?;
    for batch in batches {
        let written = batch.map_err(CliError::from).and_then(|batch| {
            bar.inc(batch.num_rows() as u64);
            writer.write(batch)
        });
        if let Err(e) = written {
            writer.abort();
            return Err(e);
        }
    }
    writer.finish(out)
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
) -> Result<(), CliError> {
    let (extra, files) = extra_tables(query.tables)?;
    let mut all: Vec<(&str, &Stash)> = vec![("stash", stash)];
    all.extend(extra.iter().map(|(n, s)| (n.as_str(), s)));
    let run = |text: &str| sql_over_stream_with(&all, &files, text, query.as_of);
    if let Some(text) = query.text {
        // Rows go out as the query makes them; a bar counts them when they go to a file.
        let rows = run(text)?;
        let bar = match out {
            Some(_) => progress_bar(None, "rows"),
            None => indicatif::ProgressBar::hidden(),
        };
        let written = write_stream(rows.schema(), rows, format, out, &bar);
        bar.finish_and_clear();
        return written;
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
            _ => match run(query).map_err(CliError::from).and_then(|rows| {
                let hidden = indicatif::ProgressBar::hidden();
                write_stream(rows.schema(), rows, Format::Table, None, &hidden)
            }) {
                Ok(()) => {}
                Err(e) => eprintln!("error: {e}"),
            },
        }
    }
}

/// `hashstash export`: the stash's table as parquet or CSV, or its entries as JSON lines
/// (`{"key": ..., "value": ...}`, what `import` reads). Rows stream from the stash to the
/// file; a progress bar shows on a terminal.
pub fn export(
    stash: &Stash,
    format: Format,
    out: &Path,
    all_versions: bool,
) -> Result<(), CliError> {
    let versions = if all_versions {
        Versions::All
    } else {
        Versions::Latest
    };
    match format {
        Format::Json if all_versions => Err(CliError::Usage {
            argument: "all-versions",
            message: "JSON lines hold one value per key (what import reads): export every \
                      version as parquet or csv"
                .into(),
        }),
        Format::Json => {
            let bar = progress_bar(Some(stash.len()? as u64), "entries");
            let mut file = Output::create(out)?;
            // Whole lines go to the output: an object is uploaded a part at a time anyway.
            let mut lines = || -> Result<(), Error> {
                for item in stash.items_dyn()? {
                    let (k, v) = item?;
                    let (k, v) = (value::to_json(&k), value::to_json(&v));
                    let line = serde_json::json!({"key": k, "value": v});
                    writeln!(file, "{line}").map_err(io_err(out))?;
                    bar.inc(1);
                }
                Ok(())
            };
            let written = lines();
            bar.finish_and_clear();
            match written {
                Ok(()) => Ok(file.finish()?),
                Err(e) => {
                    // The error that ended the export is the one reported.
                    let _ = file.abort();
                    Err(e.into())
                }
            }
        }
        Format::Parquet | Format::Csv => {
            let bar = progress_bar(None, "rows");
            let table = StashTable::try_new(stash.clone(), versions)?;
            let rows = table.record_batches()?;
            let written = write_stream(table.arrow_schema(), rows, format, Some(out), &bar);
            bar.finish_and_clear();
            written
        }
        Format::Table => Err(CliError::Usage {
            argument: "format",
            message: "export writes parquet, json or csv".into(),
        }),
    }
}

/// `hashstash import`: a parquet file (`.parquet`) or JSON lines with `key` and `value`
/// fields; returns how many entries. A progress bar shows on a terminal.
pub fn import(stash: &Stash, file: &Path) -> Result<usize, CliError> {
    let bar = progress_bar(None, "entries stored");
    let mut progress = |done: usize| bar.set_position(done as u64);
    let count = if Location::of(file).is_parquet() {
        stash.load_parquet_with_progress(file, &mut progress)
    } else {
        stash.load_jsonl_with_progress(file, &mut progress)
    };
    bar.finish_and_clear();
    Ok(count?)
}
