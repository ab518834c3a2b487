//! Progress bars on stderr (indicatif), drawn only for a person at a terminal.

use backup_core::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// [`Progress`] drawn with indicatif; hidden when stderr is not a terminal, with
/// `--no-progress`, or with `-q`.
pub struct BarProgress {
    visible: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    /// A reporter that draws only when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Self {
        Self {
            visible: enabled && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(total) => {
                let bar = ProgressBar::with_draw_target(Some(total), self.target());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar
            }
            None => {
                let bar = ProgressBar::with_draw_target(None, self.target());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                        .expect("valid template"),
                );
                bar
            }
        };
        bar.set_message(what.to_owned());
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(units);
        }
    }

    fn message(&self, text: &str) {
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
