//! The export's progress on stderr: the position reached against the head,
//! the rate, and the events written. indicatif draws nothing when stderr is
//! not a terminal (a pipe, a log file, a test).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ticketflow_store::{Bound, EventFilter};

pub struct Bar(ProgressBar);

impl Bar {
    /// A bar from 0 to the last position the export can reach.
    pub fn new(filter: &EventFilter, head: i64) -> Self {
        let end = match filter.until {
            Some(Bound::Position(until)) => until.min(head),
            _ => head,
        };
        let bar = ProgressBar::with_draw_target(
            Some(u64::try_from(end).unwrap_or(0)),
            ProgressDrawTarget::stderr(),
        );
        let template = "{elapsed_precise} [{wide_bar}] position {pos}/{len} ({per_sec}) {msg}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Self(bar)
    }

    pub fn advance(&self, position: i64, events: u64) {
        self.0.set_position(u64::try_from(position).unwrap_or(0));
        self.0.set_message(format!("{events} events"));
    }

    pub fn finish(&self, events: u64) {
        self.0.finish_with_message(format!("{events} events"));
    }
}
