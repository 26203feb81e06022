//! Unit tests of `protocol` against bytes a peer could send: decoders never panic on
//! arbitrary input, and every frame of the regression corpus (`tests/corpus`) keeps its verdict.

use super::tests::task_frame;
use super::*;

#[test]
fn decoders_never_panic_on_arbitrary_bytes() {
    // A cheap deterministic fuzz: every decoder on many pseudo-random inputs.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for len in 0..200 {
        for _ in 0..50 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state & 0xff) as u8
                })
                .collect();
            let _ = Hello::decode(&bytes);
            let _ = decode_stop(&bytes);
            if let Ok(f) = TaskFrame::decode(&bytes) {
                assert_eq!(f.items().count(), f.header.count as usize);
            }
            if let Ok(f) = ResultFrame::decode(&bytes) {
                let mut o = Outcomes::new(&f.header);
                while o.next(&bytes).is_some() {}
                assert_eq!(o.remaining(), 0);
            }
        }
    }
}

/// Decodes `bytes` with every decoder; never panics, and what decodes is consistent.
/// Returns which decoders accepted the bytes.
fn decode_all(bytes: &[u8]) -> [bool; 5] {
    let hello = Hello::decode(bytes).is_ok();
    let stop = decode_stop(bytes).is_ok();
    let _ = peek_task_header(bytes);
    let task = match TaskFrame::decode(bytes) {
        Ok(f) => {
            assert_eq!(f.items().count(), f.header.count as usize);
            assert!(f.items().all(|item| item.len() <= bytes.len()));
            true
        }
        Err(e) => {
            assert!(e.0.starts_with("TASK frame"), "{e:?}");
            false
        }
    };
    let result = match ResultFrame::decode(bytes) {
        Ok(f) => {
            let mut o = Outcomes::new(&f.header);
            while o.next(bytes).is_some() {}
            assert_eq!(o.remaining(), 0);
            true
        }
        Err(_) => false,
    };
    let items = TaskFrame::decode(bytes).is_ok_and(|f| f.header.count > 0);
    [hello, stop, task, result, items]
}

/// Valid frames of every kind, to mutate.
fn seeds(items: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let mut result = Vec::new();
    begin_result_frame(&mut result, 1, 2);
    for item in items {
        push_outcome::<()>(&mut result, Status::Ok, |b| {
            b.extend_from_slice(item);
            Ok(())
        })
        .unwrap();
    }
    push_message(&mut result, Status::Failed, "no");
    finish_result_frame(&mut result, items.len() as u32 + 1, 99);
    let hello = Hello {
        version: VERSION,
        fingerprint: 5,
        pid: 6,
        host: "node".into(),
        tasks: vec!["a::b".into(), "c".into()],
    }
    .encode();
    vec![task_frame(&refs), result, hello, encode_stop(3)]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes: no decoder panics.
    #[test]
    fn fuzz_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        decode_all(&bytes);
    }

    /// Valid frames with bytes overwritten, cut, or extended: no decoder panics, and no
    /// length field drives an allocation (decoders slice the frame; they never allocate
    /// by a declared size).
    #[test]
    fn fuzz_mutated_frames(
        items in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20), 0..6),
        which in 0usize..4,
        edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..6),
        cut in proptest::prelude::any::<usize>(),
        huge in proptest::prelude::any::<bool>(),
    ) {
        let mut frame = seeds(&items)[which].clone();
        for (at, byte) in edits {
            if !frame.is_empty() {
                let at = at % frame.len();
                frame[at] = byte;
            }
        }
        if huge && frame.len() >= 4 {
            // A length field claiming ~4 GiB.
            let at = cut % (frame.len() - 3);
            frame[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        let keep = if frame.is_empty() { 0 } else { cut % (frame.len() + 1) };
        decode_all(&frame[..keep]);
        decode_all(&frame);
    }
}

/// The regression corpus: frames that once were, or could be, trouble. Files whose name
/// starts with `ok-` must decode as the kind their directory names; all others must be
/// refused by that decoder. Add a file here for every decoder bug found.
#[test]
fn regression_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seen = 0;
    for kind in ["hello", "stop", "task", "result"] {
        let dir = root.join(kind);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let accepted = decode_all(&bytes);
            let ok = match kind {
                "hello" => accepted[0],
                "stop" => accepted[1],
                "task" => accepted[2],
                _ => accepted[3],
            };
            let expect_ok = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ok-"));
            assert_eq!(ok, expect_ok, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 12, "corpus too small: {seen}");
}

/// Writes the corpus (run with `POOL_WRITE_CORPUS=1` to regenerate after a format change).
#[test]
fn write_corpus_when_asked() {
    if std::env::var_os("POOL_WRITE_CORPUS").is_none() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let items = vec![vec![1u8, 2, 3], vec![], vec![9; 10]];
    let [task, result, hello, stop] = <[Vec<u8>; 4]>::try_from(seeds(&items)).unwrap();
    let write = |kind: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(root.join(kind)).unwrap();
        std::fs::write(root.join(kind).join(name), bytes).unwrap();
    };
    let huge_at = |frame: &[u8], at: usize| {
        let mut f = frame.to_vec();
        f[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        f
    };
    for (kind, frame) in [
        ("task", &task),
        ("result", &result),
        ("hello", &hello),
        ("stop", &stop),
    ] {
        write(kind, "ok-valid.bin", frame);
        write(kind, "empty.bin", &[]);
        write(kind, "truncated-by-one.bin", &frame[..frame.len() - 1]);
    }
    // Item or outcome lengths that claim 4 GiB.
    write("task", "huge-item-length.bin", &huge_at(&task, 24));
    write("result", "huge-outcome-length.bin", &huge_at(&result, 25));
    // A count that promises more items than there are.
    let mut lying = task.clone();
    lying[20..24].copy_from_slice(&1000u32.to_le_bytes());
    write("task", "lying-count.bin", &lying);
    // A status byte no version ever used.
    let mut status = result.clone();
    status[24] = 0xee;
    write("result", "unknown-status.bin", &status);
    // A HELLO with a 4 GiB host name, and one from another protocol version.
    write("hello", "huge-host-length.bin", &huge_at(&hello, 16));
    let mut version = hello.clone();
    version[0] ^= 0xff;
    write("hello", "other-version.bin", &version);
    // Trailing garbage after a valid frame.
    let mut trailing = task.clone();
    trailing.extend_from_slice(b"junk");
    write("task", "trailing-bytes.bin", &trailing);
}
