//! jointure: the SAML front door of a school service and its admins'
//! resolution desk. `main.rs` parses the command line; everything else is
//! here so that tests drive the real thing. This file is the module list,
//! bottom layer first (README, "Design notes").

pub mod auth;
pub mod config;
pub mod csv_io;
pub mod demo;
pub mod feeds;
pub mod flow;
pub mod i18n;
pub mod mail;
pub mod resolve;
pub mod saml;
pub mod service;
pub mod startup;
pub mod store;
pub mod web;

pub use resolve::KnownIdps;
pub use service::{known_idps, Service, StartError};
pub use startup::Application;
