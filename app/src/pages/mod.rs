//! One module per page (or family of pages).

pub mod chrome;
pub mod dashboard;
pub mod landing;
pub mod not_found;
pub mod pricing;
