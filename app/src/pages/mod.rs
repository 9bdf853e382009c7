//! One module per page (or family of pages).

pub mod admin;
pub mod admin_audit;
pub mod admin_incidents;
pub mod admin_jobs;
pub mod admin_organization;
pub mod admin_requests;
pub mod admin_site;
pub mod admin_sites;
pub mod admin_subscriptions;
pub mod admin_users;
pub mod auth;
pub mod billing;
pub mod chrome;
pub mod dashboard;
pub mod dev_mail;
pub mod forms;
pub mod health;
pub mod landing;
pub mod not_found;
pub mod overview;
pub mod pricing;
pub mod settings;
pub mod sites;
pub mod team;
pub mod usage;
