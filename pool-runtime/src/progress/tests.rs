//! Unit tests of the progress display.

use super::*;

#[test]
fn lines_thin_out() {
    let s = Duration::from_secs;
    assert_eq!(line_every(s(1)), s(5));
    assert_eq!(line_every(s(120)), s(12));
    assert_eq!(line_every(s(600)), s(60));
    assert_eq!(line_every(s(100_000)), s(300));
}

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

/// A terminal that records what is drawn on it.
#[derive(Clone, Debug, Default)]
struct Screen(std::sync::Arc<Mutex<String>>);

impl Screen {
    fn put(&self, s: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push_str(s);
        Ok(())
    }
}

impl TermLike for Screen {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("<up {n}>"))
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("<down {n}>"))
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.put("<clear>")
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn bars_share_the_programs_multi_progress() {
    let screen = Screen::default();
    let multi =
        MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(screen.clone())));
    let mine = multi.add(ProgressBar::new(10));
    mine.set_style(ProgressStyle::with_template("mine {pos}/{len}").unwrap());
    mine.inc(3);
    let mut progress = Progress::start_on("app::f", Some(5), Some(true), None, || {
        Some(Target::Multi(multi.clone()))
    });
    assert!(matches!(
        progress.0.as_ref().map(|shown| &shown.out),
        Some(Out::InMulti(..))
    ));
    progress.done(5);
    progress.finish();
    mine.inc(1);
    mine.finish();
    let screen = screen.0.lock().unwrap().clone();
    // Both drawn by the one MultiProgress, which moves the cursor back over the lines it
    // drew: the last frame holds both bars, pool's finished.
    let last = screen.rsplit("<up 1>").next().unwrap();
    assert!(last.contains("pool: app::f"), "{screen:?}");
    assert!(last.contains("5/5"), "{screen:?}");
    assert!(last.contains("mine 10/10"), "{screen:?}");
    // No line of its own after pool's bar: the multi owns the lines.
    assert!(!screen.contains("\n\n"), "{screen:?}");
}

#[test]
fn a_hidden_multi_progress_means_no_terminal() {
    // POOL_PROGRESS=1 without a terminal: plain lines, as before.
    let progress = Progress::start_on("app::f", Some(5), None, Some("1"), || None);
    assert!(matches!(
        progress.0.as_ref().map(|shown| &shown.out),
        Some(Out::Lines { .. })
    ));
    let progress = Progress::start_on("app::f", Some(5), None, None, || None);
    assert!(progress.0.is_none());
}

#[test]
fn off_costs_nothing_and_counts_nothing() {
    let mut p = Progress(None);
    p.done(3);
    count_failure();
    p.tick();
    p.finish();
    assert!(p.0.is_none());
}
