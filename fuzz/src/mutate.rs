//! The generator: a seeded PRNG and structured mutations of a seed corpus, so that
//! the same `(target, seed, count)` always yields the same inputs.

use std::collections::BTreeSet;

use crate::Target;

/// SplitMix64: small, fast, and good enough to drive mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x05ee_d0f4_ed4a)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values that break parsers: bounds of integer types, signs, huge numbers, odd
/// durations and addresses.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e309",
    "0x10",
    "00",
    "1.5",
    "\"1s\"",
    "\"0s\"",
    "\"18446744073709551615s\"",
    "\"1ns\"",
    "\"255s\"",
    "\"256s\"",
    "\"1.5s\"",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.18",
    "192.0.2.100/33",
    "192.0.2.100/24",
    "::1",
    "\"\"",
];

/// Tokens that matter to each syntax, beside the words of the seeds.
fn specials(target: Target) -> &'static [&'static str] {
    match target {
        Target::VrrpDecode => &[],
        Target::InfoParse => &[
            "\n",
            "\r\n",
            ":",
            "#",
            ",",
            "=",
            "# Replication\n",
            "# Keyspace\n",
            "slave0:",
            "db0:keys=",
            "role:slave\n",
            "role:master\n",
            "master_link_status:up\n",
            "second_repl_offset:-1\n",
            "master_replid2:0000000000000000000000000000000000000000\n",
        ],
        Target::ConfigParse => &[
            "\n",
            "[",
            "]",
            "[[",
            "]]",
            "=",
            "\"",
            "'",
            "'''",
            "\"\"\"",
            "{",
            "}",
            ",",
            "#",
            ".",
            "\\",
            "\\u0000",
            "[vrrp]\n",
            "[redis]\n",
            "[replication]\n",
            "[metrics]\n",
            "[state_log]\n",
            "[control]\n",
            "[vrrp.x]\n",
            "inf",
            "nan",
            "true",
            "false",
            "1979-05-27T07:32:00Z",
        ],
        Target::Migrate => &[
            "\n",
            "{",
            "}",
            " { ",
            " }\n",
            "\"",
            "\\",
            "\\\n",
            "!",
            "#",
            "vrrp_instance VI_1 {\n",
            "vrrp_script chk {\n",
            "virtual_ipaddress {\n",
            "track_script {\n",
            "unicast_peer {\n",
            "authentication {\n",
            "auth_type PASS\n",
            "auth_pass ",
            "notify_master ",
            "script ",
            "state MASTER\n",
            "nopreempt\n",
            "include ",
            "@",
            "dev eth0",
            "SLAVEOF ",
            "REPLICAOF ",
            "redis-cli -h ",
            " -p ",
            " -a ",
            "\n#%% /etc/keepalived/scripts/redis_master.sh\n",
        ],
    }
}

/// The seeds of one target and what mutations draw from them.
#[derive(Clone, Debug)]
pub struct Mutator {
    target: Target,
    seeds: Vec<Vec<u8>>,
    /// Words of the seeds and the target's special tokens.
    dictionary: Vec<Vec<u8>>,
    /// Lines of the seeds (text targets).
    lines: Vec<Vec<u8>>,
    max_len: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')
}

impl Mutator {
    /// A mutator over `seeds` (at least one; an empty input is used otherwise).
    pub fn new(target: Target, seeds: Vec<Vec<u8>>) -> Self {
        let seeds = if seeds.is_empty() {
            vec![Vec::new()]
        } else {
            seeds
        };
        let mut words = BTreeSet::new();
        let mut lines = BTreeSet::new();
        if target.is_text() {
            for seed in &seeds {
                for word in seed.split(|b| !is_word(*b)).filter(|w| !w.is_empty()) {
                    words.insert(word.to_vec());
                }
                for line in seed.split_inclusive(|b| *b == b'\n') {
                    lines.insert(line.to_vec());
                }
            }
            for s in specials(target).iter().chain(NUMBERS) {
                words.insert(s.as_bytes().to_vec());
            }
        }
        let longest = seeds.iter().map(Vec::len).max().unwrap_or(0);
        Mutator {
            target,
            seeds,
            dictionary: words.into_iter().collect(),
            lines: lines.into_iter().collect(),
            max_len: (longest * 2).clamp(64, 64 * 1024),
        }
    }

    /// The seeds.
    pub fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    /// One input: a seed (unchanged now and then) under 1 to 8 stacked mutations.
    pub fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        let mut data = rng.pick(&self.seeds).clone();
        if rng.one_in(50) {
            return data;
        }
        let rounds = 1 + rng.below(8);
        for _ in 0..rounds {
            if self.target.is_text() && rng.one_in(2) {
                self.mutate_text(rng, &mut data);
            } else {
                self.mutate_bytes(rng, &mut data);
            }
        }
        data.truncate(self.max_len);
        if self.target == Target::VrrpDecode && !rng.one_in(3) {
            fix_vrrp(&mut data, rng);
        }
        data
    }

    fn mutate_bytes(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let len = data.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x20, 0x21, 0x45]);
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                data.drain(at..at + n);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(32));
                let chunk = data[from..from + n].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            5 => {
                let other = rng.pick(&self.seeds);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            6 if len >= 2 => {
                let i = rng.below(len - 1);
                let v: u16 = *rng.pick(&[0, 1, 0xffff, 0x7fff, 0x8000, 0x00ff, 0x0100, 20, 24]);
                data[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            7 if len > 0 => data.truncate(rng.below(len)),
            _ if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }

    fn mutate_text(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = data
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        match rng.below(8) {
            0 if !lines.is_empty() => {
                lines.remove(rng.below(lines.len()));
            }
            1 if !lines.is_empty() => {
                let i = rng.below(lines.len());
                let line = lines[i].clone();
                lines.insert(rng.below(lines.len() + 1), line);
            }
            2 if lines.len() >= 2 => {
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(a, b);
            }
            3 if !self.lines.is_empty() => {
                let line = rng.pick(&self.lines).clone();
                lines.insert(rng.below(lines.len() + 1), line);
            }
            4 | 5 => {
                // Replace a word with a dictionary token.
                let words: Vec<(usize, usize)> = word_spans(data);
                if let Some(&(start, end)) = (!words.is_empty()).then(|| rng.pick(&words)) {
                    let token = rng.pick(&self.dictionary).clone();
                    data.splice(start..end, token);
                    return;
                }
                let token = rng.pick(&self.dictionary).clone();
                data.extend_from_slice(&token);
                return;
            }
            6 => {
                let token = rng.pick(&self.dictionary).clone();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, token);
                return;
            }
            _ if !lines.is_empty() => {
                // Cut a line short, or drop its line end.
                let i = rng.below(lines.len());
                let n = lines[i].len();
                lines[i].truncate(rng.below(n + 1));
            }
            _ => {}
        }
        *data = lines.concat();
    }
}

fn word_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in data.iter().enumerate() {
        match (is_word(*b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, data.len()));
    }
    spans
}

/// Makes a mutated datagram consistent again, most of the time, so that mutations
/// reach the checks behind the length and checksum checks: the IPv4 total length
/// (sometimes), the VRRP address count (sometimes) and the VRRP checksum (VRRPv3:
/// mostly over the pseudo-header, sometimes as v2). An input that starts with a
/// VRRPv3 header is an IPv6 payload ([`crate::targets::IPV6_SOURCE`] to
/// [`crate::targets::IPV6_DESTINATION`]): its checksum is fixed over that
/// pseudo-header.
fn fix_vrrp(data: &mut [u8], rng: &mut Rng) {
    if data.len() >= 8 && data[0] >> 4 == 3 {
        let len = (8 + 16 * usize::from(data[3])).min(data.len());
        let scope = vrrp::packet::ChecksumScope::Ipv6Pseudo {
            source: crate::targets::IPV6_SOURCE,
            destination: crate::targets::IPV6_DESTINATION,
        };
        fill_checksum(&mut data[..len], scope);
        return;
    }
    if data.len() < 20 || data[0] >> 4 != 4 {
        return;
    }
    let header = usize::from(data[0] & 0x0f) * 4;
    if header < 20 || header > data.len() {
        return;
    }
    if !rng.one_in(4)
        && let Ok(total) = u16::try_from(data.len())
    {
        data[2..4].copy_from_slice(&total.to_be_bytes());
    }
    let ip4 =
        |at: usize| std::net::Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
    let (source, destination) = (ip4(12), ip4(16));
    let vrrp = &mut data[header..];
    if vrrp.len() < 8 {
        return;
    }
    let v3 = vrrp[0] >> 4 == 3;
    let auth = if v3 { 0 } else { 8 };
    if rng.one_in(3) && vrrp.len() >= 8 + auth {
        vrrp[3] = u8::try_from((vrrp.len() - 8 - auth) / 4).unwrap_or(255);
    }
    let len = (8 + 4 * usize::from(vrrp[3]) + auth).min(vrrp.len());
    let scope = if v3 && !rng.one_in(3) {
        vrrp::packet::ChecksumScope::Ipv4Pseudo {
            source,
            destination,
        }
    } else {
        vrrp::packet::ChecksumScope::Message
    };
    fill_checksum(&mut vrrp[..len], scope);
}

/// Writes the checksum of `message` (bytes 6 and 7) over `scope`.
fn fill_checksum(message: &mut [u8], scope: vrrp::packet::ChecksumScope) {
    if message.len() < 8 {
        return;
    }
    message[6..8].copy_from_slice(&[0, 0]);
    let sum = vrrp::packet::checksum_with(scope, message);
    message[6..8].copy_from_slice(&sum.to_be_bytes());
}
