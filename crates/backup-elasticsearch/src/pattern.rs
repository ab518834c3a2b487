//! Elasticsearch index patterns (`sts*,.ds-sts_k8s_logs*,-sts_internal*`): comma-separated
//! globs with `*`, a leading `-` excludes.

/// A parsed index pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPattern {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl IndexPattern {
    /// Parses a pattern; empty terms are ignored.
    pub fn parse(pattern: &str) -> Self {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for term in pattern.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match term.strip_prefix('-') {
                Some(excluded) if !include.is_empty() => exclude.push(excluded.to_owned()),
                _ => include.push(term.to_owned()),
            }
        }
        Self { include, exclude }
    }

    /// Whether an index name is selected.
    pub fn matches(&self, index: &str) -> bool {
        self.include.iter().any(|p| glob(p, index)) && !self.exclude.iter().any(|p| glob(p, index))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_and_excludes() {
        let p = IndexPattern::parse("sts*, .ds-sts_k8s_logs*,-sts_internal*");
        assert!(p.matches("sts_topology_events-2026.11.21"));
        assert!(p.matches(".ds-sts_k8s_logs-2026.11.21-000001"));
        assert!(!p.matches("sts_internal_state"));
        assert!(!p.matches("other"));
        assert!(!p.matches(".ds-other"));
    }

    #[test]
    fn globs_match_like_elasticsearch() {
        for (pattern, text, expected) in [
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("*", "", true),
            ("a*a", "a", false),
            ("*logs", "k8s_logs", true),
        ] {
            assert_eq!(glob(pattern, text), expected, "{pattern} {text}");
        }
    }
}
