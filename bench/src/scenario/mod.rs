//! The scenarios of issues 5 and 20, each on a fresh server (or database) of its own.

pub mod baseline;
pub mod commands;
pub mod fanout;
pub mod rebuild;
pub mod replay;
pub mod soak;
