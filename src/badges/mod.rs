//! Badges: each Task's artwork, the Open Badges 2.0 documents, baking, and awarding.

pub mod art;
pub mod award;
pub mod bake;
pub mod ob;
