//! Progress bars on standard error (indicatif), drawn only when it is a terminal: the
//! library reports progress to an observer (`hashstash::progress`) and draws nothing itself.

use hashstash::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::OnceLock;

/// A bar for the library's long operations (`copy`), made when the operation starts.
#[derive(Default)]
pub struct TerminalBar(OnceLock<ProgressBar>);

impl Progress for TerminalBar {
    fn start(&self, what: &str, total: u64, done: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg}: {percent:>3}% [{bar:30}] {pos}/{len} [{elapsed}<{eta}]",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar.set_position(done);
        let _ = self.0.set(bar);
    }

    fn advance(&self, steps: u64) {
        if let Some(bar) = self.0.get() {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.get() {
            bar.finish_and_clear();
        }
    }
}

/// A bar counting what the command line itself writes. `total`: how many items the run
/// will handle, if known.
#[cfg(feature = "sql")]
pub fn progress_bar(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::no_length(),
    };
    let template = match total {
        Some(_) => "{bar:40} {pos}/{len} {msg} ({per_sec}, {eta} left)",
        None => "{spinner} {pos} {msg} ({per_sec})",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}
