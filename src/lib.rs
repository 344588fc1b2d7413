//! Cairn: a web platform for connectivist MOOCs. Instructors lay out courses of modules
//! and tasks; learners' blog posts are harvested and recognised with Open Badges.

// Parsing feeds and pages allocates many small strings on several threads at once; mimalloc
// serves them markedly faster than the system allocator. Declared in the library, so the
// server, the command line, the tests and the benchmarks all run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod badges;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod email;
pub mod harvest;
pub mod html;
pub mod jobs;
pub mod ledger;
pub mod markdown;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod opml;
pub mod peers;
pub mod startup;
pub mod tokens;
pub mod web;
pub mod webmention;
