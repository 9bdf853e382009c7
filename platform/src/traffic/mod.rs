//! Tenant traffic: the proxy's route table and the usage it counts.

pub mod routes;
pub mod usage;
