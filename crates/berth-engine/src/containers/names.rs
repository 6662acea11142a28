//! Random container names in Docker's `adjective_surname` style, from our own word lists
//! (scientists, engineers and explorers).

const LEFT: &[&str] = &[
    "agile", "amber", "ardent", "bold", "brave", "bright", "calm", "candid", "clever", "cosmic",
    "crisp", "daring", "deft", "eager", "early", "earnest", "elated", "epic", "fair", "fervent",
    "fleet", "fond", "frank", "gentle", "glad", "golden", "grand", "hardy", "hearty", "humble",
    "jolly", "keen", "kind", "lively", "lucid", "lucky", "merry", "mellow", "mighty", "nimble",
    "noble", "patient", "placid", "plucky", "proud", "quick", "quiet", "rapid", "ready", "brisk",
    "serene", "sharp", "shiny", "silent", "sleek", "smart", "snug", "solid", "spry", "steady",
    "stoic", "sunny", "swift", "tender", "tidy", "tranquil", "trusty", "vivid", "warm", "wise",
    "witty", "zealous", "zesty",
];

const RIGHT: &[&str] = &[
    "agnesi",
    "archimedes",
    "babbage",
    "banach",
    "bohr",
    "boole",
    "cantor",
    "carson",
    "cauchy",
    "curie",
    "darwin",
    "descartes",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "fourier",
    "franklin",
    "galileo",
    "galois",
    "gauss",
    "germain",
    "goodall",
    "hamilton",
    "hawking",
    "hilbert",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "kovalevskaya",
    "lamarr",
    "laplace",
    "leibniz",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "mirzakhani",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "poincare",
    "ramanujan",
    "riemann",
    "ritchie",
    "sagan",
    "shannon",
    "somerville",
    "tesla",
    "thompson",
    "turing",
    "volta",
    "wiles",
    "wozniak",
    "wright",
    "yalow",
];

/// A name like `brave_noether`, from 8 random bytes; `salt` > 0 appends a digit like Docker
/// does after a collision.
pub fn random_name(r: u64, salt: u32) -> String {
    let l = LEFT[(r % LEFT.len() as u64) as usize];
    let rr = RIGHT[((r >> 32) % RIGHT.len() as u64) as usize];
    if salt == 0 {
        format!("{l}_{rr}")
    } else {
        format!("{l}_{rr}{salt}")
    }
}

/// Docker's rule for user-given names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web-1"));
        assert!(valid_name("a.b_c"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
        assert!(valid_name(&random_name(0xdead_beef_1234_5678, 0)));
        assert!(random_name(7, 3).ends_with('3'));
    }
}
