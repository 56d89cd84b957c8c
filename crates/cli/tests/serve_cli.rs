//! `ajwt serve` configuration errors are reported before anything starts
//! (§9.2.1 lifetime limit; flags > environment > TOML file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;

fn serve(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ajwt"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data.path())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    // Nothing may have been created for a refused configuration.
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn s9_2_1_lifetime_over_3600_is_refused_from_flag_env_and_file() {
    let (code, err) = serve(&["--token-lifetime", "3601"], &[]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: invalid configuration: token_lifetime 3601 s"),
        "{err}"
    );

    let (code, err) = serve(&[], &[("AJWT_TOKEN_LIFETIME", "7200")]);
    assert_eq!(code, 2);
    assert!(err.contains("token_lifetime 7200 s"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ajwt.toml");
    // The deprecated spelling still reaches the same check (I-58).
    std::fs::write(&file, "intent_token_lifetime = 9999\n").unwrap();
    let (code, err) = serve(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("token_lifetime 9999 s"), "{err}");
    std::fs::write(&file, "token_lifetime = 9999\n").unwrap();
    let (code, err) = serve(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("token_lifetime 9999 s"), "{err}");
    // The flag wins over the file: a valid flag value with an invalid file value
    // gets past validation, so use an invalid address to stop before binding.
    let (code, err) = serve(
        &[
            "--config",
            file.to_str().unwrap(),
            "--token-lifetime",
            "60",
            "--addr",
            "nonsense",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("addr \"nonsense\""), "{err}");
}

#[test]
fn unknown_toml_keys_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ajwt.toml");
    std::fs::write(&file, "adress = \"127.0.0.1:1\"\n").unwrap();
    let (code, err) = serve(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown field") && err.contains("adress"),
        "{err}"
    );
    let (code, err) = serve(&["--signing-alg", "HS256"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("signing_alg \"HS256\""), "{err}");
    let (code, err) = serve(&["--log-format", "xml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("log_format"), "{err}");
}
