//! Rendering data on stdout as a table, JSON or YAML. A closed pipe (`| head`) ends the
//! output quietly.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// A JSON array (`[]` when empty).
    Json,
    /// A YAML sequence.
    Yaml,
}

/// A row type that can be shown as a table.
pub trait Tabular: Serialize {
    /// Column headers.
    fn headers() -> Vec<&'static str>;
    /// This row's cells.
    fn cells(&self) -> Vec<String>;
}

/// Writes rows to stdout in the format asked for.
pub fn emit<T: Tabular>(format: OutputFormat, rows: &[T]) -> io::Result<()> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(rows).map_err(io::Error::other)? + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(&rows).map_err(io::Error::other)?,
        OutputFormat::Table => {
            let mut table = Table::new();
            table
                .load_style(NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled);
            table.set_header(T::headers());
            for row in rows {
                table.add_row(row.cells());
            }
            let mut text = table.trim_fmt();
            text.push('\n');
            text
        }
    };
    write_stdout(text.as_bytes())
}

/// Writes to stdout; a closed pipe is not an error.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Workloads and their replicas, as a scale-down plan shows them (`Deployment/web (2 -> 0)`).
pub fn scale_down_cell(workloads: &[(String, i32)]) -> String {
    workloads
        .iter()
        .map(|(w, n)| format!("{w} ({n} -> 0)"))
        .collect::<Vec<_>>()
        .join(", ")
}
