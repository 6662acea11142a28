//! Image references, parsed and normalised the way Docker does.
//!
//! Grammar (Docker's `distribution/reference`):
//!
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [domain "/"] path-component ("/" path-component)*
//! domain      := host [":" port]
//! host        := domain-component ("." domain-component)* | "[" ipv6 "]"
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! port        := [0-9]+
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator   := [_.] | "__" | "-"+
//! tag         := [\w][\w.-]{0,127}
//! digest      := "sha256:" 64 lowercase hex   (Berth only stores sha256)
//! ```
//!
//! Normalisation: the first `/`-separated component is a domain if it contains `.` or `:`, is
//! `localhost`, or contains an uppercase letter (so that `Foo/bar` is rejected as a bad domain
//! rather than silently treated as a Docker Hub path); otherwise the domain is `docker.io`.
//! `index.docker.io` is rewritten to `docker.io`, and a single-component Docker Hub path gets the
//! `library/` prefix. A reference with neither tag nor digest gets the tag `latest`.

use crate::{Digest, Error, Result};
use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag given to references that have neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name (`domain/path`) accepted.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A fully normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub domain: String,
    /// Repository path inside the registry (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn invalid(input: &str, why: impl fmt::Display) -> Error {
    Error::Invalid(format!(
        "invalid reference format \"{}\": {why}",
        input.escape_debug()
    ))
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn check_domain(input: &str, domain: &str) -> Result<()> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| {
            invalid(
                input,
                format!("domain \"{domain}\": unterminated IPv6 address"),
            )
        })?;
        if v6.is_empty() || !v6.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return Err(invalid(
                input,
                format!("domain \"{domain}\": \"{v6}\" is not an IPv6 address"),
            ));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                invalid(
                    input,
                    format!("domain \"{domain}\": junk after IPv6 address"),
                )
            })?),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if !host.split('.').all(is_domain_component) {
            return Err(invalid(
                input,
                format!(
                    "domain \"{domain}\": each dot-separated part of a host name must be letters, \
                     digits and inner hyphens"
                ),
            ));
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                input,
                format!("domain \"{domain}\": port \"{port}\" must be digits"),
            ));
        }
    }
    Ok(())
}

fn is_path_component(c: &str) -> bool {
    // [a-z0-9]+ ( ( [_.] | __ | -+ ) [a-z0-9]+ )*
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn check_tag(input: &str, tag: &str) -> Result<()> {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = tag.as_bytes();
    if b.is_empty() {
        return Err(invalid(input, "the tag after ':' is empty"));
    }
    if b.len() > 128 {
        return Err(invalid(
            input,
            format!("tag \"{tag}\" is longer than 128 characters"),
        ));
    }
    if !word(b[0]) || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-') {
        return Err(invalid(
            input,
            format!(
                "tag \"{tag}\" must start with a letter, digit or '_' and contain only letters, \
                 digits, '_', '.' and '-'"
            ),
        ));
    }
    Ok(())
}

impl Reference {
    /// Parse a reference as a user types it (`busybox`, `user/app:1`, `localhost:5000/a/b@sha256:..`)
    /// and normalise it (see the module doc). Errors name the input and the rule it breaks.
    pub fn parse_normalized(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(invalid(s, "the reference is empty"));
        }
        if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                s,
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        // Digest first: everything after the first '@'.
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|e| invalid(s, e))?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // Tag: a ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                let tag = &rest[i + 1..];
                check_tag(s, tag)?;
                (&rest[..i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(s, "the repository name is empty"));
        }
        // Domain split.
        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        check_domain(s, &domain)?;
        if path.is_empty() {
            return Err(invalid(s, "the repository path after the domain is empty"));
        }
        if path.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                s,
                format!("repository name \"{path}\" must be lowercase"),
            ));
        }
        if let Some(bad) = path.split('/').find(|c| !is_path_component(c)) {
            return Err(invalid(
                s,
                format!(
                    "path component \"{bad}\" must be lowercase letters and digits, separated by \
                     '.', '_', '__' or dashes, and may not start or end with a separator"
                ),
            ));
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_REPO_PREFIX}{path}");
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                s,
                format!("the repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters"),
            ));
        }
        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `domain/path[:tag]` (no digest), e.g. `docker.io/library/busybox:latest`.
    pub fn name_with_tag(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.repository()),
            None => self.repository(),
        }
    }

    /// The repository name as `docker images` shows it: `busybox`, `user/app`,
    /// `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The short form Docker prints: `busybox:latest`, `user/app`, `localhost:5000/a/b@sha256:..`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository pinned to `digest` (tag dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name_with_tag())?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse_normalized(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Reference, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn normalises_valid_references() {
        // input, domain, path, tag, Display, familiar
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str, &'a str);
        let cases: &[Case] = &[
            (
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io",
                "library/busybox",
                Some("1.36"),
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "user/app",
                "docker.io",
                "user/app",
                Some("latest"),
                "docker.io/user/app:latest",
                "user/app:latest",
            ),
            (
                "library/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/library/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/user/app:v2",
                "docker.io",
                "user/app",
                Some("v2"),
                "docker.io/user/app:v2",
                "user/app:v2",
            ),
            (
                "index.docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "localhost:5000/a/b:t",
                "localhost:5000",
                "a/b",
                Some("t"),
                "localhost:5000/a/b:t",
                "localhost:5000/a/b:t",
            ),
            (
                "localhost/a",
                "localhost",
                "a",
                Some("latest"),
                "localhost/a:latest",
                "localhost/a:latest",
            ),
            (
                "localhost:5000/a",
                "localhost:5000",
                "a",
                Some("latest"),
                "localhost:5000/a:latest",
                "localhost:5000/a:latest",
            ),
            (
                "quay.io/org/sub/img:v1.2-rc_3",
                "quay.io",
                "org/sub/img",
                Some("v1.2-rc_3"),
                "quay.io/org/sub/img:v1.2-rc_3",
                "quay.io/org/sub/img:v1.2-rc_3",
            ),
            (
                "127.0.0.1:5000/test/busybox",
                "127.0.0.1:5000",
                "test/busybox",
                Some("latest"),
                "127.0.0.1:5000/test/busybox:latest",
                "127.0.0.1:5000/test/busybox:latest",
            ),
            (
                "[::1]:5000/x",
                "[::1]:5000",
                "x",
                Some("latest"),
                "[::1]:5000/x:latest",
                "[::1]:5000/x:latest",
            ),
            (
                "a.b-c.d/e__f/g.h/i---j",
                "a.b-c.d",
                "e__f/g.h/i---j",
                Some("latest"),
                "a.b-c.d/e__f/g.h/i---j:latest",
                "a.b-c.d/e__f/g.h/i---j:latest",
            ),
            // Docker treats an uppercase first component as a domain.
            (
                "Foo/bar",
                "Foo",
                "bar",
                Some("latest"),
                "Foo/bar:latest",
                "Foo/bar:latest",
            ),
            (
                "busybox:_T.a-g",
                "docker.io",
                "library/busybox",
                Some("_T.a-g"),
                "docker.io/library/busybox:_T.a-g",
                "busybox:_T.a-g",
            ),
        ];
        for &(input, domain, path, tag, display, familiar) in cases {
            let r = Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.domain, domain, "{input}");
            assert_eq!(r.path, path, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest, None, "{input}");
            assert_eq!(r.to_string(), display, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            // Display is a fixed point.
            assert_eq!(Reference::parse_normalized(display).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn digests_and_tags_with_digests() {
        let d = Digest::parse(D).unwrap();
        let r = Reference::parse_normalized(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag, None, "a digest reference gets no default tag");
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.name_with_tag(), "docker.io/library/busybox");

        let r = Reference::parse_normalized(&format!("localhost:5000/a/b:t@{D}")).unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.to_string(), format!("localhost:5000/a/b:t@{D}"));
        assert_eq!(r.name_with_tag(), "localhost:5000/a/b:t");
        assert_eq!(r.manifest_reference(), D, "the digest wins over the tag");
        assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn accessors() {
        let r = Reference::parse_normalized("user/app").unwrap();
        assert_eq!(r.repository(), "docker.io/user/app");
        assert_eq!(r.name_with_tag(), "docker.io/user/app:latest");
        assert_eq!(r.familiar_name(), "user/app");
        assert_eq!(r.manifest_reference(), "latest");
        let b = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(b.familiar_name(), "busybox");
        let nested = Reference::parse_normalized("library/a/b").unwrap();
        assert_eq!(nested.familiar_name(), "library/a/b");
        let pinned = b.with_digest(Digest::parse(D).unwrap());
        assert_eq!(pinned.to_string(), format!("docker.io/library/busybox@{D}"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/user/app:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    }

    #[test]
    fn rejects_invalid_references_naming_input_and_rule() {
        let long_tag = format!("busybox:{}", "a".repeat(129));
        let long_name = format!("example.com/{}", "a".repeat(250));
        let hex64 = "a".repeat(64);
        // input, fragment expected in the error
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("Busybox", "must be lowercase"),
            ("user/App", "must be lowercase"),
            ("localhost:5000/A/b", "must be lowercase"),
            ("busybox:", "tag after ':' is empty"),
            ("busybox:-x", "tag \"-x\""),
            ("busybox:.x", "tag \".x\""),
            ("busybox:a+b", "tag \"a+b\""),
            (&long_tag, "longer than 128"),
            ("busybox@sha256:abc", "invalid digest"),
            (
                "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
                "only sha256",
            ),
            (&hex64, "image ID"),
            ("a//b", "path component \"\""),
            ("a/b/", "path component \"\""),
            ("-a", "path component \"-a\""),
            ("a_", "path component \"a_\""),
            ("a___b", "path component \"a___b\""),
            ("a..b", "path component \"a..b\""),
            ("a b", "path component \"a b\""),
            ("example.com/", "path after the domain is empty"),
            ("-bad.com/a", "domain \"-bad.com\""),
            ("bad_.com/a", "domain \"bad_.com\""),
            ("example.com:po/a", "port \"po\""),
            ("example.com:/a", "port \"\""),
            ("[::1/a", "unterminated IPv6"),
            ("[zz]:5000/a", "not an IPv6"),
            ("Foo/Bar", "must be lowercase"),
            (&long_name, "longer than 255"),
            (":tag", "repository name is empty"),
        ];
        for (input, frag) in cases {
            let e = Reference::parse_normalized(input)
                .err()
                .unwrap_or_else(|| panic!("{input:?} should be rejected"));
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("\"{}\"", input.escape_debug())),
                "{input:?}: error does not name the input: {msg}"
            );
            assert!(msg.contains(frag), "{input:?}: expected {frag:?} in: {msg}");
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn path_component_grammar() {
        for ok in ["a", "a0", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "0"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "A", ".a", "a.", "a._b", "a-_b", "a..b", "a___b", "a/b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
