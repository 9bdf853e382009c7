//! States stored as text columns are Rust enums: [`text_enum!`] gives each its one spelling
//! (the same names as the column's `CHECK` constraint) and the way back from it.

/// An enum whose variants are stored as fixed words: `as_str`, `parse` (`None` for a word
/// it does not know), `ALL` and `Display`.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// A word read back from the database: one it does not know means the code
            /// and a migration disagree (an internal error, never the user's).
            pub fn stored(raw: &str) -> $crate::kernel::Result<Self> {
                Self::parse(raw).ok_or_else(|| {
                    $crate::kernel::Error::Internal(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        raw
                    ))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::text_enum! {
        /// A test enum.
        pub enum Light {
            Red => "red",
            /// Go.
            Green => "green",
        }
    }

    #[test]
    fn words_round_trip_and_unknown_words_are_refused() {
        for light in Light::ALL {
            assert_eq!(Light::parse(light.as_str()), Some(*light));
        }
        assert_eq!(Light::Green.to_string(), "green");
        assert_eq!(Light::parse("blue"), None);
        assert_eq!(serde_json::to_string(&Light::Red).unwrap(), "\"red\"");
        assert_eq!(Light::stored("red").unwrap(), Light::Red);
        assert_eq!(
            Light::stored("blue").unwrap_err().to_string(),
            "internal error: unknown Light \"blue\""
        );
    }
}
