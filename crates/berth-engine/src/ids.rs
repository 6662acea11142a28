//! Random identifiers: container, exec and network IDs (64 hex characters, like Docker's) and
//! the seeds for generated names. One source (getrandom(2)) for all of them.

/// Fills `buf` from the kernel's random pool. getrandom(2) blocks only until the pool is
/// initialised at boot and does not fail for requests this small; a short or failed read is
/// retried so an ID never comes out of zeroed memory.
fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new object ID: 64 hex characters. Like Docker, never all digits, so a short ID cannot be
/// mistaken for a number by tools that parse it.
pub fn new_id() -> String {
    loop {
        let id = random_hex(32);
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 64);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(!id[..12].bytes().all(|b| b.is_ascii_digit()));
        }
        // The short IDs (what `ps` shows and what prefixes match) are distinct too.
        let short: std::collections::HashSet<&str> = ids.iter().map(|i| &i[..12]).collect();
        assert_eq!(short.len(), 1000);
    }
}
