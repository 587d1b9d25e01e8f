//! The `sql/*.slt` files (sqllogictest), run against every engine.
//!
//! Besides SQL, a file may write to its stash with one statement of ours:
//! `STASH {"key": <JSON>, "value": <JSON>}` stores an entry, `STASH CLEAR` empties the stash.
//! Every file runs on a fresh stash per engine; the stash is table `stash`.

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use hashstash::{EngineKind, Error, Stash};
use sqllogictest::{DBOutput, DefaultColumnType};

struct StashDb {
    stash: Stash,
}

impl sqllogictest::DB for StashDb {
    type Error = Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Error> {
        let sql = sql.trim();
        if let Some(rest) = sql.strip_prefix("STASH") {
            let rest = rest.trim();
            if rest == "CLEAR" {
                self.stash.clear()?;
                return Ok(DBOutput::StatementComplete(0));
            }
            let entry: serde_json::Value =
                serde_json::from_str(rest).map_err(|e| Error::InvalidOption {
                    option: "STASH",
                    message: e.to_string(),
                })?;
            self.stash.set(&entry["key"], &entry["value"])?;
            return Ok(DBOutput::StatementComplete(1));
        }
        let batches = self.stash.sql(sql)?;
        let Some(first) = batches.first() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        let types = first
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int64 | DataType::UInt64 | DataType::Int32 | DataType::UInt32 => {
                    DefaultColumnType::Integer
                }
                DataType::Float64 | DataType::Float32 => DefaultColumnType::FloatingPoint,
                _ => DefaultColumnType::Text,
            })
            .collect();
        let mut rows = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let cells = batch
                    .columns()
                    .iter()
                    .map(|column| {
                        if column.is_null(row) {
                            Ok("NULL".to_string())
                        } else {
                            array_value_to_string(column, row).map_err(|e| Error::Decode {
                                what: "a result cell".into(),
                                format: "arrow".into(),
                                source: e.into(),
                            })
                        }
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                rows.push(cells);
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    fn engine_name(&self) -> &str {
        "hashstash"
    }
}

/// Runs every `sql/*.slt` file on a fresh stash of `engine`.
fn run_all(engine: EngineKind) {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", folder.display());
    for file in files {
        let (_dir, stash) = crate::common::stash(engine);
        let mut runner = sqllogictest::Runner::new(move || {
            let stash = stash.clone();
            async move { Ok::<_, Error>(StashDb { stash }) }
        });
        if let Err(e) = runner.run_file(&file) {
            panic!("{engine}: {}: {e}", file.display());
        }
    }
}

macro_rules! slt_tests {
    ($($name:ident => $engine:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if crate::common::engine_available($engine) {
                    run_all($engine);
                }
            }
        )*
    };
}

slt_tests!(pairtree => EngineKind::Pairtree, memory => EngineKind::Memory);
#[cfg(feature = "lmdb")]
slt_tests!(lmdb => EngineKind::Lmdb);
#[cfg(feature = "sqlite")]
slt_tests!(sqlite => EngineKind::Sqlite);
#[cfg(feature = "diskcache")]
slt_tests!(diskcache => EngineKind::Diskcache);
#[cfg(feature = "redis")]
slt_tests!(redis => EngineKind::Redis);
#[cfg(feature = "mongo")]
slt_tests!(mongo => EngineKind::Mongo);
#[cfg(feature = "objectstore")]
slt_tests!(objectstore => EngineKind::ObjectStore);
