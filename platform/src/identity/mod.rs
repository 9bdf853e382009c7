//! Identity: people, their passwords, sign-up, sign-in and sessions, and the single-use
//! links mailed to them.

pub mod account;
pub mod sessions;
pub mod signup;
mod throttle;
pub mod tokens;
pub mod users;

pub use sessions::Session;
pub use users::{NewPassword, PersonName};
