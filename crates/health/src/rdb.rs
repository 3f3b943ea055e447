//! The start of an RDB file: the `REDIS` magic, the format version and the
//! auxiliary fields that follow it.
//!
//! Redis writes its auxiliary fields (opcode `0xFA`, a name and a value)
//! before the first database. For a snapshot made for replication they
//! include the replication history it covers: `repl-id` (the server's
//! `master_replid` at the time) and `repl-offset` (its `master_repl_offset`),
//! which [`crate::dump`] reports for the log. Only this header is read; the
//! keys are not.

use thiserror::Error;

/// The magic every RDB file starts with.
pub const RDB_MAGIC: &[u8; 5] = b"REDIS";

/// What the header of an RDB file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdbHeader {
    /// The format version (`REDIS0010` is 10: Redis 7.0).
    pub version: u32,
    /// The auxiliary fields read, in order. Integer-encoded values are given
    /// in decimal; LZF-compressed ones are left out. Fields past the bytes
    /// given to [`parse_rdb_header`] are missing.
    pub aux: Vec<(String, String)>,
}

impl RdbHeader {
    /// The value of auxiliary field `name`.
    pub fn aux(&self, name: &str) -> Option<&str> {
        self.aux
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `redis-ver`: the version of the Redis that wrote the file.
    pub fn redis_version(&self) -> Option<&str> {
        self.aux("redis-ver")
    }

    /// `repl-id`: the replication id the snapshot belongs to.
    pub fn repl_id(&self) -> Option<&str> {
        self.aux("repl-id")
    }

    /// `repl-offset`: the replication offset the snapshot was taken at.
    pub fn repl_offset(&self) -> Option<u64> {
        self.aux("repl-offset")?.parse().ok()
    }
}

/// Why bytes are not the start of an RDB file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RdbHeaderError {
    /// Fewer than the 9 bytes of `REDISnnnn`.
    #[error("{0} bytes, too short for an RDB header")]
    TooShort(usize),
    /// It does not start with `REDIS`.
    #[error("does not start with \"REDIS\" but {0:?}")]
    NoMagic(String),
    /// `REDIS` is not followed by four digits.
    #[error("bad RDB version {0:?}")]
    BadVersion(String),
}

/// Parses the header at the start of `bytes` (a prefix of the file is
/// enough: a few hundred bytes hold the usual auxiliary fields). Strict
/// about the magic and version, lenient after that: the auxiliary fields are
/// read as far as they go, up to the first other opcode or the end of
/// `bytes`.
pub fn parse_rdb_header(bytes: &[u8]) -> Result<RdbHeader, RdbHeaderError> {
    if bytes.len() < 9 {
        if !RDB_MAGIC.starts_with(&bytes[..bytes.len().min(5)]) {
            return Err(RdbHeaderError::NoMagic(shown(bytes)));
        }
        return Err(RdbHeaderError::TooShort(bytes.len()));
    }
    if &bytes[..5] != RDB_MAGIC {
        return Err(RdbHeaderError::NoMagic(shown(&bytes[..9])));
    }
    let digits = &bytes[5..9];
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(RdbHeaderError::BadVersion(shown(digits)));
    }
    let version = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| RdbHeaderError::BadVersion(shown(digits)))?;
    let mut reader = Reader { bytes, pos: 9 };
    let mut aux = Vec::new();
    while reader.peek() == Some(OPCODE_AUX) {
        reader.pos += 1;
        let (Some(key), Some(value)) = (reader.string(), reader.string()) else {
            break;
        };
        if let (Str::Text(key), Str::Text(value)) = (key, value) {
            aux.push((key, value));
        }
    }
    Ok(RdbHeader { version, aux })
}

const OPCODE_AUX: u8 = 0xFA;

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A string of the RDB format: text (or an integer as decimal), or an LZF
/// compressed one (skipped).
enum Str {
    Text(String),
    Compressed,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A length, or `Err(encoding)` for the special string encodings.
    fn length(&mut self) -> Option<Result<u64, u8>> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Ok(u64::from(first & 0x3F)),
            1 => Ok(u64::from(first & 0x3F) << 8 | u64::from(self.byte()?)),
            2 if first == 0x80 => Ok(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            2 if first == 0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            2 => return None,
            _ => Err(first & 0x3F),
        })
    }

    fn string(&mut self) -> Option<Str> {
        match self.length()? {
            Ok(len) => {
                let bytes = self.take(usize::try_from(len).ok()?)?;
                Some(Str::Text(shown(bytes)))
            }
            Err(0) => Some(Str::Text((self.byte()? as i8).to_string())),
            Err(1) => Some(Str::Text(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?).to_string(),
            )),
            Err(2) => Some(Str::Text(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?).to_string(),
            )),
            Err(3) => {
                let compressed = self.length()?.ok()?;
                let _uncompressed = self.length()?.ok()?;
                self.take(usize::try_from(compressed).ok()?)?;
                Some(Str::Compressed)
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of an RDB that Redis 7.0.15 sent for `SYNC` (five keys).
    const REDIS_7_0: &[u8] =
        b"REDIS0010\xfa\tredis-ver\x067.0.15\xfa\nredis-bits\xc0@\xfa\x05ctime\
\xc2B\x16\x10k\xfa\x08used-mem\xc2\xe0\xe1\x13\x00\xfa\x0erepl-stream-db\xc0\x00\xfa\x07repl-id(\
4faf53ad46ca22fab05290692ab67cb0e95fe4ff\xfa\x0brepl-offset\xc0\x00\xfa\x08aof-base\xc0\x00\xfe\
\x00\xfb\x05\x00\x00\x02k2\x02v2";

    #[test]
    fn redis_7_0_header() {
        let h = parse_rdb_header(REDIS_7_0).unwrap();
        assert_eq!(h.version, 10);
        assert_eq!(h.redis_version(), Some("7.0.15"));
        assert_eq!(h.aux("redis-bits"), Some("64"));
        assert_eq!(h.aux("ctime"), Some("1796216386"));
        assert_eq!(
            h.repl_id(),
            Some("4faf53ad46ca22fab05290692ab67cb0e95fe4ff")
        );
        assert_eq!(h.repl_offset(), Some(0));
        assert_eq!(h.aux.len(), 8);
        // A prefix gives the fields it holds.
        let h = parse_rdb_header(&REDIS_7_0[..40]).unwrap();
        assert_eq!(h.redis_version(), Some("7.0.15"));
        assert_eq!(h.repl_id(), None);
    }

    #[test]
    fn lengths_and_encodings() {
        // 14-bit length, 32-bit length, int16, int32 (negative), LZF skipped.
        let mut rdb = b"REDIS0009".to_vec();
        rdb.extend(b"\xfa\x01a\x40\x03xyz");
        rdb.extend(b"\xfa\x01b\x80\x00\x00\x00\x02hi");
        rdb.extend(b"\xfa\x01c\xc1\x39\x30");
        rdb.extend(b"\xfa\x01d\xc2\xff\xff\xff\xff");
        rdb.extend(b"\xfa\x01e\xc3\x02\x05ab");
        rdb.extend(b"\xfa\x01f\x01z\xfe\x00");
        let h = parse_rdb_header(&rdb).unwrap();
        assert_eq!(h.version, 9);
        let aux: Vec<(&str, &str)> = h.aux.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(
            aux,
            [
                ("a", "xyz"),
                ("b", "hi"),
                ("c", "12345"),
                ("d", "-1"),
                ("f", "z")
            ]
        );
    }

    #[test]
    fn not_rdb() {
        assert_eq!(
            parse_rdb_header(b"-ERR no"),
            Err(RdbHeaderError::NoMagic("-ERR no".into()))
        );
        assert_eq!(parse_rdb_header(b"REDIS"), Err(RdbHeaderError::TooShort(5)));
        assert_eq!(
            parse_rdb_header(b"+FULLRESYNC 0123"),
            Err(RdbHeaderError::NoMagic("+FULLRESY".into()))
        );
        assert_eq!(
            parse_rdb_header(b"REDISx010"),
            Err(RdbHeaderError::BadVersion("x010".into()))
        );
        assert!(parse_rdb_header(b"").is_err());
    }
}
