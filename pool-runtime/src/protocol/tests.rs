//! Unit tests of `protocol`.

use super::*;

pub(super) fn task_frame(items: &[&[u8]]) -> Vec<u8> {
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

pub(super) fn result_frame() -> Vec<u8> {
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
