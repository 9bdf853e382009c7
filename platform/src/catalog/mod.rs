//! What can be sold and run: the plan catalog and the templates sites are made from.
//! Plain values read from the settings; no I/O.

pub mod plans;
pub mod templates;

pub use plans::{Catalog, Feature, Limit, Limits, Plan, PlanId};
pub use templates::Template;
