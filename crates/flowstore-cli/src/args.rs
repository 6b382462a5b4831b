//! A small argument reader: positionals and `--flag value` / `--switch` options.

use std::collections::BTreeMap;

/// Parsed arguments of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    positional: Vec<String>,
    flags: BTreeMap<String, Option<String>>,
}

/// Switches that take no value.
const SWITCHES: [&str; 3] = ["--json", "--dry-run", "--reveal"];

impl Args {
    /// Splits `raw` into positionals and flags.
    ///
    /// # Errors
    /// A flag that needs a value and has none.
    pub fn parse(raw: &[String]) -> Result<Self, String> {
        let mut a = Self::default();
        let mut it = raw.iter();
        while let Some(x) = it.next() {
            if SWITCHES.contains(&x.as_str()) {
                a.flags.insert(x.clone(), None);
            } else if x.starts_with("--") {
                let v = it.next().ok_or_else(|| format!("{x} needs a value"))?;
                a.flags.insert(x.clone(), Some(v.clone()));
            } else {
                a.positional.push(x.clone());
            }
        }
        Ok(a)
    }

    /// The `i`-th positional, or an error naming it.
    ///
    /// # Errors
    /// When it is missing.
    pub fn arg(&self, i: usize, name: &str) -> Result<&str, String> {
        self.positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing <{name}>"))
    }

    /// How many positionals were given.
    pub fn positional_count(&self) -> usize {
        self.positional.len()
    }

    /// A flag's value.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).and_then(|v| v.as_deref())
    }

    /// Whether a switch is present.
    pub fn switch(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    /// A numeric flag.
    ///
    /// # Errors
    /// When present and not a number.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.flag(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("{name} needs a number, got {v:?}"))
            })
            .transpose()
    }
}
