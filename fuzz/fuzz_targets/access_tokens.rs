//! Access tokens: any text as a bearer token, and tokens signed with the
//! server's own key around any header and claims. The first byte picks the
//! case, the rest is the token, the claims, or the claims' values.
//!
//! Beyond "no panic": text not signed by the key is never accepted; a signed
//! token is accepted only with the pinned algorithm, the claims it carries,
//! and an expiry still ahead; a second check (from the verified cache)
//! answers as the first did.

#![no_main]

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::{json, Value};
use ticketflow_app::tokens::{Refused, TokenKeys};

const SECRET: &[u8] = b"the fuzz targets' secret";

static KEYS: LazyLock<TokenKeys> = LazyLock::new(|| TokenKeys::new(SECRET));

/// The headers a token may claim; only the first two name our algorithm.
const HEADERS: [&str; 6] = [
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"HS256"}"#,
    r#"{"alg":"none","typ":"JWT"}"#,
    r#"{"alg":"HS512","typ":"JWT"}"#,
    r#"{"alg":"RS256","typ":"JWT"}"#,
    r#"{"typ":"JWT"}"#,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let header = HEADERS[usize::from(choice >> 4) % HEADERS.len()];
    match choice & 0x3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(claims) = KEYS.verify_access(text) {
                panic!("accepted unsigned text {text:?} as {claims:?}");
            }
        }
        1 => signed(header, rest),
        _ => signed(header, &claims_from(rest)),
    }
});

/// Claims shaped like ours, their values from the input: a subject (a UUID
/// or not), a username, and an expiry around now.
fn claims_from(values: &[u8]) -> Vec<u8> {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let (head, tail) = values.split_at(values.len().min(16));
    let mut id = [0u8; 16];
    id[..head.len()].copy_from_slice(head);
    let shift = i64::from(id[0] as i8) * 60;
    let sub = match id[1] % 3 {
        0 => json!(uuid::Uuid::from_bytes(id)),
        1 => json!(String::from_utf8_lossy(head)),
        _ => json!(i64::from(id[2])),
    };
    let claims = json!({
        "sub": sub,
        "username": String::from_utf8_lossy(tail),
        "iat": now,
        "exp": now + shift,
    });
    claims.to_string().into_bytes()
}

/// The claims a payload carries, each as JSON. Fields the server does not
/// read are skipped here as there, unchecked by serde_json (their bytes need
/// not be UTF-8, their numbers need not fit): harmless, as only the server
/// signs tokens.
#[derive(Deserialize)]
struct Sent {
    sub: Value,
    username: Value,
    exp: Value,
}

/// A token of `header` and `payload`, signed with the server's key.
fn signed(header: &str, payload: &[u8]) {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signs");
    let token = format!("{message}.{signature}");
    let before = jsonwebtoken::get_current_timestamp() as i64;
    let first = KEYS.verify_access(&token);
    let again = KEYS.verify_access(&token);
    let Ok(claims) = first else {
        assert!(again.is_err(), "refused, then accepted: {token}");
        return;
    };
    assert!(header.contains(r#""alg":"HS256""#), "accepted {header}");
    let sent: Sent = serde_json::from_slice(payload).expect("accepted claims read back");
    let sub: Option<uuid::Uuid> = serde_json::from_value(sent.sub.clone()).ok();
    assert_eq!(sub, Some(claims.sub), "{:?}", sent.sub);
    assert_eq!(sent.username, json!(claims.username));
    assert_eq!(sent.exp.as_i64(), Some(claims.exp), "{:?}", sent.exp);
    assert!(
        claims.exp >= before,
        "accepted an expired token: {claims:?}"
    );
    match again {
        Ok(again) => assert_eq!((again.sub, again.exp), (claims.sub, claims.exp)),
        // It expired between the two checks (an expiry of "now").
        Err(Refused::Invalid(e)) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
            assert!(claims.exp < jsonwebtoken::get_current_timestamp() as i64)
        }
        Err(e) => panic!("accepted, then refused: {e:?}"),
    }
}
