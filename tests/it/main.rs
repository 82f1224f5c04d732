//! Every integration test, in one binary (one link of the whole tree per
//! change). Each module is one area; `common` is the harness.

mod common;

mod acs;
mod api;
mod attacks;
mod browser;
mod cli;
mod csv;
mod dashboard;
mod demo;
mod desk;
mod desk_candidates;
mod desk_list;
mod desk_undo;
mod failure_page;
mod faults;
mod federation;
mod flood;
mod fuzz;
mod import_jobs;
mod import_swap;
mod logout;
mod mail;
mod returning;
mod review;
mod simplesamlphp;
mod sp_initiated;
mod subjects;
