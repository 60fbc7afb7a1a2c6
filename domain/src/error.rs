//! Why a command was refused. Each variant maps onto one error class of the
//! wire contract, so the API can translate without knowing the rule behind it.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field's value breaks a rule (422 with `field`).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The target does not exist, or no longer does (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The actor may not do this (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The command conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}
