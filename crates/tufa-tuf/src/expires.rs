//! `expires`: RFC 3339 in UTC, whole seconds, `Z` suffix — exactly `YYYY-MM-DDTHH:MM:SSZ`,
//! the format python-tuf writes and parses (`%Y-%m-%dT%H:%M:%SZ`).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

use crate::TufError;

/// Formats as `YYYY-MM-DDTHH:MM:SSZ`. Sub-second precision is dropped (python-tuf drops it
/// too); builders truncate before signing anyway.
pub fn format_expires(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`: no fractional seconds, no offsets other than `Z`,
/// no lowercase `t`/`z`, no missing zero padding.
pub fn parse_expires(s: &str) -> Result<Timestamp, TufError> {
    let bad = || TufError::InvalidExpires(s.chars().take(40).collect());
    let b = s.as_bytes();
    if b.len() != 20 {
        return Err(bad());
    }
    let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'Z',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> i32 {
        b[from..to]
            .iter()
            .fold(0i32, |acc, &c| acc * 10 + i32::from(c - b'0'))
    };
    let year = i16::try_from(num(0, 4)).map_err(|_| bad())?;
    let small = |from: usize| i8::try_from(num(from, from + 2)).map_err(|_| bad());
    let dt = DateTime::new(year, small(5)?, small(8)?, small(11)?, small(14)?, small(17)?, 0)
        .map_err(|_| bad())?;
    Offset::UTC.to_timestamp(dt).map_err(|_| bad())
}

/// Serde adapter: `#[serde(with = "crate::expires::serde_expires")]`.
pub(crate) mod serde_expires {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_expires(*ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_expires(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_whole_seconds() {
        let ts = parse_expires("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(ts.as_second(), 1_893_553_445);
        assert_eq!(format_expires(ts), "2030-01-02T03:04:05Z");
        assert_eq!(format_expires(Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn formatting_truncates_subseconds() {
        let ts = Timestamp::new(1_893_553_445, 999_999_999).unwrap();
        assert_eq!(format_expires(ts), "2030-01-02T03:04:05Z");
    }

    #[test]
    fn strict_parse() {
        for bad in [
            "2030-01-02T03:04:05.5Z",
            "2030-01-02T03:04:05.000Z",
            "2030-01-02T03:04:05+00:00",
            "2030-01-02 03:04:05Z",
            "2030-01-02t03:04:05z",
            "2030-1-02T03:04:05Z",
            "2030-13-02T03:04:05Z",
            "2030-02-30T03:04:05Z",
            "2030-01-02T24:00:00Z",
            "2030-01-02T23:59:60Z",
            "2030-01-02T03:04:05",
            "",
            "２030-01-02T03:04:05Z",
        ] {
            assert!(parse_expires(bad).is_err(), "{bad}");
        }
    }
}
