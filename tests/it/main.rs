//! Every integration test, in one binary (one link of the whole tree per
//! change). Each module is one area; `common` is the harness.

mod common;

mod acs;
mod api;
mod attacks;
mod browser;
mod cli;
mod csv;
mod demo;
mod desk;
mod desk_candidates;
mod failure_page;
mod federation;
mod import_jobs;
mod logout;
mod mail;
mod review;
mod simplesamlphp;
mod sp_initiated;
mod subjects;
