//! Board snapshots: every live ticket of a project as it stood after the
//! project's events up to a position. The board as of a moment starts from
//! the nearest one at or before it and replays only the project's events
//! since (see `ticketflow_app::board`). They are derived data, kept as
//! deflated JSON (a ticket state takes some 60 bytes so): losing them loses
//! nothing but time.

use std::io::Read;

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use ticketflow_domain::ticket::Ticket;

use crate::StoreError;

/// A project's live tickets after its events up to `position`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardSnapshot {
    pub position: i64,
    pub tickets: Vec<Ticket>,
}

impl BoardSnapshot {
    /// The stored form of the tickets.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut deflated = DeflateEncoder::new(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut deflated, &self.tickets)?;
        deflated.finish().map_err(|e| corrupt(&e))
    }

    /// The snapshot at `position` from its stored form.
    pub(crate) fn decode(position: i64, stored: &[u8]) -> Result<Self, StoreError> {
        let mut json = Vec::new();
        DeflateDecoder::new(stored)
            .read_to_end(&mut json)
            .map_err(|e| corrupt(&e))?;
        Ok(Self {
            position,
            tickets: serde_json::from_slice(&json)?,
        })
    }

    /// How many tickets it holds, as stored beside them.
    pub(crate) fn count(&self) -> i32 {
        i32::try_from(self.tickets.len()).unwrap_or(i32::MAX)
    }
}

fn corrupt(e: &std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("a board snapshot: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let ticket = Ticket {
            title: "Fix login".into(),
            number: 7,
            version: 3,
            labels: vec!["bug".into()],
            ..Ticket::default()
        };
        let snapshot = BoardSnapshot {
            position: 42,
            tickets: vec![ticket.clone(), Ticket::default()],
        };
        let stored = snapshot.encode().expect("encode");
        assert_eq!(
            BoardSnapshot::decode(42, &stored).expect("decode"),
            snapshot
        );
        assert!(BoardSnapshot::decode(42, b"not deflate").is_err());
    }
}
