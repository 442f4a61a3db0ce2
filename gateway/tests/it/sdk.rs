//! The gateway driven by the official `openai` Python SDK (tests/sdk/openai_client.py): plain and
//! streamed completions, a hit with `Age` and usage, every cache control, the tenant-spoofing
//! attempt, a 429 with its `retry-after`, and `/v1/models` proxied.
//!
//! The Python is `$PARACACHE_OPENAI_PYTHON` (CI's `.ci/run` makes a venv in
//! `target/venv-openai`, installs `openai` from PyPI and sets it), else `target/venv-openai`'s
//! when it exists. With the variable set, a missing interpreter or SDK fails the test; without
//! it and without the venv, the test says how to make one and passes as skipped.

use super::*;
use std::path::PathBuf;

/// The interpreter to run, or `None` (with the reason printed) to skip.
fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARACACHE_OPENAI_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "PARACACHE_OPENAI_PYTHON={} does not exist",
            p.display()
        );
        return Some(p);
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("target/venv-openai/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    eprintln!(
        "SKIPPED the openai SDK test: no Python with the SDK. Make one with \
         `python3 -m venv target/venv-openai && target/venv-openai/bin/pip install openai` \
         (or set PARACACHE_OPENAI_PYTHON to an interpreter that has it); .ci/run does."
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_openai_sdk_works_through_the_gateway() {
    let Some(python) = python() else {
        return;
    };
    let (url, fake) = start(Duration::ZERO).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_client.py");
    let base = format!("{url}/v1");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(script)
            .arg(base)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"));
    assert!(fake.calls.load(Ordering::SeqCst) > 0);
    assert_eq!(
        fake.other_calls.load(Ordering::SeqCst),
        0,
        "/v1/models has its own route"
    );
}
