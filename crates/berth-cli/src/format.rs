//! Output shapes shared by the commands, written to match the docker CLI's: human durations
//! (go-units `HumanDuration`), decimal sizes with 3 significant digits (`HumanSizeWithPrecision`),
//! ID and text truncation, Go-style quoting, and tab-aligned tables (Go's tabwriter with
//! minwidth 10 and padding 3, as `docker ps` uses).

use std::time::Duration;

/// docker's `units.HumanDuration`: "Less than a second", "1 second", "N seconds",
/// "About a minute", "N minutes", "About an hour", "N hours", "N days", "N weeks",
/// "N months", "N years".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour here (half away from zero).
    let hours = (seconds + 1800) / 3600;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "N seconds ago" for a unix timestamp, measured from `now` (unix seconds).
pub fn ago(created: i64, now: i64) -> String {
    let secs = u64::try_from(now.saturating_sub(created)).unwrap_or(0);
    format!("{} ago", human_duration(Duration::from_secs(secs)))
}

/// Seconds since the epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// go-units `CustomSize`: `size` divided by `base` until it is below it, shown with
/// `precision` significant digits and the unit reached.
fn custom_size(size: f64, precision: usize, base: f64, units: &[&str]) -> String {
    let (mut size, mut i) = (size, 0);
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), units[i])
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision(size, precision)`: decimal units.
pub fn decimal_size(size: f64, precision: usize) -> String {
    custom_size(size, precision, 1000.0, &DECIMAL)
}

/// docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits
/// ("1.18MB", "4.27kB", "512B").
pub fn human_size(bytes: i64) -> String {
    decimal_size(bytes as f64, 3)
}

/// go-units `HumanSize` (4 significant digits, decimal): "Total reclaimed space", `system df`,
/// the image list's virtual/shared sizes.
pub fn human_size4(n: f64) -> String {
    decimal_size(n, 4)
}

/// go-units `BytesSize` (4 significant digits, binary): `stats`' memory, `info`'s total memory.
pub fn bytes_size(n: f64) -> String {
    custom_size(n, 4, 1024.0, &BINARY)
}

/// Go's `%.{prec}g`: `prec` significant digits, trailing zeros dropped, exponent form when
/// the exponent is below -4 or at least `prec`.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Round to `prec` significant digits first: rounding can carry into a new digit.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A unix time as Go's RFC 3339 in UTC: `2024-05-01T12:34:56Z` (times before the epoch
/// show as the epoch).
pub fn rfc3339(unix: i64) -> String {
    let s = berth_time::format(std::time::Duration::from_secs(unix.max(0) as u64));
    format!("{}Z", &s[..19])
}

/// Go's `time.Time.String()` of an RFC 3339 UTC timestamp, fraction kept without trailing
/// zeros: `2024-01-01T00:00:00.120Z` → `2024-01-01 00:00:00.12 +0000 UTC`. Anything not in
/// UTC is returned as it is.
pub fn go_time_of(rfc3339: &str) -> String {
    let Some(z) = rfc3339.strip_suffix('Z') else {
        return rfc3339.to_string();
    };
    let (date, time) = z.split_once('T').unwrap_or((z, ""));
    let time = match time.split_once('.') {
        Some((hms, frac)) => {
            let f = frac.trim_end_matches('0');
            if f.is_empty() {
                hms.to_string()
            } else {
                format!("{hms}.{f}")
            }
        }
        None => time.to_string(),
    };
    format!("{date} {time} +0000 UTC")
}

/// Go's `time.Unix(t, 0).String()` in UTC: `2024-05-01 12:34:56 +0000 UTC`.
pub fn go_time(unix: i64) -> String {
    go_time_of(&rfc3339(unix))
}

/// Go's `json.Indent(dst, src, "", indent)`: strings kept as they are (key order and escapes
/// as the engine sent them), whitespace between tokens dropped, empty objects and arrays
/// stay `{}`/`[]`.
pub fn go_indent(src: &[u8], indent: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(src.len() * 2);
    let (mut depth, mut need, mut in_str, mut esc) = (0usize, false, false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(indent.as_bytes());
        }
    };
    for &b in src {
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        if need && b != b']' && b != b'}' {
            need = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match b {
            b'"' => {
                in_str = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                need = true;
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b'}' | b']' => {
                if need {
                    need = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A 64-hex ID (with or without `sha256:`) cut to docker's 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `Ellipsis`: `s` when it fits in `max` characters, else its first `max - 1`
/// characters and "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote` for the text docker shows (COMMAND column).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Rows aligned like Go's tabwriter with docker's settings (minwidth 10, padding 3): every
/// column but the last is padded to max(widest cell + 3, 10) characters (even when the
/// last cell is empty); the last is not padded. Widths count characters, so "…" is one.
pub fn table(rows: &[Vec<String>]) -> String {
    tabwriter(rows, 10, 3)
}

/// Go's tabwriter with `minwidth` and `padding`: every cell but a line's last is padded to
/// max(widest cell in its column + `padding`, `minwidth`).
pub fn tabwriter(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let width = (widths[i] + padding).max(minwidth);
                out.push_str(&" ".repeat(width - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(400)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(120)), "2 minutes");
        assert_eq!(human_duration(s(59 * 60 + 59)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(48 * 3600)), "2 days");
        assert_eq!(human_duration(s(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(s(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(s(2 * 365 * 24 * 3600)), "2 years");
        assert_eq!(ago(100, 105), "5 seconds ago");
        assert_eq!(ago(200, 100), "Less than a second ago");
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4270), "4.27kB");
        assert_eq!(human_size(1_180_000), "1.18MB");
        assert_eq!(human_size(1_184_000), "1.18MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(4_400_000), "4.4MB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(123_456_789_012), "123GB");
        // %.3g of 999.9 rounds to a fourth digit: Go prints the exponent form.
        assert_eq!(human_size(999_900), "1e+03kB");
    }

    #[test]
    fn ids_and_ellipsis() {
        let id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(short_id(id), "0123456789ab");
        assert_eq!(short_id(&id[7..]), "0123456789ab");
        assert_eq!(ellipsis("httpd -f -p 80 -h /", 20), "httpd -f -p 80 -h /");
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo'", 20),
            "sh -c 'sleep 1000; …"
        );
        assert_eq!(ellipsis("sh -c 'sleep 1000; echo'", 20).chars().count(), 20);
        assert_eq!(go_quote("sh -c \"x\"\n"), "\"sh -c \\\"x\\\"\\n\"");
    }

    #[test]
    fn table_like_tabwriter() {
        let rows = vec![
            vec!["CONTAINER ID".into(), "IMAGE".into(), "NAMES".into()],
            vec!["0123456789ab".into(), "busybox:latest".into(), "web".into()],
        ];
        assert_eq!(
            table(&rows),
            "CONTAINER ID   IMAGE            NAMES\n\
             0123456789ab   busybox:latest   web\n"
        );
        let header = vec![vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .into_iter()
        .map(String::from)
        .collect()];
        assert_eq!(
            table(&header),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
        // A cell before an empty last one is padded all the same, as tabwriter does.
        let rows = vec![vec!["a".into(), "".into()]];
        assert_eq!(table(&rows), "a         \n");
    }
    #[test]
    fn other_size_units() {
        assert_eq!(human_size4(0.0), "0B");
        assert_eq!(human_size4(4_276_123.0), "4.276MB");
        assert_eq!(human_size4(12_345.0), "12.35kB");
        assert_eq!(decimal_size(2048.0, 3), "2.05kB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(0.0), "0B");
        assert_eq!(bytes_size(8.0 * 1024.0 * 1024.0 * 1024.0), "8GiB");
    }

    #[test]
    fn times_like_go() {
        assert_eq!(go_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(go_time(951_782_400), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(rfc3339(86_400 + 61), "1970-01-02T00:01:01Z");
        assert_eq!(
            go_time_of("2024-01-02T03:04:05.120000000Z"),
            "2024-01-02 03:04:05.12 +0000 UTC"
        );
        assert_eq!(
            go_time_of("2024-01-02T03:04:05Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
    }

    #[test]
    fn indent_like_go() {
        assert_eq!(
            go_indent(br#"[{"a":1,"b":[],"c":{"d":"x:,{"},"e":[1,2]}]"#, "    "),
            "[\n    {\n        \"a\": 1,\n        \"b\": [],\n        \"c\": {\n            \"d\": \"x:,{\"\n        },\n        \"e\": [\n            1,\n            2\n        ]\n    }\n]"
        );
        assert_eq!(go_indent(b"[]", "    "), "[]");
        let raw = br#"{"A":1,"B":[],"C":{},"D":[1,{"E":"x, y: {z}"}],"F":null}"#;
        assert_eq!(
            go_indent(raw, "    "),
            "{\n    \"A\": 1,\n    \"B\": [],\n    \"C\": {},\n    \"D\": [\n        1,\n        {\n            \"E\": \"x, y: {z}\"\n        }\n    ],\n    \"F\": null\n}"
        );
        assert_eq!(go_indent(b" [ ] ", "  "), "[]");
    }
}
