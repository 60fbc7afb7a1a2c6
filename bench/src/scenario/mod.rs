//! The scenarios of issues 5, 20 and 22, each on a fresh server (or database) of its own.

pub mod baseline;
pub mod board_as_of;
pub mod commands;
pub mod fanout;
pub mod rebuild;
pub mod replay;
pub mod soak;
