//! The environment layer: `GAME_HOST_<SECTION>_<KEY>=value` sets one key over the files.
//!
//! The variable's name is the key's dotted path in upper case with `_` for `.`:
//! `GAME_HOST_SERVER_LISTEN`, `GAME_HOST_PLUGINS_CALL_TIMEOUT_MS`,
//! `GAME_HOST_LOG_FILES_INFO_LEVEL`, `GAME_HOST_MODULES_MALL_DISCOUNT_PERCENT`. Keys contain `_`
//! themselves, so a name is matched against the keys that exist (the defaults and what the
//! files set); a variable that matches none is refused, naming the ones that would.
//! A value is read as the type of the key it replaces.

use super::ConfigError;

/// Variables with this prefix are configuration.
pub const PREFIX: &str = "GAME_HOST_";

/// The configuration variables among `vars`, in a fixed order.
pub fn select(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut selected: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    selected.sort();
    selected
}

/// Other names for variables, as other tools spell them.
const ALIASES: [(&str, &str); 1] = [("GAME_HOST_DATABASE_URL", "GAME_HOST_STORE_URL")];

/// Sets the key that variable `name` names to `raw`, read as that key's type.
pub fn apply(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    let error = |message: String| ConfigError::Env {
        var: name.to_owned(),
        message,
    };
    let wanted = name[PREFIX.len()..].to_ascii_lowercase();
    let path = find_key(table, &wanted).ok_or_else(|| {
        error(format!(
            "no such config key; the variables are {}",
            variable_names(table).join(", ")
        ))
    })?;
    let slot = lookup_mut(table, &path).expect("find_key returns a path that exists");
    *slot = parse_like(slot, raw).map_err(|m| error(format!("`{raw}`: {m}")))?;
    Ok(())
}

/// The path of the leaf key whose `_`-joined path is `wanted`.
fn find_key(table: &toml::Table, wanted: &str) -> Option<Vec<String>> {
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => {
                let rest = wanted
                    .strip_prefix(key.as_str())
                    .and_then(|r| r.strip_prefix('_'));
                if let Some(mut path) = rest.and_then(|rest| find_key(inner, rest)) {
                    path.insert(0, key.clone());
                    return Some(path);
                }
            }
            _ if key == wanted => return Some(vec![key.clone()]),
            _ => {}
        }
    }
    None
}

fn lookup_mut<'t>(table: &'t mut toml::Table, path: &[String]) -> Option<&'t mut toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut table = table;
    for key in parents {
        table = table.get_mut(key)?.as_table_mut()?;
    }
    table.get_mut(last)
}

/// `raw` read as the type of `current`.
fn parse_like(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value;
    Ok(match current {
        Value::String(_) => Value::String(raw.to_owned()),
        Value::Integer(_) => Value::Integer(raw.parse().map_err(|_| "expected an integer")?),
        Value::Float(_) => Value::Float(raw.parse().map_err(|_| "expected a number")?),
        Value::Boolean(_) => Value::Boolean(raw.parse().map_err(|_| "expected true or false")?),
        _ => {
            let mut parsed: toml::Table = toml::from_str(&format!("value = {raw}"))
                .map_err(|_| "expected a TOML value (an array: [1, 2])")?;
            parsed.remove("value").ok_or("expected a TOML value")?
        }
    })
}

/// Every variable that would set a key of `table`.
fn variable_names(table: &toml::Table) -> Vec<String> {
    fn walk(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let name = format!("{prefix}{}", key.to_ascii_uppercase());
            match value {
                toml::Value::Table(inner) => walk(inner, &format!("{name}_"), out),
                _ => out.push(name),
            }
        }
    }
    let mut names = Vec::new();
    walk(table, PREFIX, &mut names);
    names
}
