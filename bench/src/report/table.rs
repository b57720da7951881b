//! [`Table`]: a Markdown table as data, its columns (a title and an alignment each) and its
//! rows (a text per column), and the one place that writes one out. A row with another number
//! of cells than the table has columns is a bug in the report, caught when it is added.

/// A table: columns, and rows of cells.
#[derive(Debug, Clone)]
pub struct Table {
    titles: Vec<String>,
    /// Per column: whether its cells line up to the right (figures) or the left (text).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns titled `titles`, aligned as `align` says, a letter per column: `l` for text
    /// (to the left), `r` for figures (to the right).
    pub fn new<S: Into<String>>(align: &str, titles: impl IntoIterator<Item = S>) -> Table {
        let titles: Vec<String> = titles.into_iter().map(Into::into).collect();
        assert_eq!(
            align.len(),
            titles.len(),
            "an alignment per column: {titles:?}"
        );
        Table {
            titles,
            right: align.chars().map(|a| a == 'r').collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; panics unless it has a cell for every column.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert_eq!(
            cells.len(),
            self.titles.len(),
            "a row of {} cells in a table of {} columns: {cells:?}",
            cells.len(),
            self.titles.len()
        );
        self.rows.push(cells);
    }

    /// A row whose first cell is `first`, whose second is `note` (why it has no figures), and
    /// whose other cells are empty.
    pub fn note_row(&mut self, first: impl Into<String>, note: impl Into<String>) {
        let empty = std::iter::repeat_n(String::new(), self.titles.len().saturating_sub(2));
        self.row([first.into(), note.into()].into_iter().chain(empty));
    }

    /// The table in Markdown: the titles, the alignments, a line per row (no newline at the
    /// end). A cell's text is taken as it is: see [`cell_text`].
    pub fn markdown(&self) -> String {
        let rules: Vec<&str> = self
            .right
            .iter()
            .map(|&right| if right { "---:" } else { "---" })
            .collect();
        let mut lines = vec![line(&self.titles), format!("|{}|", rules.join("|"))];
        lines.extend(self.rows.iter().map(|row| line(row)));
        lines.join("\n")
    }
}

/// `| a | b |`; an empty cell is `| |`.
fn line(cells: &[String]) -> String {
    let cells: String = cells
        .iter()
        .map(|cell| match cell.is_empty() {
            true => " |".to_owned(),
            false => format!(" {cell} |"),
        })
        .collect();
    format!("|{cells}")
}

/// `text` as one table cell: on one line, its `|` escaped.
pub fn cell_text(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
