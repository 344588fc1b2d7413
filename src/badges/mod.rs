//! Badges: each Task's artwork, the Open Badges 2.0 documents, the Open Badges 3.0
//! credentials, baking, and awarding.

pub mod art;
pub mod award;
pub mod bake;
pub mod did;
pub mod ld;
pub mod ob;
pub mod vc;
pub mod verify;
