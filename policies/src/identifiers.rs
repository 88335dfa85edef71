//! Check-digit algorithms for Chinese identifiers (GB 11643 resident ID
//! numbers, GB 32100 unified social credit codes), mainland mobile numbers and
//! bank cards (Luhn). Used to generate valid synthetic identifiers and to
//! detect real-looking ones in outputs.

const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character (ISO 7064 MOD 11-2) for the first 17 digits of a resident ID number.
/// Returns `None` unless `body` is exactly 17 ASCII digits.
pub fn resident_id_check(body: &str) -> Option<char> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in body.chars().zip(RESIDENT_WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(RESIDENT_CHECK[(sum % 11) as usize])
}

/// Whether `s` is an 18-character resident ID number with a valid check character.
pub fn is_resident_id(s: &str) -> bool {
    s.len() == 18
        && s.is_char_boundary(17)
        && resident_id_check(&s[..17]) == s[17..].chars().next().map(|c| c.to_ascii_uppercase())
}

/// The 31 characters of a unified social credit code (no I, O, Z, S, V).
pub const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn uscc_value(c: char) -> Option<u32> {
    USCC_CHARSET.find(c).map(|i| i as u32)
}

/// The check character (GB 32100) for the first 17 characters of a unified social credit code.
pub fn uscc_check(body: &str) -> Option<char> {
    if body.chars().count() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in body.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    USCC_CHARSET.chars().nth(check as usize)
}

/// Whether `s` is an 18-character unified social credit code with a valid check character.
pub fn is_uscc(s: &str) -> bool {
    s.len() == 18 && s.is_ascii() && uscc_check(&s[..17]) == s[17..].chars().next()
}

/// Whether `s` looks like a mainland mobile number: 11 digits starting with 13–19.
pub fn is_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11 && b.iter().all(u8::is_ascii_digit) && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// Whether `s` is a 16–19 digit number that passes the Luhn check, as bank cards do.
pub fn is_bank_card(s: &str) -> bool {
    let b = s.as_bytes();
    if !(16..=19).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_check_matches_the_published_example() {
        // The worked example of GB 11643-1999, appendix.
        assert_eq!(resident_id_check("11010519491231002"), Some('X'));
        assert!(is_resident_id("11010519491231002X"));
        assert!(is_resident_id("11010519491231002x"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("11010519491231002"));
    }

    #[test]
    fn uscc_check_accepts_valid_and_rejects_altered_codes() {
        // A code often cited as a valid example.
        assert_eq!(uscc_check("91350100M000100Y4"), Some('3'));
        assert!(is_uscc("91350100M000100Y43"));
        assert!(!is_uscc("91350100M000100Y53"));
        assert!(!is_uscc("91350100M000100Y44"));
        assert_eq!(uscc_check("91350100M000100YI"), None, "I is not in the charset");
    }

    #[test]
    fn mobile_and_bank_card_shapes() {
        assert!(is_mobile("13812345678"));
        assert!(!is_mobile("12812345678"));
        assert!(!is_mobile("1381234567"));
        assert!(is_bank_card("4111111111111111"));
        assert!(!is_bank_card("4111111111111112"));
        assert!(!is_bank_card("411111111111"));
    }
}
