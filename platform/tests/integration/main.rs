//! The platform crate's integration tests, one module per area, in one test binary:
//! linking each area as its own binary (the whole dependency tree every time) took
//! most of a clean build's disk and a good part of its time on two cores.

mod accounts;
mod admin;
mod domains;
mod housekeeping;
mod jobs;
mod mail;
mod metrics;
mod monitor;
mod network;
mod operator_fleet;
mod operator_jobs;
mod operator_lists;
mod operator_orders;
mod plan_requests;
mod provision;
mod self_service;
mod site_settings;
mod tenancy;
