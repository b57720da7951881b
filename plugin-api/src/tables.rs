//! Designer data tables: files beside a module's library (`plugins/<module>.tables/*.csv` and
//! `*.json`) that a module reads once per (library, tables) pair into a value of its own type,
//! which every command then reads through [`Ctx::tables`](crate::Ctx::tables).
//!
//! The module declares its reader in [`export_module!`](crate::export_module)
//! (`tables: rules::read_tables`): `fn(&Tables) -> Result<MyTables, TableError>`. The reader
//! parses the files with [`Tables::csv`] and [`Tables::json`] and checks what a designer could
//! get wrong; a [`TableError`] names the file, the line and the reason, the host refuses those
//! tables with it, and the tables already serving go on.
//!
//! ```
//! use plugin_api::{TableError, Tables};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Good { id: String, price: i64 }
//!
//! fn read_tables(tables: &Tables) -> Result<Vec<Good>, TableError> {
//!     let goods: Vec<(u64, Good)> = tables.csv_lines("goods.csv")?;
//!     for (line, good) in &goods {
//!         if good.price <= 0 {
//!             return Err(TableError::at("goods.csv", *line, format!("the price of {} must be above 0", good.id)));
//!         }
//!     }
//!     Ok(goods.into_iter().map(|(_, good)| good).collect())
//! }
//!
//! let tables = Tables::for_test("shop", &[("goods.csv", "id,price\nsword,100\nshield,-5\n")]);
//! let refused = read_tables(&tables).unwrap_err();
//! assert_eq!(refused.to_string(), "goods.csv, line 3: the price of shield must be above 0");
//! ```

use serde::de::DeserializeOwned;
use std::fmt;

/// The table files of one module, as the host read them: what a module's table reader gets.
pub struct Tables<'a> {
    module: &'a str,
    files: Vec<(&'a str, &'a str)>,
}

/// Why tables cannot serve: the file, the line (1 is the first; a CSV's header is line 1) and
/// the reason, for the designer who will fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The file's name in the tables folder (`goods.csv`).
    pub file: String,
    /// The line, if the problem is on one.
    pub line: Option<u64>,
    pub reason: String,
}

impl TableError {
    /// A problem with a whole file (`goods.csv`).
    pub fn file(file: &str, reason: impl Into<String>) -> TableError {
        TableError {
            file: file.to_owned(),
            line: None,
            reason: reason.into(),
        }
    }

    /// A problem on line `line` of `file` (a line [`Tables::csv_lines`] gave).
    pub fn at(file: &str, line: u64, reason: impl Into<String>) -> TableError {
        TableError {
            line: Some(line),
            ..TableError::file(file, reason)
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl<'a> Tables<'a> {
    pub(crate) fn new(module: &'a str, files: Vec<(&'a str, &'a str)>) -> Tables<'a> {
        Tables { module, files }
    }

    /// Tables for unit tests of a reader: module `module`'s files, by name and text.
    pub fn for_test(module: &'a str, files: &[(&'a str, &'a str)]) -> Tables<'a> {
        Tables::new(module, files.to_vec())
    }

    /// The module whose tables these are (its folder is `<module>.tables`).
    pub fn module(&self) -> &'a str {
        self.module
    }

    /// The names of the files in the tables folder, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.files.iter().map(|(name, _)| *name)
    }

    /// The text of file `name`, or an error saying it is missing.
    pub fn text(&self, name: &str) -> Result<&'a str, TableError> {
        self.files
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, text)| *text)
            .ok_or_else(|| {
                TableError::file(
                    name,
                    "missing: the module needs this file in its tables folder",
                )
            })
    }

    /// The rows of CSV file `name` (a header line naming the columns, then one row per line)
    /// as `T`, by column name.
    pub fn csv<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, TableError> {
        Ok(self
            .csv_lines(name)?
            .into_iter()
            .map(|(_, row)| row)
            .collect())
    }

    /// [`Tables::csv`], each row with its line, for checks that name the line.
    pub fn csv_lines<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<(u64, T)>, TableError> {
        let text = self.text(name)?;
        let refused = |line: Option<u64>, reason: String| match line {
            Some(line) => TableError::at(name, line, reason),
            None => TableError::file(name, reason),
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| refused(Some(1), e.to_string()))?
            .clone();
        // Lines counted from each record's byte offset: the reader's own count skips blank
        // lines, and the designer's editor does not.
        let mut counted = (0usize, 1u64);
        let mut line_at = |byte: u64| {
            // A record's position is where the reader began: before the blank lines it skipped.
            let mut byte = (byte as usize).min(text.len());
            while matches!(text.as_bytes().get(byte), Some(b'\n' | b'\r')) {
                byte += 1;
            }
            let (from, line) = counted;
            let line = line
                + text.as_bytes()[from.min(byte)..byte]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count() as u64;
            counted = (byte.max(from), line);
            line
        };
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| line_at(p.byte()));
                refused(line, e.to_string())
            })?;
            let line = record.position().map(|p| line_at(p.byte()));
            let row = record
                .deserialize(Some(&headers))
                .map_err(|e| match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => {
                        let column = err
                            .field()
                            .and_then(|at| headers.get(at as usize))
                            .map_or(String::new(), |column| format!("column `{column}`: "));
                        refused(line, format!("{column}{}", err.kind()))
                    }
                    _ => refused(line, e.to_string()),
                })?;
            rows.push((line.unwrap_or(0), row));
        }
        Ok(rows)
    }

    /// JSON file `name` as `T`.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, TableError> {
        let text = self.text(name)?;
        serde_json::from_str(text).map_err(|e| {
            let reason = e.to_string();
            // serde_json ends its message with " at line L column C": the line goes apart.
            let reason = reason
                .rsplit_once(" at line ")
                .map_or(reason.as_str(), |(reason, _)| reason)
                .to_owned();
            match e.line() {
                0 => TableError::file(name, reason),
                line => TableError::at(name, line as u64, reason),
            }
        })
    }
}

#[cfg(test)]
mod tests;
