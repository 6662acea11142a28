//! `${VAR}` interpolation, as the Compose Specification defines it: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`,
//! `${VAR+alt}` and `$$` for a literal `$`. Defaults, messages and alternatives may hold
//! further `${...}` forms.

use serde_yaml::Value;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpError {
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable missing.
    Required { var: String, message: String },
    /// Bad syntax (unterminated `${`, `$` before something that is not a name...).
    Syntax(String),
}

impl InterpError {
    pub(crate) fn describe(&self) -> String {
        match self {
            InterpError::Required { var, message } => {
                if message.is_empty() {
                    format!("required variable {var} is missing a value")
                } else {
                    format!("required variable {var} is missing a value: {message}")
                }
            }
            InterpError::Syntax(s) => s.clone(),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Interpolate one string. `lookup` answers a variable's value; `unset` collects the names of
/// variables used without a default and not set (the caller warns about them).
pub(crate) fn interpolate_str(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        match next {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching `}`, counting nested `${`.
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    if chars[j] == '$' && chars.get(j + 1) == Some(&'$') {
                        j += 2;
                        continue;
                    }
                    if chars[j] == '$' && chars.get(j + 1) == Some(&'{') {
                        depth += 1;
                        j += 2;
                        continue;
                    }
                    if chars[j] == '}' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(InterpError::Syntax(format!(
                        "invalid interpolation format in {input:?}: unterminated \"${{\"; close it with \"}}\" or write \"$$\" for a literal \"$\""
                    )));
                }
                let inner: String = chars[start..j].iter().collect();
                out.push_str(&braced(&inner, input, lookup, unset)?);
                i = j + 1;
            }
            Some(n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name),
                }
                i = j;
            }
            _ => {
                return Err(InterpError::Syntax(format!(
                    "invalid interpolation format in {input:?}: \"$\" must be followed by a variable name or \"{{\"; write \"$$\" for a literal \"$\""
                )));
            }
        }
    }
    Ok(out)
}

/// The inside of `${...}`.
fn braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpError> {
    let name_len = inner
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let rest = &inner[name_len..];
    let bad = || {
        InterpError::Syntax(format!(
            "invalid interpolation format in {whole:?}: \"${{{inner}}}\" is not a valid variable reference (use ${{VAR}}, ${{VAR:-default}}, ${{VAR:?message}} or ${{VAR:+alternative}})"
        ))
    };
    if name.is_empty() || !name.chars().next().is_some_and(is_name_start) {
        return Err(bad());
    }
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        });
    }
    let (op, arg) = if let Some(a) = rest.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = rest.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = rest.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = rest.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = rest.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = rest.strip_prefix('+') {
        ("+", a)
    } else {
        return Err(bad());
    };
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        ":-" | "-" => {
            let use_default = if op == ":-" { !non_empty } else { !set };
            if use_default {
                interpolate_str(arg, lookup, unset)
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        ":?" | "?" => {
            let missing = if op == ":?" { !non_empty } else { !set };
            if missing {
                let message = interpolate_str(arg, lookup, unset)?;
                Err(InterpError::Required {
                    var: name.to_string(),
                    message,
                })
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        _ => {
            let use_alt = if op == ":+" { non_empty } else { set };
            if use_alt {
                interpolate_str(arg, lookup, unset)
            } else {
                Ok(String::new())
            }
        }
    }
}

/// Interpolate every string scalar under `value` (mapping values and sequence items; keys are
/// left alone). Errors carry the key path of the scalar.
pub(crate) fn interpolate_value(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<(), (String, InterpError)> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                *s = interpolate_str(s, lookup, unset).map_err(|e| (path.to_string(), e))?;
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{i}]"), lookup, unset)?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = super::key_str(k);
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate_value(v, &p, lookup, unset)?;
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, path, lookup, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}
