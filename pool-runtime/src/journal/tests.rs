//! Unit tests of journals.

use super::*;
use crate::protocol;

fn frame(first: u64, outcomes: &[(Status, &[u8])]) -> (ResultHeader, Vec<u8>) {
    let mut buf = Vec::new();
    protocol::begin_result_frame(&mut buf, 0, first);
    for (status, bytes) in outcomes {
        if *status == Status::Ok {
            protocol::push_outcome::<()>(&mut buf, Status::Ok, |b| {
                b.extend_from_slice(bytes);
                Ok(())
            })
            .expect("push");
        } else {
            protocol::push_message(&mut buf, *status, "failed");
        }
    }
    protocol::finish_result_frame(&mut buf, outcomes.len() as u32, 0);
    let header = protocol::ResultFrame::decode(&buf).expect("valid").header;
    (header, buf)
}

fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "pool-journal-{}-{name}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

const PRINT: u64 = 0xfeed;

fn record(index: u64, status: Status, digest: u64, payload: &[u8]) -> Record {
    Record {
        index,
        status: status as u8,
        digest,
        payload: payload.to_vec(),
    }
}

#[test]
fn records_survive_reopening_and_torn_tails_are_dropped() {
    let path = temp("torn");
    let (mut journal, replayed) = Journal::open(&path, "t::f", PRINT, 10).expect("create");
    assert!(replayed.is_empty());
    let (h, f) = frame(
        0,
        &[
            (Status::Ok, b"a"),
            (Status::Failed, b""),
            (Status::Ok, b"cc"),
        ],
    );
    journal
        .append_frame(&h, &f, &[10, 11, 12], |_| true)
        .expect("append");
    let (h, f) = frame(5, &[(Status::Ok, b"dddd")]);
    journal
        .append_frame(&h, &f, &[15], |_| true)
        .expect("append");
    // An outcome that is not final (its item runs again) is not recorded.
    let (h, f) = frame(7, &[(Status::Panicked, b"")]);
    journal
        .append_frame(&h, &f, &[17], |i| i != 7)
        .expect("append");
    journal.flush().expect("flush");
    drop(journal);

    let (_, mut replayed) = Journal::open(&path, "t::f", PRINT, 10).expect("reopen");
    replayed.sort_by_key(|r| r.index);
    assert_eq!(
        replayed,
        vec![
            record(0, Status::Ok, 10, b"a"),
            record(1, Status::Failed, 11, b"failed"),
            record(2, Status::Ok, 12, b"cc"),
            record(5, Status::Ok, 15, b"dddd"),
        ]
    );

    // Cut the last record short: it is dropped, the others stay, the file is repaired.
    let full = std::fs::metadata(&path).expect("meta").len();
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(full - 3).expect("truncate");
    drop(file);
    let summary = inspect(&path).expect("inspect");
    assert_eq!((summary.done, summary.failed), (vec![0, 2], vec![1]));
    assert_eq!(summary.damaged_bytes, RECORD_OVERHEAD + 4 - 3);
    let (_, replayed) = Journal::open(&path, "t::f", PRINT, 10).expect("reopen torn");
    assert_eq!(replayed.len(), 3);
    assert_eq!(inspect(&path).expect("inspect").damaged_bytes, 0);

    // Garbage appended (a damaged record) is dropped the same way.
    let mut file = OpenOptions::new().append(true).open(&path).expect("open");
    file.write_all(&[7u8; 40]).expect("write");
    drop(file);
    let summary = inspect(&path).expect("inspect");
    assert_eq!((summary.done.len(), summary.damaged_bytes), (2, 40));
    std::fs::remove_file(&path).ok();
}

#[test]
fn digests_tell_arguments_apart() {
    assert_eq!(digest(b"seed 7"), digest(b"seed 7"));
    assert_ne!(digest(b"seed 7"), digest(b"seed 8"));
    assert_ne!(digest(b""), digest(b"\0"));
}

#[test]
fn a_journal_of_the_first_format_is_refused_with_its_version() {
    let path = temp("v1");
    let mut header = b"POOLJRNL".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&[0u8; 40]);
    std::fs::write(&path, header).expect("write");
    let e = Journal::open(&path, "t::f", PRINT, 10)
        .expect_err("version 1")
        .to_string();
    assert!(
        e.contains("format version 1; this pool reads version 2"),
        "{e}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn journals_for_another_task_or_input_count_are_refused() {
    let path = temp("refuse");
    drop(Journal::open(&path, "t::f", PRINT, 10).expect("create"));
    let e = Journal::open(&path, "t::g", PRINT, 10)
        .expect_err("other task")
        .to_string();
    assert!(
        e.contains(
            "written for task `t::f` over 10 inputs, but this map runs task `t::g` over 10 inputs"
        ),
        "{e}"
    );
    let e = Journal::open(&path, "t::f", PRINT, 11)
        .expect_err("other count")
        .to_string();
    assert!(e.contains("over 11 inputs"), "{e}");
    std::fs::write(&path, b"not a journal at all").expect("write");
    let e = Journal::open(&path, "t::f", PRINT, 10)
        .expect_err("garbage")
        .to_string();
    assert!(
        e.contains("it is not a pool journal (wrong magic bytes)"),
        "{e}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn huge_declared_lengths_do_not_allocate() {
    let path = temp("huge");
    drop(Journal::open(&path, "t::f", PRINT, 10).expect("create"));
    let mut file = OpenOptions::new().append(true).open(&path).expect("open");
    let mut record = u32::MAX.to_le_bytes().to_vec();
    record.extend_from_slice(&1u64.to_le_bytes());
    record.extend_from_slice(&[0u8; 9 + 8]);
    file.write_all(&record).expect("write");
    drop(file);
    let summary = inspect(&path).expect("inspect");
    assert_eq!((summary.done.len(), summary.damaged_bytes), (0, 29));
    std::fs::remove_file(&path).ok();
}
