//! Cairn: a web platform for connectivist MOOCs. Instructors lay out courses of modules
//! and tasks; learners' blog posts are harvested and recognised with Open Badges.

pub mod app;
pub mod auth;
pub mod badges;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod email;
pub mod error;
pub mod harvest;
pub mod jobs;
pub mod ledger;
pub mod markdown;
pub mod net;
pub mod notify;
pub mod opml;
pub mod peers;
pub mod startup;
pub mod web;
pub mod webmention;
