//! Rendering data on stdout as a table, JSON or YAML. A closed pipe (`| head`) ends the
//! output quietly.

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::io::{self, BufWriter, Write};
use unicode_width::UnicodeWidthStr;

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
    write_stdout(render(format, rows)?.as_bytes())
}

/// Rows as text in the format asked for.
fn render<T: Tabular>(format: OutputFormat, rows: &[T]) -> io::Result<String> {
    Ok(match format {
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
    })
}

/// Writes rows to stdout as they come, so that no format holds them all: `rows` is called
/// twice for a table (once to size its columns, once to print) and once for JSON or YAML.
/// The text is the same as `emit` makes.
pub fn emit_each<T, E, I>(format: OutputFormat, rows: impl Fn() -> I) -> Result<(), E>
where
    T: Tabular,
    E: From<io::Error>,
    I: Iterator<Item = Result<T, E>>,
{
    let mut out = BufWriter::new(io::stdout().lock());
    let written = write_each(&mut out, format, rows).and_then(|()| Ok(out.flush()?));
    match written {
        Ok(()) => Ok(()),
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(Failure::Io(e)) => Err(e.into()),
        Err(Failure::Row(e)) => Err(e),
    }
}

/// Why rows could not be written: a row could not be made, or written.
enum Failure<E> {
    Row(E),
    Io(io::Error),
}

impl<E> From<io::Error> for Failure<E> {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

fn write_each<T, E, I>(
    out: &mut impl Write,
    format: OutputFormat,
    rows: impl Fn() -> I,
) -> Result<(), Failure<E>>
where
    T: Tabular,
    I: Iterator<Item = Result<T, E>>,
{
    let rows = || rows().map(|row| row.map_err(Failure::Row));
    match format {
        OutputFormat::Json => {
            let mut serializer = serde_json::Serializer::pretty(&mut *out);
            let mut sequence = serializer.serialize_seq(None).map_err(io::Error::other)?;
            for row in rows() {
                sequence
                    .serialize_element(&row?)
                    .map_err(io::Error::other)?;
            }
            sequence.end().map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Yaml => {
            let mut any = false;
            for row in rows() {
                let text = serde_saphyr::to_string(&[row?]).map_err(io::Error::other)?;
                out.write_all(text.as_bytes())?;
                any = true;
            }
            if !any {
                let empty: [T; 0] = [];
                let text = serde_saphyr::to_string(&empty).map_err(io::Error::other)?;
                out.write_all(text.as_bytes())?;
            }
        }
        OutputFormat::Table => {
            let mut widths: Vec<usize> = T::headers().iter().map(|h| h.width()).collect();
            for row in rows() {
                for (width, cell) in widths.iter_mut().zip(row?.cells()) {
                    *width = (*width).max(one_line(&cell).width());
                }
            }
            let headers = T::headers().into_iter().map(str::to_owned).collect();
            write_line(out, &widths, headers)?;
            for row in rows() {
                write_line(out, &widths, row?.cells())?;
            }
        }
    }
    Ok(())
}

/// A cell on one line (a table row is one line).
fn one_line(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.contains(['\n', '\r']) {
        cell.replace('\n', "\\n").replace('\r', "\\r").into()
    } else {
        cell.into()
    }
}

/// One table line as comfy-table's borderless style writes it: each cell padded by a space
/// on either side, trailing spaces trimmed.
fn write_line(out: &mut impl Write, widths: &[usize], cells: Vec<String>) -> io::Result<()> {
    let mut line = String::new();
    for (width, cell) in widths.iter().zip(&cells) {
        let cell = one_line(cell);
        line.push(' ');
        line.push_str(&cell);
        line.extend(std::iter::repeat_n(' ', width - cell.width() + 1));
    }
    writeln!(out, "{}", line.trim_end())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: String,
        size: u64,
    }

    impl Tabular for Row {
        fn headers() -> Vec<&'static str> {
            vec!["NAME", "SIZE", "NOTE"]
        }
        fn cells(&self) -> Vec<String> {
            vec![self.name.clone(), self.size.to_string(), String::new()]
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                name: "a-rather-long-name".into(),
                size: 1,
            },
            Row {
                name: "ü".into(),
                size: 123_456,
            },
        ]
    }

    fn streamed(format: OutputFormat, rows: &[Row]) -> String {
        let mut out = Vec::new();
        let written = write_each::<_, io::Error, _>(&mut out, format, || {
            rows.iter().map(|r| {
                Ok(Row {
                    name: r.name.clone(),
                    size: r.size,
                })
            })
        });
        assert!(written.is_ok());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_written_as_they_come_read_as_rows_written_at_once() {
        for format in [OutputFormat::Table, OutputFormat::Json, OutputFormat::Yaml] {
            for rows in [rows(), vec![]] {
                assert_eq!(
                    streamed(format, &rows),
                    render(format, &rows).unwrap(),
                    "{format:?}, {} rows",
                    rows.len()
                );
            }
        }
    }

    #[test]
    fn a_cell_stays_on_its_line() {
        let rows = [Row {
            name: "two\nlines".into(),
            size: 2,
        }];
        let table = streamed(OutputFormat::Table, &rows);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.contains("two\\nlines"));
    }
}
