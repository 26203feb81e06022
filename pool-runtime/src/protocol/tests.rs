//! Unit tests of `protocol`.

use super::*;

fn task_frame(items: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::new();
    begin_task_frame(&mut buf, 7, 0xfeed, 40);
    for item in items {
        push_item::<()>(&mut buf, |b| {
            b.extend_from_slice(item);
            Ok(())
        })
        .unwrap();
    }
    finish_task_frame(&mut buf, items.len() as u32);
    buf
}

#[test]
fn tags_are_small_and_round_trip() {
    for tag in [Tag::Hello, Tag::Task, Tag::Result, Tag::Stop, Tag::Bye] {
        assert_eq!(Tag::from_raw(tag as i32), Some(tag));
        assert!((tag as i32) < 32_767);
    }
    assert_eq!(Tag::from_raw(0), None);
    assert_eq!(Tag::from_raw(99), None);
}

#[test]
fn task_frame_round_trip() {
    let buf = task_frame(&[b"abc", b"", b"xy"]);
    let frame = TaskFrame::decode(&buf).unwrap();
    assert_eq!(
        frame.header,
        TaskHeader {
            job: 7,
            task: 0xfeed,
            first: 40,
            count: 3
        }
    );
    let items: Vec<&[u8]> = frame.items().collect();
    assert_eq!(items, vec![&b"abc"[..], b"", b"xy"]);
    assert_eq!(peek_task_header(&buf), Some(frame.header));
}

/// An item of 4 GiB or more says so with the length `u32::MAX` and a `u64` length after it.
#[test]
fn long_lengths_are_escaped() {
    let mut frame = Vec::new();
    begin_task_frame(&mut frame, 1, 2, 3);
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    frame.extend_from_slice(&3u64.to_le_bytes());
    frame.extend_from_slice(&[7, 8, 9]);
    finish_task_frame(&mut frame, 1);
    let task = TaskFrame::decode(&frame).unwrap();
    assert_eq!(task.items().collect::<Vec<_>>(), [&[7u8, 8, 9][..]]);
    // An escaped length that claims more than there is is refused like any other.
    let len = frame.len();
    frame[len - 11..len - 3].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(TaskFrame::decode(&frame).is_err());
}

#[test]
fn failed_push_leaves_frame_unchanged() {
    let mut buf = task_frame(&[b"abc"]);
    let before = buf.clone();
    let err = push_item(&mut buf, |b| {
        b.extend_from_slice(b"partial");
        Err("no")
    });
    assert_eq!(err, Err("no"));
    assert_eq!(buf, before);
}

#[test]
fn task_frame_rejects_truncation_and_lies() {
    let good = task_frame(&[b"abc", b"def"]);
    for cut in 0..good.len() {
        assert!(TaskFrame::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A count larger than the items present.
    let mut lying = good.clone();
    finish_task_frame(&mut lying, 3);
    let err = TaskFrame::decode(&lying).unwrap_err();
    assert!(err.0.contains("TASK frame: item needs 4 bytes"), "{err}");
    // Trailing garbage.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        TaskFrame::decode(&trailing).unwrap_err().0,
        "TASK frame: 1 unexpected trailing bytes"
    );
    // A huge declared item length is an error, not an allocation.
    let mut huge = Vec::new();
    begin_task_frame(&mut huge, 1, 2, 3);
    finish_task_frame(&mut huge, 1);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = TaskFrame::decode(&huge).unwrap_err();
    assert_eq!(
        err.0,
        "TASK frame: item needs 4294967295 bytes at offset 28 but only 0 remain"
    );
}

fn result_frame() -> Vec<u8> {
    let mut buf = Vec::new();
    begin_result_frame(&mut buf, 3, 100);
    push_outcome::<()>(&mut buf, Status::Ok, |b| {
        b.extend_from_slice(&[1, 2, 3]);
        Ok(())
    })
    .unwrap();
    push_message(&mut buf, Status::Panicked, "boom");
    finish_result_frame(&mut buf, 2, 12345);
    buf
}

#[test]
fn result_frame_round_trip() {
    let buf = result_frame();
    let frame = ResultFrame::decode(&buf).unwrap();
    assert_eq!(
        frame.header,
        ResultHeader {
            job: 3,
            first: 100,
            count: 2,
            busy_ns: 12345
        }
    );
    let mut outcomes = Outcomes::new(&frame.header);
    assert_eq!(outcomes.next(&buf), Some((Status::Ok, &[1u8, 2, 3][..])));
    assert_eq!(outcomes.next(&buf), Some((Status::Panicked, &b"boom"[..])));
    assert_eq!(outcomes.next(&buf), None);
}

#[test]
fn a_cut_header_names_the_field_it_cuts() {
    // Headers are read at fixed offsets when whole; a cut one still says which field is short.
    let task = task_frame(&[b"abc"]);
    assert_eq!(
        TaskFrame::decode(&task[..15]).unwrap_err().0,
        "TASK frame: first index needs 8 bytes at offset 12 but only 3 remain"
    );
    assert_eq!(peek_task_header(&task[..23]), None);
    assert_eq!(
        peek_task_header(&task).map(|h| (h.job, h.first, h.count)),
        Some((7, 40, 1))
    );
    let result = result_frame();
    assert_eq!(
        ResultFrame::decode(&result[..17]).unwrap_err().0,
        "RESULT frame: busy time needs 8 bytes at offset 16 but only 1 remain"
    );
}

#[test]
fn result_frame_rejects_bad_status_and_truncation() {
    let good = result_frame();
    for cut in 0..good.len() {
        assert!(ResultFrame::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = good.clone();
    bad[RESULT_HEADER_LEN] = 77;
    assert_eq!(
        ResultFrame::decode(&bad).unwrap_err().0,
        "RESULT frame: item 0 has unknown status 77"
    );
    let mut not_utf8 = Vec::new();
    begin_result_frame(&mut not_utf8, 0, 0);
    push_outcome::<()>(&mut not_utf8, Status::Failed, |b| {
        b.push(0xff);
        Ok(())
    })
    .unwrap();
    finish_result_frame(&mut not_utf8, 1, 0);
    assert!(ResultFrame::decode(&not_utf8).is_err());
}

#[test]
fn hello_round_trip_and_version_check() {
    let hello = Hello {
        version: VERSION,
        fingerprint: 42,
        pid: 9,
        host: "node1".into(),
        tasks: vec!["a::f".into(), "b::g".into()],
    };
    let bytes = hello.encode();
    assert_eq!(Hello::decode(&bytes).unwrap(), hello);
    for cut in 0..bytes.len() {
        assert!(Hello::decode(&bytes[..cut]).is_err());
    }
    let mut old = hello.clone();
    old.version = 0;
    let err = Hello::decode(&old.encode()).unwrap_err();
    assert!(err.0.contains("protocol version 0"), "{err}");
    // A huge declared task count with no names behind it fails fast.
    let mut huge = hello.encode();
    let at = 4 + 8 + 4 + 4 + 5;
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Hello::decode(&huge).is_err());
}

#[test]
fn stop_round_trip() {
    assert_eq!(decode_stop(&encode_stop(-3)), Ok(-3));
    assert!(decode_stop(&[1, 2]).is_err());
    assert!(decode_stop(&[0, 0, 0, 0, 0]).is_err());
}

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

/// A received part of `bytes` at offset `at` of the in-band bytes.
fn part(at: usize, bytes: &[u8]) -> Part {
    let mut buf = crate::frame::Buffer::with_capacity(1, bytes.len());
    // SAFETY: the buffer has room for `bytes`, written before its length is set.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.as_mut_ptr(), bytes.len());
        buf.set_len_bytes(bytes.len());
    }
    Part {
        at,
        len: bytes.len(),
        data: crate::frame::Data::Received(buf),
    }
}

/// Items and outcomes whose ends are out-of-band parts read as if the parts' bytes were in
/// place; a part that does not end its item, or lies outside every item, is refused.
#[test]
fn parts_end_their_items() {
    let mut buf = Vec::new();
    begin_task_frame(&mut buf, 7, 0xfeed, 40);
    push_item::<()>(&mut buf, |b| {
        b.extend_from_slice(b"ab");
        Ok(())
    })
    .unwrap();
    let at = push_parted_item(&mut buf, &[5], 4);
    push_item::<()>(&mut buf, |b| {
        b.push(9);
        Ok(())
    })
    .unwrap();
    finish_task_frame(&mut buf, 3);
    let parts = [part(at, b"wxyz")];
    let task = TaskFrame::decode_parts(&buf, &parts).unwrap();
    let items: Vec<_> = task.parted_items().collect();
    assert_eq!(
        items,
        [
            (&b"ab"[..], None),
            (&[5u8][..], Some(0)),
            (&[9u8][..], None)
        ]
    );
    // Flattened, it is the same frame without parts.
    let flat = crate::frame::flatten(&buf, &parts);
    let whole: Vec<&[u8]> = TaskFrame::decode(&flat).unwrap().items().collect();
    assert_eq!(
        whole,
        [&b"ab"[..], &[5, b'w', b'x', b'y', b'z'][..], &[9][..]]
    );
    // Without its part, the item is short; with a part one byte too long, it does not end
    // the item; a part after the last item, or in the header, belongs to none.
    assert!(TaskFrame::decode(&buf).is_err());
    assert!(TaskFrame::decode_parts(&buf, &[part(at, b"wxyz!")]).is_err());
    assert!(TaskFrame::decode_parts(&flat, &[part(flat.len(), b"!")]).is_err());
    let err = TaskFrame::decode_parts(&flat, &[part(3, b"!")]).unwrap_err();
    assert!(err.0.contains("belongs to no item"), "{err}");

    let mut result = Vec::new();
    begin_result_frame(&mut result, 7, 40);
    push_message(&mut result, Status::Failed, "no");
    push_outcome::<()>(&mut result, Status::Ok, |b| {
        b.push(3);
        Ok(())
    })
    .unwrap();
    let at = result.len();
    // The outcome's length counts its part.
    let len_at = result.len() - 5;
    result[len_at..len_at + 4].copy_from_slice(&(1u32 + 3).to_le_bytes());
    finish_result_frame(&mut result, 2, 1);
    let parts = [part(at, b"xyz")];
    let frame = ResultFrame::decode_parts(&result, &parts).unwrap();
    let mut outcomes = Outcomes::new(&frame.header);
    assert_eq!(
        outcomes.next_parted(&result, &parts),
        Some((Status::Failed, &b"no"[..], None))
    );
    assert_eq!(
        outcomes.next_parted(&result, &parts),
        Some((Status::Ok, &[3u8][..], Some(0)))
    );
    assert_eq!(outcomes.next_parted(&result, &parts), None);
    // A message is never out of band.
    let mut message = Vec::new();
    begin_result_frame(&mut message, 7, 40);
    push_message(&mut message, Status::Failed, "n");
    finish_result_frame(&mut message, 1, 1);
    let at = message.len() - 1;
    message.truncate(at);
    assert!(ResultFrame::decode_parts(&message, &[part(at, b"n")]).is_err());
}
