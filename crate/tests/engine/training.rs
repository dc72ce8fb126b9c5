//! The training loop on CPU: it learns, it is reproducible, it resumes exactly,
//! and it stops on a non-finite loss.

use crate::common::*;
use prunelab::base::host::block_on;
use prunelab::data::{Features, Split};
use prunelab::train::{ReadBacks, Trainer, checkpoint};

fn run_epochs(trainer: &mut Trainer<prunelab::model::Model>, split: &Split, n: usize) {
    let device = cpu().autodiff();
    for _ in 0..n {
        block_on(trainer.run_epoch(split, false, &device, &mut prunelab::base::events::Quiet))
            .unwrap();
    }
}

#[test]
fn a_few_steps_lower_the_loss() {
    let split = toy("gaussians", 256, 1);
    let device = cpu().autodiff();
    let mut trainer = Trainer::new(model(&mlp_spec(&[16]), 1, &device), adam(1, 0.05), 1);
    let loader = trainer.loader(&split.train, None, false);
    let first = block_on(trainer.step(&loader, &device))
        .unwrap()
        .unwrap()
        .loss;
    let mut last = first;
    for _ in 0..7 {
        last = block_on(trainer.step(&loader, &device))
            .unwrap()
            .unwrap()
            .loss;
    }
    assert!(
        last < 0.7 * first,
        "loss went from {first} to {last} in 8 steps"
    );
}

#[test]
fn training_is_reproducible_on_cpu() {
    let split = toy("spiral", 200, 3);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut t = Trainer::new(
                model(&mlp_spec(&[8, 8]), 5, &cpu().autodiff()),
                adam(2, 0.02),
                5,
            );
            run_epochs(&mut t, &split, 2);
            (t.progress.history.clone(), weights(&t.model))
        })
        .collect();
    assert_eq!(runs[0].0.len(), 2);
    for (a, b) in runs[0].0.iter().zip(&runs[1].0) {
        assert!(
            (a.train_loss - b.train_loss).abs() <= 1e-9,
            "{} vs {}",
            a.train_loss,
            b.train_loss
        );
    }
    assert!(max_abs_diff(&runs[0].1, &runs[1].1) <= 1e-9);
    // A different seed gives a different run.
    let mut other = Trainer::new(
        model(&mlp_spec(&[8, 8]), 6, &cpu().autodiff()),
        adam(2, 0.02),
        6,
    );
    run_epochs(&mut other, &split, 2);
    assert!(max_abs_diff(&runs[0].1, &weights(&other.model)) > 1e-3);
}

#[test]
fn resume_from_a_checkpoint_equals_an_uninterrupted_run() {
    let split = toy("moons", 160, 2);
    let spec = mlp_spec(&[12]);
    let mut config = adam(3, 0.02);
    config.optimizer = prunelab::train::optim::OptimizerKind::Sgd;
    config.momentum = 0.9;
    config.schedule = prunelab::train::schedule::Schedule::Cosine;

    let mut straight = Trainer::new(model(&spec, 9, &cpu().autodiff()), config.clone(), 9);
    run_epochs(&mut straight, &split, 3);

    let mut first = Trainer::new(model(&spec, 9, &cpu().autodiff()), config.clone(), 9);
    run_epochs(&mut first, &split, 1);
    // Stop in the middle of epoch 2 as well, to check the data position.
    let loader = first.loader(&split.train, None, false);
    for _ in 0..2 {
        block_on(first.step(&loader, &cpu().autodiff())).unwrap();
    }
    let bytes = block_on(checkpoint::to_bytes(&first, &spec, serde_json::json!({}))).unwrap();
    drop(first);

    let path = std::path::Path::new("mem.ckpt");
    let (pack, meta) = checkpoint::read(&bytes, path).unwrap();
    assert_eq!(meta.progress.epoch, 1);
    assert_eq!(meta.progress.batch, 2);
    // Different initial weights: everything must come from the checkpoint.
    let mut resumed = Trainer::new(model(&spec, 1234, &cpu().autodiff()), config, 9);
    let steps_per_epoch = loader.batches_per_epoch();
    checkpoint::restore(
        &mut resumed,
        &pack,
        &meta,
        steps_per_epoch,
        path,
        &cpu().autodiff(),
    )
    .unwrap();
    run_epochs(&mut resumed, &split, 2);

    assert_eq!(resumed.progress.history.len(), 3);
    assert_eq!(resumed.progress.step, straight.progress.step);
    let diff = max_abs_diff(&weights(&straight.model), &weights(&resumed.model));
    assert!(diff <= 1e-6, "resumed weights differ by {diff}");
    let (a, b) = (&straight.progress.history[2], &resumed.progress.history[2]);
    assert!((a.test_loss - b.test_loss).abs() <= 1e-6);
}

#[test]
fn a_non_finite_loss_stops_the_run_and_says_where() {
    let mut split = toy("xor", 64, 1);
    if let Features::Floats(f) = &mut split.train.features {
        // A corrupt input (NaN) poisons the first batch.
        for v in f.iter_mut() {
            *v = f32::NAN;
        }
    }
    let device = cpu().autodiff();
    let mut trainer = Trainer::new(model(&mlp_spec(&[8]), 1, &device), adam(1, 0.01), 1);
    let err =
        block_on(trainer.run_epoch(&split, false, &device, &mut prunelab::base::events::Quiet))
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("loss became") && err.contains("step 1"),
        "{err}"
    );
    assert!(err.contains("--lr"), "the message suggests a fix: {err}");
}

#[test]
fn cifar_shaped_training_runs_and_evaluates() {
    let split = Split::new(
        tiny_images(40, 10, 1),
        tiny_images(20, 10, 2),
        Some(prunelab::data::cifar::Variant::Cifar10.normalization()),
        "generated",
    );
    let spec = prunelab::model::ModelSpec::named("cnn", &Default::default()).unwrap();
    let device = cpu().autodiff();
    let mut config = adam(1, 0.01);
    config.batch_size = 16;
    let mut trainer = Trainer::new(model(&spec, 1, &device), config, 1);
    let m = block_on(trainer.run_epoch(&split, true, &device, &mut prunelab::base::events::Quiet))
        .unwrap();
    assert_eq!(trainer.progress.step, 3);
    assert!(m.train_loss.is_finite() && m.test_loss.is_finite());
    assert!((0.0..=1.0).contains(&m.test_accuracy));
}

#[test]
fn a_fork_leaves_its_original_untouched_and_a_clone_does_not() {
    let split = Split::new(
        tiny_images(32, 10, 1),
        tiny_images(8, 10, 2),
        None,
        "generated",
    );
    let spec = prunelab::model::ModelSpec::named("cnn", &Default::default()).unwrap();
    let device = cpu().autodiff();
    let original = model(&spec, 1, &device);
    let bits = |m: &prunelab::model::Model| -> Vec<u32> {
        weights(m).iter().map(|v| v.to_bits()).collect()
    };
    let before = bits(&original);
    let mut config = adam(1, 0.01);
    config.batch_size = 16;
    // Training a fork (weights and BN running statistics) changes nothing in the original.
    let mut trainer = Trainer::new(original.deep_fork(), config.clone(), 1);
    block_on(trainer.run_epoch(&split, false, &device, &mut prunelab::base::events::Quiet))
        .unwrap();
    assert!(bits(&trainer.model) != before, "the fork trained");
    assert!(
        bits(&original) == before,
        "the original's weights and running statistics are bit-identical"
    );
    // burn's `clone()` shares the running statistics: the check above can fail.
    let mut trainer = Trainer::new(original.clone(), config, 1);
    block_on(trainer.run_epoch(&split, false, &device, &mut prunelab::base::events::Quiet))
        .unwrap();
    assert!(
        bits(&original) != before,
        "a clone that trains moves the original's BN statistics"
    );
}

/// Events of `steps`-long `advance` calls until the run ends, read back as
/// `reads` says (by the caller: a flush after each call, as the page's frame does).
fn events_of(reads: ReadBacks, steps: usize) -> (Vec<String>, prunelab::train::Progress, Vec<f32>) {
    let split = toy("moons", 96, 2);
    let device = cpu().autodiff();
    let mut trainer = Trainer::new(model(&mlp_spec(&[8, 6]), 2, &device), adam(3, 0.02), 2);
    trainer.reads = reads;
    let mut events = Vec::new();
    while !trainer.finished() {
        let mut sink = |e: prunelab::base::events::Event| {
            let mut v = serde_json::to_value(&e).unwrap();
            // Wall time differs between runs (and is shared evenly when deferred).
            for key in ["images_per_second", "seconds"] {
                v.as_object_mut().map(|o| o.remove(key));
            }
            events.push(v.to_string());
        };
        let until = prunelab::train::Until::Steps(steps);
        let closed = block_on(prunelab::train::advance(
            &mut trainer,
            &split,
            false,
            &device,
            until,
            &mut sink,
        ))
        .unwrap();
        if reads == ReadBacks::ByCaller {
            assert!(closed.is_empty(), "epochs wait for the caller's read");
            block_on(trainer.flush(&mut sink)).unwrap();
        }
    }
    let mut progress = trainer.progress.clone();
    for h in progress.history.iter_mut() {
        h.seconds = 0.0;
    }
    progress.epoch_seconds = 0.0;
    (events, progress, weights(&trainer.model))
}

/// Deferring the reads (what the page does on WebGPU) changes when the
/// figures are read, not the run: the same events in the same order, the
/// same sums and history, the same weights — for calls that end mid-epoch
/// and calls that span epochs, whether the steps wait for the call's end or
/// the steps and the epochs they close wait for the caller.
#[test]
fn deferred_reads_give_the_same_run_and_events() {
    for steps in [1, 4, 7, 30] {
        let (want_events, want_progress, want_weights) = events_of(ReadBacks::EachStep, steps);
        assert!(
            want_events.iter().any(|e| e.contains("\"step\"")),
            "steps are reported"
        );
        assert!(
            want_events.iter().any(|e| e.contains("test_accuracy")),
            "epochs are reported"
        );
        for reads in [ReadBacks::EachCall, ReadBacks::ByCaller] {
            let (events, progress, weights) = events_of(reads, steps);
            assert_eq!(
                events, want_events,
                "events, {reads:?}, calls of {steps} steps"
            );
            assert_eq!(
                progress, want_progress,
                "progress, {reads:?}, calls of {steps} steps"
            );
            assert_eq!(
                weights, want_weights,
                "weights, {reads:?}, calls of {steps} steps"
            );
        }
    }
}

#[test]
fn a_deferred_non_finite_loss_stops_the_run_at_the_read_and_says_where() {
    let mut split = toy("xor", 64, 1);
    if let Features::Floats(f) = &mut split.train.features {
        for v in f.iter_mut() {
            *v = f32::NAN;
        }
    }
    let device = cpu().autodiff();
    let mut trainer = Trainer::new(model(&mlp_spec(&[8]), 1, &device), adam(1, 0.01), 1);
    trainer.reads = ReadBacks::EachCall;
    let err =
        block_on(trainer.run_epoch(&split, false, &device, &mut prunelab::base::events::Quiet))
            .unwrap_err()
            .to_string();
    // Read after the epoch's steps, it still names the first bad step.
    assert!(
        err.contains("loss became") && err.contains("step 1"),
        "{err}"
    );
    // Read by the caller after a whole epoch and more, likewise.
    let mut trainer = Trainer::new(model(&mlp_spec(&[8]), 1, &device), adam(2, 0.01), 1);
    trainer.reads = ReadBacks::ByCaller;
    let quiet = &mut prunelab::base::events::Quiet;
    let until = prunelab::train::Until::Steps(100);
    block_on(prunelab::train::advance(
        &mut trainer,
        &split,
        false,
        &device,
        until,
        quiet,
    ))
    .unwrap();
    let err = block_on(trainer.flush(quiet)).unwrap_err().to_string();
    assert!(
        err.contains("loss became") && err.contains("step 1"),
        "{err}"
    );
}

/// A linear warm-up: the rate rises over the first `warmup_epochs` and then
/// is the schedule's; a config without one serialises as before (the same
/// sweep run ids), and a file may set it.
#[test]
fn warm_up_ramps_the_rate_then_leaves_the_schedule_alone() {
    use prunelab::train::TrainConfig;
    let config = TrainConfig {
        epochs: 10,
        lr: 0.1,
        schedule: prunelab::train::schedule::Schedule::Multistep,
        milestones: vec![5],
        warmup_epochs: 2,
        ..TrainConfig::default()
    };
    let steps = 4;
    let ramp: Vec<f64> = (0..2 * steps)
        .map(|k| config.lr_at(k / steps, k % steps, steps))
        .collect();
    for (k, lr) in ramp.iter().enumerate() {
        assert!(
            (lr - 0.1 * (k + 1) as f64 / 8.0).abs() < 1e-12,
            "step {k}: {lr}"
        );
    }
    assert!(
        (config.lr_at(2, 0, steps) - 0.1).abs() < 1e-12,
        "after the warm-up: the schedule"
    );
    assert!(
        (config.lr_at(6, 0, steps) - 0.01).abs() < 1e-12,
        "the milestone still applies"
    );
    let plain = TrainConfig::default();
    assert!(
        (plain.lr_at(0, 0, steps) - plain.lr).abs() < 1e-12,
        "no warm-up by default"
    );
    let json = serde_json::to_value(&plain).unwrap();
    assert!(
        json.get("warmup_epochs").is_none(),
        "left out when 0: {json}"
    );
    let text =
        "[model]\nname = \"mlp\"\n[data]\ndataset = \"spiral\"\n[train]\nwarmup_epochs = 3\n";
    let run = prunelab::config::RunConfig::from_toml(text, "test").unwrap();
    assert_eq!(run.train.warmup_epochs, 3);
}
