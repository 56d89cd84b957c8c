//! RFC 3339 UTC times for the CLI's human-readable output (`ajwt audit
//! tail`, `ajwt keys list`): one days-to-civil-date conversion (H. Hinnant's
//! algorithm, proleptic Gregorian calendar).

/// `(year, month, day)` of `days` since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DDTHH:MM:SS` of Unix seconds.
fn date_time(secs: i64) -> String {
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// RFC 3339 UTC time of Unix milliseconds, with milliseconds.
pub fn from_ms(ms: i64) -> String {
    format!(
        "{}.{:03}Z",
        date_time(ms.div_euclid(1000)),
        ms.rem_euclid(1000)
    )
}

/// RFC 3339 UTC time of Unix seconds.
pub fn from_secs(secs: u64) -> String {
    format!("{}Z", date_time(i64::try_from(secs).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::{from_ms, from_secs};

    #[test]
    fn utc_formats_rfc3339_with_milliseconds() {
        assert_eq!(from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(from_ms(1_735_689_600_123), "2025-01-01T00:00:00.123Z");
        assert_eq!(from_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn utc_formats_rfc3339() {
        assert_eq!(from_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(from_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(from_secs(1_796_624_683), "2026-12-07T06:24:43Z");
        assert_eq!(from_secs(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
