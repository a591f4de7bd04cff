//! Times as the Langfuse server handles them: milliseconds since the Unix epoch (its ClickHouse
//! columns keep milliseconds), zod's date-time check for ingestion bodies, and the looser
//! `new Date(value)` the OTLP processor uses. The calendar work is the core's RFC 3339 module.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe_core::timestamp::{parse_rfc3339, rfc3339};
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

/// `time` cut to the millisecond, as JavaScript's `Date` holds it.
fn millis_of(time: SystemTime) -> Millis {
    let ms = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => ms(after),
        Err(before) => {
            let before = before.duration();
            let whole = ms(before);
            // Toward negative infinity, as a Date of a pre-epoch instant would be.
            if before > Duration::from_millis(whole.unsigned_abs()) {
                -whole - 1
            } else {
                -whole
            }
        }
    }
}

pub(crate) fn now_millis() -> Millis {
    millis_of(SystemTime::now())
}

/// The instant as an RFC 3339 string in UTC, for the events the server makes itself.
pub(crate) fn iso(ms: Millis) -> String {
    rfc3339(to_system_time(ms))
}

/// zod's `z.string().datetime({ offset: true })`: a value without a time zone is invalid. The
/// fraction is cut to milliseconds.
pub(crate) fn parse_zod_datetime(text: &str) -> Option<Millis> {
    parse_rfc3339(text).map(millis_of)
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
            parse_zod_datetime(text)
                .or_else(|| parse_zod_datetime(&format!("{text}Z")))
                .or_else(|| parse_zod_datetime(&format!("{text}T00:00Z")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zod_datetimes_need_a_zone_and_keep_milliseconds() {
        let base = parse_zod_datetime("2024-01-02T03:04:05Z").expect("valid");
        assert_eq!(parse_zod_datetime(&iso(base)), Some(base));
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
        assert_eq!(
            parse_js_date(&json!("2024-01-02")),
            parse_zod_datetime("2024-01-02T00:00:00Z")
        );
        assert_eq!(parse_js_date(&json!("not a date")), None);
        assert_eq!(millis_of(UNIX_EPOCH - Duration::from_micros(1)), -1);
    }
}
