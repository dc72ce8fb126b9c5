//! "Lose nothing": each test makes a fault happen to the real binary — a kill
//! mid-run, a kill mid-write, a full disk, a signal, racing writers, corrupt
//! and foreign files, an out-of-memory panic — and checks what survives.
//! The faults come from the test-only hook `PRUNELAB_TEST_FAULT` (fault.rs).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, fails, json, ok};

/// A small CPU run: 4 epochs of 6 batches (300 points, batch 50).
fn train_args(dir: &Path, tag: &str) -> Vec<String> {
    let s = |v: &str| v.to_string();
    vec![
        s("train"),
        s("--dataset"),
        s("moons"),
        s("--points"),
        s("300"),
        s("--batch-size"),
        s("50"),
        s("--epochs"),
        s("4"),
        s("--device"),
        s("cpu"),
        s("--checkpoint"),
        dir.join(format!("{tag}.ckpt")).display().to_string(),
        s("--save"),
        dir.join(format!("{tag}.plm")).display().to_string(),
        s("--out"),
        dir.join(format!("{tag}.json")).display().to_string(),
    ]
}

/// `fault`, armed for the next ten minutes (see fault.rs: a spec without a
/// near `until=` is ignored).
fn armed(fault: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("until={},{fault}", now + 600)
}

fn run_with_fault(args: &[String], fault: &str) -> Output {
    bin()
        .args(args)
        .env("PRUNELAB_TEST_FAULT", armed(fault))
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// SIGTERM to `child`, then all it printed and its status.
fn terminate(child: std::process::Child) -> Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The per-epoch metrics without the wall-clock fields.
fn metrics(result: &serde_json::Value) -> Vec<(f64, f64, f64, f64)> {
    result["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_f64().unwrap();
            (
                f("train_loss"),
                f("train_accuracy"),
                f("test_loss"),
                f("test_accuracy"),
            )
        })
        .collect()
}

#[test]
fn killed_mid_epoch_then_resumed_equals_an_uninterrupted_run_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let reference = train_args(dir.path(), "reference");
    ok(&strs(&reference));

    // Step 9 is in the middle of epoch 2: the checkpoint of step 8 is the last.
    let mut args = train_args(dir.path(), "killed");
    args.extend(["--checkpoint-every".into(), "4".into()]);
    let out = run_with_fault(&args, "abort-at-step=9");
    assert!(!out.status.success(), "the fault must kill the run");
    assert!(!dir.path().join("killed.plm").exists());
    args.push("--resume".into());
    let (_, err) = ok(&strs(&args));
    assert!(err.contains("at epoch 2, batch 2 (step 8)"), "{err}");

    let read = |tag: &str| std::fs::read(dir.path().join(format!("{tag}.plm"))).unwrap();
    assert!(
        read("reference") == read("killed"),
        "resumed weights differ from the uninterrupted run's"
    );
    let (a, b) = (
        json(&dir.path().join("reference.json")),
        json(&dir.path().join("killed.json")),
    );
    assert_eq!(metrics(&a), metrics(&b), "same sample order, same numbers");
}

/// The fault hook ships in release binaries, so a stray
/// variable (no `until=`, an old one, one far ahead) must not fire; it is
/// named in a warning instead.
#[test]
fn a_stray_fault_variable_does_not_fire() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (k, stray) in [
        "abort-at-step=2".to_string(),
        format!("until={},abort-at-step=2", now - 5),
        format!("until={},abort-at-step=2", now + 100_000),
    ]
    .iter()
    .enumerate()
    {
        let args = train_args(dir.path(), &format!("stray{k}"));
        let out = bin()
            .args(&args)
            .env("PRUNELAB_TEST_FAULT", stray)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{stray}: {err}");
        assert!(
            err.contains("PRUNELAB_TEST_FAULT is set but ignored"),
            "{err}"
        );
    }
    // The same fault, armed, does fire: the check above can fail.
    let args = train_args(dir.path(), "armed");
    let out = run_with_fault(&args, "abort-at-step=2");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is armed until"), "{}", stderr(&out));
}

/// Trains one epoch (writing `run.ckpt`) and returns the arguments that
/// resume it up to `epochs`, the checkpoint's path and its bytes.
fn one_epoch_then_resume(dir: &Path, epochs: usize) -> (Vec<String>, PathBuf, Vec<u8>) {
    let mut args = train_args(dir, "run");
    args[8] = "1".into(); // --epochs 1
    ok(&strs(&args));
    let ckpt = dir.join("run.ckpt");
    let before = std::fs::read(&ckpt).unwrap();
    args[8] = epochs.to_string();
    args.push("--resume".into());
    (args, ckpt, before)
}

/// The atomic writer's temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
        .collect()
}

#[test]
fn a_kill_while_writing_a_checkpoint_leaves_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let (args, ckpt, before) = one_epoch_then_resume(dir.path(), 3);
    let out = run_with_fault(&args, "abort-mid-write=run.ckpt");
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the old checkpoint is untouched"
    );
    assert_eq!(
        temporaries(dir.path()).len(),
        1,
        "the half-written file sits under a temporary name"
    );
    // …and the run continues from the old checkpoint.
    let (_, err) = ok(&strs(&args));
    assert!(err.contains("at epoch 2, batch 0"), "{err}");
}

#[test]
fn a_full_disk_is_a_clear_error_and_keeps_the_old_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (args, ckpt, before) = one_epoch_then_resume(dir.path(), 2);
    let out = run_with_fault(&args, "disk-full=run.ckpt");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("disk is full") && err.contains("run.ckpt"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    assert!(
        temporaries(dir.path()).is_empty(),
        "no temporary file is left behind"
    );
}

#[test]
fn a_checkpoint_is_one_unit_and_foreign_versions_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = train_args(dir.path(), "a");
    a[8] = "1".into();
    ok(&strs(&a));
    let mut b = train_args(dir.path(), "b");
    b[8] = "2".into();
    ok(&strs(&b));
    let (ca, cb) = (
        std::fs::read(dir.path().join("a.ckpt")).unwrap(),
        std::fs::read(dir.path().join("b.ckpt")).unwrap(),
    );
    let eval = |bytes: &[u8], name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        fails(&["eval", path.to_str().unwrap(), "--dataset", "moons"])
    };
    // Parts of two checkpoints: the head of one, the tail of the other.
    let mut mixed = ca[..ca.len() / 2].to_vec();
    mixed.extend_from_slice(&cb[cb.len() / 2..]);
    let e = eval(&mixed, "mixed.ckpt");
    assert!(e.contains("mixed.ckpt") && e.contains("checksum"), "{e}");
    let e = eval(&ca[..ca.len() - 100], "short.ckpt");
    assert!(e.contains("short.ckpt") && e.contains("truncated"), "{e}");
    // A version written by a newer prunelab (its checksum recomputed)...
    let with_version = |version: u32| {
        let mut bytes = ca[..ca.len() - 8].to_vec();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        bytes.extend_from_slice(&sum.to_le_bytes());
        bytes
    };
    let e = eval(&with_version(99), "newer.ckpt");
    assert!(
        e.contains("newer prunelab") && e.contains("format 99"),
        "{e}"
    );
    let e = eval(&with_version(0), "zero.ckpt");
    assert!(e.contains("format 0"), "{e}");
    // ...but one flipped bit in the version field is corruption (the
    // checksum is checked before the version).
    let mut flipped = ca;
    flipped[10] ^= 0x04;
    let e = eval(&flipped, "flipped.ckpt");
    assert!(
        e.contains("checksum") && !e.contains("upgrade prunelab"),
        "{e}"
    );
}

/// The checksum proves a file is whole, not that its parts
/// agree. Forged checkpoints (checksums recomputed) whose optimizer state,
/// masks or progress do not fit the run are refused by name, and a finished
/// run says so instead of "resuming at epoch 41".
#[test]
fn a_checkpoint_whose_parts_disagree_is_refused_by_name() {
    use prunelab::io::pack::Pack;
    let dir = tempfile::tempdir().unwrap();
    let (args, ckpt, before) = one_epoch_then_resume(dir.path(), 2);
    let pack = Pack::from_bytes(&before, &ckpt).unwrap();
    let forge = |edit: &dyn Fn(&mut Pack)| {
        let mut forged = pack.clone();
        edit(&mut forged);
        std::fs::write(&ckpt, forged.to_bytes()).unwrap();
        fails(&strs(&args))
    };
    let momentum = pack
        .names()
        .find(|n| n.starts_with("optim/") && n.ends_with("#momentum"))
        .expect("SGD with momentum keeps a buffer per parameter")
        .to_string();
    let param = momentum["optim/".len()..momentum.len() - "#momentum".len()].to_string();

    let e = forge(&|p| p.push(format!("mask/{param}"), vec![1], &[0.0]));
    assert!(e.contains(&format!("`mask/{param}` has 1 values")), "{e}");
    let e = forge(&|p| {
        let entry = p.entries.iter_mut().find(|e| e.name == momentum).unwrap();
        entry.shape = vec![1];
    });
    assert!(e.contains("has 1 values, its parameter has"), "{e}");
    let e = forge(&|p| p.push("optim/nowhere#momentum", vec![1], &[0.0]));
    assert!(e.contains("belongs to no parameter"), "{e}");
    for (field, value) in [
        ("batch", serde_json::json!(1_000_000_000_000u64)),
        ("step", serde_json::json!(u64::MAX)),
        ("epoch", serde_json::json!(1_000_000_000_000_000u64)),
    ] {
        let e = forge(&|p| p.meta["progress"][field] = value.clone());
        assert!(e.contains("progress does not add up"), "{field}: {e}");
    }
    // The untouched checkpoint still resumes; once finished, it says so.
    std::fs::write(&ckpt, &before).unwrap();
    ok(&strs(&args));
    let (_, err) = ok(&strs(&args));
    assert!(err.contains("has finished all 2 epochs"), "{err}");
}

#[test]
fn sigterm_saves_a_checkpoint_and_exits_for_requeue() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = train_args(dir.path(), "run");
    args[8] = "400".into(); // long enough to be signalled mid-run
    let child = bin()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let start = Instant::now();
    while !ckpt.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = terminate(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("interrupted at step") && err.contains("--resume"),
        "{err}"
    );
    // The checkpoint it wrote on the way out loads and continues.
    args[8] = "1".into();
    args.push("--resume".into());
    let (_, err) = ok(&strs(&args));
    assert!(err.contains("resuming"), "{err}");
}

/// A stop with nothing saved must not ask for a requeue
/// (exit 75), which would only start the run over, forever.
#[test]
fn a_stop_with_nothing_saved_does_not_ask_for_a_requeue() {
    let child = bin()
        .args(["train", "--dataset", "moons", "--points", "300"])
        .args([
            "--batch-size",
            "50",
            "--epochs",
            "100000",
            "--device",
            "cpu",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Past startup (the signal handlers are installed before any data loads).
    std::thread::sleep(Duration::from_millis(1500));
    let out = terminate(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("no --checkpoint was given") && err.contains("nothing to resume"),
        "{err}"
    );
}

/// `prune` (like `eval`, `export` and `bench`) has no step to stop at: a
/// signal ends it with the documented 130 and it removes its private runtime
/// folder (probe 2, L9: exit 143 and one `prunelab-runtime-*` folder left in
/// the temporary folder per kill).
#[test]
fn a_signal_stops_prune_with_130_and_leaves_no_runtime_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let child = bin()
        .args(["prune", "--dataset", "moons", "--points", "300"])
        .args(["--batch-size", "50", "--device", "cpu", "--method", "snip"])
        // SNIP prunes at initialisation, then trains: long enough to signal.
        .args(["--target", "sparsity=0.5", "--epochs", "100000"])
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_RUNTIME_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let out = terminate(child);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by signal"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("prunelab-runtime-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_out_of_memory_panic_becomes_a_diagnosable_error() {
    let dir = tempfile::tempdir().unwrap();
    let args = train_args(dir.path(), "run");
    let out = run_with_fault(&args, "oom-at-step=3");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error exit, not an abort: {err}"
    );
    assert!(
        err.contains("ran out of memory") && err.contains("--batch-size"),
        "{err}"
    );
    assert!(!err.contains("panicked at"), "no raw panic: {err}");
}

const SWEEP: &str = r#"
name = "../../escape"   # a hostile name: must not steer any path
seeds = [1, 2]
device = "cpu"
[model]
name = "mlp"
hidden = [12, 12]
[data]
dataset = "xor"
train_points = 200
test_points = 100
[train]
epochs = 4
batch_size = 50
optimizer = "adam"
lr = 0.02
schedule = "constant"
[prune]
finetune_epochs = 1
[[methods]]
method = "l1"
targets = ["macs=0.3", "macs=0.5"]
[[methods]]
method = "magnitude"
targets = ["sparsity=0.5"]
"#;

/// A temporary directory holding `sweep.toml` (SWEEP).
fn sweep_file() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let sweep = root.path().join("sweep.toml");
    std::fs::write(&sweep, SWEEP).unwrap();
    (root, sweep)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn racing_shards_write_each_result_once_and_readers_never_see_a_partial_file() {
    let (root, sweep) = sweep_file();
    let out = root.path().join("a/b/out");
    let spawn = || {
        bin()
            .args([
                "sweep",
                sweep.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    // A reader polls while both write: every file it finds parses whole.
    let runs = out.join("runs");
    let mut reads = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut children = [Some(first), Some(second)];
    let mut errors = Vec::new();
    // A result replaced after publication would show up as a new inode.
    let mut first_inode = std::collections::BTreeMap::new();
    while children.iter().any(Option::is_some) {
        assert!(Instant::now() < deadline, "the sweep did not finish");
        if let Ok(entries) = std::fs::read_dir(&runs) {
            for e in entries {
                let p = e.unwrap().path();
                if p.file_name().unwrap().to_string_lossy().starts_with('.') {
                    continue;
                }
                if let Ok(meta) = std::fs::metadata(&p) {
                    first_inode.entry(p.clone()).or_insert(meta.ino());
                }
                if let Ok(text) = std::fs::read_to_string(&p) {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .unwrap_or_else(|e| panic!("partial result {}: {e}", p.display()));
                    reads += 1;
                }
            }
        }
        for c in children.iter_mut() {
            if let Some(child) = c
                && child.try_wait().unwrap().is_some()
            {
                let o = c.take().unwrap().wait_with_output().unwrap();
                errors.push((o.status.success(), stderr(&o)));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (success, err) in &errors {
        assert!(success, "{err}");
    }
    assert!(reads > 0, "the reader saw results while the shards ran");
    for (path, inode) in &first_inode {
        let now = std::fs::metadata(path).unwrap().ino();
        assert_eq!(
            now,
            *inode,
            "{} was replaced after publication",
            path.display()
        );
    }
    let manifest = json(&out.join("sweep.json"));
    let mut want: Vec<String> = manifest["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}.json", r["id"].as_str().unwrap()))
        .collect();
    want.sort();
    assert_eq!(want.len(), 6);
    let have: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(have, want, "one file per run, no temporary leftovers");
    // Nothing was written outside --out despite the hostile name.
    let all = files_under(root.path());
    assert!(
        all.iter().all(|p| p == &sweep || p.starts_with(&out)),
        "{all:?}"
    );
    // A re-run has nothing left to do; collect merges all six.
    let (_, err) = ok(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("6 already done"), "{err}");
    let (md, err) = ok(&["sweep", "--collect", out.to_str().unwrap()]);
    assert!(md.contains("| l1 (n=2") && md.contains("macs=0.5"), "{md}");
    assert!(!err.contains("missing"), "{err}");
}

#[test]
fn sharded_runs_cover_the_sweep_once_and_a_failed_shard_is_redone_alone() {
    let (root, sweep) = sweep_file();
    let out = root.path().join("out");
    let shard = |i: usize, fault: &str| {
        bin()
            .args([
                "sweep",
                sweep.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--shard", &format!("{i}/3")])
            .env("PRUNELAB_TEST_FAULT", armed(fault))
            .output()
            .unwrap()
    };
    for i in [0, 2] {
        assert!(shard(i, "").status.success());
    }
    let failed = shard(1, "fail-shard=1");
    assert!(!failed.status.success());
    assert!(stderr(&failed).contains("made to fail"));
    let (_, err) = ok(&["sweep", "--collect", out.to_str().unwrap()]);
    assert!(err.contains("missing 1 run"), "{err}");
    let again = shard(1, "");
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("1 already done"),
        "{}",
        stderr(&again)
    );
    let (_, err) = ok(&["sweep", "--collect", out.to_str().unwrap()]);
    assert!(!err.contains("missing"), "{err}");
}

/// Every Kubernetes pod's prunelab is PID 1 on one shared volume: shards in
/// separate PID namespaces (and a retried pod running a shard twice) must
/// not share temporary files. Needs `unshare --pid` (root); skips elsewhere.
#[test]
fn shards_in_separate_pid_namespaces_do_not_share_temporary_files() {
    let probe = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        eprintln!(
            "SKIPPED: `unshare --pid` is unavailable here (needs root and util-linux); \
             run as root to check shards in separate PID namespaces"
        );
        return;
    }
    let binary = bin().get_program().to_owned();
    for trial in 0..3 {
        let (root, sweep) = sweep_file();
        let out = root.path().join("out");
        // Three shards, and shard 0 twice (a retried pod while the old one runs).
        let children: Vec<_> = ["0/3", "1/3", "2/3", "0/3"]
            .iter()
            .map(|shard| {
                Command::new("unshare")
                    .args(["--pid", "--fork", "--mount-proc"])
                    .arg(&binary)
                    .args([
                        "sweep",
                        sweep.to_str().unwrap(),
                        "--out",
                        out.to_str().unwrap(),
                    ])
                    .args(["--shard", shard])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "trial {trial}: {}", stderr(&o));
        }
        let runs: Vec<PathBuf> = files_under(&out.join("runs"));
        assert_eq!(
            runs.len(),
            6,
            "trial {trial}: one result per run, no temporaries: {runs:?}"
        );
        assert!(temporaries(&out).is_empty(), "trial {trial}");
        for r in &runs {
            json(r);
        }
    }
}

/// Leaving out `--resume` used to overwrite a finished run.
#[test]
fn an_existing_checkpoint_needs_resume_or_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = train_args(dir.path(), "kept");
    args[8] = "1".into(); // --epochs 1
    ok(&strs(&args));
    let ckpt = dir.path().join("kept.ckpt");
    let before = std::fs::read(&ckpt).unwrap();
    let err = fails(&strs(&args));
    assert!(
        err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ckpt).unwrap(), before, "the run is kept");
    args.push("--overwrite".into());
    ok(&strs(&args));
    // M4: a resumed run may change its length, not what it is.
    let mut resumed = train_args(dir.path(), "kept");
    resumed[8] = "2".into();
    resumed.extend([
        "--resume".into(),
        "--optimizer".into(),
        "adam".into(),
        "--hidden".into(),
        "64".into(),
    ]);
    let err = fails(&strs(&resumed));
    assert!(
        err.contains("model.hidden") && err.contains("train.optimizer"),
        "{err}"
    );
    resumed.truncate(resumed.len() - 4);
    ok(&strs(&resumed));
}

/// Outputs that cannot be written are refused before any
/// training, not after it.
#[test]
fn unwritable_outputs_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("sub");
    let mut args = train_args(dir.path(), "t");
    let save = args.iter().position(|a| a == "--save").unwrap();
    args[save + 1] = under_file.join("m.plm").display().to_string();
    let err = fails(&strs(&args));
    assert!(err.contains("afile"), "{err}");
    assert!(
        !err.contains("test accuracy"),
        "refused before training: {err}"
    );
    let (root, sweep) = sweep_file();
    let err = fails(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--out",
        under_file.to_str().unwrap(),
    ]);
    assert!(err.contains("afile"), "{err}");
    assert!(files_under(root.path()).len() == 1, "nothing ran");
    let experiment = dir.path().join("e.toml");
    std::fs::write(
        &experiment,
        "name = \"e\"\n[data]\ndataset = \"xor\"\n[[methods]]\nmethod = \"l1\"\ntarget = \"macs=0.3\"\n",
    )
    .unwrap();
    let err = fails(&[
        "compare",
        experiment.to_str().unwrap(),
        "--out",
        under_file.to_str().unwrap(),
    ]);
    assert!(err.contains("afile") && !err.contains("device:"), "{err}");
}

/// A sweep trains each seed's dense model once and shares it (`dense/`): a
/// run that reads it gives exactly what a comparison training its own gives
/// — BatchNorm's running statistics and θ₀ included — and a sweep killed
/// mid-way through that training resumes it from its last epoch.
#[test]
fn a_sweeps_shared_dense_model_resumes_and_matches_a_comparison_that_trains_its_own() {
    let Some(data) = crate::support::cifar_dir() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let base = format!(
        r#"device = "cpu"
[model]
name = "resnet20"
[data]
dataset = "cifar10"
dir = "{}"
train_subset = 64
test_subset = 32
[train]
epochs = 2
batch_size = 32
[prune]
finetune_epochs = 1
"#,
        data.display()
    );
    let sweep = root.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "name = \"shared\"\nseeds = [1]\n{base}\n[[methods]]\nmethod = \"l1\"\ntargets = [\"macs=0.3\"]\n\
             [[methods]]\nmethod = \"magnitude\"\ntargets = [\"sparsity=0.5\"]\n"
        ),
    )
    .unwrap();
    let out = root.path().join("out");
    let args: Vec<String> = vec![
        "sweep".into(),
        sweep.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    // 58 training images (a tenth is held out) in batches of 32: step 3 is
    // in the second epoch, after the first epoch's checkpoint.
    let killed = run_with_fault(&args, "abort-at-step=3");
    assert!(!killed.status.success(), "the fault must kill the sweep");
    let dense_files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(out.join("dense"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let partial = dense_files();
    assert!(
        partial.len() == 1 && partial[0].ends_with(".checkpoint"),
        "{partial:?}"
    );
    let (_, err) = ok(&strs(&args));
    assert!(err.contains("at epoch 2, batch 0 (step 2)"), "{err}");
    assert_eq!(
        err.matches("trained earlier in this sweep").count(),
        1,
        "the second run reads the first one's dense model: {err}"
    );
    let finished = dense_files();
    assert!(
        finished.len() == 1 && finished[0].ends_with(".model"),
        "one dense model, no checkpoint left: {finished:?}"
    );

    let experiment = root.path().join("compare.toml");
    std::fs::write(
        &experiment,
        format!(
            "name = \"own\"\nseed = 1\n{base}\n[[methods]]\nmethod = \"l1\"\ntarget = \"macs=0.3\"\n\
             [[methods]]\nmethod = \"magnitude\"\ntarget = \"sparsity=0.5\"\n"
        ),
    )
    .unwrap();
    let own = root.path().join("own");
    ok(&[
        "compare",
        experiment.to_str().unwrap(),
        "--out",
        own.to_str().unwrap(),
    ]);
    let own = json(&own.join("results.json"));
    let record = |method: &str| {
        std::fs::read_dir(out.join("runs"))
            .unwrap()
            .map(|e| json(&e.unwrap().path()))
            .find(|r| r["results"][1]["method"] == method)
            .unwrap_or_else(|| panic!("the {method} run's record"))
    };
    // The l1 run finished the resumed training; the magnitude run read the
    // model file it left.
    let (l1, magnitude) = (record("l1"), record("magnitude"));
    let shared = serde_json::json!([
        l1["results"][0],
        l1["results"][1],
        magnitude["results"][0],
        magnitude["results"][1]
    ]);
    let own = serde_json::json!([own[0], own[1], own[0], own[2]]);
    type Row = (String, f64, f64, u64, Vec<(f64, f64, f64, f64)>);
    let rows = |v: &serde_json::Value| -> Vec<Row> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["label"].as_str().unwrap().to_string(),
                    r["test_accuracy"].as_f64().unwrap(),
                    r["test_loss"].as_f64().unwrap(),
                    r["nonzero_params"].as_u64().unwrap(),
                    metrics(&serde_json::json!({ "epochs": r["history"] })),
                )
            })
            .collect()
    };
    assert_eq!(
        rows(&shared),
        rows(&own),
        "the dense row, the l1 and the magnitude rows, epoch by epoch"
    );
}

/// A device, a FIFO or a folder given as a model or a CSV is refused from
/// its metadata, before a byte is read (`/dev/zero` used to grow without
/// bound, a FIFO to hang): the probe's L1.
#[test]
fn a_device_a_fifo_or_a_folder_as_an_input_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (fifo, folder) = (fifo.to_str().unwrap(), dir.path().to_str().unwrap());
    for args in [
        vec!["eval", "/dev/zero", "--dataset", "spiral"],
        vec!["eval", fifo, "--dataset", "spiral"],
        vec!["eval", folder, "--dataset", "spiral"],
        vec!["train", "--csv", fifo, "--epochs", "1"],
        vec!["train", "--csv", "/dev/zero", "--epochs", "1"],
    ] {
        let e = fails(&[&args[..], &["--device", "cpu"]].concat());
        assert!(e.contains("not a regular file"), "{args:?}: {e}");
    }
}

/// A legal 245-character output name is written (its temporary file's name
/// is shortened), and split shares that leave nothing sensible to train or
/// test on are refused: the probe's L8 and L6.
#[test]
fn long_output_names_work_and_impossible_split_shares_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("{}.json", "r".repeat(240)));
    let base = [
        "train",
        "--dataset",
        "moons",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ];
    ok(&[&base[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(json(&out)["test_accuracy"].is_number());
    for (shares, says) in [
        ("test_fraction = 1.0", "data.test_fraction"),
        ("test_fraction = -0.5", "data.test_fraction"),
        ("test_fraction = 0.6\nvalid_fraction = 0.6", "sum under 0.9"),
    ] {
        let config = dir.path().join("c.toml");
        std::fs::write(&config, format!("[data]\ndataset = \"moons\"\n{shares}\n")).unwrap();
        let e = fails(&[&base[..], &["--config", config.to_str().unwrap()]].concat());
        assert!(e.contains(says), "{shares}: {e}");
    }
}
