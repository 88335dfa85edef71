//! Identifier patterns in cell text: resident ID numbers, unified social
//! credit codes, mainland mobile numbers, bank card numbers and e-mail
//! addresses, found anywhere in a cell, not only as the whole of it.

use inland_policies::identifiers::{is_bank_card, is_mobile, is_resident_id, is_uscc};

/// The kind of identifier a cell holds, if any.
pub fn find(text: &str) -> Option<&'static str> {
    if looks_like_email(text) {
        return Some("an e-mail address");
    }
    for token in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 11)
    {
        if let Some(kind) = token_kind(token) {
            return Some(kind);
        }
        // Digits glued to letters ("id110105...X"): look at each run of digits
        // (with a trailing check character X) on its own.
        let bytes = token.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let end = if i < bytes.len() && (bytes[i] == b'X' || bytes[i] == b'x') {
                i + 1
            } else {
                i
            };
            if (start, end) != (0, bytes.len())
                && let Some(kind) = token.get(start..end).and_then(token_kind)
            {
                return Some(kind);
            }
        }
    }
    None
}

fn token_kind(t: &str) -> Option<&'static str> {
    if t.len() == 18 && is_resident_id(t) {
        return Some("a resident ID number");
    }
    if t.len() == 18 && is_uscc(&t.to_ascii_uppercase()) {
        return Some("a unified social credit code");
    }
    if is_mobile(t) {
        return Some("a mobile number");
    }
    if is_bank_card(t) {
        return Some("a bank card number");
    }
    None
}

fn looks_like_email(text: &str) -> bool {
    let Some(at) = text.find('@') else {
        return false;
    };
    let local = text[..at].rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
    let domain = text[at + 1..].split(|c: char| c.is_whitespace()).next().unwrap_or("");
    !local.is_empty()
        && domain.contains('.')
        && domain
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_alone_and_inside_text() {
        assert_eq!(find("11010519491231002X"), Some("a resident ID number"));
        assert_eq!(find("id:11010519491231002X;"), Some("a resident ID number"));
        assert_eq!(find("91350100M000100Y43"), Some("a unified social credit code"));
        assert_eq!(find("call 13812345678"), Some("a mobile number"));
        assert_eq!(find("4111111111111111"), Some("a bank card number"));
        assert_eq!(find("write to li.si@example.cn please"), Some("an e-mail address"));
        assert_eq!(find("x13812345678y"), Some("a mobile number"));
        assert_eq!(find("id11010519491231002Xend"), Some("a resident ID number"));
    }

    #[test]
    fn ordinary_cells_pass() {
        for ok in [
            "延庆区",
            "12345",
            "3.14159",
            "2024-05-01",
            "11010519491231002Y",
            "4111111111111112",
            "a@b",
            "total",
        ] {
            assert_eq!(find(ok), None, "{ok}");
        }
    }
}
