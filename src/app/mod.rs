//! Use cases: the operations of Cairn (award, revoke, subscribe, import, trust a peer, …),
//! shared by the web handlers and the command line. Each takes what it needs (a connection or
//! pool, validated input, the time `now`) and returns a domain error, never an HTTP status;
//! `src/web/error.rs` turns errors into responses in one place.

pub mod access;
pub mod audit;
pub mod award;
pub mod backup;
pub mod courses;
pub mod credentials;
pub mod feeds;
pub mod health;
pub mod import;
pub mod institution;
pub mod instructors;
pub mod learners;
pub mod mentions;
pub mod newsletter;
pub mod peers;
pub mod reader;
pub mod roster;
pub mod sso;
pub mod staff;
pub mod subscribe;
pub mod tokens;
pub mod verification;
pub mod webhooks;
