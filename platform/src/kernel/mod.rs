//! The leaf of the crate: the domain's error and the small value types every context
//! shares. Depends on nothing else in `platform`.

pub mod email;
pub mod error;
pub mod host;
pub mod money;
pub mod secrets;
pub mod states;
pub mod text;

pub use email::Email;
pub use error::{Error, Result};
pub use host::normalize_host;
