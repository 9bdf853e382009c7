//! The server crate's integration tests, one module per area, in one test binary:
//! linking each area as its own binary (the whole dependency tree every time) took
//! most of a clean build's disk and a good part of its time on two cores.

mod billing;
mod cli;
mod http;
mod monitor;
mod provision_outage;
mod proxy;
mod proxy_sites;
mod robustness;
