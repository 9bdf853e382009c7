//! The domain's error: what went wrong, in words a user may read, plus the internal
//! failures they must not see. HTTP and UI layers map each variant to a status and a message.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value the user typed is not acceptable; `field` names the form field.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("An account with this email already exists. Sign in, or reset your password.")]
    EmailTaken,
    /// Deliberately the same for an unknown email and a wrong password.
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    /// Too many attempts of one kind; `what` says which ("Too many failed sign-ins.").
    #[error("{what} Try again in {} minutes.", retry_after.as_secs().div_ceil(60))]
    Throttled {
        what: &'static str,
        retry_after: Duration,
    },
    #[error("This link is not valid. Request a new one.")]
    TokenInvalid,
    #[error("This link has already been used.")]
    TokenUsed,
    /// A verification link opened again once its address was confirmed.
    #[error("This address is already confirmed: there is nothing more to do.")]
    EmailAlreadyConfirmed,
    #[error("This link has expired. Request a new one.")]
    TokenExpired,
    #[error("Your role does not allow this.")]
    Forbidden,
    /// An operator disabled the account; the reason is theirs.
    #[error("This account was disabled by the operators of this service: {0}")]
    AccountDisabled(String),
    #[error("Not found.")]
    NotFound,
    /// A plan limit; the message says how to get more.
    #[error("{0}")]
    LimitReached(String),
    /// The action would leave the data in a state we refuse (e.g. no owner left).
    #[error("{0}")]
    Conflict(String),
    /// A service Slipway depends on (Stripe) did not answer as it should; trying again
    /// later may work. The message is for users; details go to the log.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Whether the failure is ours (logged, hidden from users) rather than the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Database(_))
    }

    /// The name of the unique or check constraint a database error violated, if any.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Error::Database(sqlx::Error::Database(db)) => db.constraint(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
