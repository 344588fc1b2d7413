//! Integration tests: the real server on a random 127.0.0.1 port, a real SQLite file in a
//! temporary data dir, driven over HTTP (and, for `browser`, through headless Chromium).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod api;
mod auth;
mod authorship;
mod backup;
mod badges;
mod browser;
mod chain;
mod chart;
mod cli;
mod course200;
mod courses;
mod credentials;
mod dashboard;
mod demo;
mod designs;
mod errors;
mod feeds;
mod feedserver;
mod harvest;
mod health;
mod helpers;
mod hostile;
mod import;
mod institution;
mod join;
mod layout;
mod learners;
mod logs;
mod mail;
mod metrics;
mod newsletter;
mod notify;
mod oidc;
mod pagecheck;
mod pages;
mod peers;
mod portfolio;
mod reader;
mod roster;
mod serving;
mod smtp;
mod team;
mod walk;
mod webmention;
