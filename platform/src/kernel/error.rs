//! The domain's error: what went wrong, in words a user may read, plus the internal
//! failures they must not see. HTTP and UI layers map each variant to a status and a message.

use std::borrow::Cow;
use std::time::Duration;

/// The name of a form field an error is about: usually fixed (`"slug"`), sometimes made from
/// configuration (a template's setting).
pub type FieldName = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value the user typed is not acceptable; `field` names the form field.
    #[error("{message}")]
    Invalid { field: FieldName, message: String },
    /// Several fields of one form refused at once ([`FormCheck`]), each with its message.
    #[error("{}", .0.iter().map(|(_, message)| message.as_str()).collect::<Vec<_>>().join(" "))]
    InvalidFields(Vec<(FieldName, String)>),
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
    pub fn invalid(field: impl Into<FieldName>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The form field this error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
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

/// Checks every field of a form before answering, so a form shows all its mistakes at once
/// (each at its field) instead of one per attempt.
///
/// ```
/// # use platform::kernel::error::{Error, FormCheck};
/// let mut check = FormCheck::default();
/// let name = check.field(Err::<String, _>(Error::invalid("name", "Enter a name.")));
/// let slug = check.field(Err::<String, _>(Error::invalid("slug", "Too short.")));
/// let refused = check.finish(|| Some((name?, slug?))).unwrap_err();
/// assert!(matches!(refused, Error::InvalidFields(fields) if fields.len() == 2));
/// ```
#[derive(Debug, Default)]
pub struct FormCheck {
    refused: Vec<(FieldName, String)>,
    /// A failure that is about no field (kept, and answered first).
    other: Option<Error>,
}

impl FormCheck {
    /// The field's value, or `None` with its refusal kept for [`Self::finish`].
    pub fn field<T>(&mut self, checked: Result<T>) -> Option<T> {
        match checked {
            Ok(value) => Some(value),
            Err(Error::Invalid { field, message }) => {
                self.refused.push((field, message));
                None
            }
            Err(Error::InvalidFields(fields)) => {
                self.refused.extend(fields);
                None
            }
            Err(other) => {
                self.other.get_or_insert(other);
                None
            }
        }
    }

    /// Every refusal at once (one field's as [`Error::Invalid`], several as
    /// [`Error::InvalidFields`]), or what `build` makes of the checked values.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T> {
        if let Some(other) = self.other {
            return Err(other);
        }
        let mut refused = self.refused;
        match refused.len() {
            0 => build().ok_or_else(|| Error::Internal("a form check lost a refusal".to_owned())),
            1 => {
                let (field, message) = refused.remove(0);
                Err(Error::Invalid { field, message })
            }
            _ => Err(Error::InvalidFields(refused)),
        }
    }
}
