//! String forms of the licensing enums exactly as the VSPC 3.6.1 contract spells them.
//!
//! The domain does not depend on serde: the HTTP layer owns the JSON shapes and calls
//! `as_wire` / `from_wire` at the edge. Matching is exact and case-sensitive, because the
//! contract's enums are, and a lenient parser here would accept values real clients never send.

use thiserror::Error;

/// A string that is not one of the contract's spellings for the named enum.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{value}' is not a valid {kind}")]
pub struct WireError {
    /// Name of the enum that was being parsed (for example `LicenseType`).
    pub kind: &'static str,
    /// The rejected input, verbatim.
    pub value: String,
}

/// Declares a fieldless enum together with its contract spelling for every variant.
///
/// Generates `ALL`, `as_wire`, `from_wire`, `Display` (the wire form) and `FromStr`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The contract's spelling of this value.
            pub const fn as_wire(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// Parses the contract's spelling (exact, case-sensitive).
            pub fn from_wire(value: &str) -> Result<Self, $crate::wire::WireError> {
                match value {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err($crate::wire::WireError {
                        kind: stringify!($name),
                        value: value.to_owned(),
                    }),
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_wire())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::wire::WireError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::from_wire(value)
            }
        }
    };
}

pub(crate) use wire_enum;
