//! Parquet files as SQL tables beside the stashes (feature `sql`): a snapshot written by
//! [`Stash::to_parquet`](crate::Stash::to_parquet) on one machine, queried on another
//! (`hashstash sql --table snap=s3://bucket/snap.parquet`), with no copy by hand.
//!
//! A file is a local path or `file://` URL, or with the `objectstore` feature an `s3://`,
//! `gs://` or `az://` URL (credentials and options as for the objectstore engine); a folder
//! or prefix ending in `/` is every `.parquet` file in it. DataFusion's `ListingTable` reads
//! them through `object_store`, fetching only the row groups and columns a query needs.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::table::parquet_tables::ParquetTables;
//! use hashstash::table::sql::{pretty, sql_over_with};
//!
//! let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
//! stash.set("a", &serde_json::json!({"kind": "cat"}))?;
//! stash.set("b", &serde_json::json!({"kind": "cat"}))?;
//! let snapshot = dir.path().join("snap.parquet"); // or s3://bucket/snap.parquet
//! stash.to_parquet(&snapshot)?;
//!
//! let files = ParquetTables::new().with("snap", &snapshot);
//! let query = "SELECT kind, count(*) AS n FROM snap GROUP BY kind";
//! let result = pretty(&sql_over_with(&[], &files, query, None)?)?;
//! assert!(result.contains("| cat  | 2 |"), "{result}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::location::Location;
use crate::error::{Error, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use std::path::Path;

/// Parquet files (or folders of them), each a table under its name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParquetTables {
    tables: Vec<(String, Location)>,
}

impl ParquetTables {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// The file (or folder, ending in `/`) at `location` as table `name`: a local path, or
    /// an object-store URL ([`Location::of`]).
    pub fn with(mut self, name: impl Into<String>, location: impl AsRef<Path>) -> Self {
        self.tables
            .push((name.into(), Location::of(location.as_ref())));
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// A session with each file registered as its table (each file's footer is read for its
    /// schema); made inside the runtime the queries run on, where the stores' clients live.
    pub(crate) async fn session(&self) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        // The store of each bucket, by the options its URL gave (see `register_store`).
        let mut stores: Vec<(String, String)> = Vec::new();
        for (name, location) in &self.tables {
            let url = match location {
                Location::Local(path) => {
                    path.to_str()
                        .map(str::to_owned)
                        .ok_or_else(|| Error::InvalidOption {
                            option: "table",
                            message: format!("{} is not a UTF-8 path", path.display()),
                        })?
                }
                Location::Object(url) => register_store(&ctx, url, &mut stores)?,
            };
            ctx.register_parquet(name.as_str(), &url, ParquetReadOptions::default())
                .await
                .map_err(|e| Error::Sql {
                    source: format!("table {name} ({}): {e}", location.shown()).into(),
                })?;
        }
        Ok(ctx)
    }
}

/// Registers the store of `url` in `ctx` under its scheme and bucket (DataFusion keys its
/// stores so), unless `stores` has it already; returns the URL without its query string
/// (the store's options), as the table's path. Two tables in one bucket must give the same
/// options: one store serves them both.
#[cfg(feature = "objectstore")]
fn register_store(
    ctx: &SessionContext,
    url: &str,
    stores: &mut Vec<(String, String)>,
) -> Result<String> {
    use crate::engine::objectstore_files::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};
    let invalid = |message: String| Error::InvalidOption {
        option: "table",
        message,
    };
    let mut bare = url::Url::parse(url)
        .map_err(|e| invalid(format!("{}: {e}", crate::config::redact_url(url))))?;
    let options = bare.query().unwrap_or_default().to_owned();
    bare.set_query(None);
    let mut root = bare.clone();
    root.set_path("");
    let bucket = root.to_string();
    match stores.iter().find(|(b, _)| *b == bucket) {
        Some((_, known)) if *known == options => return Ok(bare.to_string()),
        Some(_) => {
            return Err(invalid(format!(
                "two tables in {bucket} give different options: one store serves a bucket"
            )))
        }
        None => {}
    }
    let (store, _, _) =
        crate::engine::objectstore::open_store(url, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?;
    ctx.register_object_store(&root, store);
    stores.push((bucket, options));
    Ok(bare.to_string())
}

#[cfg(not(feature = "objectstore"))]
fn register_store(_: &SessionContext, _: &str, _: &mut Vec<(String, String)>) -> Result<String> {
    Err(super::location::not_compiled())
}
