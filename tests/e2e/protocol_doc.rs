//! docs/PROTOCOL.md cannot drift from the code: every test vector in it is
//! recomputed here with the code the server and the SDK run (and the padding
//! vector with real openmls encryption), every content example is checked
//! against docs/content.schema.json and read by the reference client, every
//! known kind has an example, and the README and the OpenAPI description
//! point outside implementers to the document.

use anyhow::{Context as _, Result, bail, ensure};
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::DeviceId;
use hearth_protocol::auth::{login_message, register_message};
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::framing::{self, ContentType, Header};
use hearth_protocol::invite::{self, InviteLink};
use hearth_protocol::mls as profile;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn protocol_md() -> Result<String> {
    Ok(std::fs::read_to_string(docs().join("PROTOCOL.md"))?)
}

/// Fenced blocks: (info string, body).
fn fenced(doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in doc.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The `vector: NAME` blocks: name → key → the rest of its line.
fn vectors(doc: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    fenced(doc)
        .into_iter()
        .filter(|(info, _)| info == "text")
        .filter_map(|(_, body)| {
            let mut lines = body.lines();
            let name = lines.next()?.strip_prefix("vector: ")?.trim().to_owned();
            let fields = lines
                .filter_map(|l| l.split_once(char::is_whitespace))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect();
            Some((name, fields))
        })
        .collect()
}

fn field<'a>(vector: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    vector
        .get(key)
        .map(String::as_str)
        .with_context(|| format!("the vector has no {key}"))
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    ensure!(text.len().is_multiple_of(2), "odd hex");
    (0..text.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?))
        .collect()
}

/// A fixed-length hex field of a vector.
fn fixed<const N: usize>(vector: &BTreeMap<String, String>, key: &str) -> Result<[u8; N]> {
    unhex(field(vector, key)?)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("{key} is {N} bytes"))
}

fn hex(bytes: &[u8]) -> String {
    hearth_tests::hex(bytes)
}

#[test]
fn the_signed_bytes_of_registration_and_login_are_as_documented() -> Result<()> {
    let doc = protocol_md()?;
    let all = vectors(&doc);
    let register = all.get("register").context("no register vector")?;
    let seed: [u8; 32] = fixed(register, "seed")?;
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    assert_eq!(hex(&public), field(register, "public_key")?);
    let challenge = unhex(field(register, "challenge")?)?;
    let message = register_message(&challenge, &public);
    assert_eq!(hex(&message), field(register, "message")?);
    assert_eq!(
        hex(&key.sign(&message).to_bytes()),
        field(register, "signature")?
    );

    let login = all.get("login").context("no login vector")?;
    let device: DeviceId = field(login, "device_id")?.parse()?;
    let message = login_message(&unhex(field(login, "challenge")?)?, &device);
    assert_eq!(hex(&message), field(login, "message")?);
    assert_eq!(
        hex(&key.sign(&message).to_bytes()),
        field(login, "signature")?
    );
    Ok(())
}

#[test]
fn invite_links_and_sealed_notes_are_as_documented() -> Result<()> {
    let doc = protocol_md()?;
    let all = vectors(&doc);
    let v = all.get("invite_note").context("no invite_note vector")?;
    let key: [u8; 32] = fixed(v, "key")?;
    let link = InviteLink {
        token: field(v, "token")?.to_owned(),
        note_key: key,
    };
    assert_eq!(link.to_link(), field(v, "link")?);
    assert_eq!(InviteLink::parse(field(v, "link")?), Some(link));
    let nonce: [u8; 12] = fixed(v, "nonce")?;
    let note = unhex(field(v, "note")?)?;
    let sealed = invite::seal_note(&key, &nonce, &note)?;
    assert_eq!(hex(&sealed), field(v, "sealed")?);
    assert_eq!(
        invite::open_note(&key, &sealed).map(String::into_bytes),
        Some(note)
    );
    Ok(())
}

#[test]
fn the_private_message_framing_is_as_documented() -> Result<()> {
    let doc = protocol_md()?;
    let all = vectors(&doc);
    let v = all
        .get("private_message")
        .context("no private_message vector")?;
    let group = unhex(field(v, "group_id")?)?;
    let epoch: u64 = field(v, "epoch")?.parse()?;
    ensure!(field(v, "content_type")? == "application");
    let len: usize = field(v, "ciphertext_len")?.parse()?;
    let bytes = framing::private_message(
        &group,
        epoch,
        ContentType::Application,
        &unhex(field(v, "sender_data")?)?,
        &vec![0; len],
    );
    let header = unhex(field(v, "header")?)?;
    assert_eq!(hex(&bytes[..header.len()]), hex(&header));
    assert_eq!(bytes.len(), header.len() + len);
    assert_eq!(
        framing::read(&bytes),
        Ok(Header::Private {
            group_id: &group,
            epoch,
            content_type: ContentType::Application,
            ciphertext_len: len,
        })
    );
    Ok(())
}

#[test]
fn the_padding_table_is_what_openmls_produces() -> Result<()> {
    let doc = protocol_md()?;
    let all = vectors(&doc);
    let v = all.get("padding").context("no padding vector")?;
    let sizes: Vec<usize> = field(v, "application_data")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let buckets: Vec<usize> = field(v, "ciphertext")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(sizes.len() == buckets.len() && !sizes.is_empty());

    // A real group, encrypting each size with the profile.
    let provider = OpenMlsRustCrypto::default();
    let key = SigningKey::from_bytes(&hearth_tests::rand_bytes::<32>());
    let signer = profile::signer(&key.to_bytes(), &key.verifying_key().to_bytes());
    let device = DeviceId::from_uuid(uuid::Uuid::new_v4());
    let mut group = MlsGroup::new_with_group_id(
        &provider,
        &signer,
        &profile::create_config(),
        GroupId::from_slice(&hearth_tests::rand_bytes::<16>()),
        profile::credential(&device, &signer),
    )?;
    for (size, bucket) in sizes.into_iter().zip(buckets) {
        assert_eq!(framing::padded_len(size), bucket, "{size} bytes");
        let message = profile::encrypt(&mut group, &provider, &signer, &vec![b'x'; size])?;
        let wire = message.tls_serialize_detached()?;
        let ciphertext = framing::private_ciphertext(&wire).context("a PrivateMessage")?;
        assert_eq!(ciphertext.len(), bucket, "openmls, {size} bytes");
        assert!(framing::is_padded(ciphertext.len()));
    }
    Ok(())
}

/// The kind's name on the wire. Exhaustive: a new kind fails to compile
/// here until it is named (and then needs an example and a schema entry).
fn kind_of(content: &Content) -> Option<&'static str> {
    Some(match content {
        Content::Text { .. } => "text",
        Content::Reply { .. } => "reply",
        Content::Reaction { .. } => "reaction",
        Content::Profile { .. } => "profile",
        Content::CircleProfile { .. } => "circle_profile",
        Content::SessionSeries { .. } => "session_series",
        Content::SessionChange { .. } => "session_change",
        Content::Rsvp { .. } => "rsvp",
        Content::Attendance { .. } => "attendance",
        Content::Agreement { .. } => "agreement",
        Content::AgreementAccepted { .. } => "agreement_accepted",
        Content::CheckInPrompt { .. } => "check_in_prompt",
        Content::CheckInReply { .. } => "check_in_reply",
        Content::ScheduleSnapshot { .. } => "schedule_snapshot",
        Content::Unknown => return None,
    })
}

#[test]
fn every_kind_has_an_example_the_schema_and_the_client_both_accept() -> Result<()> {
    let doc = protocol_md()?;
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        docs().join("content.schema.json"),
    )?)?;
    let known: BTreeSet<String> = schema["$defs"]["known_kinds"]["enum"]
        .as_array()
        .context("the schema lists its kinds")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let mut examples = Vec::new();
    let mut seen = BTreeSet::new();
    for (info, body) in fenced(&doc) {
        let unknown = match info.as_str() {
            "json content" => false,
            "json content-unknown" => true,
            _ => continue,
        };
        let value: serde_json::Value = serde_json::from_str(&body)?;
        let kind = value["kind"]
            .as_str()
            .context("an example names its kind")?;
        let read = Envelope::from_bytes(body.trim().as_bytes());
        if unknown {
            assert_eq!(read.content, Content::Unknown, "{kind} is ignored");
            assert!(!known.contains(kind));
        } else {
            assert_eq!(
                kind_of(&read.content),
                Some(kind),
                "the client reads {kind}"
            );
            assert_eq!(
                serde_json::to_value(&read)?,
                value,
                "{kind}: the client writes it the same way"
            );
            seen.insert(kind.to_owned());
        }
        examples.push(value);
    }
    assert_eq!(seen, known, "one example of every kind the schema knows");
    assert_eq!(
        known.len(),
        14,
        "and the schema knows every kind kind_of names"
    );
    validate_with_json_schema(&schema, &examples)
}

/// Checks the examples against the schema with an independent validator
/// (Python's `jsonschema_rs`, installed by scripts/test with Schemathesis);
/// outside CI without it the check is skipped.
fn validate_with_json_schema(
    schema: &serde_json::Value,
    examples: &[serde_json::Value],
) -> Result<()> {
    let Ok(python) = std::env::var("TEST_CHECKER_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("CI=true but TEST_CHECKER_PYTHON is not set (scripts/test installs it)");
        }
        eprintln!("SKIPPED the JSON Schema check: run scripts/test, which installs its checker");
        return Ok(());
    };
    let script = r#"
import json, sys, jsonschema_rs
data = json.load(sys.stdin)
validator = jsonschema_rs.validator_for(data["schema"])
bad = [json.dumps(e) for e in data["examples"] if not validator.is_valid(e)]
broken = [{"v": 1, "kind": "text", "id": "not-a-uuid", "body": "x"},
          {"v": 1, "kind": "reaction", "id": "0b5e8f1c-3d2a-4f6b-9c8d-7e6f5a4b3c2d"},
          {"kind": "text"}]
accepted = [json.dumps(e) for e in broken if validator.is_valid(e)]
if bad or accepted:
    print("refused:", bad, "accepted:", accepted)
    sys.exit(1)
"#;
    let input = serde_json::json!({ "schema": schema, "examples": examples });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(&serde_json::to_vec(&input)?)?;
    }
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "JSON Schema check failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn the_readme_points_outside_implementers_to_the_protocol() -> Result<()> {
    // (The OpenAPI description does too: ops.rs checks the served document.)
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    assert!(readme.contains("(docs/PROTOCOL.md)"));
    Ok(())
}
