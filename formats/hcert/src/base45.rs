//! Base45 (RFC 9285), written here so decoding is strict: only the 45-character alphabet,
//! no lower case, no whitespace, no dangling single character, and no group whose value
//! overflows (three characters > 65535, two characters > 255).

use crate::error::{HcertError, Result};

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Reverse lookup: byte -> digit value, 255 = not in the alphabet.
const REVERSE: [u8; 256] = {
    let mut table = [255u8; 256];
    let mut i = 0;
    while i < 45 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Encodes bytes as Base45 text.
pub fn encode(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(2) * 3);
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        let n = (u32::from(pair[0]) << 8) | u32::from(pair[1]);
        out.push(ALPHABET[(n % 45) as usize]);
        out.push(ALPHABET[((n / 45) % 45) as usize]);
        out.push(ALPHABET[(n / 2025) as usize]);
    }
    if let [last] = chunks.remainder() {
        let n = u32::from(*last);
        out.push(ALPHABET[(n % 45) as usize]);
        out.push(ALPHABET[(n / 45) as usize]);
    }
    // Every pushed byte comes from the ASCII alphabet.
    out.into_iter().map(char::from).collect()
}

/// Decodes Base45 text, rejecting anything RFC 9285 does not allow.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 3 == 1 {
        return Err(HcertError::Base45(format!(
            "length {} leaves a dangling single character",
            bytes.len()
        )));
    }
    let digit = |pos: usize| -> Result<u32> {
        let b = bytes[pos];
        match REVERSE[b as usize] {
            255 => Err(HcertError::Base45(format!(
                "character {:?} at position {pos} is not in the Base45 alphabet",
                char::from(b)
            ))),
            v => Ok(u32::from(v)),
        }
    };
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    let mut pos = 0;
    while pos + 3 <= bytes.len() {
        let n = digit(pos)? + digit(pos + 1)? * 45 + digit(pos + 2)? * 2025;
        if n > 0xFFFF {
            return Err(HcertError::Base45(format!(
                "group at position {pos} encodes {n} > 65535"
            )));
        }
        out.push((n >> 8) as u8);
        out.push((n & 0xFF) as u8);
        pos += 3;
    }
    if pos + 2 == bytes.len() {
        let n = digit(pos)? + digit(pos + 1)? * 45;
        if n > 0xFF {
            return Err(HcertError::Base45(format!(
                "final pair at position {pos} encodes {n} > 255"
            )));
        }
        out.push(n as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9285_examples() {
        // Examples from RFC 9285 section 4.3 (independent of this implementation).
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").unwrap(), b"ietf!");
    }

    #[test]
    fn strict_rejections() {
        assert!(decode("GGW").is_err(), "GGW = 65536 overflows");
        assert!(decode("A").is_err());
        assert!(decode("bb8").is_err(), "lower case is not Base45");
        assert!(decode("BB8\n").is_err());
        assert!(decode(":;").is_err());
        assert!(decode("::").is_err(), "two characters > 255");
    }

    #[test]
    fn round_trip_all_lengths() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..data.len() {
            assert_eq!(decode(&encode(&data[..len])).unwrap(), &data[..len]);
        }
    }
}
