//! Formatting shared by pages.

/// `1500` -> `$15`, `1250` -> `$12.50`, `149000` -> `$1,490`.
pub fn usd(cents: u64) -> String {
    let grouped = count(cents / 100);
    let rest = cents % 100;
    if rest == 0 {
        format!("${grouped}")
    } else {
        format!("${grouped}.{rest:02}")
    }
}

/// [`usd`] of an amount that may be negative: `-1500` -> `−$15`.
pub fn usd_signed(cents: i64) -> String {
    let amount = usd(cents.unsigned_abs());
    if cents < 0 {
        format!("−{amount}")
    } else {
        amount
    }
}

/// `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A URL query from its non-empty parameters, percent-encoded: `[("q", "a b"), ("x", "")]`
/// -> `?q=a%20b` (empty when every value is).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut query = String::new();
    for (name, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(name);
        query.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                query.push(char::from(byte));
            } else {
                query.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    query
}

/// Sizes in binary units, named as the pricing page names them: `1536` -> `1.5 KB`,
/// `5 << 30` -> `5 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value >= 100.0 || value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A moment to the second, in UTC: `2026-11-30 08:40:12 UTC`.
#[cfg(feature = "ssr")]
pub fn utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_carry_any_text_and_leave_out_empty_values() {
        use super::query;
        assert_eq!(query(&[("q", ""), ("sort", "")]), "");
        assert_eq!(
            query(&[("q", "a b&c=d#é"), ("plan", ""), ("after", "x~1")]),
            "?q=a%20b%26c%3Dd%23%C3%A9&after=x~1"
        );
    }

    use super::{bytes, count, usd, usd_signed};

    #[test]
    fn formats_dollars_and_cents() {
        assert_eq!(usd(0), "$0");
        assert_eq!(usd(1500), "$15");
        assert_eq!(usd(1250), "$12.50");
        assert_eq!(usd(1205), "$12.05");
        assert_eq!(usd(149_000), "$1,490");
        assert_eq!(usd(123_456_789), "$1,234,567.89");
        assert_eq!(usd_signed(-1500), "−$15");
        assert_eq!(usd_signed(1250), "$12.50");
    }

    #[test]
    fn formats_counts_and_sizes() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(10_000_000), "10,000,000");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(5 << 30), "5 GB");
        assert_eq!(bytes(250 << 30), "250 GB");
        assert_eq!(bytes(3 * (1 << 20) + 400_000), "3.4 MB");
    }
}
