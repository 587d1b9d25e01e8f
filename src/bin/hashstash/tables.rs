//! The table commands (feature `sql`): `sql`, `export` and `import`.

use crate::args::StashArgs;
use datafusion::arrow::record_batch::RecordBatch;
use hashstash::table::sql::{pretty, sql_over};
use hashstash::{value, Error, Stash};
use std::io::{BufRead, Write};
use std::path::Path;

/// How query results and exports are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A text table (queries only).
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
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

/// `hashstash sql`: one query, or with none an interactive prompt.
pub fn sql(
    stash: &Stash,
    query: Option<&str>,
    tables: &[String],
    format: Format,
    out: Option<&Path>,
) -> Result<(), Error> {
    let extra = extra_tables(tables)?;
    let mut all: Vec<(&str, &Stash)> = vec![("stash", stash)];
    all.extend(extra.iter().map(|(n, s)| (n.as_str(), s)));
    if let Some(query) = query {
        return write_batches(&sql_over(&all, query)?, format, out);
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
            _ => match sql_over(&all, query).and_then(|b| write_batches(&b, Format::Table, None)) {
                Ok(()) => {}
                Err(e) => eprintln!("error: {e}"),
            },
        }
    }
}

/// `hashstash export`: the stash's table as parquet or CSV, or its entries as JSON lines
/// (`{"key": ..., "value": ...}`, what `import` reads).
pub fn export(stash: &Stash, format: Format, out: &Path) -> Result<(), Error> {
    match format {
        Format::Json => {
            let file = std::fs::File::create(out).map_err(io_err(out))?;
            let mut writer = std::io::BufWriter::new(file);
            for item in stash.items_dyn()? {
                let (k, v) = item?;
                let line =
                    serde_json::json!({"key": value::to_json(&k), "value": value::to_json(&v)});
                writeln!(writer, "{line}").map_err(io_err(out))?;
            }
            writer.flush().map_err(io_err(out))
        }
        Format::Parquet => stash.to_parquet(out).map(drop),
        Format::Csv => write_batches(&stash.to_batches()?.1, Format::Csv, Some(out)),
        Format::Table => Err(Error::InvalidOption {
            option: "format",
            message: "export writes parquet, json or csv".into(),
        }),
    }
}

/// `hashstash import`: a parquet file (`.parquet`) or JSON lines with `key` and `value`
/// fields; returns how many entries.
pub fn import(stash: &Stash, file: &Path) -> Result<usize, Error> {
    if file.extension().is_some_and(|e| e == "parquet") {
        stash.load_parquet(file)
    } else {
        stash.load_jsonl(file)
    }
}
