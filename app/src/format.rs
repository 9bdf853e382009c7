//! Formatting shared by pages.

/// `1500` -> `$15`, `1250` -> `$12.50`, `149000` -> `$1,490`.
pub fn usd(cents: u64) -> String {
    let dollars = cents / 100;
    let rest = cents % 100;
    let digits = dollars.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if rest == 0 {
        format!("${grouped}")
    } else {
        format!("${grouped}.{rest:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::usd;

    #[test]
    fn formats_dollars_and_cents() {
        assert_eq!(usd(0), "$0");
        assert_eq!(usd(1500), "$15");
        assert_eq!(usd(1250), "$12.50");
        assert_eq!(usd(1205), "$12.05");
        assert_eq!(usd(149_000), "$1,490");
        assert_eq!(usd(123_456_789), "$1,234,567.89");
    }
}
