//! Commands counted by kind and outcome (`ticketflow_commands_total`), where
//! they run, so both doors and every retry inside the runner count once.

use axum::http::StatusCode;

use crate::ApiError;

/// Every command run, by `type` (the command's kind) and `outcome`.
pub const COMMANDS: &str = "ticketflow_commands_total";

/// Counts one command of `kind` that ended with `result`.
pub(crate) fn count<T>(kind: &'static str, result: &Result<T, ApiError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => outcome(e),
    };
    metrics::counter!(COMMANDS, "type" => kind, "outcome" => outcome).increment(1);
}

/// What a refusal means to an operator: a client's conflict or bad input,
/// lost races (`contended`), or the server's own trouble.
fn outcome(e: &ApiError) -> &'static str {
    match (e.status, e.code) {
        (_, "contended") => "contended",
        (StatusCode::CONFLICT, _) => "conflict",
        (StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST, _) => "invalid",
        (StatusCode::FORBIDDEN, _) => "forbidden",
        (StatusCode::NOT_FOUND, _) => "not_found",
        (StatusCode::SERVICE_UNAVAILABLE, _) => "unavailable",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_their_outcome() {
        let contended = ApiError::new(StatusCode::CONFLICT, "contended", "retry");
        assert_eq!(outcome(&contended), "contended");
        assert_eq!(outcome(&ApiError::version_conflict(3)), "conflict");
        assert_eq!(outcome(&ApiError::invalid("title", "blank")), "invalid");
        assert_eq!(outcome(&ApiError::forbidden("no")), "forbidden");
        assert_eq!(outcome(&ApiError::not_found("ticket")), "not_found");
        let down = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
            "",
        );
        assert_eq!(outcome(&down), "unavailable");
        let broken = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "");
        assert_eq!(outcome(&broken), "error");
    }
}
