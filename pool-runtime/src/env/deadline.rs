//! `POOL_DEADLINE`: a deadline for the pool's `map` calls, as a time after the start or a time
//! of day.

use std::time::{Duration, SystemTime};

/// The environment variable with a deadline for the pool's `map` calls.
pub(crate) const DEADLINE_VAR: &str = "POOL_DEADLINE";

/// What `POOL_DEADLINE` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeadlineSpec {
    /// `off`: no deadline, not even Slurm's end time.
    Off,
    /// A time after the pool's start.
    After(Duration),
    /// A time of day (`@` Unix seconds, or RFC 3339 with its offset).
    At(SystemTime),
}

/// `POOL_DEADLINE`: `None` when it is not set (or empty), what it says, or what is wrong.
pub(crate) fn deadline() -> Result<Option<DeadlineSpec>, String> {
    parse_deadline(std::env::var(DEADLINE_VAR).ok().as_deref())
}

/// The forms `POOL_DEADLINE` accepts, for messages.
const DEADLINE_FORMS: &str = "seconds after the pool starts (5400, or with a unit: 90m, 1.5h), \
     a Unix time (@1767225600), a UTC or offset time (2026-01-01T00:00:00Z, \
     2026-01-01T01:00:00+01:00), or off";

fn parse_deadline(value: Option<&str>) -> Result<Option<DeadlineSpec>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let text = v.trim();
    let bad = |why: &str| format!("{DEADLINE_VAR}={v:?} {why}; use {DEADLINE_FORMS}");
    if matches!(text.to_ascii_lowercase().as_str(), "off" | "none" | "no") {
        return Ok(Some(DeadlineSpec::Off));
    }
    if let Some(unix) = text.strip_prefix('@') {
        let secs: f64 = unix.trim().parse().map_err(|_| bad("is not a Unix time"))?;
        let after = Duration::try_from_secs_f64(secs).map_err(|_| bad("is not a Unix time"))?;
        return SystemTime::UNIX_EPOCH
            .checked_add(after)
            .map(|t| Some(DeadlineSpec::At(t)))
            .ok_or_else(|| bad("is too far in the future"));
    }
    if text.contains('-') && text.contains(':') {
        return rfc3339(text)
            .map(|t| Some(DeadlineSpec::At(t)))
            .ok_or_else(|| bad("is not a time with its offset"));
    }
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => (&text[..at], text[at..].trim()),
        None => (text, "s"),
    };
    let secs: f64 = number.trim().parse().map_err(|_| bad("is not a time"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(bad("is not a time"));
    }
    let scale = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad("has an unknown unit (s, m, h or d)")),
    };
    if unit == "s" && secs >= 1e9 {
        return Err(format!(
            "{DEADLINE_VAR}={v:?} is more than 30 years after the start: to give a Unix time, \
             write {DEADLINE_VAR}=@{number}"
        ));
    }
    Duration::try_from_secs_f64(secs * scale)
        .map(|d| Some(DeadlineSpec::After(d)))
        .map_err(|_| bad("is too long a time"))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (a space for the `T` too): RFC 3339, whose offset
/// says which time zone; `None` when the text is not that.
fn rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let scaled = format!("{:0<9}", &frac[..digits.min(9)]);
        nanos = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_values() {
        use DeadlineSpec::{After, At, Off};
        let p = parse_deadline;
        let unix = |s: u64| At(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(p(None), Ok(None));
        assert_eq!(p(Some("")), Ok(None));
        assert_eq!(p(Some("off")), Ok(Some(Off)));
        assert_eq!(p(Some(" NONE ")), Ok(Some(Off)));
        assert_eq!(p(Some("5400")), Ok(Some(After(Duration::from_secs(5400)))));
        assert_eq!(p(Some("2.5")), Ok(Some(After(Duration::from_millis(2500)))));
        assert_eq!(p(Some("90m")), Ok(Some(After(Duration::from_secs(5400)))));
        assert_eq!(p(Some("1.5h")), Ok(Some(After(Duration::from_secs(5400)))));
        assert_eq!(
            p(Some("2 d")),
            Ok(Some(After(Duration::from_secs(172_800))))
        );
        assert_eq!(p(Some("@1767225600")), Ok(Some(unix(1_767_225_600))));
        assert_eq!(
            p(Some("2026-01-01T00:00:00Z")),
            Ok(Some(unix(1_767_225_600)))
        );
        assert_eq!(
            p(Some("2026-01-01 01:00:00+01:00")),
            Ok(Some(unix(1_767_225_600)))
        );
        assert_eq!(
            p(Some("2025-12-31T19:00:00-05:00")),
            Ok(Some(unix(1_767_225_600)))
        );
        assert_eq!(p(Some("1970-01-01T00:00:00Z")), Ok(Some(unix(0))));
        assert_eq!(p(Some("2000-02-29T12:00:00Z")), Ok(Some(unix(951_825_600))));
        assert_eq!(
            p(Some("2026-01-01T00:00:00.25Z")),
            Ok(Some(At(
                SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_225_600_250)
            )))
        );
        assert_eq!(
            p(Some("tomorrow")),
            Err(
                "POOL_DEADLINE=\"tomorrow\" is not a time; use seconds after the pool starts \
                 (5400, or with a unit: 90m, 1.5h), a Unix time (@1767225600), a UTC or offset \
                 time (2026-01-01T00:00:00Z, 2026-01-01T01:00:00+01:00), or off"
                    .to_owned()
            )
        );
        assert!(p(Some("10w")).unwrap_err().contains("has an unknown unit"));
        assert!(p(Some("-5")).unwrap_err().contains("is not a time"));
        assert!(p(Some("@x")).unwrap_err().contains("is not a Unix time"));
        // Local time without an offset: which zone is meant is not known.
        assert!(
            p(Some("2026-01-01T00:00:00"))
                .unwrap_err()
                .contains("is not a time with its offset")
        );
        assert!(p(Some("2026-13-01T00:00:00Z")).is_err());
        assert_eq!(
            p(Some("1767225600")),
            Err(
                "POOL_DEADLINE=\"1767225600\" is more than 30 years after the start: to give a \
                 Unix time, write POOL_DEADLINE=@1767225600"
                    .to_owned()
            )
        );
    }
}
