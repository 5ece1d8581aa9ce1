//! Every example in docs/PROTOCOL.md parses, and every message type has one.
//!
//! The list of message types is not written down here: it is read from serde's own
//! "unknown variant" error, so a new message without an example fails this test.

use std::collections::BTreeSet;

use lanmeet_proto::{ClientMessage, ServerMessage};
use serde::de::DeserializeOwned;

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

/// Every `"type"` that `T` accepts, from the error serde gives for an unknown one:
/// "unknown variant `?`, expected one of `join`, `publish_offer`, ...".
fn all_types<T: DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(r#"{"type": "?"}"#).expect_err("no such type");
    let text = err.to_string();
    let list = text
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("serde's message lists the variants: {text}"))
        .1;
    let names: BTreeSet<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    assert!(
        names.len() > 3,
        "parsed the variant list: {names:?} from {text}"
    );
    names
}

fn check<T: DeserializeOwned + std::fmt::Debug>(tag: &str) {
    let mut seen = BTreeSet::new();
    for ex in examples(tag) {
        serde_json::from_str::<T>(&ex)
            .unwrap_or_else(|e| panic!("{tag} example does not parse: {e}\n{ex}"));
        seen.insert(type_of(&ex));
    }
    let all = all_types::<T>();
    let missing: Vec<&String> = all.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{tag} messages without an example: {missing:?}"
    );
    assert_eq!(seen, all);
}

#[test]
fn client_examples_parse_and_cover_every_type() {
    check::<ClientMessage>("client");
}

#[test]
fn server_examples_parse_and_cover_every_type() {
    check::<ServerMessage>("server");
}

#[test]
fn the_type_list_is_complete() {
    // A spot check that reading the list from serde works: these must be in it.
    let client = all_types::<ClientMessage>();
    for t in ["join", "view", "screen_share", "leave"] {
        assert!(client.contains(t), "{t} in {client:?}");
    }
    let server = all_types::<ServerMessage>();
    for t in ["joined", "video_state", "active_speaker", "error"] {
        assert!(server.contains(t), "{t} in {server:?}");
    }
}
