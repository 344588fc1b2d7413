//! Badges: the artwork of each Task's badge. (Open Badges documents and baking build on this.)

pub mod art;
