//! Identifier patterns in cell text: resident ID numbers, unified social
//! credit codes, mainland mobile numbers, bank card numbers and e-mail
//! addresses, found anywhere in a cell, not only as the whole of it.
//!
//! A hostile job disguises them, so the text is normalised first: Unicode
//! NFKC (full-width digits and `＠` become ASCII), separators between digits
//! removed (`1101 0519…`, `4111-1111-…`), country prefixes (`+86`, `0086`)
//! recognised, and numbers in float form read back as digits (an ID stored
//! as a double keeps its region and birth date).

use inland_policies::identifiers::{is_bank_card, is_mobile, is_resident_id, is_uscc};
use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;

/// The kind of identifier a cell holds, if any.
pub fn find(text: &str) -> Option<&'static str> {
    let normal = normalize(text);
    find_normalized(&normal).or_else(|| float_id(&normal))
}

/// Whether any word of a cell, normalised as for the patterns (and each run
/// of digits inside a word), passes `hit`: a registered identifier value
/// written inside text (`resident 110105…X moved`, `张伟/东城区`).
pub fn any_word(text: &str, mut hit: impl FnMut(&str) -> bool) -> bool {
    let normal = normalize(text);
    // Words end at anything not a letter or digit, and where ASCII meets
    // other script (`注册号AB12345678`).
    let mut words = Vec::new();
    let mut start = None;
    let mut last_ascii = false;
    for (i, c) in normal.char_indices() {
        let boundary = !c.is_alphanumeric() || (start.is_some() && c.is_ascii() != last_ascii);
        if boundary && let Some(s) = start.take() {
            words.push(&normal[s..i]);
        }
        if c.is_alphanumeric() && start.is_none() {
            start = Some(i);
        }
        last_ascii = c.is_ascii();
    }
    if let Some(s) = start {
        words.push(&normal[s..]);
    }
    for word in words.into_iter().filter(|w| w.len() >= 2) {
        if word.len() != normal.len() && hit(word) {
            return true;
        }
        if digit_runs(word).any(|run| run.len() >= 2 && hit(run)) {
            return true;
        }
    }
    false
}

/// The runs of digits inside a word (each with a trailing check character
/// `X`), except a run that is the whole word.
fn digit_runs(word: &str) -> impl Iterator<Item = &str> {
    let bytes = word.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
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
            if (start, end) != (0, bytes.len()) {
                return word.get(start..end);
            }
        }
        None
    })
}

/// Separators a job may put between the digits of an identifier.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '-' | '_' | '/' | '\u{00A0}' | '\u{00B7}' | '\u{2010}'..='\u{2015}' | '\u{2212}'
    )
}

/// NFKC, then separators between two digits (or a digit and a check `X`) dropped.
fn normalize(text: &str) -> Cow<'_, str> {
    // Most cells are plain ASCII words and numbers: nothing to change.
    let separated = |w: &[u8]| w[0].is_ascii_digit() && is_separator(char::from(w[1]));
    if text.is_ascii() && !text.as_bytes().windows(2).any(separated) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.nfkc().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if is_separator(c) {
            let after_digit = out.chars().next_back().is_some_and(|p| p.is_ascii_digit());
            let before_digit = chars[i + 1..]
                .iter()
                .find(|n| !is_separator(**n))
                .is_some_and(|n| n.is_ascii_digit() || *n == 'X' || *n == 'x');
            if after_digit && before_digit {
                continue;
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A number written as a float (`1.1010519491231002e17`, `110105194912310016.0`)
/// whose digits begin like a resident ID number: a region code and a birth date.
fn float_id(text: &str) -> Option<&'static str> {
    if text.len() < 15 {
        return None;
    }
    let numeric = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-');
    for token in text.split(|c: char| !numeric(c)).filter(|t| t.len() >= 6) {
        let Ok(value) = token.parse::<f64>() else { continue };
        if !(1e14..1e18).contains(&value.abs()) {
            continue;
        }
        let digits = format!("{:.0}", value.abs());
        if (15..=18).contains(&digits.len()) && id_prefix(&digits) {
            return Some("a resident ID number (written as a number)");
        }
    }
    None
}

/// Whether digits start with a region code (first digit 1 to 8) and a birth
/// date from 1900 on, as the first 14 characters of a resident ID number do.
fn id_prefix(digits: &str) -> bool {
    let d = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let (Some(first), Some(year), Some(month), Some(day)) = (d(0..1), d(6..10), d(10..12), d(12..14)) else {
        return false;
    };
    (1..=8).contains(&first) && (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// [`find`] on text already normalised.
fn find_normalized(text: &str) -> Option<&'static str> {
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
        if let Some(kind) = digit_runs(token).find_map(token_kind) {
            return Some(kind);
        }
    }
    None
}

fn token_kind(t: &str) -> Option<&'static str> {
    // A mobile number with its country code in front: 86138…, 0086138….
    for prefix in ["0086", "86"] {
        if let Some(rest) = t.strip_prefix(prefix)
            && rest.len() == 11
            && is_mobile(rest)
        {
            return Some("a mobile number");
        }
    }
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

/// A character that writes a number: a digit of any script, and the CJK
/// numerals (common and financial forms), which Unicode files as letters,
/// so a number spelled `一一四九六` is still a number.
pub fn numeral(c: char) -> bool {
    c.is_numeric() || "〇零一二三四五六七八九十百千万亿兆壹贰貳叁參肆伍陆陸柒捌玖拾佰仟萬億两兩廿卅".contains(c)
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
    fn disguised_identifiers_are_found() {
        for (disguised, kind) in [
            ("1101 0519 4912 3100 2X", "a resident ID number"),
            ("110105-19491231-002X", "a resident ID number"),
            ("１１０１０５１９４９１２３１００２Ｘ", "a resident ID number"),
            ("4111 1111 1111 1111", "a bank card number"),
            ("4111-1111-1111-1111", "a bank card number"),
            ("+86 138 1234 5678", "a mobile number"),
            ("0086-13812345678", "a mobile number"),
            ("+8613812345678", "a mobile number"),
            ("li.si＠example.cn", "an e-mail address"),
            ("110105194912310016.0", "a resident ID number (written as a number)"),
            ("id: 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 X", "a resident ID number"),
        ] {
            assert_eq!(find(disguised), Some(kind), "{disguised}");
        }
        // Flagged, whatever the digits also look like: a double keeps 17 of the 18.
        for flagged in [
            "1.1010519491231002e17",
            // A wrong check character hides nothing: region, birth date and sequence remain.
            "11010519491231002Y",
        ] {
            assert!(find(flagged).is_some(), "{flagged}");
        }
    }

    #[test]
    fn ordinary_cells_pass() {
        for ok in [
            "延庆区",
            "12345",
            "3.14159",
            "2024-05-01",
            "4111111111111112",
            "a@b",
            "total",
            "12 345 678",
            "1234567.89",
            "3.0e15",
            "2024-05-01 to 2024-06-30",
        ] {
            assert_eq!(find(ok), None, "{ok}");
        }
    }
}
