//! End-to-end tests of the `prunelab` binary: what a user types, what they get.

use std::path::Path;

use crate::support::{cifar_dir, fails, json, ok, pretrained};

#[test]
fn info_prints_the_published_model_sizes_as_json() {
    for (model, params, macs) in [
        (
            "resnet56",
            845_000..=860_000u64,
            125_000_000..=127_000_000u64,
        ),
        ("resnet20", 265_000..=275_000, 40_000_000..=42_000_000),
        ("vgg16", 14_600_000..=14_800_000, 312_000_000..=314_000_000),
    ] {
        let (stdout, _) = ok(&["info", "--model", model, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let (p, m) = (v["params"].as_u64().unwrap(), v["macs"].as_u64().unwrap());
        assert!(params.contains(&p), "{model}: params {p}");
        assert!(macs.contains(&m), "{model}: MACs {m}");
        assert!(v["layers"].as_array().unwrap().len() > 10);
    }
    let (table, _) = ok(&["info", "--model", "resnet20"]);
    assert!(
        table.contains("stage2.block0.conv1") && table.contains("1 MAC = one multiply-accumulate")
    );
    // … and which units are cut together, the residual streams included.
    assert!(
        table.contains("group (cut together)")
            && table
                .lines()
                .any(|l| l.starts_with("stage2.stream") && l.contains("32")),
        "{table}"
    );
}

#[test]
fn train_on_a_toy_problem_writes_the_result_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let (_, stderr) = ok(&[
        "train",
        "--dataset",
        "gaussians",
        "--epochs",
        "15",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--weight-decay",
        "0",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stderr.contains("epoch  15"), "progress is shown:\n{stderr}");
    let r = json(&out);
    let acc = r["test_accuracy"].as_f64().unwrap();
    assert!((0.85..=1.0).contains(&acc), "gaussians are easy: {acc}");
    assert_eq!(r["epochs"].as_array().unwrap().len(), 15);
    assert!(r["params"].as_u64().unwrap() > 0 && r["macs"].as_u64().unwrap() > 0);
    assert!(r["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(r["device"].as_str().unwrap().starts_with("cpu"));
    assert_eq!(r["config"]["data"]["dataset"], "gaussians");
}

#[test]
fn a_config_file_works_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        "seed = 4\n[data]\ndataset = \"moons\"\n[train]\nepochs = 3\nbatch_size = 50\n",
    )
    .unwrap();
    let out = dir.path().join("r.json");
    ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = json(&out);
    assert_eq!(r["config"]["seed"], 4);
    assert_eq!(r["config"]["train"]["batch_size"], 50);
    assert_eq!(r["epochs"].as_array().unwrap().len(), 2);

    std::fs::write(&config, "[train]\nlearning_rate = 0.1\n").unwrap();
    let e = fails(&["train", "--config", config.to_str().unwrap()]);
    assert!(
        e.contains("train.learning_rate") && e.contains("known keys") && e.contains("lr"),
        "{e}"
    );
}

#[test]
fn bad_values_get_clear_errors() {
    let e = fails(&["train", "--lr", "-1"]);
    assert!(e.contains("train.lr") && e.contains("positive"), "{e}");
    let e = fails(&["train", "--model", "resnet57"]);
    assert!(e.contains("resnet56"), "{e}");
    let e = fails(&["train", "--device", "tpu"]);
    assert!(e.contains("auto, cpu, vulkan"), "{e}");
    let e = fails(&["train", "--dataset", "cifar10"]);
    assert!(e.contains("--data DIR"), "{e}");
}

/// A model whose classes or inputs differ from the data
/// used to panic inside burn.
#[test]
fn a_model_and_data_that_do_not_match_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.plm");
    ok(&[
        "train",
        "--dataset",
        "spiral",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save",
        model.to_str().unwrap(),
    ]);
    let six = dir.path().join("six.toml");
    std::fs::write(
        &six,
        "device = \"cpu\"\n[data]\ndataset = \"gaussians\"\nclasses = 6\n[model]\nhidden = [8]\n",
    )
    .unwrap();
    let e = fails(&[
        "eval",
        model.to_str().unwrap(),
        "--config",
        six.to_str().unwrap(),
    ]);
    assert!(e.contains("2 classes") && e.contains("6 classes"), "{e}");
    assert!(!e.contains("engine stopped"), "{e}");
    let e = fails(&[
        "prune",
        "--model-file",
        model.to_str().unwrap(),
        "--config",
        six.to_str().unwrap(),
        "--method",
        "l1",
        "--target",
        "macs=0.5",
    ]);
    assert!(
        e.contains("6 classes") && !e.contains("engine stopped"),
        "{e}"
    );
}

/// Every run without XDG_RUNTIME_DIR used to leave an empty
/// world-readable `prunelab-runtime-<pid>` behind.
#[test]
fn the_private_runtime_directory_is_removed_on_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["methods"][..], &["--help"], &["train", "--lr", "-1"]] {
        let _ = crate::support::bin()
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

/// Sizes that would not fit in memory,
/// and prune options that would fail after the dense training, are refused
/// up front by name (they used to abort with 134 or run for ever).
#[test]
fn sizes_and_prune_options_out_of_range_are_refused_before_any_work() {
    for (args, says) in [
        (
            &["train", "--points", "1000000000000"][..],
            "data.train_points",
        ),
        (&["train", "--hidden", "1000000000"], "hidden"),
        (&["train", "--train-subset", "0"], "data.train_subset"),
        (
            &[
                "prune",
                "--method",
                "l1",
                "--target",
                "macs=0.5",
                "--set",
                "finetune_epochs=1000000000000",
            ],
            "finetune_epochs",
        ),
        (
            &[
                "prune",
                "--method",
                "l1",
                "--target",
                "macs=0.5",
                "--set",
                "finetune_lr=-5",
            ],
            "finetune_lr",
        ),
        (
            &[
                "prune",
                "--method",
                "energy",
                "--target",
                "macs=0.5",
                "--set",
                "score_batch_size=0",
            ],
            "score_batch_size",
        ),
    ] {
        let e = fails(args);
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(
            !e.contains("engine stopped") && !e.contains("test accuracy"),
            "{args:?}: {e}"
        );
    }
    // L1: a typo inside a [[methods]] entry used to run the defaults silently.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(
        &file,
        "[data]\ndataset = \"xor\"\n[[methods]]\nmethod = \"flexrel\"\ntarget = \"sparsity=0.5\"\noption = { flexrel = { samples = 7 } }\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let e = fails(&[
        "compare",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("option"), "{e}");
}

/// Each is a clear error before
/// any training (no "engine stopped", no made-up metrics, no abort).
#[test]
fn the_probes_remaining_inputs_are_clear_errors_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let out = dir.path().join("out").display().to_string();
    let clean = |args: &[&str], says: &str| {
        let e = fails(args);
        assert!(e.contains(says), "{args:?}: {e}");
        for bad in ["engine stopped", "test accuracy", "epoch "] {
            assert!(!e.contains(bad), "{args:?} did work first: {e}");
        }
    };
    // M10: sweep runs that cannot work are refused before the dense training.
    let toy = "[data]\ndataset = \"xor\"\n[train]\nepochs = 2\n";
    for (entry, says) in [
        ("method = \"lottery\"\ntargets = [\"blocks=1\"]", "has none"),
        ("method = \"l1\"\ntargets = [\"blocks=2\"]", "block-removal"),
        ("method = \"l1\"\ntargets = [\"macs=0.99\"]", "unreachable"),
        (
            "method = \"polarization\"\ntargets = [\"sparsity=0.5\"]",
            "macs=F",
        ),
        (
            "method = \"magnitude\"\ntargets = [\"macs=0.5\"]",
            "sparsity=F",
        ),
        (
            "method = \"energy\"\ntargets = [\"macs=0.5\"]\noptions = { score_batch_size = 0 }",
            "score_batch_size",
        ),
    ] {
        let sweep = write("sweep.toml", &format!("{toy}[[methods]]\n{entry}\n"));
        clean(&["sweep", &sweep, "--out", &out], says);
        let experiment = write(
            "compare.toml",
            &format!(
                "{toy}[[methods]]\n{}\n",
                entry
                    .replace("targets = [", "target = ")
                    .replace("\"]", "\"")
            ),
        );
        clean(&["compare", &experiment, "--out", &out], says);
    }
    // M10: a method's own options are range-checked too.
    clean(
        &[
            "prune",
            "--method",
            "polarization",
            "--target",
            "macs=0.5",
            "--set",
            "polarization.temperature=0",
        ],
        "polarization.temperature",
    );
    // L2: NaN and infinities are named, not read as "null".
    let nan = write("nan.toml", "[train]\nlr = nan\n");
    clean(&["train", "--config", &nan], "train.lr");
    clean(
        &[
            "prune",
            "--method",
            "l1",
            "--target",
            "macs=0.5",
            "--set",
            "finetune_lr=nan",
        ],
        "finetune_lr",
    );
    let inf = write("inf.toml", "[data]\nnoise = inf\n");
    clean(&["train", "--config", &inf], "finite");
    // L3: bench sizes.
    clean(
        &["bench", "--model", "cnn", "--device", "cpu", "--steps", "0"],
        "--steps",
    );
    clean(
        &["bench", "--model", "cnn", "--device", "cpu", "--batch", "0"],
        "--batch",
    );
    clean(
        &[
            "bench",
            "--model",
            "cnn",
            "--device",
            "cpu",
            "--batch",
            "100000000",
        ],
        "--batch",
    );
    // L8: `info` of a huge model is refused, not counted with wrapped numbers.
    clean(
        &[
            "info",
            "--model",
            "mlp",
            "--hidden",
            "4294967296,4294967296",
        ],
        "hidden width",
    );
    // ... and `--hidden` for a model with fixed widths is not silently ignored.
    clean(
        &["info", "--hidden", "4294967296,4294967296"],
        "fixed widths",
    );
    // M2: huge files are refused before parsing.
    let big = write("big.toml", &"# padding\n".repeat(200_000));
    clean(&["train", "--config", &big], "at most 1024 KiB");
    // L10: with --json-events, the end of the run is an event on stdout too.
    let o = crate::support::prunelab(&["train", "--config", &nan, "--json-events"]);
    assert!(!o.status.success());
    let last = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let event: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
    assert_eq!(event["type"], "error", "stdout ends with: {last}");
    assert!(event["message"].as_str().unwrap_or("").contains("train.lr"));
    // L3: a model with NaN weights is refused, not evaluated to "accuracy 0.5".
    let model = dir.path().join("m.plm");
    let model_s = model.display().to_string();
    ok(&[
        "train",
        "--dataset",
        "xor",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--save",
        &model_s,
    ]);
    let mut pack =
        prunelab::io::pack::Pack::from_bytes(&std::fs::read(&model).unwrap(), &model).unwrap();
    pack.data[0] = f32::NAN;
    std::fs::write(&model, pack.to_bytes()).unwrap();
    clean(&["eval", &model_s, "--dataset", "xor"], "NaN or infinite");
}

#[test]
fn a_truncated_cifar_file_exits_non_zero_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        std::fs::write(dir.path().join(name), vec![1u8; 3073 * 2]).unwrap();
    }
    std::fs::write(dir.path().join("data_batch_3.bin"), vec![1u8; 3073 * 2 - 7]).unwrap();
    let e = fails(&[
        "train",
        "--data",
        dir.path().to_str().unwrap(),
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(
        e.contains("data_batch_3.bin") && e.contains("truncated"),
        "{e}"
    );
    assert!(
        e.contains("expected a multiple of 3073 bytes") && e.contains("found 6139 bytes"),
        "{e}"
    );
}

#[test]
fn resume_continues_from_the_checkpoint_and_eval_reads_saved_models() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let model = dir.path().join("model.plm");
    let out = dir.path().join("r.json");
    let common = [
        "train",
        "--dataset",
        "circles",
        "--device",
        "cpu",
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ];
    ok(&[&common[..], &["--epochs", "1"]].concat());
    assert!(ckpt.exists());
    let (_, stderr) = ok(&[
        &common[..],
        &[
            "--epochs",
            "3",
            "--resume",
            "--save",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ]
    .concat());
    assert!(
        stderr.contains("resuming") && stderr.contains("at epoch 2, batch 0"),
        "{stderr}"
    );
    let r = json(&out);
    let epochs: Vec<u64> = r["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3], "the history continues");

    let (stdout, _) = ok(&[
        "eval",
        model.to_str().unwrap(),
        "--dataset",
        "circles",
        "--device",
        "cpu",
    ]);
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let acc = e["test_accuracy"].as_f64().unwrap();
    assert!(
        (acc - r["test_accuracy"].as_f64().unwrap()).abs() < 1e-6,
        "eval reproduces the final accuracy"
    );

    std::fs::write(&ckpt, b"PRUNELAB garbage").unwrap();
    let e = fails(&[&common[..], &["--epochs", "3", "--resume"]].concat());
    assert!(e.contains("run.ckpt"), "{e}");
}

#[test]
fn trains_on_real_cifar10_above_chance() {
    let Some(dir) = cifar_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.json");
    ok(&[
        "train",
        "--model",
        "cnn",
        "--data",
        dir.to_str().unwrap(),
        "--train-subset",
        "2000",
        "--test-subset",
        "1000",
        "--epochs",
        "2",
        "--lr",
        "0.05",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let r = json(&out);
    let acc = r["test_accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.2,
        "2 epochs on 2000 images beat chance (0.1): {acc}"
    );
    // `train` selects nothing: the whole subset trains (issue 34).
    assert_eq!(r["train_examples"], 2000);
    assert_eq!(r["valid_examples"], 0);
    assert_eq!(r["test_examples"], 1000);
}

/// `train` holds no validation split out unless asked, by flag or by file
/// (it carved 10% silently: `--train-subset 4000` trained on 3,600).
#[test]
fn train_holds_nothing_out_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.json");
    let config = tmp.path().join("c.toml");
    std::fs::write(&config, "[data]\nvalid_fraction = 0.2\n").unwrap();
    let config = config.to_str().unwrap();
    let run = |extra: &[&str]| {
        let args = [
            &[
                "train",
                "--dataset",
                "moons",
                "--points",
                "400",
                "--epochs",
                "1",
            ][..],
            &["--device", "cpu", "--out", out.to_str().unwrap()],
            extra,
        ]
        .concat();
        let (_, err) = ok(&args);
        let r = json(&out);
        (
            r["train_examples"].as_u64().unwrap(),
            r["valid_examples"].as_u64().unwrap(),
            err,
        )
    };
    let (train, valid, err) = run(&[]);
    assert_eq!((train, valid), (400, 0), "{err}");
    assert!(err.contains("400 train, 0 validation"), "{err}");
    let (train, valid, _) = run(&["--valid-fraction", "0.25"]);
    assert_eq!((train, valid), (300, 100), "the flag");
    let (train, valid, _) = run(&["--config", config]);
    assert_eq!((train, valid), (320, 80), "the file");
    let e = fails(&[
        "train",
        "--dataset",
        "moons",
        "--valid-fraction",
        "1.5",
        "--device",
        "cpu",
    ]);
    assert!(e.contains("valid_fraction"), "{e}");
}

/// The published ResNet-20 (Idelbayev's, 91.73%) evaluates at its published
/// figure on the whole CIFAR-10 test set: read as it is, known by its hash,
/// fed the ImageNet normalisation it was trained with (CIFAR-10's own gives
/// the 91.69% PyTorch gives with it); a `.plm` export records it, and an
/// explicit `--normalize` overrides it.
#[test]
fn the_published_resnet20_evaluates_at_its_published_accuracy() {
    let (Some(data), Some(th)) = (cifar_dir(), pretrained("resnet20-12fca82f.th")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let plm = tmp.path().join("r20.plm");
    ok(&[
        "export",
        th.to_str().unwrap(),
        "--to",
        plm.to_str().unwrap(),
    ]);
    let eval = |file: &Path, extra: &[&str]| {
        let out = tmp.path().join("eval.json");
        let args = [
            &[
                "eval",
                file.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
            ][..],
            &["--device", "cpu", "--out", out.to_str().unwrap()],
            extra,
        ]
        .concat();
        ok(&args);
        let r = json(&out);
        assert_eq!(r["test_examples"], 10_000);
        (
            r["test_accuracy"].as_f64().unwrap(),
            r["input_normalization"].as_str().unwrap().to_string(),
        )
    };
    let (published, input) = eval(&th, &[]);
    assert!((published - 0.9173).abs() < 5e-5, "{published}");
    assert_eq!(input, "imagenet");
    assert_eq!(eval(&plm, &[]), (published, input));
    let (cifar, input) = eval(&th, &["--normalize", "cifar10"]);
    assert!((cifar - 0.9169).abs() < 5e-5, "{cifar}");
    assert_eq!(input, "cifar10");
}

#[test]
fn run_compares_every_method_on_the_toy_problem() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/toy-compare.toml");
    let (stdout, _) = ok(&[
        "run",
        example.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(stdout.contains("| polarization | macs=0.5 |"), "{stdout}");
    let results = json(&dir.path().join("results.json"));
    let rows = results.as_array().unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    for m in [
        "dense",
        "polarization",
        "flexrel",
        "energy",
        "lottery",
        "random",
        "l1",
        "hrank",
        "magnitude",
        "snip",
        "imp",
    ] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }
    for r in rows {
        for field in [
            "method",
            "test_accuracy",
            "params",
            "macs",
            "bytes",
            "wall_seconds",
        ] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
        // The row reports the model the method returned: the accuracy of
        // its last training epoch, where it trained after pruning.
        let acc = r["test_accuracy"].as_f64().unwrap();
        if let Some(last) = r["history"].as_array().unwrap().last() {
            let trained = last["test_accuracy"].as_f64().unwrap();
            assert!(
                (acc - trained).abs() < 1e-6,
                "{}: row {acc}, last epoch {trained}",
                r["method"]
            );
        }
    }
    assert!(
        rows[0]["test_accuracy"].as_f64().unwrap() > 0.9,
        "the dense model learns the spiral"
    );
    let dense_macs = rows[0]["macs"].as_u64().unwrap();
    let s1 = rows.iter().find(|r| r["method"] == "polarization").unwrap();
    let removed = 1.0 - s1["macs"].as_u64().unwrap() as f64 / dense_macs as f64;
    let learned = s1["details"]["learned"]["removed"].as_f64().unwrap();
    assert!(
        (learned - 0.5).abs() <= 0.05 && (removed - learned).abs() <= 0.02,
        "S1 learned its target: {learned} (cut: {removed})"
    );
    let lottery = rows.iter().find(|r| r["method"] == "lottery").unwrap();
    assert!(
        lottery["verdict"]["winning_ticket"].is_boolean(),
        "Eq. 1 is judged: {lottery}"
    );
    let csv = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let svg = std::fs::read_to_string(dir.path().join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == rows.len() - 1);
    assert!(
        std::fs::read_to_string(dir.path().join("results.md"))
            .unwrap()
            .contains("| dense |")
    );
}

/// What must not depend on which other methods run, or in which order.
fn outcome_of(row: &serde_json::Value) -> serde_json::Value {
    let history: Vec<serde_json::Value> = row["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!([e["train_loss"], e["test_loss"], e["test_accuracy"]]))
        .collect();
    serde_json::json!({
        "test_accuracy": row["test_accuracy"],
        "test_loss": row["test_loss"],
        "params": row["params"],
        "macs": row["macs"],
        "bytes": row["bytes"],
        "nonzero_params": row["nonzero_params"],
        "plan": row["plan"],
        "history": history,
    })
}

#[test]
fn run_gives_every_method_the_same_result_whatever_runs_beside_it() {
    use prunelab::prune::{Granularity, METHODS, PruneOptions};
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/toy-compare.toml"),
    )
    .unwrap();
    // Quicker, and with fine-tuning on: a method that trained (or ran BN in
    // training mode on) a model it shares with the others would show.
    let example = example
        .replace("epochs = 60", "epochs = 20")
        .replace("finetune_epochs = 20", "finetune_epochs = 2")
        .replace("epochs = 30", "epochs = 8");
    let mut parts = example.split("[[methods]]");
    let header = parts.next().unwrap().to_string();
    let mut blocks: Vec<String> = parts.map(|b| format!("[[methods]]{b}")).collect();
    assert_eq!(blocks.len(), 10);
    // Every registered method the file leaves out, at its defaults, so a new
    // method is covered unedited (those that need batch norm excepted: the
    // toy model has none, and they are refused up front).
    let spec = prunelab::model::ModelSpec::named(
        "resmlp",
        &prunelab::model::zoo::ModelOptions {
            hidden: vec![24; 4],
            ..Default::default()
        },
    )
    .unwrap();
    for m in METHODS {
        let name = m.info().name;
        if blocks
            .iter()
            .any(|b| b.contains(&format!("method = \"{name}\"")))
            || m.check_model(&spec).is_err()
        {
            continue;
        }
        let target = match m.removes(&PruneOptions::default()).unwrap() {
            Granularity::Channels => "macs=0.5",
            Granularity::Weights => "sparsity=0.7",
            Granularity::Blocks => "blocks=2",
            Granularity::Structure => "macs=0.5",
        };
        blocks.push(format!(
            "\n[[methods]]\nmethod = \"{name}\"\ntarget = \"{target}\"\n"
        ));
    }
    let n = blocks.len();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, order: &[usize]| -> Vec<serde_json::Value> {
        let file = dir.path().join(format!("{name}.toml"));
        let text: String = std::iter::once(header.clone())
            .chain(order.iter().map(|&i| blocks[i].clone()))
            .collect();
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(name);
        ok(&[
            "compare",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        json(&out.join("results.json")).as_array().unwrap().clone()
    };
    let all: Vec<usize> = (0..n).collect();
    let reversed: Vec<usize> = (0..n).rev().collect();
    let forward = run("forward", &all);
    let backward = run("backward", &reversed);
    // Energy and HRank alone, without S1, S4, SNIP or IMP training first.
    let alone = run("alone", &[2, 6]);
    let find = |rows: &[serde_json::Value], method: &str| {
        outcome_of(rows.iter().find(|r| r["method"] == method).unwrap())
    };
    for row in &forward {
        let method = row["method"].as_str().unwrap();
        assert_eq!(
            find(&backward, method),
            outcome_of(row),
            "{method}: reversed order"
        );
    }
    for method in ["dense", "energy", "hrank"] {
        assert_eq!(
            find(&alone, method),
            find(&forward, method),
            "{method}: alone"
        );
    }
}

#[test]
fn prune_a_saved_model_and_refuse_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("dense.plm");
    let pruned = dir.path().join("pruned.plm");
    let out = dir.path().join("p.json");
    let data = [
        "--dataset",
        "moons",
        "--model",
        "resmlp",
        "--hidden",
        "16,16,16",
        "--device",
        "cpu",
    ];
    ok(&[
        &[
            "train",
            "--epochs",
            "8",
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--save",
            model.to_str().unwrap(),
        ][..],
        &data[..],
    ]
    .concat());
    let (_, stderr) = ok(&[
        &[
            "prune",
            "--method",
            "l1",
            "--target",
            "macs=0.4",
            "--model-file",
            model.to_str().unwrap(),
            "--finetune-epochs",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--save",
            pruned.to_str().unwrap(),
        ][..],
        &data[..],
    ]
    .concat());
    assert!(stderr.contains("→"), "the plan is printed: {stderr}");
    let r = json(&out);
    assert!(r["result"]["macs_reduction"].as_f64().unwrap() >= 0.4 - 1e-9);
    assert!(r["macs"].as_u64().unwrap() < r["dense"]["macs"].as_u64().unwrap());
    // The pruned file is a model the other commands read.
    let (stdout, _) = ok(&[&["eval", pruned.to_str().unwrap()][..], &data[..]].concat());
    let e: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e["macs"], r["macs"]);

    let e = fails(
        &[
            &["prune", "--method", "l1", "--target", "macs=0.4"][..],
            &data[..],
        ]
        .concat(),
    );
    assert!(e.contains("--model-file"), "{e}");
    let e = fails(
        &[
            &["prune", "--method", "nope", "--target", "macs=0.4"][..],
            &data[..],
        ]
        .concat(),
    );
    assert!(
        e.contains("choose one of") && e.contains("polarization"),
        "{e}"
    );
    let e = fails(
        &[
            &[
                "prune",
                "--method",
                "l1",
                "--target",
                "macs=1.5",
                "--model-file",
                model.to_str().unwrap(),
            ][..],
            &data[..],
        ]
        .concat(),
    );
    assert!(e.contains("[0, 1)"), "{e}");
    let e = fails(
        &[
            &[
                "prune",
                "--method",
                "l1",
                "--target",
                "macs=0.4",
                "--set",
                "polarization.lambda=1",
            ][..],
            &data[..],
        ]
        .concat(),
    );
    assert!(e.contains("lambda_pol") || e.contains("known keys"), "{e}");
    // At-initialisation methods need no trained model.
    ok(&[
        &[
            "prune", "--method", "lottery", "--target", "blocks=1", "--epochs", "2",
        ][..],
        &data[..],
    ]
    .concat());
}

/// `prunelab reproduce sN --budget smoke` for every seed paper: the sweep it
/// runs is written for arrays, every row of the shipped experiment finishes,
/// the report puts the paper's published row beside ours with a verdict, and
/// running it again redoes nothing (a killed run resumes the same way).
#[test]
fn reproduce_smoke_runs_every_seed_paper_and_reports_the_paper_beside_ours() {
    let Some(data) = cifar_dir() else { return };
    let data = data.to_str().unwrap();
    for (seed, method, paper) in [
        ("s1", "polarization", "S1: Zhi et al."),
        ("s2", "flexrel", "S2: Chiasserini et al."),
        ("s3", "energy", "S3: Yeom et al."),
        ("s4", "lottery", "S4: Jordao et al."),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let reproduce = || {
            ok(&[
                "reproduce",
                seed,
                "--budget",
                "smoke",
                "--data",
                data,
                "--out",
                out,
            ])
        };
        let (stdout, _) = reproduce();
        assert!(stdout.contains("at the `smoke` budget"), "{seed}: {stdout}");
        assert!(
            stdout.contains(paper) && stdout.contains("**Verdict:** at the smoke budget"),
            "{seed}: {stdout}"
        );
        let report = json(&dir.path().join("report.json"));
        assert_eq!(report["missing"], 0, "{seed}");
        let ours = report["ours"].as_array().unwrap();
        assert_eq!(ours[0]["label"], method, "{seed}: the paper's method leads");
        assert!(ours.len() >= 2, "{seed}: and its baselines");
        assert!(
            report["dense"][0]["accuracy"]["mean"].as_f64().is_some(),
            "{seed}"
        );
        let svg = std::fs::read_to_string(dir.path().join("report.svg")).unwrap();
        assert_eq!(
            svg.matches("<circle").count(),
            ours.len(),
            "{seed}: one point per row of ours"
        );
        // One dense model per architecture for the seed, trained once and
        // shared by its rows (S4 runs ResNet-56 and ResNet-32).
        let models = report["dense"].as_array().unwrap().len();
        assert_eq!(models, if seed == "s4" { 2 } else { 1 }, "{seed}");
        let dense = std::fs::read_dir(dir.path().join("dense")).unwrap().count();
        assert_eq!(
            dense, models,
            "{seed}: one dense model file per architecture"
        );
        // The resolved sweep runs as any sweep: every run is already there.
        let sweep = dir.path().join("sweep.toml");
        let (_, stderr) = ok(&["sweep", sweep.to_str().unwrap(), "--out", out]);
        assert!(stderr.contains("already done"), "{seed}: {stderr}");
        let (_, again) = reproduce();
        let runs = ours.len();
        assert!(
            again.contains(&format!(
                "{runs} of the sweep's {runs} runs, {runs} already done"
            )),
            "{seed}: {again}"
        );
    }
}

#[test]
fn reproduce_says_where_the_data_should_be() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&[
        "reproduce",
        "s3",
        "--budget",
        "smoke",
        "--data",
        dir.path().to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert!(
        err.contains("--data") && err.contains("test_batch.bin"),
        "{err}"
    );
    let err = fails(&["reproduce", "s5", "--budget", "smoke"]);
    assert!(err.contains("choose one of s1, s2, s3, s4"), "{err}");
    let err = fails(&["reproduce", "s3", "--budget", "tiny"]);
    assert!(err.contains("smoke, cpu, pretrained, quick, full"), "{err}");
}

/// `--data DIR` alone follows the files: CIFAR-100's `train.bin`/`test.bin`
/// train a 100-class model without `--dataset cifar100`.
#[test]
fn data_dir_with_cifar100_files_is_read_as_cifar100() {
    let dir = tempfile::tempdir().unwrap();
    let records = |n: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push((i % 20) as u8);
            out.push((i % 100) as u8);
            out.extend(std::iter::repeat_n((i * 7 % 256) as u8, 3072));
        }
        out
    };
    std::fs::write(dir.path().join("train.bin"), records(40)).unwrap();
    std::fs::write(dir.path().join("test.bin"), records(10)).unwrap();
    let (_, err) = ok(&[
        "train",
        "--data",
        dir.path().to_str().unwrap(),
        "--model",
        "cnn",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]);
    assert!(err.contains("100 classes"), "{err}");
}

/// A CIFAR-10 folder: five training batches of `train` records each and a
/// test batch of `test` (label byte, 3072 pixel bytes).
fn tiny_cifar10(dir: &Path, train: usize, test: usize) {
    let records = |n: usize, salt: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push((i % 10) as u8);
            out.extend((0..3072).map(|j| ((i * 31 + j * 7 + salt) % 256) as u8));
        }
        out
    };
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), records(train, b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(test, 9)).unwrap();
}

#[test]
fn pytorch_checkpoints_are_pruned_and_leave_as_onnx_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    tiny_cifar10(&data, 8, 20);
    let data = data.to_str().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/fixtures");
    let pt = fixtures.join("resnet20-b.pt");
    let pt = pt.to_str().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let common = ["--data", data, "--device", "cpu", "--batch-size", "8"];

    // A PyTorch checkpoint, no architecture given: read off its keys.
    let (out, err) = ok(&[&["eval", pt][..], &common].concat());
    assert!(
        err.contains("read as resnet20 (option-B shortcuts, 10 classes)"),
        "{err}"
    );
    let dense: serde_json::Value = serde_json::from_str(&out).unwrap();

    // Pruned (physically) and saved as ONNX and as prunelab's file.
    let prune = |save: &str, method: &str, target: &str| {
        ok(&[
            &[
                "prune",
                "--model-file",
                pt,
                "--method",
                method,
                "--target",
                target,
                "--finetune-epochs",
                "0",
                "--save",
                save,
            ][..],
            &common,
        ]
        .concat())
    };
    let (_, err) = prune(&at("pruned.onnx"), "l1", "macs=0.5");
    assert!(
        err.contains("model saved to") && err.contains("pruned.onnx"),
        "{err}"
    );
    let onnx = std::fs::read(at("pruned.onnx")).unwrap();
    assert_eq!(&onnx[..2], &[0x08, 0x07], "an ONNX model, IR version 7");
    prune(&at("pruned.plm"), "l1", "macs=0.5");
    // The .plm converts to safetensors, which reloads as the pruned network.
    ok(&[
        "export",
        &at("pruned.plm"),
        "--to",
        &at("pruned.safetensors"),
    ]);
    let (plm, _) = ok(&[&["eval", &at("pruned.plm")][..], &common].concat());
    let (st, _) = ok(&[&["eval", &at("pruned.safetensors")][..], &common].concat());
    let (plm, st): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&plm).unwrap(),
        serde_json::from_str(&st).unwrap(),
    );
    assert_eq!(plm["test_loss"], st["test_loss"], "the same network");
    assert!(
        st["macs"].as_u64() < dense["macs"].as_u64(),
        "the cut architecture travelled"
    );

    // Weight-level pruning: zeros written out, the sparse size said.
    let (_, err) = prune(&at("masked.safetensors"), "magnitude", "sparsity=0.9");
    assert!(err.contains("nonzero") && err.contains("sparse:"), "{err}");

    // An extension prunelab does not write is refused before any work.
    let err = fails(
        &[
            &[
                "prune",
                "--model-file",
                pt,
                "--method",
                "l1",
                "--target",
                "macs=0.5",
                "--save",
                &at("x.pth"),
            ][..],
            &common,
        ]
        .concat(),
    );
    assert!(
        err.contains(".safetensors") && err.contains(".onnx"),
        "{err}"
    );
    // A file that is not the architecture asked for, and not one prunelab
    // can read off its keys, names what does not fit.
    let cnn = fixtures.join("cnn.safetensors");
    let err = fails(
        &[
            &["eval", cnn.to_str().unwrap(), "--model", "resnet20"][..],
            &common,
        ]
        .concat(),
    );
    assert!(
        err.contains("missing")
            && err.contains("conv1.weight")
            && err.contains("unexpected")
            && err.contains("features.0.weight"),
        "{err}"
    );
    // Read as the small CNN it is, conv biases folded.
    ok(&[
        &["eval", cnn.to_str().unwrap(), "--model", "cnn"][..],
        &common,
    ]
    .concat());
}

/// Two output flags naming one file (`--checkpoint X --out X`, `--save X
/// --out X`, also through another spelling of the path) are refused before
/// any work: one output would silently replace the other.
#[test]
fn two_outputs_naming_one_file_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).display().to_string();
    let other_spelling = dir.path().join(".").join("b.plm").display().to_string();
    let train = [
        "train",
        "--dataset",
        "xor",
        "--points",
        "40",
        "--epochs",
        "1",
    ];
    for (extra, flags) in [
        (
            vec!["--checkpoint", &at("a.ckpt"), "--out", &at("a.ckpt")],
            ("--checkpoint", "out"),
        ),
        (
            vec!["--out", &at("b.plm"), "--save", &other_spelling],
            ("--out", "save"),
        ),
        (
            vec![
                "--checkpoint",
                &at("c.plm"),
                "--save",
                &at("c.plm"),
                "--overwrite",
            ],
            ("--checkpoint", "save"),
        ),
    ] {
        let args: Vec<&str> = train.iter().copied().chain(extra.iter().copied()).collect();
        let err = fails(&args);
        assert!(
            err.contains("names the same file") && err.contains(flags.0) && err.contains(flags.1),
            "{args:?}: {err}"
        );
    }
    // The same data and budget, pruned.
    let (save, out) = (at("m.plm"), at("m.plm"));
    let prune: Vec<&str> = ["prune"]
        .into_iter()
        .chain(train[1..].iter().copied())
        .chain([
            "--method", "random", "--target", "0.5", "--save", &save, "--out", &out,
        ])
        .collect();
    let err = fails(&prune);
    assert!(err.contains("names the same file"), "{err}");
    // Nothing was written: the refusal came first.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Different files are fine.
    let mut args: Vec<String> = train.iter().map(|s| s.to_string()).collect();
    args.extend(["--out".into(), at("r.json"), "--save".into(), at("r.plm")]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A 1.3 MB model within every documented bound (one conv of 16,384
/// channels) needs hundreds of GB of activations at the evaluation batch:
/// `eval`, `prune` and `train` refuse it before a batch is made, naming the
/// setting to lower (issue 33, M1: it used to abort on a failed 6.7 GB
/// allocation).
#[test]
fn a_model_whose_activations_cannot_fit_is_refused_by_every_command() {
    use prunelab::model::spec::{ModelSpec, PlainLayer, PlainSpec};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    let records: Vec<u8> = (0..10u8)
        .flat_map(|i| std::iter::once(i).chain(std::iter::repeat_n(i, 3072)))
        .collect();
    for f in prunelab::data::cifar::Variant::Cifar10.train_files() {
        std::fs::write(data.join(f), &records).unwrap();
    }
    std::fs::write(data.join("test_batch.bin"), &records).unwrap();
    let spec = ModelSpec::Plain(PlainSpec {
        name: "cnn".into(),
        in_channels: 3,
        image_size: 32,
        layers: vec![PlainLayer::Conv(16_384)],
        classes: 10,
        input: None,
    });
    let model = prunelab::model::Model::new(&spec, &burn::tensor::Device::flex());
    let file = tmp.path().join("wide.plm");
    let bytes = prunelab::base::host::block_on(prunelab::io::model_file::to_bytes(
        &model,
        serde_json::Value::Null,
    ))
    .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let (file, data) = (file.to_str().unwrap(), data.to_str().unwrap());
    for args in [
        vec!["eval", file, "--data", data],
        vec![
            "prune",
            "--model-file",
            file,
            "--data",
            data,
            "--method",
            "l1",
            "--target",
            "macs=0.5",
        ],
    ] {
        let e = fails(&[&args[..], &["--device", "cpu"]].concat());
        assert!(
            e.contains("for its activations") && e.contains("lower"),
            "{args:?}: {e}"
        );
    }
    let e = fails(&[
        "train",
        "--model",
        "vgg16",
        "--data",
        data,
        "--batch-size",
        "60000",
        "--device",
        "cpu",
    ]);
    assert!(
        e.contains("for its activations") && e.contains("batch_size"),
        "{e}"
    );
}
