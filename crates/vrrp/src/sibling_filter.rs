//! A classic BPF program for an instance's IPv4 raw socket that makes the kernel
//! drop the adverts of the agent's other instances on the same interface (their
//! VRIDs), before they wake this instance up: with many instances on one interface
//! each instance would otherwise read, decode and throw away every other instance's
//! adverts (150 instances at 1 s: 22,500 datagrams a second).
//!
//! The program sees the datagram from its IPv4 header on. It takes a datagram too
//! short to hold a VRID (so that the instance counts it as truncated), reads the
//! VRID (the VRRP header's second byte, after the IPv4 header's IHL x 4 bytes) and
//! drops it if it is one of the siblings'; everything else is taken. What the
//! kernel lets through still goes through every receive check.

use socket2::SockFilter;

// Classic BPF opcodes (linux/filter.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const B: u16 = 0x10;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;
const ADD: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGE: u16 = 0x30;
const K: u16 = 0x00;
const X: u16 = 0x08;
const TXA: u16 = 0x80;

/// Return value that takes the whole datagram.
const TAKE: u32 = u32::MAX;

/// The program for an IPv4 raw socket that drops adverts of these VRIDs; `None`
/// when there are none (no filter).
pub fn ipv4_program(siblings: &[u8]) -> Option<Vec<SockFilter>> {
    let mut vrids: Vec<u8> = siblings.to_vec();
    vrids.sort_unstable();
    vrids.dedup();
    if vrids.is_empty() {
        return None;
    }
    let n = vrids.len();
    let mut program = vec![
        // X = IHL x 4; M[0] = X + 2: the length that holds the VRID.
        SockFilter::new(LDX | B | MSH, 0, 0, 0),
        SockFilter::new(MISC | TXA, 0, 0, 0),
        SockFilter::new(ALU | ADD | K, 0, 0, 2),
        SockFilter::new(ST, 0, 0, 0),
        // Shorter: take it (the instance counts it as truncated).
        SockFilter::new(LD | W | LEN, 0, 0, 0),
        SockFilter::new(LDX | MEM, 0, 0, 0),
        SockFilter::new(JMP | JGE | X, 1, 0, 0),
        SockFilter::new(RET | K, 0, 0, TAKE),
        // A = the VRID.
        SockFilter::new(LDX | B | MSH, 0, 0, 0),
        SockFilter::new(LD | B | IND, 0, 0, 1),
    ];
    for (i, vrid) in vrids.iter().enumerate() {
        // A sibling's VRID jumps past the remaining comparisons and the TAKE to
        // the drop at the end: n - i instructions ahead.
        let jump = u8::try_from(n - i).expect("at most 255 VRIDs");
        program.push(SockFilter::new(JMP | JEQ | K, jump, 0, u32::from(*vrid)));
    }
    program.push(SockFilter::new(RET | K, 0, 0, TAKE));
    program.push(SockFilter::new(RET | K, 0, 0, 0));
    Some(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a program of the instructions this module emits over `packet`, as the
    /// kernel would: the return value (0 drops the datagram).
    fn run(program: &[SockFilter], packet: &[u8]) -> u32 {
        // SockFilter is opaque: read its fields through its C layout.
        #[repr(C)]
        struct Raw {
            code: u16,
            jt: u8,
            jf: u8,
            k: u32,
        }
        let raw: Vec<&Raw> = program
            .iter()
            .map(|f| unsafe { &*(f as *const SockFilter as *const Raw) })
            .collect();
        let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0;
        loop {
            let i = raw[pc];
            pc += 1;
            let byte = |at: usize| packet.get(at).map(|b| u32::from(*b));
            match i.code {
                c if c == LDX | B | MSH => match byte(i.k as usize) {
                    Some(b) => x = 4 * (b & 0xf),
                    None => return 0,
                },
                c if c == MISC | TXA => a = x,
                c if c == ALU | ADD | K => a = a.wrapping_add(i.k),
                c if c == ST => mem[i.k as usize] = a,
                c if c == LD | W | LEN => a = packet.len() as u32,
                c if c == LDX | MEM => x = mem[i.k as usize],
                c if c == LD | B | IND => match byte((x + i.k) as usize) {
                    Some(b) => a = b,
                    None => return 0,
                },
                c if c == JMP | JGE | X => pc += usize::from(if a >= x { i.jt } else { i.jf }),
                c if c == JMP | JEQ | K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                c if c == RET | K => return i.k,
                other => panic!("opcode {other:#x} not emitted"),
            }
        }
    }

    /// An IPv4 header of `ihl` words and a VRRP header with `vrid`.
    fn datagram(ihl: u8, vrid: u8) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(ihl) * 4 + 8];
        p[0] = 0x40 | ihl;
        p[usize::from(ihl) * 4] = 0x21;
        p[usize::from(ihl) * 4 + 1] = vrid;
        p
    }

    #[test]
    fn drops_the_siblings_vrids_and_takes_the_rest() {
        assert!(ipv4_program(&[]).is_none());
        let program = ipv4_program(&[52, 7, 200, 52]).unwrap();
        for (ihl, vrid, taken) in [
            (5, 51, true),
            (5, 52, false),
            (5, 7, false),
            (5, 200, false),
            (5, 201, true),
            // Options in the IPv4 header move the VRRP header.
            (6, 52, false),
            (6, 51, true),
        ] {
            let verdict = run(&program, &datagram(ihl, vrid));
            assert_eq!(verdict != 0, taken, "ihl {ihl} vrid {vrid}");
        }
        // Too short to hold a VRID: taken, so that the instance counts it.
        assert_eq!(run(&program, &datagram(5, 52)[..21]), TAKE);
        // One sibling per possible VRID but ours: the jumps still fit.
        let all: Vec<u8> = (1..=255).filter(|v| *v != 9).collect();
        let program = ipv4_program(&all).unwrap();
        assert_eq!(run(&program, &datagram(5, 9)), TAKE);
        assert_eq!(run(&program, &datagram(5, 1)), 0);
        assert_eq!(run(&program, &datagram(5, 255)), 0);
    }
}
