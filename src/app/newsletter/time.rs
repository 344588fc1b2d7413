//! A course's time zone and local dates.

use chrono::{Datelike as _, TimeZone as _, Timelike as _};

/// A course's time zone by IANA name.
pub fn parse_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| format!("'{}' is not a time zone like Europe/Paris", name.trim()))
}

/// The local date (`YYYY-MM-DD`) and hour at `now` in `zone` (UTC when the name is unknown).
pub fn local_day(zone: &str, now: i64) -> (String, u32) {
    let tz = parse_zone(zone).unwrap_or(chrono_tz::UTC);
    let utc = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().naive_utc();
    let t = tz.from_utc_datetime(&utc);
    (format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()), t.hour())
}

/// The local time of day (`HH:MM`) at `at` in `zone` (UTC when the name is unknown).
pub fn local_time(zone: &str, at: i64) -> String {
    let tz = parse_zone(zone).unwrap_or(chrono_tz::UTC);
    let utc = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default().naive_utc();
    let t = tz.from_utc_datetime(&utc);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A date as typed (`YYYY-MM-DD`), checked.
pub fn parse_date(raw: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("'{}' is not a date like 2026-12-01", raw.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_follow_the_course_time_zone() {
        // 2026-12-01 23:30 UTC is already the 2nd in Paris (UTC+1), still the 1st in New York.
        let t = 1_796_167_800;
        assert_eq!(local_day("UTC", t), ("2026-12-01".to_string(), 23));
        assert_eq!(local_day("Europe/Paris", t), ("2026-12-02".to_string(), 0));
        assert_eq!(local_day("America/New_York", t).0, "2026-12-01");
        assert_eq!((local_time("UTC", t), local_time("Europe/Paris", t)), ("23:30".into(), "00:30".into()));
        assert!(parse_zone("Mars/Olympus").is_err());
        assert_eq!(parse_date("2026-1-5").unwrap(), "2026-01-05");
        assert!(parse_date("yesterday").is_err());
    }
}
