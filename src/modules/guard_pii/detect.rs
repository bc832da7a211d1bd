//! The personal-data scanner. Regular expressions find candidates; checksums (Luhn for cards,
//! mod 97 for IBANs) and range checks (SSN areas, IP octets) drop the near-misses.

use regex::Regex;

use super::PiiConfig;
use crate::modules::guard::gate::has_digit;
use crate::modules::guard::{Finding, Scanner, tail_after};

pub struct PiiScanner {
    email: Option<Regex>,
    phone: Option<Regex>,
    card: Option<Regex>,
    iban: Option<Regex>,
    ssn: Option<Regex>,
    ipv4: Option<Regex>,
    ipv6: Option<Regex>,
}

fn compile(on: bool, pattern: &str) -> Result<Option<Regex>, String> {
    if !on {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|e| format!("pattern: {e}"))
}

impl PiiScanner {
    pub fn new(config: &PiiConfig) -> Result<PiiScanner, String> {
        Ok(PiiScanner {
            email: compile(
                config.email,
                r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b",
            )?,
            // International (+CC ...) or a parenthesised/separated national number; at least 9
            // digits so dates, versions and counts stay out.
            phone: compile(
                config.phone,
                r"(?:\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4})\b",
            )?,
            card: compile(config.card, r"\b\d(?:[ -]?\d){12,18}\b")?,
            iban: compile(
                config.iban,
                r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            )?,
            ssn: compile(config.ssn, r"\b\d{3}-\d{2}-\d{4}\b")?,
            ipv4: compile(config.ip, r"\b(?:\d{1,3}\.){3}\d{1,3}\b")?,
            ipv6: compile(
                config.ip,
                r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4}\b",
            )?,
        })
    }
}

impl Scanner for PiiScanner {
    fn scan(&self, text: &str, out: &mut Vec<Finding>) {
        let has_digit = has_digit(text);
        if let Some(re) = &self.email
            && text.contains('@')
        {
            for m in re.find_iter(text) {
                out.push(Finding::new("email", "EMAIL", m.start(), m.end()));
            }
        }
        if !has_digit {
            return;
        }
        let before = out.len();
        if let Some(re) = &self.card {
            for m in re.find_iter(text) {
                if luhn_ok(m.as_str()) {
                    out.push(Finding::new("card_number", "CARD", m.start(), m.end()));
                }
            }
        }
        if let Some(re) = &self.iban {
            for m in re.find_iter(text) {
                if iban_ok(m.as_str()) {
                    out.push(Finding::new("iban", "IBAN", m.start(), m.end()));
                }
            }
        }
        if let Some(re) = &self.ssn {
            for m in re.find_iter(text) {
                if ssn_ok(m.as_str()) {
                    out.push(Finding::new("us_ssn", "SSN", m.start(), m.end()));
                }
            }
        }
        if let Some(re) = &self.ipv4 {
            for m in re.find_iter(text) {
                if m.as_str().split('.').all(|o| o.parse::<u8>().is_ok())
                    && !version_like(text, m.start())
                {
                    out.push(Finding::new("ip_address", "IP", m.start(), m.end()));
                }
            }
        }
        if let Some(re) = &self.ipv6
            && text.contains(':')
        {
            for m in re.find_iter(text) {
                if m.as_str().matches(':').count() >= 3 {
                    out.push(Finding::new("ip_address", "IP", m.start(), m.end()));
                }
            }
        }
        if let Some(re) = &self.phone {
            for m in re.find_iter(text) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                // A number another rule already took (a card, an SSN) is not a phone too.
                let taken = out[before..]
                    .iter()
                    .any(|f| f.start < m.end() && m.start() < f.end);
                if (9..=15).contains(&digits) && !taken {
                    out.push(Finding::new("phone", "PHONE", m.start(), m.end()));
                }
            }
        }
    }

    /// The unfinished word (an address), or a number still being written with spaces, dashes
    /// and dots inside (`+44 20 7946 0958`, `GB82 WEST 1234`); prose after a space goes at once.
    fn pending_tail(&self, text: &str) -> usize {
        let word = tail_after(text, char::is_whitespace);
        let run = tail_after(text, |c| {
            !(c.is_ascii_digit() || c.is_ascii_uppercase() || " +-.()".contains(c))
        });
        let run = &text[text.len() - run..];
        let number = run.trim_start_matches(|c: char| {
            !(c.is_ascii_digit() || c.is_ascii_uppercase() || c == '+' || c == '(')
        });
        let number = if number.bytes().any(|b| b.is_ascii_digit()) {
            number.len()
        } else {
            0
        };
        word.max(number).min(64)
    }
}

/// `v1.2.3.4`-style versions are not addresses.
fn version_like(text: &str, start: usize) -> bool {
    text[..start].ends_with(['v', 'V'])
}

pub fn luhn_ok(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn iban_ok(candidate: &str) -> bool {
    let compact: Vec<char> = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rearranged {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

fn ssn_ok(candidate: &str) -> bool {
    let mut parts = candidate.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_tell_real_numbers_from_near_misses() {
        assert!(luhn_ok("4111 1111 1111 1111"));
        assert!(!luhn_ok("4111 1111 1111 1112"));
        assert!(iban_ok("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_ok("GB83 WEST 1234 5698 7654 32"));
        assert!(ssn_ok("123-45-6789"));
        assert!(!ssn_ok("666-45-6789"));
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn prose_goes_at_once_and_a_number_being_written_waits() {
        let scanner = PiiScanner::new(&PiiConfig::default()).expect("scanner");
        assert_eq!(scanner.pending_tail("the weather is fine "), 0);
        assert_eq!(scanner.pending_tail("call me on +44 20 "), "+44 20 ".len());
        assert_eq!(
            scanner.pending_tail("write to anna.k@exa"),
            "anna.k@exa".len()
        );
    }
}
