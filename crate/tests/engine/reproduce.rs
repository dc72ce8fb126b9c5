//! `prunelab reproduce`'s plans (a budget scales epochs and data, nothing
//! else) and reports (our mean ± spread beside the paper's row).

use prunelab::base::device::DeviceChoice;
use prunelab::runs::reproduce::{Budget, Seed, plan, report};
use prunelab::runs::sweep::RunRecord;

fn methods(c: &prunelab::runs::sweep::SweepConfig) -> Vec<(String, Vec<String>, Option<String>)> {
    c.methods
        .iter()
        .map(|m| {
            let targets = m.targets.iter().map(|t| t.to_string()).collect();
            (m.method.clone(), targets, m.label.clone())
        })
        .collect()
}

#[test]
fn a_budget_scales_epochs_and_data_and_keeps_the_papers_experiment() {
    for seed in Seed::ALL {
        let full = plan(seed, Budget::Full, None, None, None, None).unwrap();
        let cpu = plan(seed, Budget::Cpu, None, None, None, None).unwrap();
        let smoke = plan(seed, Budget::Smoke, None, Some("/data/c10"), None, None).unwrap();
        // The shipped file is the full schedule.
        assert_eq!(full.base.train.epochs, 200, "{seed:?}");
        assert_eq!(full.base.data.train_subset, None, "{seed:?}: all the data");
        assert_eq!(full.base.device, DeviceChoice::Auto);
        assert_eq!(full.seeds, vec![1, 2, 3]);
        // Same methods, targets, model, optimiser; fewer epochs and examples.
        for c in [&cpu, &smoke] {
            assert_eq!(methods(c), methods(&full), "{seed:?}");
            assert_eq!(c.base.model, full.base.model);
            assert_eq!(c.base.train.lr, full.base.train.lr);
            assert_eq!(c.base.device, DeviceChoice::Cpu);
        }
        assert_eq!(cpu.base.train.epochs, 15);
        // The learning-rate drops keep their place: 100 and 150 of 200.
        assert_eq!(cpu.base.train.milestones, vec![8, 12], "{seed:?}");
        assert_eq!(cpu.base.data.train_subset, Some(2000));
        assert_eq!(smoke.base.train.epochs, 1);
        assert!(smoke.base.train.milestones.is_empty());
        assert_eq!(smoke.seeds, vec![1]);
        assert_eq!(smoke.base.data.dir.as_deref(), Some("/data/c10"));
        // Different budgets are different runs (their results never mix).
        let ids = |c: &prunelab::runs::sweep::SweepConfig| {
            c.runs().into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        assert!(
            ids(&cpu).iter().all(|id| !ids(&full).contains(id)),
            "{seed:?}"
        );
    }
    let s2 = plan(Seed::S2, Budget::Smoke, None, None, None, None).unwrap();
    for m in &s2.methods {
        let samples = &m.options["flexrel"]["samples"];
        assert_eq!(
            samples.as_u64(),
            (m.method == "flexrel").then_some(32),
            "{}",
            m.method
        );
    }
    assert_eq!(
        plan(Seed::S3, Budget::Cpu, Some(5), None, None, None)
            .unwrap()
            .seeds,
        vec![1, 2, 3, 4, 5]
    );
    assert!(plan(Seed::S3, Budget::Cpu, Some(0), None, None, None).is_err());
}

/// The `pretrained` budget prunes the public ResNet-56 (S2 and S3 only),
/// fed its own input normalisation, and fine-tunes every row with one
/// recipe; the papers that train from scratch refuse it, saying why.
#[test]
fn the_pretrained_budget_starts_s2_and_s3_from_the_published_network_with_one_recipe() {
    use prunelab::data::augment::Normalization;
    for seed in [Seed::S2, Seed::S3] {
        let c = plan(
            seed,
            Budget::Pretrained,
            None,
            Some("/data/c10"),
            None,
            None,
        )
        .unwrap();
        let full = plan(seed, Budget::Full, None, None, None, None).unwrap();
        assert_eq!(methods(&c), methods(&full), "{seed:?}: the paper's rows");
        assert_eq!(c.base.model.name, "resnet56", "{seed:?}");
        assert_eq!(c.base.model.from.as_deref(), Some("resnet56-cifar10"));
        assert_eq!(
            c.base.model.normalize.map(|n| n.0),
            Some(Normalization::IMAGENET)
        );
        assert_eq!(
            (c.base.data.train_subset, c.base.data.test_subset),
            (None, None)
        );
        let o = &c.base.prune.options;
        assert_eq!((o.finetune_epochs, o.finetune_lr), (Some(12), Some(0.01)));
        assert_eq!(o.finetune_recipe, prunelab::prune::options::Recipe::Shared);
        assert_eq!(
            c.base.train.epochs, 12,
            "[train] describes the fine-tuning only"
        );
        assert!(c.base.train.milestones.is_empty() && c.base.train.warmup_epochs == 0);
        assert!(c.methods.iter().all(|m| m.model.is_none()));
        assert_eq!(c.seeds, vec![1, 2]);
        // Another start is named with --from, at any budget.
        let own = plan(seed, Budget::Quick, None, None, None, Some("my.plm")).unwrap();
        assert_eq!(own.base.model.from.as_deref(), Some("my.plm"));
        assert_eq!(own.base.model.normalize, None, "a file says its own");
    }
    for seed in [Seed::S1, Seed::S4] {
        let e = plan(seed, Budget::Pretrained, None, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("from scratch") && e.contains("--budget cpu"),
            "{e}"
        );
    }
}

fn row(
    method: &str,
    label: &str,
    target: &str,
    accuracy: f64,
    delta: f64,
    macs: f64,
) -> serde_json::Value {
    serde_json::json!({
        "method": method, "label": label, "target": target, "phase": "after-training",
        "test_accuracy": accuracy, "test_loss": 1.0, "delta_vs_dense": delta,
        "params": 100, "macs": 100, "bytes": 400, "nonzero_params": 100,
        "params_reduction": macs, "macs_reduction": macs, "bytes_reduction": macs,
        "wall_seconds": 1.0, "train_epochs": 1, "plan": [], "energy_joules": null,
        "history": [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0,
                     "test_accuracy": accuracy, "lr": 0.1, "seconds": 10.0}],
        "details": {},
    })
}

fn record(seed: u64, results: Vec<serde_json::Value>) -> RunRecord {
    serde_json::from_value(serde_json::json!({
        "prunelab": "0", "sweep": "t", "id": format!("{seed}-{}", results[1]["label"]),
        "seed": seed, "shard": "0/1", "device": "cpu", "results": results,
    }))
    .unwrap()
}

#[test]
fn the_report_averages_over_seeds_leads_with_the_papers_method_and_says_how_far_it_is() {
    let dense = |_seed: u64| row("dense", "dense", "-", 0.90, 0.0, 0.0);
    let records = vec![
        record(
            1,
            vec![dense(1), row("l1", "l1", "macs=0.404", 0.85, -5.0, 0.40)],
        ),
        record(
            1,
            vec![
                dense(1),
                row("energy", "energy", "macs=0.404", 0.88, -2.0, 0.41),
            ],
        ),
        record(
            2,
            vec![
                dense(2),
                row("energy", "energy", "macs=0.404", 0.86, -4.0, 0.39),
            ],
        ),
        record(
            2,
            vec![dense(2), row("l1", "l1", "macs=0.404", 0.87, -3.0, 0.40)],
        ),
    ];
    let r = report::build(Seed::S3, Budget::Cpu, &records, 1);
    assert_eq!(r.ours[0].label, "energy", "the paper's method first");
    let energy = &r.ours[0];
    assert_eq!(energy.seeds, 2);
    assert!((energy.accuracy.mean - 87.0).abs() < 1e-4 && (energy.delta.mean + 3.0).abs() < 1e-4);
    // Sample standard deviation of 88 and 86.
    assert!(
        (energy.accuracy.sd - 2f64.sqrt()).abs() < 1e-4,
        "{}",
        energy.accuracy.sd
    );
    assert!((energy.flops_removed.mean - 0.40).abs() < 1e-6);
    assert_eq!(r.dense[0].seeds, 2);
    assert!(
        r.title.contains("`cpu` budget") && r.title.contains("1 runs missing"),
        "{}",
        r.title
    );
    assert!(
        r.verdict
            .starts_with("at the cpu budget S3 loses 3.00 pts at −40.0% FLOPs")
            && r.verdict
                .contains("vs l1 +1.00 pts (spread 2.83: within the spread)")
            && r.verdict.contains("94.13%"),
        "{}",
        r.verdict
    );
    let md = r.markdown();
    let energy_row = md
        .lines()
        .find(|l| l.starts_with("| energy (macs=0.404) |"))
        .expect("the energy row");
    assert!(
        energy_row.contains("| 87.00 ± 1.41 | -3.00 ± 1.41 |"),
        "{md}"
    );
    assert!(
        md.contains("| ResNet-56, CIFAR-10 | S3: Yeom et al. (abstract) | – | – | 94.13 |"),
        "{md}"
    );
    let svg = r.svg();
    assert_eq!(svg.matches("<circle").count(), 2);
    // Published rows with both a Δ and a FLOPs share are drawn as squares.
    assert_eq!(
        svg.matches("<rect x=").count(),
        2,
        "Torch-Pruning and Polar"
    );
}
