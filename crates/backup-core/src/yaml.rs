//! YAML read into typed configuration, with errors that say where (line, column, field
//! path) and what kind of problem, never the text or the value found there: a configuration
//! file or a Secret's document holds credentials, and a value in the wrong place may be one.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where a YAML document is wrong, and how, without its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", self.place())]
pub struct YamlError {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted path of the field (`storage.endpoint`), when known.
    pub field: Option<String>,
    /// What is wrong (values removed).
    pub problem: String,
}

impl YamlError {
    fn place(&self) -> String {
        let mut place = Vec::new();
        if let Some(line) = self.line {
            place.push(format!("line {line}"));
        }
        if let Some(column) = self.column {
            place.push(format!("column {column}"));
        }
        if let Some(field) = self.field.as_ref().filter(|f| !f.is_empty() && *f != ".") {
            place.push(format!("field {field}"));
        }
        match place.is_empty() {
            true => String::new(),
            false => format!("{}: ", place.join(", ")),
        }
    }
}

/// Parses a YAML document (an empty one is an empty mapping).
pub fn value_from_yaml(text: &str) -> Result<Value, YamlError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_saphyr::from_str_with_options::<Value>(
        text,
        serde_saphyr::options! { with_snippet: false },
    )
    .map_err(|error| located(&error, None))
}

/// Reads a parsed document into `T`; the error names the field.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, YamlError> {
    serde_path_to_error::deserialize(value).map_err(|error| YamlError {
        line: None,
        column: None,
        field: Some(error.path().to_string()),
        problem: problem(&error.into_inner().to_string()),
    })
}

/// Parses a YAML document into `T`; the error names the line, the column and the field.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let value = value_from_yaml(text)?;
    from_value(value).map_err(|mut error| {
        // The line comes from the typed parse of the text itself (its message is not used).
        let typed = serde_saphyr::from_str_with_options::<T>(
            text,
            serde_saphyr::options! { with_snippet: false },
        );
        if let Err(typed) = typed {
            let at = located(&typed, None);
            (error.line, error.column) = (at.line, at.column);
        }
        error
    })
}

fn located(error: &serde_saphyr::Error, field: Option<String>) -> YamlError {
    let location = error.location();
    YamlError {
        line: location.map(|l| l.line()).filter(|l| *l > 0),
        column: location.map(|l| l.column()).filter(|c| *c > 0),
        field,
        problem: problem(&error.to_string()),
    }
}

/// A parser's message without what it found: quoted text (`` `x` ``, `"x"`, `'x'`) before
/// `expected` is dropped (what is expected comes from the schema and stays), and so is a
/// trailing position (given separately).
fn problem(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let first = first.split(" at line ").next().unwrap_or(first);
    let (found, expected) = match first.find("expected") {
        Some(at) => first.split_at(at),
        None => (first, ""),
    };
    let mut kept = String::new();
    let mut quote: Option<char> = None;
    for c in found.chars() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if matches!(c, '`' | '"' | '\'') => quote = Some(c),
            None => kept.push(c),
        }
    }
    // A value the parser printed unquoted (a number after "integer", say) is dropped too.
    let mut words: Vec<String> = Vec::new();
    for word in kept.split_whitespace() {
        let bare = word.trim_end_matches(',');
        if bare.chars().any(|c| c.is_ascii_digit()) || bare.is_empty() {
            if word.ends_with(',')
                && let Some(last) = words.last_mut()
                && !last.ends_with(',')
            {
                last.push(',');
            }
            continue;
        }
        words.push(word.to_owned());
    }
    let kept = words.join(" ");
    match expected.is_empty() {
        true => kept.trim_end_matches([',', ' ']).to_owned(),
        false => format!("{} {expected}", kept.trim_end_matches(' ')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Storage {
        endpoint: Option<String>,
        secret_access_key: Option<String>,
        concurrency: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        storage: Option<Storage>,
    }

    #[test]
    fn errors_name_the_place_and_never_the_value() {
        let cases = [
            // An unknown key beside a secret.
            (
                "storage:\n  secretAccessKey: hunter2-secret\n  endpont: x\n",
                "hunter2",
                "line 3",
            ),
            // A numeric secret where text goes is fine; text where a number goes is not.
            (
                "storage:\n  concurrency: s3cr3t-value\n",
                "s3cr3t",
                "field storage.concurrency",
            ),
            (
                "storage:\n  secretAccessKey: [1234567, 2]\n",
                "1234567",
                "field storage.secretAccessKey",
            ),
            // A syntax error right after a secret.
            (
                "storage:\n  secretAccessKey: \"topsecret\n  x: [\n",
                "topsecret",
                "line",
            ),
        ];
        for (text, secret, place) in cases {
            let error = from_yaml::<File>(text).unwrap_err().to_string();
            assert!(!error.contains(secret), "{error}");
            assert!(error.contains(place), "{place}: {error}");
        }
    }

    #[test]
    fn problems_keep_what_was_expected() {
        assert_eq!(
            problem("invalid type: integer `12345`, expected a string at line 2 column 5"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            problem("unknown variant `xml`, expected one of `table`, `json`"),
            "unknown variant, expected one of `table`, `json`"
        );
        assert_eq!(
            problem("invalid length 3, expected 2"),
            "invalid length, expected 2"
        );
    }
}
