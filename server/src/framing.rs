//! What the server checks of the MLS it relays, from the clear framing alone
//! (`hearth_protocol::framing`): every blob is the `MLSMessage` its field
//! expects, for this circle, at the declared epoch, with the right content;
//! members' commits are private; application messages are padded. Nothing
//! here decrypts anything.

use hearth_protocol::framing::{
    self, ContentType, FramingError, Header, SenderKind, WireFormat, is_padded,
};
use hearth_protocol::{CircleId, ErrorCode};

/// A framing rule a request breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingRule {
    /// The field does not hold a well-formed `MLSMessage`.
    #[error("{field} is not a well-formed MLSMessage: {source}")]
    Malformed {
        /// The request field.
        field: &'static str,
        /// What the reader found wrong.
        source: FramingError,
    },
    /// The clear header reads, but the whole structure does not parse.
    #[error("{field} does not parse as an MLS {expected}")]
    Unparsable {
        /// The request field.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
    /// The field holds an `MLSMessage` of another wire format.
    #[error("{field} must be an MLSMessage framing a {expected}, not a {found}")]
    WireFormat {
        /// The request field.
        field: &'static str,
        /// What it must frame.
        expected: &'static str,
        /// What it framed.
        found: &'static str,
    },
    /// The message belongs to another MLS group than the circle.
    #[error("{field} is for another MLS group than this circle (the group id is the circle id)")]
    OtherGroup {
        /// The request field.
        field: &'static str,
    },
    /// The message's epoch is not the one the request declares.
    #[error("{field} is for epoch {found}, the request declares {declared}")]
    OtherEpoch {
        /// The request field.
        field: &'static str,
        /// The epoch the request declares.
        declared: u64,
        /// The epoch in the message's header.
        found: u64,
    },
    /// The message carries another content type than the route takes.
    #[error("{field} must carry {expected}")]
    ContentType {
        /// The request field.
        field: &'static str,
        /// What it must carry.
        expected: &'static str,
    },
    /// A member's commit as a `PublicMessage`.
    #[error(
        "a member's commit must be a PrivateMessage: a PublicMessage would show the server its \
         proposals (only an external commit is public)"
    )]
    PublicCommit,
    /// An application message whose ciphertext is not padded.
    #[error(
        "the ciphertext of an application message must be padded to 1024 bytes or the next \
         power of two that holds it; it is {len} bytes"
    )]
    Unpadded {
        /// Its length.
        len: usize,
    },
}

impl FramingRule {
    /// The rule's stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::PublicCommit => ErrorCode::PublicCommit,
            Self::Unpadded { .. } => ErrorCode::UnpaddedMessage,
            _ => ErrorCode::MlsFraming,
        }
    }
}

/// Who made an accepted commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitSender {
    /// A member of the group, in a `PrivateMessage`.
    Member,
    /// A device rejoining by external commit (`new_member_commit`).
    External,
}

/// Reads the clear header of `field`, which must frame `expected` (a
/// commit may also be a `PublicMessage`; [`commit`] says when).
fn header<'a>(
    field: &'static str,
    bytes: &'a [u8],
    expected: WireFormat,
) -> Result<Header<'a>, FramingRule> {
    let header = framing::read(bytes).map_err(|source| FramingRule::Malformed { field, source })?;
    let found = header.wire_format();
    let public_commit =
        expected == WireFormat::PrivateMessage && found == WireFormat::PublicMessage;
    if found == expected || public_commit {
        Ok(header)
    } else {
        Err(FramingRule::WireFormat {
            field,
            expected: expected.name(),
            found: found.name(),
        })
    }
}

fn same_place(
    field: &'static str,
    circle: &CircleId,
    group_id: &[u8],
    declared: u64,
    epoch: u64,
) -> Result<(), FramingRule> {
    if group_id != circle.as_bytes() {
        return Err(FramingRule::OtherGroup { field });
    }
    if epoch != declared {
        return Err(FramingRule::OtherEpoch {
            field,
            declared,
            found: epoch,
        });
    }
    Ok(())
}

/// An application message: a padded `PrivateMessage` carrying application
/// data for `circle` at `epoch`.
pub fn application(bytes: &[u8], circle: &CircleId, epoch: u64) -> Result<(), FramingRule> {
    const FIELD: &str = "ciphertext";
    match header(FIELD, bytes, WireFormat::PrivateMessage)? {
        Header::Private {
            group_id,
            epoch: found,
            content_type,
            ciphertext_len,
        } => {
            same_place(FIELD, circle, group_id, epoch, found)?;
            if content_type != ContentType::Application {
                return Err(FramingRule::ContentType {
                    field: FIELD,
                    expected: "application data",
                });
            }
            if !is_padded(ciphertext_len) {
                return Err(FramingRule::Unpadded {
                    len: ciphertext_len,
                });
            }
            Ok(())
        }
        other => Err(FramingRule::WireFormat {
            field: FIELD,
            expected: WireFormat::PrivateMessage.name(),
            found: other.wire_format().name(),
        }),
    }
}

/// A commit: a `PrivateMessage` commit by a member, or a `PublicMessage`
/// external commit, for `circle` at `epoch`.
pub fn commit(bytes: &[u8], circle: &CircleId, epoch: u64) -> Result<CommitSender, FramingRule> {
    const FIELD: &str = "commit";
    let not_a_commit = FramingRule::ContentType {
        field: FIELD,
        expected: "a commit",
    };
    match header(FIELD, bytes, WireFormat::PrivateMessage)? {
        Header::Private {
            group_id,
            epoch: found,
            content_type,
            ..
        } => {
            same_place(FIELD, circle, group_id, epoch, found)?;
            if content_type != ContentType::Commit {
                return Err(not_a_commit);
            }
            Ok(CommitSender::Member)
        }
        Header::Public {
            group_id,
            epoch: found,
            sender,
            content_type,
        } => {
            same_place(FIELD, circle, group_id, epoch, found)?;
            if content_type != ContentType::Commit {
                return Err(not_a_commit);
            }
            match sender {
                SenderKind::NewMemberCommit => {
                    // The whole structure must parse: clients will process it.
                    whole(FIELD, "external commit", bytes)?;
                    Ok(CommitSender::External)
                }
                _ => Err(FramingRule::PublicCommit),
            }
        }
        other => Err(FramingRule::WireFormat {
            field: FIELD,
            expected: WireFormat::PrivateMessage.name(),
            found: other.wire_format().name(),
        }),
    }
}

/// A Welcome: an `MLSMessage` framing a Welcome that parses.
pub fn welcome(bytes: &[u8]) -> Result<(), FramingRule> {
    const FIELD: &str = "welcome";
    header(FIELD, bytes, WireFormat::Welcome)?;
    whole(FIELD, "Welcome", bytes)
}

/// A GroupInfo: an `MLSMessage` framing the GroupInfo of `circle` at
/// `epoch`, that parses.
pub fn group_info(bytes: &[u8], circle: &CircleId, epoch: u64) -> Result<(), FramingRule> {
    const FIELD: &str = "group_info";
    if let Header::GroupInfo {
        group_id,
        epoch: found,
        ..
    } = header(FIELD, bytes, WireFormat::GroupInfo)?
    {
        same_place(FIELD, circle, group_id, epoch, found)?;
    }
    whole(FIELD, "GroupInfo", bytes)
}

/// The whole `MLSMessage` parses (openmls reads it as a client will).
fn whole(field: &'static str, expected: &'static str, bytes: &[u8]) -> Result<(), FramingRule> {
    if hearth_protocol::mls::is_mls_message(bytes) {
        Ok(())
    } else {
        Err(FramingRule::Unparsable { field, expected })
    }
}
