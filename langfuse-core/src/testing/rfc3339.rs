//! RFC 3339 timestamps, as Langfuse bodies and attributes carry them.
//!
//! A few dozen lines here avoid pulling a date-time crate into the SDK for the test server alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
///
/// Lenient where producers differ in harmless ways (lowercase `t`/`z`, a space instead of `T`,
/// more than nine fraction digits), strict on everything that would change the instant.
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // 60 admits a leap second; it lands on the next second like most parsers do.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let mut pos = 19;
    let mut nanos: u64 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if pos - start < 9 {
                nanos = nanos * 10 + u64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let count = pos - start;
        if count == 0 {
            return None;
        }
        for _ in count..9 {
            nanos *= 10;
        }
    }

    let offset_seconds: i64 = match b.get(pos)? {
        b'Z' | b'z' if pos + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let oh = digits(b, pos + 1, 2)?;
            let om = digits(b, pos + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let magnitude = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => return None,
    };

    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    let since_epoch = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(since_epoch + Duration::from_nanos(nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(since_epoch)?
            .checked_add(Duration::from_nanos(nanos))
    }
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let slice = b.get(start..start + len)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn parses_utc_with_and_without_fraction() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(parse("2024-01-02T03:04:05Z"), Some(at(1_704_164_645, 0)));
        assert_eq!(
            parse("2024-01-02T03:04:05.123Z"),
            Some(at(1_704_164_645, 123_000_000))
        );
        assert_eq!(
            parse("2024-01-02T03:04:05.123456789z"),
            Some(at(1_704_164_645, 123_456_789))
        );
        assert_eq!(
            parse("2024-01-02 03:04:05.1234567891Z"),
            Some(at(1_704_164_645, 123_456_789))
        );
    }

    #[test]
    fn applies_offsets() {
        assert_eq!(
            parse("2024-01-02T05:04:05+02:00"),
            Some(at(1_704_164_645, 0))
        );
        assert_eq!(
            parse("2024-01-01T22:34:05.5-04:30"),
            Some(at(1_704_164_645, 500_000_000))
        );
    }

    #[test]
    fn handles_leap_years_and_dates_before_the_epoch() {
        assert_eq!(parse("2024-02-29T00:00:00Z"), Some(at(1_709_164_800, 0)));
        assert_eq!(parse("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse("2000-02-29T00:00:00Z"), Some(at(951_782_400, 0)));
        assert_eq!(parse("1900-02-29T00:00:00Z"), None);
        assert_eq!(
            parse("1969-12-31T23:59:59.5Z"),
            UNIX_EPOCH.checked_sub(Duration::from_millis(500))
        );
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "",
            "2024-01-02",
            "2024-01-02T03:04:05",
            "2024-13-02T03:04:05Z",
            "2024-01-32T03:04:05Z",
            "2024-01-02T24:04:05Z",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+0200",
            "2024/01/02T03:04:05Z",
            "2024-01-02T03:04:05Zjunk",
            "２024-01-02T03:04:05Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} should not parse");
        }
    }
}
