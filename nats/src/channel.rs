//! Realtime channels: what a socket follows, and the one place that turns a
//! channel into subjects and subjects back into channels.
//!
//! Subjects, under a deployment's prefix:
//! - `<prefix>.channel.tickets.<project>`: a project's ticket channel;
//! - `<prefix>.channel.notifications.<user>`: a user's notifications;
//! - `<prefix>.channel.notifications_read.<user>`: that user's read signals,
//!   delivered to the same sockets but outside the channel's history.

use uuid::Uuid;

use crate::pubsub::Message;
use crate::Subjects;

/// A channel sockets follow: its messages share one contiguous `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `/ws/projects/{project_id}/tickets/`.
    Tickets { project_id: Uuid },
    /// `/ws/notifications/` of one user.
    Notifications { user_id: Uuid },
}

/// One message on a channel's subjects, as a gateway receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDelivery {
    pub channel: Channel,
    /// The message's place in the channel; `None` for a signal outside the
    /// history (it is delivered as it comes and never replayed).
    pub seq: Option<i64>,
    pub payload: bytes::Bytes,
}

const TICKETS: &str = "tickets";
const NOTIFICATIONS: &str = "notifications";
const READ_SIGNALS: &str = "notifications_read";

impl Channel {
    /// The name the contract gives the channel (`connection_established`).
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Tickets { .. } => TICKETS,
            Channel::Notifications { .. } => NOTIFICATIONS,
        }
    }

    /// The project or user the channel belongs to.
    pub fn owner(&self) -> Uuid {
        match *self {
            Channel::Tickets { project_id } => project_id,
            Channel::Notifications { user_id } => user_id,
        }
    }
}

impl Subjects {
    /// Where a channel's history messages are published.
    pub fn channel(&self, channel: &Channel) -> String {
        format!(
            "{}.channel.{}.{}",
            self.prefix(),
            channel.name(),
            channel.owner()
        )
    }

    /// Where a user's read signals are published.
    pub fn read_signals(&self, user_id: Uuid) -> String {
        format!("{}.channel.{READ_SIGNALS}.{user_id}", self.prefix())
    }

    /// Everything a channel's sockets receive: its history messages and, for
    /// notifications, the read signals.
    pub fn channel_feed(&self, channel: &Channel) -> String {
        match channel {
            Channel::Tickets { .. } => self.channel(channel),
            Channel::Notifications { user_id } => {
                format!("{}.channel.*.{user_id}", self.prefix())
            }
        }
    }

    /// Every channel subject, for a gateway's one subscription.
    pub fn all_channels(&self) -> String {
        format!("{}.channel.>", self.prefix())
    }

    /// The channel a message on a channel subject is for, and its seq;
    /// `None` for anything else (or a history message without a seq).
    pub fn channel_delivery(&self, message: &Message) -> Option<ChannelDelivery> {
        let rest = message
            .subject
            .strip_prefix(self.prefix())?
            .strip_prefix(".channel.")?;
        let (kind, id) = rest.split_once('.')?;
        let id = Uuid::parse_str(id).ok()?;
        let (channel, signal) = match kind {
            TICKETS => (Channel::Tickets { project_id: id }, false),
            NOTIFICATIONS => (Channel::Notifications { user_id: id }, false),
            READ_SIGNALS => (Channel::Notifications { user_id: id }, true),
            _ => return None,
        };
        let seq = match (message.seq, signal) {
            (seq, true) => seq,
            (Some(seq), false) => Some(seq),
            (None, false) => return None,
        };
        Some(ChannelDelivery {
            channel,
            seq,
            payload: message.payload.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: String, seq: Option<i64>) -> Message {
        let mut message = Message::new(subject, "{}");
        message.seq = seq;
        message
    }

    #[test]
    fn a_channel_comes_back_from_its_subjects() {
        let subjects = Subjects::new("tf");
        let id = Uuid::now_v7();
        for channel in [
            Channel::Tickets { project_id: id },
            Channel::Notifications { user_id: id },
        ] {
            let delivery = subjects
                .channel_delivery(&message(subjects.channel(&channel), Some(7)))
                .expect("a channel subject");
            assert_eq!((delivery.channel, delivery.seq), (channel, Some(7)));
        }
        let signal = subjects
            .channel_delivery(&message(subjects.read_signals(id), None))
            .expect("a read signal");
        assert_eq!(
            (signal.channel, signal.seq),
            (Channel::Notifications { user_id: id }, None)
        );
    }

    #[test]
    fn other_subjects_and_history_without_seq_are_not_deliveries() {
        let subjects = Subjects::new("tf");
        let channel = Channel::Tickets {
            project_id: Uuid::now_v7(),
        };
        let unseqd = message(subjects.channel(&channel), None);
        assert_eq!(subjects.channel_delivery(&unseqd), None);
        let other_prefix = message(Subjects::new("xx").channel(&channel), Some(1));
        assert_eq!(subjects.channel_delivery(&other_prefix), None);
        let presence = message(subjects.presence(channel.owner()), Some(1));
        assert_eq!(subjects.channel_delivery(&presence), None);
    }
}
