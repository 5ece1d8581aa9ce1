//! Every example in docs/PROTOCOL.md parses, and every message type has one.

use std::collections::BTreeSet;

use lanmeet_proto::{ClientMessage, ServerMessage};

fn examples(tag: &str) -> Vec<String> {
    let doc = include_str!("../../../docs/PROTOCOL.md");
    let fence = format!("```json {tag}");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").expect("every example block is closed");
        out.push(body[..end].trim().to_string());
        rest = &body[end + 3..];
    }
    out
}

fn type_of(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("example is JSON");
    v["type"].as_str().expect("example has a type").to_string()
}

#[test]
fn client_examples_parse_and_cover_every_type() {
    let mut seen = BTreeSet::new();
    for ex in examples("client") {
        serde_json::from_str::<ClientMessage>(&ex)
            .unwrap_or_else(|e| panic!("client example does not parse: {e}\n{ex}"));
        seen.insert(type_of(&ex));
    }
    let all: BTreeSet<String> = [
        "join",
        "publish_offer",
        "subscribe_answer",
        "media_state",
        "chat",
        "leave",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, all);
}

#[test]
fn server_examples_parse_and_cover_every_type() {
    let mut seen = BTreeSet::new();
    for ex in examples("server") {
        serde_json::from_str::<ServerMessage>(&ex)
            .unwrap_or_else(|e| panic!("server example does not parse: {e}\n{ex}"));
        seen.insert(type_of(&ex));
    }
    let all: BTreeSet<String> = [
        "joined",
        "chat_history",
        "chat",
        "participant_joined",
        "participant_updated",
        "participant_left",
        "publish_answer",
        "subscribe_offer",
        "active_speaker",
        "error",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, all);
}
