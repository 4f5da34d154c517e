//! [`CutoffStore`](crate::CutoffStore) implementations shipped with the crate.

pub mod memory;
