//! Progress of `map` and `map_unordered` on the master's stderr.
//!
//! On a terminal: an `indicatif` bar with done/total, rate, ETA and failures so far. Under
//! `mpirun` or `srun`, the master's stderr is a pipe to the launcher even when the launcher runs
//! in a terminal; the bar is then drawn on the job's controlling terminal (`/dev/tty`) if it
//! has one, the way `ssh` asks for a password. When there is no terminal at all (a batch job, a
//! pipe), nothing, unless asked for with `POOL_PROGRESS=1` or
//! [`Options::progress`](crate::Options::progress): then a plain line every 5 s, less often as
//! the run goes on (once a minute after 10 minutes, at most every 5 minutes), and a last one at
//! the end, which read well in a Slurm output file.
//!
//! A program that draws its own `indicatif` bars gets the [`MultiProgress`] pool draws in
//! with [`progress_bars`] and adds its bars to it, so that the two do not overwrite each
//! other's lines; from then on, pool's bars are drawn in it (on the same terminal as before).
//!
//! The hot path does nothing more: results handed out are counted in batches when the master
//! looks for new ones (at least once per 64 results), failures where they are decoded (out of
//! the hot path); the clock is read then too, and the bar or line updated at most every
//! [`UPDATE_EVERY`]. Failures so far are those of every call of the pool while the display
//! runs (a `submit` waited in the middle of a `map_unordered` counts in its display).

use std::cell::Cell;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// A bar shown without being asked for stays on screen when its call ran this long.
const KEEP_AFTER: Duration = Duration::from_secs(1);
/// The bar is drawn at most this many times a second: drawing costs the terminal (and over
/// ssh, the network) more than it costs the master.
const DRAWS_PER_S: u8 = 5;
/// The bar is updated at most this often.
const UPDATE_EVERY: Duration = Duration::from_millis(200);
/// Without a terminal, lines are printed every [`LINE_EVERY`] at first, then every tenth of the
/// time elapsed (a line per minute after 10 minutes), at most [`LINE_EVERY_MAX`] apart: a log
/// of a long run stays short.
const LINE_EVERY: Duration = Duration::from_secs(5);
const LINE_EVERY_MAX: Duration = Duration::from_secs(300);

/// The gap between two lines after `elapsed`.
fn line_every(elapsed: Duration) -> Duration {
    (elapsed / 10).clamp(LINE_EVERY, LINE_EVERY_MAX)
}

thread_local! {
    /// Failed tasks decoded on this thread (the master's), ever: a display shows how many
    /// more there are than when it started, so the hot path never looks at an outcome.
    static FAILURES: Cell<u64> = const { Cell::new(0) };
}

/// One more task failed.
pub(crate) fn count_failure() {
    FAILURES.with(|f| f.set(f.get() + 1));
}

fn failures() -> u64 {
    FAILURES.with(Cell::get)
}

/// The bars of pool and of the program, once the program asked for them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// The [`MultiProgress`] that pool draws its progress bars in, for a program that shows
/// `indicatif` bars of its own while pool calls run: add them to it
/// (`progress_bars().add(ProgressBar::new(n))`), and pool's bars and yours share the
/// terminal instead of overwriting each other's lines.
///
/// The first call creates it, on the terminal pool would draw on: stderr when it is a
/// terminal, or, on the master under `mpirun` or `srun` (where stderr is a pipe), the job's
/// controlling terminal, so your bars show there too. With no terminal it is hidden, as are
/// the bars in it. From the first call on, pool's bars go into it; whether pool shows one
/// at all still follows `POOL_PROGRESS` and [`Options::progress`](crate::Options::progress)
/// (`POOL_PROGRESS=0` hides pool's bars, yours stay). Call it on the master (in `main`);
/// every call returns the same `MultiProgress` (a handle: clones draw together). It needs
/// `indicatif = "0.18"` in your `Cargo.toml`.
///
/// # Examples
///
/// ```no_run
/// use indicatif::ProgressBar;
/// use pool_runtime::prelude::*;
///
/// #[pool_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[pool_main]
/// fn main(pool: &mut Pool) -> Result<(), Error> {
///     let files = pool_runtime::progress_bars().add(ProgressBar::new(3));
///     for _ in 0..3 {
///         pool.map(square, 0..1_000_000)?; // pool's bar, above or below yours
///         files.inc(1);
///     }
///     files.finish();
///     Ok(())
/// }
/// ```
pub fn progress_bars() -> MultiProgress {
    BARS.get_or_init(|| match terminal() {
        Some((target, _)) => MultiProgress::with_draw_target(target),
        None => MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
    })
    .clone()
}

/// Where a bar is drawn.
enum Target {
    /// On its own: on stderr, or (`Some`) on the controlling terminal.
    Own(ProgressDrawTarget, Option<File>),
    /// In the program's [`progress_bars`].
    Multi(MultiProgress),
}

/// Where a bar would be drawn now: in [`progress_bars`] once the program asked for them
/// (nowhere if they are hidden), else on a terminal of its own.
fn target() -> Option<Target> {
    match BARS.get() {
        Some(multi) => (!multi.is_hidden()).then(|| Target::Multi(multi.clone())),
        None => terminal().map(|(target, tty)| Target::Own(target, tty)),
    }
}

/// The progress display of one call; off unless wanted.
#[derive(Debug)]
pub(crate) struct Progress(Option<Box<Shown>>);

#[derive(Debug)]
struct Shown {
    task: &'static str,
    total: Option<u64>,
    done: u64,
    failed: u64,
    /// [`failures`] when the display started.
    failed_before: u64,
    /// Shown because `POOL_PROGRESS` or the option asked for it; otherwise a bar shown only
    /// because there is a terminal disappears when its call was short, so that a loop of
    /// small calls does not fill the screen with finished bars.
    asked: bool,
    started: Instant,
    updated: Instant,
    out: Out,
}

#[derive(Debug)]
enum Out {
    /// A bar of its own, on stderr or (`Some`) on the controlling terminal.
    Bar(ProgressBar, Option<File>),
    /// A bar in the program's [`progress_bars`].
    InMulti(ProgressBar, MultiProgress),
    Lines {
        printed: Instant,
    },
}

/// Whether to show progress: as the call's option says; else as `POOL_PROGRESS` says (`1`,
/// `on`, `true`, `yes` / `0`, `off`, `false`, `no`); else when there is a terminal to show it.
pub(crate) fn wanted(option: Option<bool>, env: Option<&str>, terminal: bool) -> bool {
    if let Some(on) = option {
        return on;
    }
    crate::env::parse_switch(env).unwrap_or(terminal)
}

/// Where a bar can be drawn: stderr if it is a terminal; else, when an MPI launcher started
/// this process (its stderr is then a pipe to the launcher), the controlling terminal.
fn terminal() -> Option<(ProgressDrawTarget, Option<File>)> {
    if std::io::stderr().is_terminal() {
        return Some((ProgressDrawTarget::stderr_with_hz(DRAWS_PER_S), None));
    }
    let launched = [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "SLURM_STEP_ID",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if !launched {
        return None;
    }
    let tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .ok()?;
    if !tty.is_terminal() {
        return None;
    }
    let end = tty.try_clone().ok()?;
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(Tty(Mutex::new(tty))), DRAWS_PER_S);
    Some((target, Some(end)))
}

/// The controlling terminal, written with ANSI escapes.
#[derive(Debug)]
struct Tty(Mutex<File>);

impl Tty {
    fn put(&self, s: &str) -> std::io::Result<()> {
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(s.as_bytes())
    }

    /// Moves the cursor `n` cells in the ANSI direction `code` (`A` up, `B` down, `C`
    /// right, `D` left).
    fn move_cursor(&self, n: usize, code: char) -> std::io::Result<()> {
        if n == 0 {
            Ok(())
        } else {
            self.put(&format!("\x1b[{n}{code}"))
        }
    }
}

impl TermLike for Tty {
    fn width(&self) -> u16 {
        let file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a `winsize` into `size`, a valid one we own.
        let ok = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&*file),
                libc::TIOCGWINSZ,
                &mut size,
            )
        } == 0;
        if ok && size.ws_col > 0 {
            size.ws_col
        } else {
            80
        }
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.move_cursor(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.flush()
    }
}

impl Progress {
    /// Starts the display of a call running `task` on `total` inputs (when known), if wanted.
    pub(crate) fn start(task: &'static str, total: Option<u64>, option: Option<bool>) -> Progress {
        let env = crate::env::progress();
        Progress::start_on(task, total, option, env.as_deref(), target)
    }

    /// [`Progress::start`] with the value of `POOL_PROGRESS` and where a bar would go.
    fn start_on(
        task: &'static str,
        total: Option<u64>,
        option: Option<bool>,
        env: Option<&str>,
        target: impl FnOnce() -> Option<Target>,
    ) -> Progress {
        // Said no: don't even look for a terminal.
        if option == Some(false) || !wanted(option, env, true) {
            return Progress(None);
        }
        let target = target();
        if !wanted(option, env, target.is_some()) {
            return Progress(None);
        }
        let now = Instant::now();
        let out = match target {
            Some(Target::Own(target, tty)) => {
                let bar = bar(task, total);
                bar.set_draw_target(target);
                Out::Bar(bar, tty)
            }
            Some(Target::Multi(multi)) => Out::InMulti(multi.add(bar(task, total)), multi),
            None => Out::Lines { printed: now },
        };
        // Asked for by name (not only because there is a terminal): every call keeps its line.
        let asked = option == Some(true) || wanted(None, env, false);
        Progress(Some(Box::new(Shown {
            task,
            total,
            asked,
            done: 0,
            failed: 0,
            failed_before: failures(),
            started: now,
            updated: now,
            out,
        })))
    }

    /// `n` more results were handed out.
    #[inline]
    pub(crate) fn done(&mut self, n: u32) {
        if let Some(shown) = &mut self.0 {
            shown.done += u64::from(n);
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

/// A bar, hidden until it is given a place to draw (so its first frame is complete).
fn bar(task: &'static str, total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => {
            "{prefix} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} ETA {eta} {msg}"
        }
        None => "{prefix} {elapsed_precise} {spinner} {human_pos} done {msg}",
    };
    let style = ProgressStyle::with_template(template)
        .expect("pool: the progress template is valid")
        .progress_chars("=> ");
    let bar = ProgressBar::hidden()
        .with_style(style)
        .with_prefix(format!("pool: {task}"))
        .with_message(message(0, Duration::ZERO, 0));
    if let Some(total) = total {
        bar.set_length(total);
    }
    // Redraws elapsed time and ETA while tasks take long to come back.
    bar.enable_steady_tick(Duration::from_secs(1));
    bar
}

/// The bar's message: `1.2 k tasks/s, 3 failed`.
fn message(done: u64, elapsed: Duration, failed: u64) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    format!("{} tasks/s, {failed} failed", crate::stats::si(rate))
}

impl Shown {
    fn update(&mut self) {
        self.failed = failures() - self.failed_before;
        let now = Instant::now();
        self.updated = now;
        match &mut self.out {
            Out::Bar(bar, _) | Out::InMulti(bar, _) => {
                bar.set_position(self.done);
                bar.set_message(message(self.done, self.started.elapsed(), self.failed));
            }
            Out::Lines { printed } => {
                if now.duration_since(*printed) >= line_every(now - self.started) {
                    *printed = now;
                    eprintln!("{}", self.line(false));
                }
            }
        }
    }

    fn finish(&mut self) {
        self.failed = failures() - self.failed_before;
        let short = !self.asked && self.started.elapsed() < KEEP_AFTER;
        match &self.out {
            Out::Bar(bar, _) if short => {
                bar.finish_and_clear();
            }
            Out::InMulti(bar, multi) if short => {
                bar.finish_and_clear();
                multi.remove(bar);
            }
            // The program's bars go on below: the multi keeps the line.
            Out::InMulti(bar, _) => {
                bar.set_position(self.done);
                bar.set_message(message(self.done, self.started.elapsed(), self.failed));
                bar.finish();
            }
            Out::Bar(bar, tty) => {
                bar.set_position(self.done);
                bar.set_message(message(self.done, self.started.elapsed(), self.failed));
                bar.finish();
                // indicatif leaves the cursor after the bar: end its line.
                match tty {
                    Some(tty) => {
                        let _ = (&*tty).write_all(b"\n");
                    }
                    None => eprintln!(),
                }
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
mod tests;
