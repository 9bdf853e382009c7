//! Where customers get help: the operator's support address and documentation
//! (`[support]`), for the help page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportView {
    pub email: Option<String>,
    pub docs_url: Option<String>,
}

#[server(endpoint = "help/support")]
pub async fn support() -> Result<SupportView, AppError> {
    let state = crate::state::app_state()?;
    let support = &state.platform.support;
    Ok(SupportView {
        email: support.email.as_ref().map(|email| email.to_string()),
        docs_url: support.docs_url.as_ref().map(|url| url.to_string()),
    })
}
