//! Progress of `map` and `map_unordered` on the master's stderr.
//!
//! On a terminal: an `indicatif` bar with done/total, rate, ETA and failures so far. When stderr
//! is not a terminal (a batch job's log, a pipe), nothing, unless asked for with
//! `POOL_PROGRESS=1` or [`Options::progress`](crate::Options::progress): then one plain line
//! every few seconds and a last one at the end, which read well in a Slurm output file.
//!
//! The hot path only counts: the bar or line is updated at most every
//! [`UPDATE_EVERY`], and the clock is read only when the master looks for new results (at most
//! once per 64 results handed out), never per item.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar is updated at most this often.
const UPDATE_EVERY: Duration = Duration::from_millis(100);
/// Without a terminal, a line is printed at most this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// The progress display of one call; off unless wanted.
#[derive(Debug)]
pub(crate) struct Progress(Option<Box<Shown>>);

#[derive(Debug)]
struct Shown {
    task: &'static str,
    total: Option<u64>,
    done: u64,
    failed: u64,
    /// Failures last shown, so the bar's message changes only when they do.
    failed_shown: u64,
    started: Instant,
    updated: Instant,
    out: Out,
}

#[derive(Debug)]
enum Out {
    Bar(ProgressBar),
    Lines { printed: Instant },
}

/// Whether to show progress: as the call's option says; else as `POOL_PROGRESS` says (`1`,
/// `on`, `true`, `yes` / `0`, `off`, `false`, `no`); else when stderr is a terminal.
pub(crate) fn wanted(option: Option<bool>, env: Option<&str>, terminal: bool) -> bool {
    if let Some(on) = option {
        return on;
    }
    match env.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("1" | "on" | "true" | "yes") => true,
        Some("0" | "off" | "false" | "no") => false,
        _ => terminal,
    }
}

impl Progress {
    /// Starts the display of a call running `task` on `total` inputs (when known), if wanted.
    pub(crate) fn start(task: &'static str, total: Option<u64>, option: Option<bool>) -> Progress {
        let env = std::env::var("POOL_PROGRESS").ok();
        let terminal = std::io::stderr().is_terminal();
        if !wanted(option, env.as_deref(), terminal) {
            return Progress(None);
        }
        let now = Instant::now();
        let out = if terminal {
            Out::Bar(bar(task, total))
        } else {
            Out::Lines { printed: now }
        };
        Progress(Some(Box::new(Shown {
            task,
            total,
            done: 0,
            failed: 0,
            failed_shown: 0,
            started: now,
            updated: now,
            out,
        })))
    }

    /// One result was handed out.
    #[inline]
    pub(crate) fn item(&mut self, failed: bool) {
        if let Some(shown) = &mut self.0 {
            shown.done += 1;
            shown.failed += u64::from(failed);
        }
    }

    /// Updates the display if it is due; called when the master looks for new results.
    #[inline]
    pub(crate) fn tick(&mut self) {
        if let Some(shown) = &mut self.0 {
            if shown.updated.elapsed() >= UPDATE_EVERY {
                shown.update();
            }
        }
    }

    /// Shows the final state and ends the display.
    pub(crate) fn finish(&mut self) {
        if let Some(mut shown) = self.0.take() {
            shown.finish();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn bar(task: &'static str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "{prefix} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} {per_sec} ETA {eta} {msg}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{prefix} {elapsed_precise} {spinner} {human_pos} done {per_sec} {msg}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .expect("pool: the progress template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("pool: {task}"));
    bar.set_message("0 failed");
    // Redraws elapsed time and ETA while tasks take long to come back.
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

impl Shown {
    fn update(&mut self) {
        let now = Instant::now();
        self.updated = now;
        match &mut self.out {
            Out::Bar(bar) => {
                bar.set_position(self.done);
                if self.failed != self.failed_shown {
                    self.failed_shown = self.failed;
                    bar.set_message(format!("{} failed", self.failed));
                }
            }
            Out::Lines { printed } => {
                if now.duration_since(*printed) >= LINE_EVERY {
                    *printed = now;
                    eprintln!("{}", self.line(false));
                }
            }
        }
    }

    fn finish(&mut self) {
        match &self.out {
            Out::Bar(bar) => {
                bar.set_position(self.done);
                bar.set_message(format!("{} failed", self.failed));
                bar.finish();
            }
            Out::Lines { .. } => eprintln!("{}", self.line(true)),
        }
    }

    /// `pool: app::f: 5000/10000 done (50.0%), 1 failed, 1234 tasks/s, 4.1 s, ETA 4.1 s`, or
    /// at the end `pool: app::f: 10000/10000 done, 1 failed, in 8.2 s (1220 tasks/s)`.
    fn line(&self, last: bool) -> String {
        line(
            self.task,
            self.done,
            self.total,
            self.failed,
            self.started.elapsed(),
            last,
        )
    }
}

fn line(
    task: &str,
    done: u64,
    total: Option<u64>,
    failed: u64,
    elapsed: Duration,
    last: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let count = match total {
        Some(total) => format!("{done}/{total} done"),
        None => format!("{done} done"),
    };
    if last {
        return format!(
            "pool: {task}: {count}, {failed} failed, in {secs:.1} s ({rate:.0} tasks/s)"
        );
    }
    let mut line = format!("pool: {task}: {count}");
    if let Some(total) = total.filter(|&t| t > 0) {
        line.push_str(&format!(" ({:.1}%)", 100.0 * done as f64 / total as f64));
    }
    line.push_str(&format!(
        ", {failed} failed, {rate:.0} tasks/s, {secs:.1} s"
    ));
    if let Some(total) = total {
        if rate > 0.0 {
            let eta = total.saturating_sub(done) as f64 / rate;
            line.push_str(&format!(", ETA {eta:.1} s"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_it_shows() {
        // The option wins, then the variable, then the terminal.
        assert!(wanted(Some(true), Some("0"), false));
        assert!(!wanted(Some(false), Some("1"), true));
        assert!(wanted(None, Some("1"), false));
        assert!(wanted(None, Some(" YES "), false));
        assert!(!wanted(None, Some("0"), true));
        assert!(!wanted(None, Some("off"), true));
        assert!(wanted(None, None, true));
        assert!(!wanted(None, None, false));
        assert!(!wanted(None, Some("maybe"), false));
    }

    #[test]
    fn lines() {
        let l = line("app::f", 500, Some(1000), 2, Duration::from_secs(5), false);
        assert_eq!(
            l,
            "pool: app::f: 500/1000 done (50.0%), 2 failed, 100 tasks/s, 5.0 s, ETA 5.0 s"
        );
        let l = line("app::f", 500, None, 0, Duration::from_secs(5), false);
        assert_eq!(l, "pool: app::f: 500 done, 0 failed, 100 tasks/s, 5.0 s");
        let l = line("app::f", 1000, Some(1000), 0, Duration::from_secs(4), true);
        assert_eq!(
            l,
            "pool: app::f: 1000/1000 done, 0 failed, in 4.0 s (250 tasks/s)"
        );
        let l = line("app::f", 0, Some(0), 0, Duration::ZERO, false);
        assert_eq!(l, "pool: app::f: 0/0 done, 0 failed, 0 tasks/s, 0.0 s");
    }

    #[test]
    fn off_costs_nothing_and_counts_nothing() {
        let mut p = Progress(None);
        p.item(true);
        p.tick();
        p.finish();
        assert!(p.0.is_none());
    }
}
