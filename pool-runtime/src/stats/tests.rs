//! Unit tests of `stats`.

use super::*;

fn sample() -> Stats {
    let mut meter = Meter::new(2);
    meter.sent(0, 100);
    meter.sent(0, 100);
    meter.sent(1, 50);
    meter.received(0, 40, 3);
    meter.busy(0, 3_000_000_000);
    meter.received(0, 40, 3);
    meter.busy(0, 3_000_000_000);
    meter.received(1, 20, 4);
    meter.busy(1, 2_000_000_000);
    meter.failed(Some(1));
    meter.failed(None);
    let mut stats = meter.snapshot(|w| (w + 1, "node7"));
    // A fixed wall time, for exact numbers.
    stats = Stats::from_rows(10.0, stats.workers, 1);
    stats
}

#[test]
fn totals_and_rates() {
    let s = sample();
    assert_eq!((s.tasks, s.failed, s.chunks), (10, 2, 3));
    assert_eq!((s.input_bytes, s.output_bytes), (250, 100));
    assert_eq!(s.workers[0].tasks + s.workers[1].tasks, s.tasks);
    assert_eq!((s.workers[0].rank, s.workers[1].failed), (1, 1));
    assert!((s.busy_s - 8.0).abs() < 1e-9);
    assert!((s.workers[0].idle_s - 4.0).abs() < 1e-9);
    assert!((s.idle_s - 12.0).abs() < 1e-9);
    assert!((s.efficiency - 0.4).abs() < 1e-9);
    // Busy 6 s and 2 s: mean 4 s, max 6 s.
    assert!((s.imbalance - 0.5).abs() < 1e-9);
}

#[test]
fn differences() {
    let s = sample();
    let zero = s.since(&s);
    assert_eq!((zero.tasks, zero.failed, zero.wall_s), (0, 0, 0.0));
    assert_eq!((zero.efficiency, zero.imbalance), (0.0, 0.0));
    let empty = Stats::from_rows(4.0, Vec::new(), 0);
    let mut earlier = Stats::from_rows(
        4.0,
        s.workers
            .iter()
            .map(|w| WorkerStats {
                tasks: 1,
                busy_s: 1.0,
                ..w.clone()
            })
            .collect(),
        0,
    );
    let d = s.since(&earlier);
    // The worker failure was already there; the master's is new.
    assert_eq!((d.tasks, d.failed), (8, 1));
    assert!((d.wall_s - 6.0).abs() < 1e-9);
    assert!((d.workers[0].busy_s - 5.0).abs() < 1e-9);
    assert!((d.workers[0].idle_s - 1.0).abs() < 1e-9);
    earlier.workers.clear();
    assert_eq!(s.since(&earlier).tasks, 10);
    assert_eq!(empty.to_json().matches("\"workers\": []").count(), 1);
}

#[test]
fn table() {
    let table = sample().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(
        lines[0].contains("rank") && lines[0].contains("received"),
        "{table}"
    );
    assert!(lines[1].trim_start().starts_with("1  node7"), "{table}");
    assert!(
        lines[1].contains("6.000") && lines[1].contains("60.0%"),
        "{table}"
    );
    assert!(lines[3].trim_start().starts_with("total"), "{table}");
    assert!(
        lines[3].contains("250 B") && lines[3].contains("100 B"),
        "{table}"
    );
    assert_eq!(lines[4], "2 workers, 10.000 s wall, 1 tasks/s", "{table}");
    assert_eq!(
        lines[5],
        "efficiency 40.0% (busy / workers × wall), load imbalance 50.0% (busiest / mean \
         busy − 1)",
        "{table}"
    );
}

#[test]
fn json() {
    let back: Stats = serde_json::from_str(&sample().to_json()).expect("reads back");
    assert_eq!(back, sample());
    let json: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("JSON");
    assert_eq!(json["tasks"], 10);
    assert_eq!(json["workers"][1]["host"], "node7");
    assert_eq!(json["workers"][1]["failed"], 1);
    assert_eq!(json["workers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn units() {
    assert_eq!(bytes(999), "999 B");
    assert_eq!(bytes(1_234_567), "1.2 MB");
    assert_eq!(bytes(5_000_000_000), "5.0 GB");
    assert_eq!(si(12.4), "12");
    assert_eq!(si(123_456.0), "123.5 k");
    assert_eq!(percent(1.0, 0.0), "-");
}
