//! keepalived's numbers: decimal seconds, whole seconds and counts, read with a note
//! for a bad value (ignored, as keepalived does), and durations as redha writes them.

use super::Mapper;
use super::tree::Stmt;

// Number readers: a bad value is noted and ignored, as keepalived does.
impl Mapper<'_> {
    pub(super) fn secs(&mut self, it: &Stmt) -> Option<u64> {
        match it.arg(0).and_then(|a| a.parse::<u64>().ok()) {
            Some(s) if s <= u64::from(u32::MAX) => Some(s * 1000),
            _ => {
                self.bad_number(it);
                None
            }
        }
    }

    pub(super) fn decimal(&mut self, it: &Stmt) -> Option<u64> {
        let v = it.arg(0).and_then(parse_decimal_ms);
        if v.is_none() {
            self.bad_number(it);
        }
        v
    }

    /// A keepalived flag: bare means on; `true`/`yes`/`on` or `false`/`no`/`off`.
    pub(super) fn flag(&mut self, it: &Stmt) -> bool {
        match it.arg(0).map(str::to_ascii_lowercase).as_deref() {
            None | Some("true" | "yes" | "on") => true,
            Some("false" | "no" | "off") => false,
            Some(other) => {
                self.note(
                    it.line,
                    format!("{} {other}: not true or false: ignored", it.key()),
                );
                false
            }
        }
    }

    pub(super) fn count(&mut self, it: &Stmt) -> Option<u32> {
        let v = it.arg(0).and_then(|a| a.parse::<u32>().ok());
        if v.is_none() {
            self.bad_number(it);
        }
        v
    }

    pub(super) fn threshold(&mut self, it: &Stmt) -> Option<u32> {
        let v = self.count(it)?;
        let clamped = v.clamp(1, 100);
        if clamped != v {
            self.note(
                it.line,
                format!("{} {v}: redha takes 1 to 100: {clamped} used", it.key()),
            );
        }
        Some(clamped)
    }

    pub(super) fn bad_number(&mut self, it: &Stmt) {
        self.note(
            it.line,
            format!(
                "{}: not a valid number: ignored (redha's default used)",
                it.shown()
            ),
        );
    }
}

/// keepalived's decimal seconds ("5", "0.5", "0.001") in milliseconds (rounded).
pub(super) fn parse_decimal_ms(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    whole.checked_mul(1000)?.checked_add((micros + 500) / 1000)
}

/// A duration as redha writes it: "5s", "500ms".
pub(super) fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_seconds() {
        assert_eq!(parse_decimal_ms("5"), Some(5000));
        assert_eq!(parse_decimal_ms("0.5"), Some(500));
        assert_eq!(parse_decimal_ms("0.001"), Some(1));
        assert_eq!(parse_decimal_ms("1.25"), Some(1250));
        assert_eq!(parse_decimal_ms("x"), None);
        assert_eq!(parse_decimal_ms("."), None);
        assert_eq!(
            (fmt_ms(5000), fmt_ms(1250)),
            ("5s".to_string(), "1250ms".to_string())
        );
    }
}
