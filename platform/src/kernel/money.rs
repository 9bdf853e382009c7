//! Money: integer cents in one currency.

use serde::{Deserialize, Serialize};

/// An amount of money in the smallest unit of the catalog's currency (cents). Integer, so
/// nothing is lost to floating point on its way to Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub u64);

/// ISO 4217 currency of every price in the catalog. One currency keeps the catalog simple;
/// Stripe prices are created in it.
pub const CURRENCY: &str = "usd";

/// `1234` cents -> `12.34 USD` (mails, logs).
pub fn format_amount(cents: i64, currency: Option<&str>) -> String {
    let currency = currency.unwrap_or(CURRENCY).to_uppercase();
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_with_two_decimals_and_the_currency() {
        assert_eq!(format_amount(1500, None), "15.00 USD");
        assert_eq!(format_amount(4905, Some("eur")), "49.05 EUR");
    }
}
