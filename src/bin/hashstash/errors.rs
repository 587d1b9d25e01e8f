//! What the command line fails with: the library's errors, and its own (arguments that are
//! not JSON, flags that do not go together), each with its own variant.

use hashstash::Error;

/// A failure of a `hashstash` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The stash, a query or a file failed: the library's error, as it is.
    #[error(transparent)]
    Stash(#[from] Error),
    /// A KEY or VALUE argument that is not JSON text.
    #[error("{argument} must be JSON text ({source}); a string needs quotes, e.g. '\"{hint}\"'")]
    NotJson {
        /// `KEY` or `VALUE`.
        argument: &'static str,
        /// The text without its quotes, for the hint.
        hint: String,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A flag or argument with a value it does not take, or flags that do not go together.
    #[error("invalid {argument}: {message}")]
    Usage {
        /// The flag or argument (`--format`, `DST`, ...).
        argument: &'static str,
        /// What is wrong and what to give instead.
        message: String,
    },
}

impl CliError {
    /// Whether this means "the key is not there" (exit code 1).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Stash(e) if e.is_not_found())
    }
}
