//! `ajwt-bench`: the benchmark harness of issue 15.
//!
//! * `ajwt-bench all --ajwt <binary>`: the `http`, `growth` and `postgres`
//!   areas against real `ajwt serve` processes, each written as
//!   `$AJWT_BENCH_OUT/<area>.json` (the results contract of issue 15).
//! * `ajwt-bench assemble`: every `$AJWT_BENCH_OUT/*.json` into
//!   `crates/bench/RESULTS.md` and the README block.
//! * `ajwt-bench sign-rate`: the raw single-core signing rate (run pinned
//!   by the harness itself).
//! * `ajwt-bench placeholder`: an area file saying why an area did not run.
//!
//! `crates/bench/run.sh` is the one command that builds, runs every area
//! (also the criterion areas of the other crates) and assembles.

mod areas;
mod load;
mod report;
mod scenario;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::Value;

use report::{Area, Row};

#[derive(Debug, Parser)]
#[command(
    name = "ajwt-bench",
    about = "Issue 15 benchmark harness (load generator, growth, PostgreSQL, report)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the http, growth and postgres areas (or those named by --areas).
    All {
        /// The ajwt binary to serve with (a release build for real figures).
        #[arg(long)]
        ajwt: PathBuf,
        /// Results directory [default: $AJWT_BENCH_OUT, else target/bench-results].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Comma-separated areas: http, growth, postgres.
        #[arg(long, default_value = "http,growth,postgres")]
        areas: String,
        /// Smoke run (also BENCH_QUICK=1).
        #[arg(long)]
        quick: bool,
        /// Scratch directory for data directories [default: a temporary one].
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Signatures per second of KeyRing::sign over the given claims, one thread.
    SignRate {
        /// ES256, EdDSA, RS256, ...
        #[arg(long)]
        alg: String,
        /// How long to sign.
        #[arg(long, default_value_t = 1000)]
        millis: u64,
        /// The claims (JSON object).
        #[arg(long)]
        claims: String,
    },
    /// Assemble every <out>/*.json into the Markdown report and the README block.
    Assemble {
        /// Results directory.
        #[arg(long)]
        out: PathBuf,
        /// The Markdown report to write.
        #[arg(long)]
        results: PathBuf,
        /// README to update between the bench markers (optional).
        #[arg(long)]
        readme: Option<PathBuf>,
        /// Run facts for the header, KEY=VALUE (repeatable).
        #[arg(long = "meta")]
        meta: Vec<String>,
    },
    /// Write an area file whose one row says why the area did not run.
    Placeholder {
        /// Results directory.
        #[arg(long)]
        out: PathBuf,
        /// Area name.
        #[arg(long)]
        area: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

fn default_out() -> PathBuf {
    std::env::var_os("AJWT_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target"));
            target.join("bench-results")
        })
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::All {
            ajwt,
            out,
            areas,
            quick,
            work,
        } => run_all(ajwt, out.unwrap_or_else(default_out), &areas, quick, work),
        Cmd::SignRate {
            alg,
            millis,
            claims,
        } => sign_rate(&alg, millis, &claims),
        Cmd::Assemble {
            out,
            results,
            readme,
            meta,
        } => assemble(&out, &results, readme.as_deref(), &meta),
        Cmd::Placeholder {
            out,
            area,
            title,
            reason,
        } => {
            let mut a = Area::new(&area, &title);
            a.rows
                .push(Row::info("(area)", format!("not run: {reason}")));
            a.write(&out)
        }
    };
    if let Err(e) = result {
        eprintln!("ajwt-bench: {e}");
        std::process::exit(1);
    }
}

fn run_all(
    ajwt: PathBuf,
    out: PathBuf,
    which: &str,
    quick: bool,
    work: Option<PathBuf>,
) -> Result<(), String> {
    let quick = quick || std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let ajwt = std::fs::canonicalize(&ajwt).map_err(|e| format!("{}: {e}", ajwt.display()))?;
    let self_exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let tmp;
    let work = match work {
        Some(w) => w,
        None => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let mut settings = areas::Settings::new(quick, ajwt, self_exe, work);
    // tmpfs scratch (removed on drop) unless BENCH_NO_TMPFS=1.
    let shm = std::path::Path::new("/dev/shm");
    let tmpfs = if shm.is_dir() && !std::env::var("BENCH_NO_TMPFS").is_ok_and(|v| v == "1") {
        TempDir::new_in(shm).ok()
    } else {
        None
    };
    settings.tmpfs = tmpfs.as_ref().map(|t| t.0.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut failures = Vec::new();
    for name in which.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let t0 = Instant::now();
        eprintln!("ajwt-bench: area {name} ...");
        let result = runtime.block_on(async {
            match name {
                "http" => areas::http(&settings).await,
                "growth" => areas::growth(&settings).await,
                "postgres" => areas::postgres(&settings).await,
                other => Err(format!("unknown area {other}")),
            }
        });
        let area = match result {
            Ok(mut a) => {
                a.notes.push(format!(
                    "Area run time {:.0} s{}.",
                    t0.elapsed().as_secs_f64(),
                    if quick {
                        " (BENCH_QUICK=1 smoke run: figures are not meaningful)"
                    } else {
                        ""
                    }
                ));
                a
            }
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                let mut a = Area::new(name, name);
                a.rows.push(Row {
                    met: Some(false),
                    ..Row::info("(area)", format!("failed: {e}"))
                });
                a
            }
        };
        area.write(&out)?;
        eprintln!(
            "ajwt-bench: area {name} done in {:.0} s",
            t0.elapsed().as_secs_f64()
        );
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let base = std::env::var_os("AJWT_BENCH_WORK")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        TempDir::new_in(&base)
    }

    fn new_in(base: &std::path::Path) -> Result<TempDir, String> {
        let p = base.join(format!(
            "ajwt-bench-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sign_rate(alg: &str, millis: u64, claims: &str) -> Result<(), String> {
    let alg: ajwt_jose::Alg = alg.parse().map_err(|e| format!("{alg}: {e}"))?;
    let claims: Value = serde_json::from_str(claims).map_err(|e| format!("claims: {e}"))?;
    let Value::Object(claims) = claims else {
        return Err("claims: not an object".into());
    };
    let ring = ajwt_issuer::keys::KeyRing::generate(alg).map_err(|e| format!("key: {e}"))?;
    // Warm-up.
    for _ in 0..20 {
        ring.sign("JWT", &claims)
            .map_err(|e| format!("sign: {e}"))?;
    }
    let start = Instant::now();
    let deadline = Duration::from_millis(millis.max(1));
    let mut n = 0u64;
    while start.elapsed() < deadline {
        ring.sign("JWT", &claims)
            .map_err(|e| format!("sign: {e}"))?;
        n += 1;
    }
    println!("{:.1}", n as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

fn assemble(
    out: &std::path::Path,
    results: &std::path::Path,
    readme: Option<&std::path::Path>,
    meta: &[String],
) -> Result<(), String> {
    let (areas, errors) = report::read_areas(out);
    let (met, with) = report::score(&areas);
    let mut header = String::from("# Benchmark results (issue 15)\n\n");
    header.push_str(
        "Generated by `crates/bench/run.sh` (do not edit by hand). Every ratio is taken against a baseline measured in the same run on the same machine.\n\n",
    );
    for m in meta {
        let (k, v) = m.split_once('=').unwrap_or((m.as_str(), ""));
        header.push_str(&format!("- **{k}**: {v}\n"));
    }
    header.push_str(&format!("- **targets met**: {met} of {with}\n"));
    for e in &errors {
        header.push_str(&format!("- **unreadable results file**: {e}\n"));
    }
    header.push('\n');
    let tables = report::tables(&areas);
    let doc = format!("{header}{tables}");
    std::fs::write(results, &doc).map_err(|e| format!("{}: {e}", results.display()))?;
    if let Some(readme) = readme {
        let text =
            std::fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
        let mut block = String::new();
        for m in meta {
            let (k, v) = m.split_once('=').unwrap_or((m.as_str(), ""));
            block.push_str(&format!("- **{k}**: {v}\n"));
        }
        block.push_str(&format!(
            "- **targets met**: {met} of {with} (full report: [crates/bench/RESULTS.md](crates/bench/RESULTS.md))\n\n"
        ));
        // One level deeper inside the README's Performance section.
        let deeper = tables.replace("\n### ", "\n#### ");
        match deeper.strip_prefix("### ") {
            Some(rest) => block.push_str(&format!("#### {rest}")),
            None => block.push_str(&deeper),
        }
        let new = report::replace_block(&text, &block)?;
        std::fs::write(readme, new).map_err(|e| format!("{}: {e}", readme.display()))?;
    }
    Ok(())
}
