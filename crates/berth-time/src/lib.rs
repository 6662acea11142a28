//! RFC 3339 timestamps, formatted and parsed without dependencies: the runtime's state, the
//! monitor's json-file logs and the daemon's API all speak this format, and the monitor must
//! stay tiny. Dates use Howard Hinnant's civil-from-days algorithms (proleptic Gregorian).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Day count since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `since_epoch` as RFC 3339 UTC with nanoseconds (`2024-05-01T12:34:56.123456789Z`).
pub fn format(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        since_epoch.subsec_nanos()
    )
}

/// Now, as RFC 3339 UTC with nanoseconds.
pub fn now() -> String {
    format(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// Seconds since the epoch of an RFC 3339 timestamp (`Z` or `±hh:mm`, optional fraction);
/// `None` if it is not one.
pub fn parse_unix(s: &str) -> Option<i64> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || !matches!(s.get(10..11)?, "T" | "t" | " ") {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(n..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format(Duration::ZERO), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format(Duration::new(1_709_210_096, 789)),
            "2024-02-29T12:34:56.000000789Z"
        );
        assert_eq!(now().len(), 30);
    }

    #[test]
    fn parses_and_round_trips() {
        assert_eq!(parse_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_unix("2024-02-29T12:34:56.789Z"), Some(1_709_210_096));
        assert_eq!(parse_unix("2024-02-29T14:34:56+02:00"), Some(1_709_210_096));
        assert_eq!(parse_unix("yesterday"), None);
        for secs in [0u64, 951_782_400, 1_709_210_096, 4_102_444_800] {
            assert_eq!(
                parse_unix(&format(Duration::from_secs(secs))),
                Some(secs as i64)
            );
        }
    }
}
