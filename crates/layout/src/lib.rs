#![doc = include_str!("../README.md")]

mod config;
mod error;
mod gc;
mod listing;
mod publish;
mod sys;
mod version;

pub use config::{ModelsConfig, policy_from_proto, policy_to_proto};
pub use error::{Error, Result};
pub use gc::{
    GcOptions, GcReport, collect_garbage, leftover_age, leftover_in_use, remove_version_child,
};
pub use listing::{
    BaseListing, ChildKind, Duplicate, LeftoverChild, LeftoverKind, REMOVING_PREFIX,
    STAGING_PREFIX, VersionChild,
};
pub use publish::{
    NextVersion, OutsideLinks, PublishMode, Published, next_version, publish, publish_dir,
};
pub use version::{VersionPolicy, parse_version};
