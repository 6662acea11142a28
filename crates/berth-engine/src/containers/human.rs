//! Docker's human-readable durations ("Up 3 minutes", "Exited (0) 2 hours ago").

/// Like Docker's `units.HumanDuration`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    let m = s / 60;
    let h = m / 60;
    let d = h / 24;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if d < 14 {
        format!("{d} days")
    } else if d < 90 {
        format!("{} weeks", d / 7)
    } else if d < 730 {
        format!("{} months", d / 30)
    } else {
        format!("{} years", d / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn docker_wording() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(42), "42 seconds");
        assert_eq!(duration(60), "About a minute");
        assert_eq!(duration(180), "3 minutes");
        assert_eq!(duration(3600), "About an hour");
        assert_eq!(duration(5 * 3600), "5 hours");
        assert_eq!(duration(3 * 86400), "3 days");
        assert_eq!(duration(21 * 86400), "3 weeks");
        assert_eq!(duration(100 * 86400), "3 months");
        assert_eq!(duration(800 * 86400), "2 years");
    }
}
