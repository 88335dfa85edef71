//! Console sessions: a person signs in with the same bearer token as the
//! API; the server keeps the token's id (never the token) under a random
//! session id sent as an HttpOnly, SameSite=Strict cookie, with a CSRF
//! token every form carries. The token's record is checked again on every
//! request, so a revoked or expired token ends its sessions at once.
//! Sessions die with the server.

use super::i18n::Lang;
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "inland_session";
/// The language cookie's name (a preference, not a secret).
pub const LANG_COOKIE: &str = "inland_lang";
/// How long a session lasts from sign-in.
const LIFETIME_MS: u64 = 8 * 3600 * 1000;
/// Sessions kept at most: when they are all live, new sign-ins are refused
/// (no one is signed out to make room for someone else).
const MAX_SESSIONS: usize = 4096;
/// Sessions one token may hold; its own oldest goes first.
const PER_TOKEN: usize = 8;
/// Outputs whose pages a session remembers having shown.
const REMEMBERED_OUTPUTS: usize = 64;

/// One signed-in person.
#[derive(Clone)]
pub struct Session {
    /// The id of the token they signed in with: checked again on every
    /// request (revoked or expired ends the session); the token itself is
    /// never kept.
    pub token_id: String,
    /// For each output, the pages of its rows this session was shown: an
    /// approval releases every row, so it needs every page seen.
    pub seen: HashMap<String, BTreeSet<usize>>,
    /// What every form of theirs must carry back.
    pub csrf: String,
    /// When it was created (ms since the epoch).
    pub created_ms: u64,
    /// A token this session just issued, (id, secret): shown once by the
    /// page the issue redirects to, then forgotten.
    pub issued: Option<(String, String)>,
}

/// The sessions of one server.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    /// (output, reader) pairs whose unreadable file was recorded already.
    alarms: Mutex<HashSet<(String, String)>>,
}

/// 32 random bytes as hex, or `None` if the system has no randomness.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Sessions {
    /// Opens a session for a verified `token` (id `token_id`); returns its
    /// id, or `None` when every session is taken or there is no randomness.
    pub fn open(&self, token_id: String) -> Option<String> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ms();
        map.retain(|_, s| now.saturating_sub(s.created_ms) < LIFETIME_MS);
        loop {
            let mine: Vec<(&String, u64)> = map
                .iter()
                .filter(|(_, s)| s.token_id == token_id)
                .map(|(k, s)| (k, s.created_ms))
                .collect();
            if mine.len() < PER_TOKEN {
                break;
            }
            let oldest = mine.iter().min_by_key(|(_, at)| *at).map(|(k, _)| (*k).clone())?;
            map.remove(&oldest);
        }
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        map.insert(
            id.clone(),
            Session {
                token_id,
                seen: HashMap::new(),
                csrf,
                created_ms: now,
                issued: None,
            },
        );
        Some(id)
    }

    /// Remembers that session `id` was shown page `page` of `output`'s rows.
    pub fn saw(&self, id: &str, output: &str, page: usize) {
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get_mut(id) {
            if !s.seen.contains_key(output) && s.seen.len() >= REMEMBERED_OUTPUTS {
                s.seen.clear();
            }
            s.seen.entry(output.to_string()).or_default().insert(page);
        }
    }

    /// Whether an unreadable output was recorded for `reader` already; marks it.
    pub fn first_alarm(&self, output: &str, reader: &str) -> bool {
        let mut set = self.alarms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert((output.to_string(), reader.to_string()))
    }

    /// The live session `id` names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(id)
            .filter(|s| now_ms().saturating_sub(s.created_ms) < LIFETIME_MS)
            .cloned()
    }

    /// Keeps a token's secret for the one page that shows it.
    pub fn keep_issued(&self, id: &str, token_id: String, secret: String) {
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get_mut(id) {
            s.issued = Some((token_id, secret));
        }
    }

    /// The secret kept for the page that shows it; gone once taken.
    pub fn take_issued(&self, id: &str) -> Option<(String, String)> {
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get_mut(id).and_then(|s| s.issued.take())
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        let mut map = self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(id);
    }
}

/// The value of cookie `name` in the request's headers; none if it is sent
/// twice (one may have been planted with a narrower path to shadow the other).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string());
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// The language the person chose, or Chinese.
pub fn lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(|c| Lang::parse(&c))
        .unwrap_or_default()
}

/// The `Set-Cookie` value of a session: unreadable to scripts, never sent
/// from another site, only to the console.
/// Over TLS the cookie is `Secure`: a browser never sends it in plain text.
pub fn session_cookie(id: &str, tls: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME_MS / 1000,
        secure(tls)
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn cleared_cookie(tls: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(tls)
    )
}

/// The cookie attribute that keeps a cookie to TLS, where the server speaks it.
pub fn secure(tls: bool) -> &'static str {
    if tls { "; Secure" } else { "" }
}

/// Whether `given` is the session's CSRF token, compared in constant time.
pub fn csrf_matches(session: &Session, given: &str) -> bool {
    let (a, b) = (session.csrf.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
