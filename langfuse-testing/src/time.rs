//! Times as the Langfuse server handles them: milliseconds since the Unix epoch (its ClickHouse
//! columns keep milliseconds), zod's ISO date-time check for ingestion bodies, and the looser
//! `new Date(value)` the OTLP processor uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Milliseconds since the Unix epoch.
pub(crate) type Millis = i64;

pub(crate) fn to_system_time(ms: Millis) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

pub(crate) fn now_millis() -> Millis {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, JavaScript's `Date.prototype.toISOString`.
pub(crate) fn iso(ms: Millis) -> String {
    let days = ms.div_euclid(86_400_000);
    let of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

/// zod's `z.string().datetime({ offset: true })` (v4): `YYYY-MM-DDTHH:MM[:SS[.fraction]]`
/// followed by `Z` or `±HH:MM`; upper-case `T` and `Z`; any number of fraction digits. A value
/// without a time zone is invalid. The fraction is cut to milliseconds.
pub(crate) fn parse_zod_datetime(text: &str) -> Option<Millis> {
    let (local, offset_minutes) = if let Some(local) = text.strip_suffix('Z') {
        (local, 0)
    } else {
        let sign_at = text.len().checked_sub(6)?;
        let (local, offset) = text.split_at(sign_at);
        let b = offset.as_bytes();
        let sign = match b[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        if b[3] != b':' {
            return None;
        }
        let hours = digits(&offset[1..3])?;
        let minutes = digits(&offset[4..6])?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        (local, sign * (hours * 60 + minutes))
    };
    let (date, time) = local.split_once('T')?;
    let days = parse_date(date)?;
    let of_day = parse_time(time, true)?;
    Some(days * 86_400_000 + of_day - offset_minutes * 60_000)
}

/// What `new Date(value)` accepts among the forms an SDK would send: a number (epoch
/// milliseconds), an ISO date-time with or without a time zone, or a bare date. A time-zone-less
/// date-time is read as UTC here (JavaScript would use the server's zone, UTC in a container).
pub(crate) fn parse_js_date(value: &Value) -> Option<Millis> {
    match value {
        Value::Number(n) => {
            let ms = n.as_f64()?;
            // The cast is exact for every value a Date can hold (|ms| <= 8.64e15).
            #[allow(clippy::cast_possible_truncation)]
            (ms.is_finite() && ms.abs() <= 8.64e15).then(|| ms.trunc() as i64)
        }
        Value::String(text) => {
            let text = text.trim();
            if let Some(ms) = parse_zod_datetime(text) {
                return Some(ms);
            }
            match text.split_once('T') {
                None => parse_date(text).map(|days| days * 86_400_000),
                Some((date, time)) => {
                    let time = time.strip_suffix('Z').unwrap_or(time);
                    Some(parse_date(date)? * 86_400_000 + parse_time(time, true)?)
                }
            }
        }
        _ => None,
    }
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a valid `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (digits(year)?, digits(month)?, digits(day)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Milliseconds into the day of `HH:MM[:SS[.fraction]]`.
fn parse_time(text: &str, seconds_optional: bool) -> Option<i64> {
    let (clock, fraction) = match text.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (text, None),
    };
    let mut parts = clock.split(':');
    let hours = parts.next().filter(|p| p.len() == 2).and_then(digits)?;
    let minutes = parts.next().filter(|p| p.len() == 2).and_then(digits)?;
    let seconds = match parts.next() {
        Some(p) if p.len() == 2 => digits(p)?,
        None if seconds_optional && fraction.is_none() => 0,
        _ => return None,
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            digits(&padded[..3])?
        }
        Some(_) => return None,
    };
    Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zod_datetimes_need_a_zone_and_keep_milliseconds() {
        let base = parse_zod_datetime("2024-01-02T03:04:05Z").expect("valid");
        assert_eq!(iso(base), "2024-01-02T03:04:05.000Z");
        assert_eq!(
            parse_zod_datetime("2024-01-02T03:04:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(parse_zod_datetime("2024-01-02T04:04:05+01:00"), Some(base));
        assert_eq!(parse_zod_datetime("2024-01-02T03:04Z"), Some(base - 5000));
        for bad in [
            "2024-01-02T03:04:05",
            "2024-01-02 03:04:05Z",
            "2024-01-02t03:04:05z",
            "2024-02-30T03:04:05Z",
            "2024-01-02T03:04:05+0100",
            "soon",
        ] {
            assert_eq!(parse_zod_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn javascript_dates_accept_numbers_and_zone_less_values() {
        let base = parse_zod_datetime("2024-01-02T03:04:05Z").expect("valid");
        assert_eq!(parse_js_date(&json!(base)), Some(base));
        assert_eq!(parse_js_date(&json!("2024-01-02T03:04:05")), Some(base));
        assert_eq!(parse_js_date(&json!("not a date")), None);
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
    }
}
