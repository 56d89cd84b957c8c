//! The results contract of issue 15 (`$AJWT_BENCH_OUT/<area>.json`) and the
//! assembler that turns every area's file into `crates/bench/RESULTS.md`
//! and the README block between `<!-- bench:begin -->` and
//! `<!-- bench:end -->`.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One area's results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Area {
    /// `checksum`, `issuance`, `verification`, `http`, `growth`, `postgres`.
    pub area: String,
    /// Table title.
    pub title: String,
    /// When measured (`YYYY-MM-DDTHH:MMZ`).
    #[serde(default)]
    pub date: String,
    /// Commit measured.
    #[serde(default)]
    pub commit: String,
    /// Lines shown under the table.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// What was measured.
    pub measure: String,
    /// The figure.
    pub value: String,
    /// The baseline of the same run, when any.
    #[serde(default)]
    pub baseline: Option<String>,
    /// value / baseline, when meaningful.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// The target, when any.
    #[serde(default)]
    pub target: Option<String>,
    /// Whether the target is met (`None`: no target, or not run).
    #[serde(default)]
    pub met: Option<bool>,
}

impl Row {
    /// A row without baseline or target.
    pub fn info(measure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            measure: measure.into(),
            value: value.into(),
            baseline: None,
            ratio: None,
            target: None,
            met: None,
        }
    }

    /// A row with a target.
    pub fn target(
        measure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Row {
        Row {
            target: Some(target.into()),
            met: Some(met),
            ..Row::info(measure, value)
        }
    }

    /// Adds a baseline and the ratio.
    pub fn with_baseline(mut self, baseline: impl Into<String>, ratio: Option<f64>) -> Row {
        self.baseline = Some(baseline.into());
        self.ratio = ratio.filter(|r| r.is_finite());
        self
    }
}

impl Area {
    /// An empty area stamped with now and the current commit.
    pub fn new(area: &str, title: &str) -> Area {
        Area {
            area: area.into(),
            title: title.into(),
            date: utc_now_minutes(),
            commit: git_commit(),
            notes: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Writes `<out>/<area>.json`.
    pub fn write(&self, out: &Path) -> Result<(), String> {
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let path = out.join(format!("{}.json", self.area));
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `YYYY-MM-DDTHH:MMZ` of now (UTC), from the civil-from-days algorithm.
pub fn utc_now_minutes() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The short commit of the working tree (`unknown` outside git).
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

/// The order of the areas in the report; others follow by name.
pub const AREA_ORDER: &[&str] = &[
    "checksum",
    "issuance",
    "verification",
    "http",
    "growth",
    "postgres",
];

/// Reads every `*.json` of `out` that parses as an [`Area`], in
/// [`AREA_ORDER`]; unreadable files are returned as errors by name.
pub fn read_areas(out: &Path) -> (Vec<Area>, Vec<String>) {
    let mut areas = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return (areas, vec![format!("{}: not readable", out.display())]);
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for p in paths {
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Area>(&b).map_err(|e| e.to_string()))
        {
            Ok(a) => areas.push(a),
            Err(e) => errors.push(format!("{}: {e}", p.display())),
        }
    }
    let rank = |a: &Area| {
        AREA_ORDER
            .iter()
            .position(|x| *x == a.area)
            .unwrap_or(AREA_ORDER.len())
    };
    areas.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.area.cmp(&b.area)));
    (areas, errors)
}

/// A table cell: no newlines, `|` escaped.
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

fn ratio_cell(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => String::new(),
    }
}

fn met_cell(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "✅",
        Some(false) => "❌",
        None => "",
    }
}

/// The Markdown tables of `areas` (one `###` section per area).
pub fn tables(areas: &[Area]) -> String {
    let mut s = String::new();
    for a in areas {
        s.push_str(&format!(
            "### {} (`{}`)\n\nMeasured {}, commit `{}`.\n\n",
            cell(&a.title),
            a.area,
            if a.date.is_empty() { "?" } else { &a.date },
            if a.commit.is_empty() { "?" } else { &a.commit }
        ));
        s.push_str("| measure | value | baseline | ratio | target | met |\n");
        s.push_str("|---|---|---|---|---|---|\n");
        for r in &a.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                cell(&r.measure),
                cell(&r.value),
                cell(r.baseline.as_deref().unwrap_or("")),
                ratio_cell(r.ratio),
                cell(r.target.as_deref().unwrap_or("")),
                met_cell(r.met)
            ));
        }
        if !a.notes.is_empty() {
            s.push('\n');
            for n in &a.notes {
                s.push_str(&format!("- {}\n", n.replace('\n', " ")));
            }
        }
        s.push('\n');
    }
    s
}

/// Targets met / with a target, over all areas.
pub fn score(areas: &[Area]) -> (usize, usize) {
    let rows = areas.iter().flat_map(|a| &a.rows);
    let with: Vec<_> = rows.filter_map(|r| r.met).collect();
    (with.iter().filter(|m| **m).count(), with.len())
}

/// The README block: markers included.
pub const BEGIN: &str = "<!-- bench:begin -->";
/// End marker of the README block.
pub const END: &str = "<!-- bench:end -->";

/// `readme` with the text between the markers replaced by `block`, or an
/// error when the markers are missing or out of order.
pub fn replace_block(readme: &str, block: &str) -> Result<String, String> {
    let b = readme
        .find(BEGIN)
        .ok_or_else(|| format!("README: no {BEGIN} marker"))?;
    let e = readme
        .find(END)
        .ok_or_else(|| format!("README: no {END} marker"))?;
    if e < b {
        return Err("README: the bench markers are out of order".into());
    }
    Ok(format!(
        "{}{BEGIN}\n{}\n{}",
        &readme[..b],
        block.trim_end(),
        &readme[e..]
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn results_contract_example_parses() {
        let a: Area = serde_json::from_str(
            r#"{"area": "checksum", "title": "Agent checksum (crates/checksum)", "date": "2026-12-07T12:00Z",
 "commit": "abc1234", "notes": ["free text lines shown under the table"],
 "rows": [{"measure": "jcs, large agent", "value": "31.2 µs (32,050/s)",
   "baseline": "SHA-256 of the canonical bytes: 22.1 µs", "ratio": 1.41, "target": "≤ 1.5×", "met": true}]}"#,
        )
        .unwrap();
        let t = tables(&[a]);
        assert!(t.contains("| jcs, large agent | 31.2 µs (32,050/s) | SHA-256 of the canonical bytes: 22.1 µs | 1.41× | ≤ 1.5× | ✅ |"), "{t}");
    }

    #[test]
    fn pipes_are_escaped_and_block_replaced() {
        let mut a = Area::new("x", "X");
        a.rows.push(Row::info("a|b", "1"));
        assert!(tables(&[a]).contains("| a\\|b | 1 |"));
        let readme = format!("head\n{BEGIN}\nold\n{END}\ntail\n");
        let new = replace_block(&readme, "new table\n").unwrap();
        assert_eq!(new, format!("head\n{BEGIN}\nnew table\n{END}\ntail\n"));
        assert!(replace_block("no markers", "x").is_err());
    }

    #[test]
    fn utc_date_shape() {
        let d = utc_now_minutes();
        assert_eq!(d.len(), 17, "{d}");
        assert!(d.ends_with('Z') && d.as_bytes()[10] == b'T');
    }
}
