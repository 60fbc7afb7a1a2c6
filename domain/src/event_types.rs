//! The names of every event type the log can hold: what filters on the log
//! (the events feed's `types`, `ticketflow events export --types`) check
//! their input against.

/// Every stable event type name, project, ticket and inbox events alike.
pub const EVENT_TYPES: &[&str] = &[
    "ProjectCreated",
    "MemberAdded",
    "MemberRemoved",
    "AnnouncementPosted",
    "TicketCreated",
    "TicketTitleChanged",
    "TicketDescriptionChanged",
    "TicketPriorityChanged",
    "TicketLabelsChanged",
    "TicketStatusChanged",
    "TicketAssigned",
    "TicketUnassigned",
    "CommentAdded",
    "TicketDeleted",
    "NoticeSent",
];

pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InboxPayload, ProjectPayload, TicketPayload};
    use serde::de::DeserializeOwned;

    /// The variants serde knows for `P`, read from its "unknown variant"
    /// refusal (the list is the enum's own, so it cannot drift).
    fn variants<P: DeserializeOwned>() -> Vec<String> {
        let unknown = r#"{"type":"NoSuchEvent","data":{}}"#;
        let message = serde_json::from_str::<P>(unknown)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let expected = message
            .split("expected one of ")
            .nth(1)
            .or_else(|| message.split("expected ").nth(1))
            .unwrap_or_default();
        expected
            .split(',')
            .map(|v| v.trim().trim_matches('`').to_string())
            .map(|v| v.split('`').next().unwrap_or_default().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    #[test]
    fn the_list_is_every_payload_variant() {
        let mut known = variants::<ProjectPayload>();
        known.extend(variants::<TicketPayload>());
        known.extend(variants::<InboxPayload>());
        assert_eq!(known.len(), EVENT_TYPES.len(), "{known:?}");
        for name in &known {
            assert!(is_event_type(name), "{name} is missing from EVENT_TYPES");
        }
        assert!(!is_event_type("NoSuchEvent"));
    }
}
