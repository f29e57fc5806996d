//! The clear framing of MLS messages (RFC 9420 §6), read without any key: what
//! the server checks on every blob it relays, and the padding rule that keeps
//! a ciphertext's length from telling a reaction from a paragraph.
//!
//! Every blob Hearth relays is an `MLSMessage`: `version` (`mls10` = 1) and
//! `wire_format`, then the body. [`read`] reads the body's clear header:
//! - `PrivateMessage`: `group_id`, `epoch`, `content_type`, the length of the
//!   encrypted `ciphertext` (the rest is opaque);
//! - `PublicMessage`: `group_id`, `epoch`, the sender's kind and
//!   `content_type` (only external commits travel this way);
//! - `Welcome`: its ciphersuite; `GroupInfo`: ciphersuite, `group_id`,
//!   `epoch`; `KeyPackage`: its ciphersuite.
//!
//! Variable-length vectors carry RFC 9420's variable-length integer prefix
//! (1, 2 or 4 bytes, top two bits saying which, shortest form only). The
//! reader never allocates and refuses trailing bytes after a `PrivateMessage`
//! (whose structure it reads completely).
//!
//! Padding ([`padded_len`]): the `ciphertext` of every application message
//! is exactly [`PAD_MIN`] bytes, or the next power of two above it that holds
//! the content — 1 KiB, 2 KiB, 4 KiB, … — so the server sees one of a handful
//! of sizes, never a length.

use std::fmt;

/// `ProtocolVersion::mls10`.
pub const MLS10: u16 = 1;

/// The smallest padded `ciphertext`: every application message of up to 940
/// bytes of plaintext has exactly this length.
pub const PAD_MIN: usize = 1024;

/// Bytes of an application message's `PrivateMessageContent` besides the
/// application data itself and its length prefix, under Hearth's
/// ciphersuites: the 64-byte Ed25519 signature with its two-byte length
/// (66), and the AEAD tag (16).
const CONTENT_OVERHEAD: usize = 66 + 16;

/// `WireFormat` values (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// `mls_public_message` (1).
    PublicMessage,
    /// `mls_private_message` (2).
    PrivateMessage,
    /// `mls_welcome` (3).
    Welcome,
    /// `mls_group_info` (4).
    GroupInfo,
    /// `mls_key_package` (5).
    KeyPackage,
}

impl WireFormat {
    fn from_u16(value: u16) -> Option<Self> {
        Some(match value {
            1 => Self::PublicMessage,
            2 => Self::PrivateMessage,
            3 => Self::Welcome,
            4 => Self::GroupInfo,
            5 => Self::KeyPackage,
            _ => return None,
        })
    }

    /// Its value on the wire.
    pub const fn as_u16(self) -> u16 {
        match self {
            Self::PublicMessage => 1,
            Self::PrivateMessage => 2,
            Self::Welcome => 3,
            Self::GroupInfo => 4,
            Self::KeyPackage => 5,
        }
    }

    /// Its name in RFC 9420.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PublicMessage => "PublicMessage",
            Self::PrivateMessage => "PrivateMessage",
            Self::Welcome => "Welcome",
            Self::GroupInfo => "GroupInfo",
            Self::KeyPackage => "KeyPackage",
        }
    }
}

/// `ContentType` values (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application` (1).
    Application,
    /// `proposal` (2).
    Proposal,
    /// `commit` (3).
    Commit,
}

impl ContentType {
    fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Application,
            2 => Self::Proposal,
            3 => Self::Commit,
            _ => return None,
        })
    }

    /// Its value on the wire.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Application => 1,
            Self::Proposal => 2,
            Self::Commit => 3,
        }
    }
}

/// `SenderType` values (RFC 9420 §6), as a `PublicMessage` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    /// `member` (1), with its leaf index.
    Member(u32),
    /// `external` (2), with its index among the group's external senders.
    External(u32),
    /// `new_member_proposal` (3).
    NewMemberProposal,
    /// `new_member_commit` (4): an external commit, how a device rejoins.
    NewMemberCommit,
}

/// What [`read`] found in the clear.
#[derive(Clone, PartialEq, Eq)]
pub enum Header<'a> {
    /// A `PrivateMessage`.
    Private {
        /// The MLS group id (the circle id).
        group_id: &'a [u8],
        /// The epoch it was encrypted in.
        epoch: u64,
        /// What it carries.
        content_type: ContentType,
        /// The length of its encrypted `ciphertext` field.
        ciphertext_len: usize,
    },
    /// A `PublicMessage`.
    Public {
        /// The MLS group id.
        group_id: &'a [u8],
        /// Its epoch.
        epoch: u64,
        /// Who sent it.
        sender: SenderKind,
        /// What it carries.
        content_type: ContentType,
    },
    /// A `Welcome`.
    Welcome {
        /// Its ciphersuite.
        cipher_suite: u16,
    },
    /// A `GroupInfo`.
    GroupInfo {
        /// Its group's ciphersuite.
        cipher_suite: u16,
        /// The MLS group id.
        group_id: &'a [u8],
        /// The epoch it describes.
        epoch: u64,
    },
    /// A `KeyPackage`.
    KeyPackage {
        /// Its ciphersuite.
        cipher_suite: u16,
    },
}

// Group ids are circle ids: Debug must not print them.
impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_format().name())
    }
}

impl Header<'_> {
    /// Its wire format.
    pub fn wire_format(&self) -> WireFormat {
        match self {
            Self::Private { .. } => WireFormat::PrivateMessage,
            Self::Public { .. } => WireFormat::PublicMessage,
            Self::Welcome { .. } => WireFormat::Welcome,
            Self::GroupInfo { .. } => WireFormat::GroupInfo,
            Self::KeyPackage { .. } => WireFormat::KeyPackage,
        }
    }
}

/// Why bytes are not a framed MLS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// The bytes end before the structure does.
    Truncated,
    /// The protocol version is not `mls10`.
    Version,
    /// An unknown wire format.
    WireFormat,
    /// An unknown content type.
    ContentType,
    /// An unknown sender type.
    SenderType,
    /// A length prefix that is not RFC 9420's shortest form, or too long.
    Length,
    /// Bytes after the end of a `PrivateMessage`.
    Trailing,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the MLS message ends early",
            Self::Version => "the MLS protocol version is not mls10 (1)",
            Self::WireFormat => "unknown MLS wire format",
            Self::ContentType => "unknown MLS content type",
            Self::SenderType => "unknown MLS sender type",
            Self::Length => "an MLS vector length is malformed",
            Self::Trailing => "bytes follow the end of the MLS message",
        })
    }
}

impl std::error::Error for FramingError {}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FramingError> {
        if self.0.len() < n {
            return Err(FramingError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FramingError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FramingError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FramingError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FramingError> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(out))
    }

    /// RFC 9420 §2.1.2: a variable-length integer, shortest form, at most
    /// 30 bits.
    fn varint(&mut self) -> Result<usize, FramingError> {
        let first = self.u8()?;
        let (len, mut value) = match first >> 6 {
            0 => (1, u32::from(first)),
            1 => (2, u32::from(first & 0x3f)),
            2 => (4, u32::from(first & 0x3f)),
            _ => return Err(FramingError::Length),
        };
        for _ in 1..len {
            value = (value << 8) | u32::from(self.u8()?);
        }
        let shortest = match value {
            0..=0x3f => 1,
            0x40..=0x3fff => 2,
            _ => 4,
        };
        if len != shortest {
            return Err(FramingError::Length);
        }
        usize::try_from(value).map_err(|_| FramingError::Length)
    }

    fn vector(&mut self) -> Result<&'a [u8], FramingError> {
        let len = self.varint()?;
        self.take(len)
    }
}

/// A `PrivateMessage` body as read.
struct Private<'a> {
    group_id: &'a [u8],
    epoch: u64,
    content_type: ContentType,
    ciphertext: &'a [u8],
}

/// A `PrivateMessage` body, to its end.
fn read_private<'a>(r: &mut Reader<'a>) -> Result<Private<'a>, FramingError> {
    let group_id = r.vector()?;
    let epoch = r.u64()?;
    let content_type = ContentType::from_u8(r.u8()?).ok_or(FramingError::ContentType)?;
    let _authenticated_data = r.vector()?;
    let _encrypted_sender_data = r.vector()?;
    let ciphertext = r.vector()?;
    if !r.0.is_empty() {
        return Err(FramingError::Trailing);
    }
    Ok(Private {
        group_id,
        epoch,
        content_type,
        ciphertext,
    })
}

/// Reads an `MLSMessage`'s clear header.
pub fn read(bytes: &[u8]) -> Result<Header<'_>, FramingError> {
    let mut r = Reader(bytes);
    if r.u16()? != MLS10 {
        return Err(FramingError::Version);
    }
    let wire_format = WireFormat::from_u16(r.u16()?).ok_or(FramingError::WireFormat)?;
    Ok(match wire_format {
        WireFormat::PrivateMessage => {
            let private = read_private(&mut r)?;
            Header::Private {
                group_id: private.group_id,
                epoch: private.epoch,
                content_type: private.content_type,
                ciphertext_len: private.ciphertext.len(),
            }
        }
        WireFormat::PublicMessage => {
            let group_id = r.vector()?;
            let epoch = r.u64()?;
            let sender = match r.u8()? {
                1 => SenderKind::Member(r.u32()?),
                2 => SenderKind::External(r.u32()?),
                3 => SenderKind::NewMemberProposal,
                4 => SenderKind::NewMemberCommit,
                _ => return Err(FramingError::SenderType),
            };
            let _authenticated_data = r.vector()?;
            let content_type = ContentType::from_u8(r.u8()?).ok_or(FramingError::ContentType)?;
            Header::Public {
                group_id,
                epoch,
                sender,
                content_type,
            }
        }
        WireFormat::Welcome => Header::Welcome {
            cipher_suite: r.u16()?,
        },
        WireFormat::GroupInfo => {
            // GroupInfo starts with its GroupContext: version, ciphersuite,
            // group id, epoch.
            if r.u16()? != MLS10 {
                return Err(FramingError::Version);
            }
            let cipher_suite = r.u16()?;
            let group_id = r.vector()?;
            Header::GroupInfo {
                cipher_suite,
                group_id,
                epoch: r.u64()?,
            }
        }
        WireFormat::KeyPackage => {
            if r.u16()? != MLS10 {
                return Err(FramingError::Version);
            }
            Header::KeyPackage {
                cipher_suite: r.u16()?,
            }
        }
    })
}

/// The `ciphertext` length of an application message carrying
/// `application_data` bytes: the smallest power of two, at least [`PAD_MIN`],
/// that holds the data, its length prefix, the signature and the AEAD tag.
/// A sender pads the content (MLS `padding`, zero bytes) to reach it exactly.
pub fn padded_len(application_data: usize) -> usize {
    let prefix = match application_data {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        _ => 4,
    };
    (application_data + prefix + CONTENT_OVERHEAD)
        .max(PAD_MIN)
        .next_power_of_two()
}

/// Whether an application message's `ciphertext` length is one the padding
/// rule produces.
pub fn is_padded(ciphertext_len: usize) -> bool {
    ciphertext_len >= PAD_MIN && ciphertext_len.is_power_of_two()
}

fn put_varint(out: &mut Vec<u8>, len: usize) {
    // Lengths past 30 bits cannot be framed; callers build small test blobs.
    let value = u32::try_from(len).unwrap_or(u32::MAX) & 0x3fff_ffff;
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&(0x4000 | value as u16).to_be_bytes()),
        _ => out.extend_from_slice(&(0x8000_0000 | value).to_be_bytes()),
    }
}

fn put_vector(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Frames `ciphertext` as a `PrivateMessage` with the given clear header and
/// empty authenticated and sender data. For tests and benchmarks that relay
/// bytes nobody decrypts; a real sender gets its framing from its MLS library.
pub fn private_message(
    group_id: &[u8],
    epoch: u64,
    content_type: ContentType,
    encrypted_sender_data: &[u8],
    ciphertext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(ciphertext.len() + group_id.len() + 64);
    out.extend_from_slice(&MLS10.to_be_bytes());
    out.extend_from_slice(&WireFormat::PrivateMessage.as_u16().to_be_bytes());
    put_vector(&mut out, group_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(content_type.as_u8());
    put_vector(&mut out, &[]);
    put_vector(&mut out, encrypted_sender_data);
    put_vector(&mut out, ciphertext);
    out
}

/// The `ciphertext` field of a framed `PrivateMessage` (what
/// [`private_message`] wrapped), if `bytes` is one.
pub fn private_ciphertext(bytes: &[u8]) -> Option<&[u8]> {
    let mut r = Reader(bytes);
    (r.u16().ok()? == MLS10 && r.u16().ok()? == WireFormat::PrivateMessage.as_u16())
        .then_some(())?;
    read_private(&mut r).ok().map(|private| private.ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_framed_private_message_reads_back() {
        let bytes = private_message(
            b"circle-of-sixteen",
            7,
            ContentType::Commit,
            &[1; 12],
            &[9; 300],
        );
        assert_eq!(
            read(&bytes),
            Ok(Header::Private {
                group_id: b"circle-of-sixteen",
                epoch: 7,
                content_type: ContentType::Commit,
                ciphertext_len: 300,
            })
        );
        assert_eq!(private_ciphertext(&bytes), Some(&[9u8; 300][..]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(read(&longer), Err(FramingError::Trailing));
        assert_eq!(
            read(&bytes[..bytes.len() - 1]),
            Err(FramingError::Truncated)
        );
    }

    #[test]
    fn lengths_have_one_spelling() {
        // 5 as a two-byte varint is not the shortest form.
        let mut bytes = vec![0, 1, 0, 2, 0x40, 5];
        bytes.extend_from_slice(b"abcde");
        assert_eq!(read(&bytes), Err(FramingError::Length));
        // The 11 prefix is reserved.
        assert_eq!(read(&[0, 1, 0, 2, 0xc0]), Err(FramingError::Length));
        assert_eq!(read(&[0, 2, 0, 2]), Err(FramingError::Version));
        assert_eq!(read(&[0, 1, 0, 9]), Err(FramingError::WireFormat));
    }

    #[test]
    fn padding_buckets_are_powers_of_two_from_one_kibibyte() {
        assert_eq!(padded_len(0), 1024);
        assert_eq!(padded_len(900), 1024);
        assert_eq!(padded_len(1024 - 2 - 82), 1024);
        assert_eq!(padded_len(1024 - 2 - 81), 2048);
        assert_eq!(padded_len(5000), 8192);
        assert!(is_padded(1024) && is_padded(4096));
        assert!(!is_padded(512) && !is_padded(1500));
    }
}
