//! Test catalogue, outcomes and reports shared by the three modes.
//!
//! Every conformance test has a stable id (`ISS-…`, `VER-…`, `VEC-…`), the
//! draft section it checks, the requirement keyword of that section as the
//! draft writes it (`MUST`, `REQUIRED`, `SHOULD`, …) and the ids of the
//! requirements it covers (`spec/requirements.json`). A mode declares its
//! catalogue up front, then records one [`Check`] per test it runs; the
//! [`Run`] turns checks into [`Outcome`]s under the run's options (SHOULD
//! failures are warnings unless `--strict`, expected failures from
//! `--expect-fail`) and renders the terminal, JSON and JUnit reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Version of this suite (the `ajwt-conformance` crate).
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The draft this suite tests.
pub const DRAFT: &str = "draft-goswami-agentic-jwt-00";
/// Version of the JSON report format (`conformance/report.schema.json`).
pub const REPORT_FORMAT: &str = "ajwt-conformance-report/1";

/// How binding a requirement is, derived from the draft's keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT: a failure fails the run.
    Must,
    /// SHOULD, SHOULD NOT, RECOMMENDED: a failure is a warning unless `--strict`.
    Should,
    /// MAY, OPTIONAL: a failure of an offered optional feature is a warning
    /// unless `--strict`.
    May,
}

impl Level {
    /// The level of a draft keyword as written (`"MUST NOT"` → `Must`).
    pub fn of_keyword(keyword: &str) -> Level {
        match keyword {
            "SHOULD" | "SHOULD NOT" | "RECOMMENDED" | "NOT RECOMMENDED" => Level::Should,
            "MAY" | "OPTIONAL" => Level::May,
            _ => Level::Must,
        }
    }
}

/// A test of the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct TestInfo {
    /// Stable id, e.g. `ISS-4.5.2-unsupported-grant-type`.
    pub id: String,
    /// The draft section the test checks, e.g. `4.5.2`.
    pub section: String,
    /// The draft's keyword as written: `MUST`, `MUST NOT`, `REQUIRED`, `SHOULD`, ….
    pub keyword: String,
    /// Requirement ids of `spec/requirements.json` this test covers.
    pub requirements: Vec<String>,
    /// One-line description.
    pub title: String,
}

impl TestInfo {
    /// A catalogue entry.
    pub fn new(id: &str, section: &str, keyword: &str, requirements: &[&str], title: &str) -> Self {
        TestInfo {
            id: id.to_owned(),
            section: section.to_owned(),
            keyword: keyword.to_owned(),
            requirements: requirements.iter().map(|r| (*r).to_owned()).collect(),
            title: title.to_owned(),
        }
    }

    /// The level derived from [`TestInfo::keyword`].
    pub fn level(&self) -> Level {
        Level::of_keyword(&self.keyword)
    }
}

/// What a test found, before the run's options are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The implementation behaves as the draft (and our resolution of it) requires.
    Pass,
    /// It does not; the reason says what was expected and what was seen.
    Fail(String),
    /// The test could not run (feature not offered, prerequisite failed, …).
    Skip(String),
}

impl Check {
    /// `Pass` when `cond` holds, else `Fail(reason())`.
    pub fn expect(cond: bool, reason: impl FnOnce() -> String) -> Check {
        if cond {
            Check::Pass
        } else {
            Check::Fail(reason())
        }
    }

    /// `Pass` for `Ok`, `Fail` with the error text for `Err`.
    pub fn from_result<E: std::fmt::Display>(r: Result<(), E>) -> Check {
        match r {
            Ok(()) => Check::Pass,
            Err(e) => Check::Fail(e.to_string()),
        }
    }
}

/// The reported outcome of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed: a MUST-level test, or a SHOULD/MAY-level one under `--strict`.
    Fail,
    /// A SHOULD/MAY-level test failed (not counted as a failure without `--strict`).
    Warning,
    /// Not run, with a reason.
    Skipped,
    /// Failed, and listed in the `--expect-fail` file: not counted as a failure.
    ExpectedFail,
    /// Passed although listed in the `--expect-fail` file: counted as a failure
    /// so the list cannot rot.
    UnexpectedPass,
}

impl Outcome {
    /// Short label used in the terminal report.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Warning => "warn",
            Outcome::Skipped => "skip",
            Outcome::ExpectedFail => "xfail",
            Outcome::UnexpectedPass => "XPASS",
        }
    }

    /// Whether this outcome makes the run fail.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::UnexpectedPass)
    }
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test.
    #[serde(flatten)]
    pub info: TestInfo,
    /// `must`, `should` or `may`.
    pub level: Level,
    /// The outcome under the run's options.
    pub outcome: Outcome,
    /// Why it failed, warned or was skipped (absent on a plain pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall time of the test in milliseconds (0 when not measured separately).
    pub duration_ms: u64,
}

/// Options shared by every mode.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// SHOULD/MAY-level failures fail the run.
    pub strict: bool,
    /// Only run tests whose id equals, or whose section is or lies under, one
    /// of these (empty: everything).
    pub only: Vec<String>,
    /// Ids expected to fail (`--expect-fail FILE`).
    pub expect_fail: BTreeSet<String>,
    /// Print one progress line per test on stderr.
    pub progress: bool,
    /// List passing tests in the terminal report (otherwise counted per section).
    pub list_passes: bool,
}

/// Reads an expected-failures file: one test id per line, `#` starts a comment.
pub fn read_expect_fail(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `section` is `filter` or lies under it (`4.5` covers `4.5.2`).
fn section_matches(section: &str, filter: &str) -> bool {
    let filter = filter.trim_start_matches('§');
    section == filter
        || section
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// A run of one mode: the catalogue, the options and the results so far.
#[derive(Debug)]
pub struct Run {
    mode: String,
    target: String,
    options: RunOptions,
    catalogue: Vec<TestInfo>,
    index: BTreeMap<String, usize>,
    results: BTreeMap<String, TestResult>,
    selected: usize,
    started: Instant,
    started_unix: u64,
    last: Instant,
    notes: Vec<String>,
    versions: BTreeMap<String, String>,
}

/// The catalogue or the options are inconsistent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Two catalogue entries share an id.
    #[error("duplicate test id in the catalogue: {0}")]
    DuplicateId(String),
    /// `--expect-fail` lists ids the catalogue does not have.
    #[error("--expect-fail lists unknown test ids: {0}")]
    UnknownExpectFail(String),
    /// `--only` selects nothing.
    #[error("--only {0} selects no test (use `ajwt conformance list` to see the ids)")]
    EmptySelection(String),
}

impl Run {
    /// Starts a run of `mode` against `target` with the given catalogue.
    pub fn new(
        mode: &str,
        target: &str,
        catalogue: Vec<TestInfo>,
        options: RunOptions,
    ) -> Result<Run, RunError> {
        let mut index = BTreeMap::new();
        for (i, t) in catalogue.iter().enumerate() {
            if index.insert(t.id.clone(), i).is_some() {
                return Err(RunError::DuplicateId(t.id.clone()));
            }
        }
        let unknown: Vec<&str> = options
            .expect_fail
            .iter()
            .filter(|id| !index.contains_key(*id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(RunError::UnknownExpectFail(unknown.join(", ")));
        }
        let mut run = Run {
            mode: mode.to_owned(),
            target: target.to_owned(),
            options,
            catalogue,
            index,
            results: BTreeMap::new(),
            selected: 0,
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            last: Instant::now(),
            notes: Vec::new(),
            versions: BTreeMap::new(),
        };
        run.selected = run.catalogue.iter().filter(|t| run.selects(t)).count();
        if run.selected == 0 && !run.options.only.is_empty() {
            return Err(RunError::EmptySelection(run.options.only.join(",")));
        }
        Ok(run)
    }

    fn selects(&self, t: &TestInfo) -> bool {
        self.options.only.is_empty()
            || self
                .options
                .only
                .iter()
                .any(|f| t.id == *f || section_matches(&t.section, f))
    }

    /// Whether the test `id` is selected and not yet recorded: call before
    /// doing the test's work.
    pub fn wants(&self, id: &str) -> bool {
        match self.index.get(id) {
            Some(&i) => self.selects(&self.catalogue[i]) && !self.results.contains_key(id),
            None => false,
        }
    }

    /// Whether any test of the given ids is wanted (to decide on shared setup).
    pub fn wants_any(&self, ids: &[&str]) -> bool {
        ids.iter().any(|id| self.wants(id))
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &[TestInfo] {
        &self.catalogue
    }

    /// Adds a line to the report header (e.g. discovered endpoints).
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Records a version shown in the header and the JSON report
    /// (e.g. `vectors` → `1 (sha256:…)`).
    pub fn version(&mut self, name: &str, value: impl Into<String>) {
        self.versions.insert(name.to_owned(), value.into());
    }

    /// The header with the suite, draft, versions and target; modes print it
    /// on stderr when a run starts (with progress on) so long runs say what
    /// they are testing before the first result.
    pub fn header(&self) -> String {
        render_header(&self.mode, &self.target, &self.versions)
    }

    /// Prints [`Run::header`] on stderr when progress is on.
    pub fn announce(&self) {
        if self.options.progress {
            let _ = write!(std::io::stderr().lock(), "{}", self.header());
        }
    }

    /// Records the result of test `id`. Unknown or unselected ids are
    /// ignored (a mode bug, caught by the catalogue tests); the first
    /// record of an id wins.
    pub fn record(&mut self, id: &str, check: Check) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last);
        self.last = now;
        let Some(&i) = self.index.get(id) else {
            debug_assert!(false, "test id {id} is not in the catalogue");
            return;
        };
        if !self.wants(id) {
            return;
        }
        let info = self.catalogue[i].clone();
        let result = self.judge(info, check, elapsed);
        if self.options.progress {
            let n = self.results.len() + 1;
            let line = match &result.reason {
                Some(r) => format!(
                    "[{n}/{}] {} {} — {}",
                    self.selected,
                    result.outcome.label(),
                    result.info.id,
                    r
                ),
                None => format!(
                    "[{n}/{}] {} {}",
                    self.selected,
                    result.outcome.label(),
                    result.info.id
                ),
            };
            let _ = writeln!(std::io::stderr().lock(), "{}", one_line(&line, 300));
        }
        self.results.insert(id.to_owned(), result);
    }

    /// Records `Skip(reason)` for each wanted test of `ids` (a prerequisite failed).
    pub fn skip_all(&mut self, ids: &[&str], reason: &str) {
        for id in ids {
            if self.wants(id) {
                self.record(id, Check::Skip(reason.to_owned()));
            }
        }
    }

    /// Resets the per-test timer (call before a test's work when other work
    /// happened since the last record).
    pub fn start_timer(&mut self) {
        self.last = Instant::now();
    }

    fn judge(&self, info: TestInfo, check: Check, elapsed: Duration) -> TestResult {
        let level = info.level();
        let expected_fail = self.options.expect_fail.contains(&info.id);
        let (outcome, reason) = match check {
            Check::Pass if expected_fail => (
                Outcome::UnexpectedPass,
                Some(
                    "passed, but listed in the --expect-fail file: remove it from the list".into(),
                ),
            ),
            Check::Pass => (Outcome::Pass, None),
            Check::Skip(r) => (Outcome::Skipped, Some(r)),
            Check::Fail(r) if expected_fail => (Outcome::ExpectedFail, Some(r)),
            Check::Fail(r) => match level {
                Level::Must => (Outcome::Fail, Some(r)),
                _ if self.options.strict => (Outcome::Fail, Some(r)),
                _ => (Outcome::Warning, Some(r)),
            },
        };
        TestResult {
            info,
            level,
            outcome,
            reason,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Finishes the run: every selected test never recorded is reported as
    /// skipped ("not reached"), so each selected test appears exactly once.
    pub fn finish(mut self) -> Report {
        let pending: Vec<String> = self
            .catalogue
            .iter()
            .filter(|t| self.selects(t) && !self.results.contains_key(&t.id))
            .map(|t| t.id.clone())
            .collect();
        for id in pending {
            let i = self.index[&id];
            let info = self.catalogue[i].clone();
            let r = self.judge(
                info,
                Check::Skip("not reached: the run stopped before this test".into()),
                Duration::ZERO,
            );
            self.results.insert(id, r);
        }
        let order: BTreeMap<&str, usize> = self
            .catalogue
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.as_str(), i))
            .collect();
        let mut results: Vec<TestResult> = self.results.into_values().collect();
        results.sort_by_key(|r| order.get(r.info.id.as_str()).copied().unwrap_or(usize::MAX));
        let mut summary = Summary::default();
        for r in &results {
            summary.add(r.outcome);
        }
        Report {
            format: REPORT_FORMAT,
            suite: "ajwt-conformance",
            suite_version: SUITE_VERSION,
            draft: DRAFT,
            mode: self.mode,
            target: self.target,
            strict: self.options.strict,
            started_unix: self.started_unix,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            versions: self.versions,
            notes: self.notes,
            summary,
            results,
            list_passes: self.options.list_passes,
        }
    }
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct Summary {
    /// Tests run or skipped.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed (counted).
    pub fail: usize,
    /// Warnings.
    pub warning: usize,
    /// Skipped.
    pub skipped: usize,
    /// Expected failures.
    pub expected_fail: usize,
    /// Unexpected passes (counted as failures).
    pub unexpected_pass: usize,
    /// MUST-level failures.
    pub must_failures: usize,
}

impl Summary {
    fn add(&mut self, o: Outcome) {
        self.total += 1;
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Warning => self.warning += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::ExpectedFail => self.expected_fail += 1,
            Outcome::UnexpectedPass => self.unexpected_pass += 1,
        }
    }
}

/// The finished run, serialised as the `--json` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Report format id (`ajwt-conformance-report/1`).
    pub format: &'static str,
    /// Always `ajwt-conformance`.
    pub suite: &'static str,
    /// Version of the suite.
    pub suite_version: &'static str,
    /// The draft tested.
    pub draft: &'static str,
    /// `vectors`, `issuer` or `verifier`.
    pub mode: String,
    /// What was tested (built-in crates, adapter command, URL).
    pub target: String,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Duration of the run.
    pub duration_ms: u64,
    /// Versions of the suite's parts (vectors, …).
    pub versions: BTreeMap<String, String>,
    /// Facts found during the run (discovered endpoints, …).
    pub notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// Every selected test, in catalogue order.
    pub results: Vec<TestResult>,
    #[serde(skip)]
    list_passes: bool,
}

/// Makes `s` one line of at most `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        let mut t: String = flat.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

/// Orders dotted section numbers numerically (`4.10` after `4.9`).
fn section_key(s: &str) -> Vec<u64> {
    s.split('.')
        .map(|p| p.parse::<u64>().unwrap_or(u64::MAX))
        .collect()
}

impl Report {
    /// Whether the run failed: a MUST-level failure, an unexpected pass, or
    /// (with `--strict`) a SHOULD/MAY-level failure.
    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.outcome.is_failure())
    }

    /// One line per test that did not pass (`<outcome> <id>: <reason>`),
    /// for assertion messages.
    pub fn not_passing(&self) -> String {
        self.results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .map(|r| format!("{} {}: {:?}", r.outcome.label(), r.info.id, r.reason))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The header printed before a run (suite, draft, versions).
    pub fn header(&self) -> String {
        render_header(&self.mode, &self.target, &self.versions)
    }

    /// The terminal report, grouped by draft section like h2spec, after the
    /// header with the versions.
    pub fn terminal(&self) -> String {
        let mut out = self.header();
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        let mut by_section: BTreeMap<Vec<u64>, (String, Vec<&TestResult>)> = BTreeMap::new();
        for r in &self.results {
            by_section
                .entry(section_key(&r.info.section))
                .or_insert_with(|| (r.info.section.clone(), Vec::new()))
                .1
                .push(r);
        }
        for (section, results) in by_section.values() {
            let passed = results
                .iter()
                .filter(|r| r.outcome == Outcome::Pass)
                .count();
            let _ = writeln!(out, "\n§{section}  ({passed}/{} passed)", results.len());
            for r in results {
                if r.outcome == Outcome::Pass && !self.list_passes {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {:5} {} [{}] {}",
                    r.outcome.label(),
                    r.info.id,
                    r.info.keyword,
                    one_line(&r.info.title, 100)
                );
                if let Some(reason) = &r.reason {
                    let _ = writeln!(out, "        {}", one_line(reason, 1200));
                }
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} tests, {} passed, {} failed ({} MUST), {} warnings, {} skipped, {} expected failures, {} unexpected passes in {:.1} s",
            s.total,
            s.pass,
            s.fail,
            self.results
                .iter()
                .filter(|r| r.outcome.is_failure() && r.level == Level::Must)
                .count(),
            s.warning,
            s.skipped,
            s.expected_fail,
            s.unexpected_pass,
            self.duration_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "{}",
            if self.failed() {
                "RESULT: FAIL"
            } else {
                "RESULT: PASS"
            }
        );
        out
    }

    /// The `--json` report.
    pub fn json(&self) -> String {
        let mut report = self.clone();
        report.summary.must_failures = self
            .results
            .iter()
            .filter(|r| r.outcome.is_failure() && r.level == Level::Must)
            .count();
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The `--junit` report (one `<testsuite>` per draft section).
    pub fn junit(&self) -> String {
        let mut by_section: BTreeMap<Vec<u64>, (String, Vec<&TestResult>)> = BTreeMap::new();
        for r in &self.results {
            by_section
                .entry(section_key(&r.info.section))
                .or_insert_with(|| (r.info.section.clone(), Vec::new()))
                .1
                .push(r);
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let s = &self.summary;
        let _ = writeln!(
            out,
            "<testsuites name=\"ajwt-conformance {} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&self.mode),
            xml(&self.target),
            s.total,
            s.fail + s.unexpected_pass,
            s.skipped + s.expected_fail,
            self.duration_ms as f64 / 1000.0
        );
        for (section, results) in by_section.values() {
            let failures = results.iter().filter(|r| r.outcome.is_failure()).count();
            let skipped = results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Skipped | Outcome::ExpectedFail))
                .count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"§{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
                xml(section),
                results.len()
            );
            for r in results {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}.§{}\" name=\"{}\" time=\"{:.3}\">",
                    xml(&self.mode),
                    xml(section),
                    xml(&format!(
                        "{} [{}] {}",
                        r.info.id, r.info.keyword, r.info.title
                    )),
                    r.duration_ms as f64 / 1000.0
                );
                let reason = r.reason.as_deref().unwrap_or("");
                match r.outcome {
                    Outcome::Pass => {}
                    Outcome::Fail | Outcome::UnexpectedPass => {
                        let _ = write!(
                            out,
                            "<failure message=\"{}\" type=\"{}\">{}</failure>",
                            xml(&one_line(reason, 300)),
                            r.outcome.label(),
                            xml(reason)
                        );
                    }
                    Outcome::Skipped | Outcome::ExpectedFail => {
                        let _ = write!(
                            out,
                            "<skipped message=\"{}: {}\"/>",
                            r.outcome.label(),
                            xml(&one_line(reason, 300))
                        );
                    }
                    Outcome::Warning => {
                        let _ = write!(
                            out,
                            "<system-out>WARNING ({} not met): {}</system-out>",
                            xml(&r.info.keyword),
                            xml(reason)
                        );
                    }
                }
                out.push_str("</testcase>\n");
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// The header printed at the start of a run.
pub fn render_header(mode: &str, target: &str, versions: &BTreeMap<String, String>) -> String {
    let mut out = format!("ajwt-conformance {SUITE_VERSION} · {DRAFT} · mode {mode}\n");
    for (k, v) in versions {
        let _ = writeln!(out, "  {k}: {v}");
    }
    let _ = writeln!(out, "  target: {target}");
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0
/// cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Vec<TestInfo> {
        vec![
            TestInfo::new("T-1", "4.5.2", "MUST", &["R-4.5.2-1"], "must test"),
            TestInfo::new("T-2", "4.5.3", "SHOULD", &[], "should test"),
            TestInfo::new("T-3", "5.4", "MAY", &[], "may test"),
            TestInfo::new("T-4", "4.10", "REQUIRED", &[], "required test"),
        ]
    }

    fn opts() -> RunOptions {
        RunOptions::default()
    }

    #[test]
    fn should_failure_is_a_warning_unless_strict() {
        let mut run = Run::new("t", "x", cat(), opts()).unwrap();
        run.record("T-1", Check::Pass);
        run.record("T-2", Check::Fail("no".into()));
        let report = run.finish();
        assert!(!report.failed());
        assert_eq!(report.summary.warning, 1);
        assert_eq!(report.summary.skipped, 2, "T-3 and T-4 never recorded");

        let mut o = opts();
        o.strict = true;
        let mut run = Run::new("t", "x", cat(), o).unwrap();
        run.record("T-2", Check::Fail("no".into()));
        assert!(run.finish().failed());
    }

    #[test]
    fn must_failure_fails_the_run_and_required_is_must() {
        let mut run = Run::new("t", "x", cat(), opts()).unwrap();
        run.record("T-4", Check::Fail("no".into()));
        let r = run.finish();
        assert!(r.failed());
        assert_eq!(
            r.results
                .iter()
                .find(|r| r.info.id == "T-4")
                .unwrap()
                .outcome,
            Outcome::Fail
        );
        assert!(r.json().contains("\"must_failures\": 1"));
    }

    #[test]
    fn expect_fail_turns_failures_into_xfail_and_passes_into_failures() {
        let mut o = opts();
        o.expect_fail = read_expect_fail("T-1  # known gap\n\n# comment\nT-4\n");
        assert_eq!(o.expect_fail.len(), 2);
        let mut run = Run::new("t", "x", cat(), o).unwrap();
        run.record("T-1", Check::Fail("gap".into()));
        run.record("T-4", Check::Pass);
        let r = run.finish();
        assert_eq!(r.summary.expected_fail, 1);
        assert_eq!(r.summary.unexpected_pass, 1);
        assert!(r.failed(), "a listed test that passes fails the run");
    }

    #[test]
    fn expect_fail_with_unknown_id_is_refused() {
        let mut o = opts();
        o.expect_fail.insert("T-99".into());
        assert!(matches!(
            Run::new("t", "x", cat(), o),
            Err(RunError::UnknownExpectFail(_))
        ));
    }

    #[test]
    fn only_selects_by_id_and_by_section_prefix() {
        let mut o = opts();
        o.only = vec!["4.5".into()];
        let run = Run::new("t", "x", cat(), o).unwrap();
        assert!(run.wants("T-1") && run.wants("T-2"));
        assert!(
            !run.wants("T-3") && !run.wants("T-4"),
            "4.10 is not under 4.1/4.5"
        );
        let mut o = opts();
        o.only = vec!["T-3".into()];
        let run = Run::new("t", "x", cat(), o).unwrap();
        assert!(run.wants("T-3") && !run.wants("T-1"));
        assert_eq!(run.finish().results.len(), 1);
        let mut o = opts();
        o.only = vec!["9.9".into()];
        assert!(matches!(
            Run::new("t", "x", cat(), o),
            Err(RunError::EmptySelection(_))
        ));
    }

    #[test]
    fn reports_are_grouped_by_section_in_numeric_order_and_junit_is_escaped() {
        let mut o = opts();
        o.list_passes = true;
        let mut run = Run::new("t", "x", cat(), o).unwrap();
        run.record("T-1", Check::Fail("expected 400, got <500> & \"x\"".into()));
        run.record("T-4", Check::Pass);
        let r = run.finish();
        let text = r.terminal();
        let p45 = text.find("§4.5.2").unwrap();
        let p410 = text.find("§4.10").unwrap();
        assert!(p45 < p410, "4.5.2 before 4.10:\n{text}");
        assert!(text.contains("RESULT: FAIL"));
        let junit = r.junit();
        assert!(junit.contains("&lt;500&gt; &amp; &quot;x&quot;"));
        assert!(!junit.contains("<500>"));
        assert_eq!(junit.matches("<testcase").count(), 4);
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let mut c = cat();
        c.push(c[0].clone());
        assert!(matches!(
            Run::new("t", "x", c, opts()),
            Err(RunError::DuplicateId(_))
        ));
    }
}
