//! Kubernetes names: DNS-1123 labels and subdomains, DNS-1035 labels (Services), label
//! values, annotation keys and ConfigMap keys; and turning compose names into them.

use super::GenerateError;

/// The longest DNS-1123 label (and label value).
pub const MAX_LABEL: usize = 63;
/// The longest DNS-1123 subdomain.
pub const MAX_SUBDOMAIN: usize = 253;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// DNS-1123 labels joined by `.`, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBDOMAIN
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A DNS-1035 label: a DNS-1123 label starting with a letter (Service names).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// A label value: empty, or `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= MAX_LABEL
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain, the name a
/// non-empty label value.
pub fn is_qualified_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns1123_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A ConfigMap/Secret data key: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`.
pub fn is_data_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBDOMAIN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Lower-case, `_` and `.` → `-`: a compose name as a DNS-1123 label candidate.
pub fn sanitize_label(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Lower-case, `_` → `-` (dots kept): a compose name as a DNS-1123 subdomain candidate.
pub fn sanitize_subdomain(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// `name` (found at `key`) as a DNS-1123 label, or an error saying how to fix it.
pub fn label_name(key: &str, name: &str) -> Result<String, GenerateError> {
    let s = sanitize_label(name);
    if is_dns1123_label(&s) {
        Ok(s)
    } else {
        Err(GenerateError(format!(
            "{key}: {name:?} cannot be made a valid Kubernetes name (got {s:?}; a name is at \
             most 63 lower-case letters, digits and '-', starting and ending with a letter or \
             digit): rename it"
        )))
    }
}

/// `name` (found at `key`) as a DNS-1123 subdomain (dots kept), or an error.
pub fn subdomain_name(key: &str, name: &str) -> Result<String, GenerateError> {
    let s = sanitize_subdomain(name);
    if is_dns1123_subdomain(&s) {
        Ok(s)
    } else {
        Err(GenerateError(format!(
            "{key}: {name:?} cannot be made a valid Kubernetes name (got {s:?}; a name is at \
             most 253 lower-case letters, digits, '-' and '.', each dot-separated part \
             starting and ending with a letter or digit): rename it"
        )))
    }
}

/// Picks names unique within one pod (volumes): `base`, else `base-2`, `base-3`...
#[derive(Debug, Default)]
pub struct Unique {
    used: std::collections::BTreeSet<String>,
}

impl Unique {
    pub fn take(&mut self, base: &str) -> String {
        // Only [a-z0-9-], and room for a "-NN" suffix within the 63-character limit.
        let clean: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut base: String = clean
            .trim_start_matches('-')
            .chars()
            .take(MAX_LABEL - 4)
            .collect();
        while base.ends_with('-') {
            base.pop();
        }
        if base.is_empty() {
            base.push('v');
        }
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns1123_label("web-1"));
        assert!(is_dns1123_label("1web"));
        assert!(!is_dns1123_label("Web"));
        assert!(!is_dns1123_label("web_1"));
        assert!(!is_dns1123_label("-web"));
        assert!(!is_dns1123_label("web-"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_label(&"a".repeat(63)));
        assert!(is_dns1035_label("web"));
        assert!(!is_dns1035_label("1web"));
        assert!(is_dns1123_subdomain("my.conf-1"));
        assert!(!is_dns1123_subdomain("my..conf"));
        assert!(!is_dns1123_subdomain("my.-conf"));
    }

    #[test]
    fn label_values_and_keys() {
        assert!(is_label_value(""));
        assert!(is_label_value("My_app.v1"));
        assert!(!is_label_value("app_"));
        assert!(!is_label_value("a b"));
        assert!(is_qualified_key("com.example.tier"));
        assert!(is_qualified_key("example.com/tier"));
        assert!(!is_qualified_key("Example.com/tier"));
        assert!(!is_qualified_key("tier name"));
        assert!(!is_qualified_key("example.com/"));
        assert!(is_data_key("nginx.conf"));
        assert!(!is_data_key(".."));
        assert!(!is_data_key("a/b"));
    }

    #[test]
    fn sanitising() {
        assert_eq!(
            label_name("services.Web_App", "Web_App").unwrap(),
            "web-app"
        );
        assert_eq!(label_name("services.a.b", "a.b").unwrap(), "a-b");
        assert_eq!(
            subdomain_name("configs.x", "My_cfg.v1").unwrap(),
            "my-cfg.v1"
        );
        let e = label_name("services.web_", "web_").unwrap_err();
        assert!(
            e.0.contains("services.web_") && e.0.contains("rename it"),
            "{e}"
        );
        assert!(label_name("services.x", &"x".repeat(64)).is_err());
    }

    #[test]
    fn unique_names() {
        let mut u = Unique::default();
        assert_eq!(u.take("data"), "data");
        assert_eq!(u.take("data"), "data-2");
        assert_eq!(u.take("data"), "data-3");
        assert_eq!(u.take("config-My_app.conf"), "config-my-app-conf");
        assert_eq!(u.take("_x_"), "x");
        let long = u.take(&"x".repeat(80));
        assert!(is_dns1123_label(&long), "{long}");
    }
}
