//! 2-D points from a CSV file: `x,y,label` per line, an optional header line,
//! labels 0..K-1. Errors name the file, the line and what was wrong.

use std::path::Path;

use super::dataset::{Dataset, Features, Split};
use crate::base::error::{Error, Result};
use crate::base::rng;

fn bad(path: &Path, problem: String, expected: &str, found: String) -> Error {
    Error::BadDataFile {
        path: path.to_path_buf(),
        problem,
        expected: expected.into(),
        found,
        fix: "Write one `x,y,label` row per point (label an integer from 0), optionally after a header row.".into(),
    }
}

/// Parses `bytes` (the contents of `path`) into a data set.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Dataset> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        bad(
            path,
            "the file is not UTF-8 text".into(),
            "UTF-8 text",
            format!("invalid byte at offset {}", e.valid_up_to()),
        )
    })?;
    // A byte-order mark (spreadsheets write one) is not part of the first
    // field; old Macs end lines with a lone CR.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let clip = |s: &str| -> String {
        let mut c: String = s.chars().take(30).collect();
        if c.len() < s.len() {
            c.push('…');
        }
        c
    };
    let (mut xy, mut labels) = (Vec::new(), Vec::new());
    let mut seen_content = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // A header is the first row and holds no number at all (`x,y,label`);
        // a row with some numbers is data, and its bad field is named below.
        let first = !seen_content;
        seen_content = true;
        if first && fields.iter().all(|f| f.parse::<f64>().is_err()) {
            continue;
        }
        if fields.len() != 3 {
            return Err(bad(
                path,
                format!("line {} has {} fields", number + 1, fields.len()),
                "3 fields: x,y,label",
                clip(line),
            ));
        }
        let coord = |s: &str| -> Result<f32> {
            s.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    bad(
                        path,
                        format!("line {}: `{}` is not a finite number", number + 1, clip(s)),
                        "a finite number",
                        clip(s),
                    )
                })
        };
        let label: u16 = fields[2]
            .parse()
            .ok()
            .filter(|&l: &u16| l < 1000)
            .ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "line {}: the label `{}` is not a class number",
                        number + 1,
                        clip(fields[2])
                    ),
                    "an integer 0..999",
                    clip(fields[2]),
                )
            })?;
        xy.push(coord(fields[0])?);
        xy.push(coord(fields[1])?);
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(bad(
            path,
            "no data rows".into(),
            "at least one x,y,label row",
            "an empty file".into(),
        ));
    }
    // Two different labels, hence two rows: training and test each get one.
    let distinct: std::collections::BTreeSet<u16> = labels.iter().copied().collect();
    if distinct.len() < 2 {
        return Err(bad(
            path,
            "only one class".into(),
            "rows of at least 2 different labels",
            format!("every label is {} ({} rows)", labels[0], labels.len()),
        ));
    }
    // Labels are class numbers 0..K-1: a gap would silently add classes
    // no row has (labels {0, 900} made a 901-class model).
    let max = *distinct.last().unwrap();
    if distinct.len() != max as usize + 1 {
        let missing: Vec<String> = (0..max)
            .filter(|l| !distinct.contains(l))
            .take(5)
            .map(|l| l.to_string())
            .collect();
        return Err(bad(
            path,
            format!(
                "the labels skip class numbers (no row has {} …)",
                missing.join(", ")
            ),
            "labels 0..K-1 with every class present (renumber them)",
            format!("{} different labels up to {max}", distinct.len()),
        ));
    }
    let classes = *labels.iter().max().unwrap() as usize + 1;
    Ok(Dataset {
        features: Features::Floats(xy),
        labels,
        shape: [2, 1, 1],
        classes,
    })
}

/// Splits points into train and test sets at random (seeded).
pub fn split(points: Dataset, test_fraction: f32, seed: u64, source: &str) -> Split {
    let order = rng::permutation(&mut rng::stream(seed, "csv-split", 0), points.len());
    // `parse` guarantees two different labels, hence two points: both sets get one.
    let n_test = ((points.len() as f32 * test_fraction.clamp(0.0, 0.9)).round() as usize)
        .clamp(1, points.len() - 1);
    let (test, train) = order.split_at(n_test);
    Split::new(points.select(train), points.select(test), None, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_or_one_label_is_refused_by_name() {
        for text in [&b"0,0,1\n"[..], b"x,y,label\n5,5,1\n", b"0,0,1\n1,1,1\n"] {
            let e = parse(text, Path::new("one.csv")).unwrap_err().to_string();
            assert!(e.contains("2 different labels"), "{e}");
        }
    }

    #[test]
    fn parses_rows_with_a_header_and_comments() {
        let text = b"x,y,label\n0.5,-1,0\n# a comment\n\n1e-2, 3 ,1\n";
        let ds = parse(text, Path::new("p.csv")).unwrap();
        assert_eq!(ds.labels, vec![0, 1]);
        let Features::Floats(xy) = &ds.features else {
            panic!()
        };
        assert_eq!(xy, &vec![0.5, -1.0, 0.01, 3.0]);
        assert_eq!(ds.classes, 2);
    }

    #[test]
    fn spreadsheet_quirks_are_read_or_named() {
        // A byte-order mark, CR-only line ends, a header after a comment.
        let ds = parse(b"\xef\xbb\xbf0,0,0\r1,1,1\r2,2,0\r", Path::new("p.csv")).unwrap();
        assert_eq!(ds.labels, vec![0, 1, 0]);
        let ds = parse(b"# points\n\nx,y,label\n0,0,0\n1,1,1\n", Path::new("p.csv")).unwrap();
        assert_eq!(ds.labels, vec![0, 1]);
        // A first row with a number in it is data: its bad field is named.
        let e = parse(b"0x1,2,0\n1,2,1\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("0x1"), "{e}");
        // Labels are 0..K-1: {0, 900} is not a 901-class problem.
        let e = parse(b"0,0,0\n1,1,900\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("skip class numbers"), "{e}");
        // A huge field is not echoed whole.
        let huge = format!("0,0,0\n1,{},1\n", "9".repeat(100_000));
        let e = parse(huge.as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 1000, "{} bytes of message", e.len());
    }

    #[test]
    fn bad_rows_name_the_line() {
        let err = parse(b"0,0,0\n1,1\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.csv") && err.contains("line 2") && err.contains("2 fields"),
            "{err}"
        );
        let err = parse(b"0,0,0\n1,nan,1\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("finite"), "{err}");
        let err = parse(b"0,0,0\n1,1,-1\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("label"), "{err}");
        let err = parse(b"0,0,0\n1,1,0\n", Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("one class"), "{err}");
        assert!(parse(b"", Path::new("p.csv")).is_err());
        assert!(parse(&[0xff, 0xfe], Path::new("p.csv")).is_err());
    }

    #[test]
    fn split_keeps_every_point_once() {
        let mut text = String::new();
        for i in 0..10 {
            text += &format!("{i},0,{}\n", i % 2);
        }
        let ds = parse(text.as_bytes(), Path::new("p.csv")).unwrap();
        let split = split(ds, 0.3, 1, "p.csv");
        assert_eq!(split.test().len(), 3);
        assert_eq!(split.train.len(), 7);
        let Features::Floats(a) = &split.train.features else {
            panic!()
        };
        let Features::Floats(b) = &split.test().features else {
            panic!()
        };
        let mut xs: Vec<f32> = a.iter().chain(b).step_by(2).copied().collect();
        xs.sort_by(f32::total_cmp);
        assert_eq!(xs, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }
}
