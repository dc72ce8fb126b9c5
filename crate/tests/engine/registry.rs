//! The registry: every method is found by its name, says where each default
//! comes from, and its own options round-trip through the run file.

use prunelab::config::RunConfig;
use prunelab::prune::{self, METHODS, PruneOptions, by_name, catalog, defaults};

#[test]
fn every_method_is_found_by_its_unique_name_and_states_every_default() {
    let mut names: Vec<&str> = METHODS.iter().map(|m| m.info().name).collect();
    for name in &names {
        assert_eq!(by_name(name).unwrap().info().name, *name);
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), METHODS.len(), "names are unique");
    for m in METHODS {
        let info = m.info();
        for d in defaults(info) {
            assert_ne!(
                d.value, "(unset)",
                "{}: {} names no default",
                info.name, d.key
            );
            assert!(
                !d.source.is_empty(),
                "{}: {} says where it comes from",
                info.name,
                d.key
            );
        }
    }
    // Defaults read as written in the code, not as f32 widened to f64.
    let s1 = defaults(by_name("polarization").unwrap().info());
    let shown = |key: &str| s1.iter().find(|d| d.key == key).unwrap().value.clone();
    assert_eq!(shown("polarization.final_temperature"), "0.05");
    assert_eq!(shown("polarization.freeze_at"), "0.8");
    // The seed methods say which they are, where people see them.
    for (seed, name) in [
        ("S1", "polarization"),
        ("S2", "flexrel"),
        ("S3", "energy"),
        ("S4", "lottery"),
    ] {
        assert!(
            by_name(name).unwrap().info().title.starts_with(seed),
            "{name} is {seed}"
        );
    }
    assert!(
        by_name("nope")
            .err()
            .unwrap()
            .to_string()
            .contains("choose one of")
    );
}

#[test]
fn method_tables_round_trip_through_a_run_file_and_bad_ones_are_named() {
    let text = "[prune]\nmethod = \"flexrel\"\n[prune.flexrel]\ndelta = 0.25\n[prune.random]\nunit = \"weights\"\n";
    let config = RunConfig::from_toml(text, "test.toml").unwrap();
    let flexrel: prune::flexrel::FlexRelOptions = config.prune.options.of("flexrel").unwrap();
    assert_eq!(flexrel.delta, 0.25);
    assert_eq!(flexrel.samples, 256, "unset keys keep their defaults");
    let random: prune::random::RandomOptions = config.prune.options.of("random").unwrap();
    assert_eq!(random.unit, prune::random::RandomUnit::Weights);
    // Unknown keys and unknown method tables are refused with what is known.
    for bad in ["[prune.flexrel]\ndelt = 0.2\n", "[prune.nosuch]\nx = 1\n"] {
        let e = RunConfig::from_toml(bad, "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("known keys"), "{bad}: {e}");
    }
    // A wrong type is refused when the options are checked.
    let mut options = PruneOptions::default();
    options
        .methods
        .insert("flexrel".into(), serde_json::json!({ "delta": "half" }));
    assert!(
        options
            .check()
            .unwrap_err()
            .to_string()
            .contains("prune.flexrel")
    );
}

#[test]
fn the_catalog_is_what_the_page_lists() {
    let listed: Vec<String> = catalog()
        .into_iter()
        .filter(|d| d.slider)
        .map(|d| d.info.name.to_string())
        .collect();
    assert!(listed.contains(&"energy".to_string()) && listed.contains(&"lottery".to_string()));
    assert!(
        !listed.contains(&"polarization".to_string()),
        "S1 runs its own pass"
    );
}

/// One shared fine-tuning recipe by default, each paper's on request, as
/// the tables print them.
#[test]
fn stages_read_as_people_write_them() {
    use prunelab::prune::contract::Stage;
    use prunelab::prune::options::Recipe;
    use prunelab::prune::recipe::{default_stages, describe};
    use prunelab::train::TrainConfig;
    let train = TrainConfig {
        epochs: 60,
        lr: 0.02,
        ..TrainConfig::default()
    };
    let options = PruneOptions::default();
    let info = prunelab::prune::by_name("l1").unwrap().info();
    // Shared: a quarter of 60 epochs at a tenth of 0.02, whatever l1's paper says.
    let stages = default_stages(info, &options, &train);
    assert_eq!(describe(&stages), "fine-tune 15 ep @ 0.002 cosine");
    // Li et al.'s own recipe, on request: 0.01× the rate.
    let paper = PruneOptions {
        finetune_recipe: Recipe::Paper,
        ..PruneOptions::default()
    };
    assert_eq!(
        describe(&default_stages(info, &paper, &train)),
        "fine-tune 15 ep @ 2e-4 cosine"
    );
    assert_eq!(
        describe(&[Stage::of("fine-tune", &TrainConfig { epochs: 0, ..train })]),
        "none"
    );
}

/// `docs/methods.md`'s baselines table is the registry's too: every method
/// that is not a seed (`S1:` … `S4:` titles), in the registry's order, its
/// `summary` and its `source`.
#[test]
fn the_docs_baselines_table_is_generated_from_the_registry() {
    let mut rows = vec![
        "| name | what | paper |".to_string(),
        "|---|---|---|".to_string(),
    ];
    let seed = |title: &str| {
        let b = title.as_bytes();
        b.len() > 3 && b[0] == b'S' && b[1].is_ascii_digit() && b[2] == b':'
    };
    for m in METHODS {
        let info = m.info();
        if !seed(info.title) {
            rows.push(format!(
                "| `{}` | {} | {} |",
                info.name, info.summary, info.source
            ));
        }
    }
    let table = rows.join("\n");
    assert!(rows.len() > 10, "the baselines: {table}");
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/methods.md"),
    )
    .unwrap();
    assert!(
        docs.contains(&format!("{table}\n\n")),
        "docs/methods.md's baselines table differs from the registry; replace it with:\n{table}"
    );
}

/// The papers' fine-tuning table in `docs/methods.md` is the registry's, row
/// for row: it is rendered here from each method's `INFO.finetune`, in the
/// registry's order, and must appear in the docs verbatim. When a default
/// changes, paste the printed table over the old one.
#[test]
fn the_docs_finetune_table_is_generated_from_the_registry() {
    let mut rows = vec![
        "| method | its paper's fine-tuning (`finetune_recipe = \"paper\"`) | source |".to_string(),
        "|---|---|---|".to_string(),
    ];
    let mut own = Vec::new();
    for m in METHODS {
        let info = m.info();
        match info.finetune {
            Some(f) if f.share == 0.0 => {
                rows.push(format!("| `{}` | none | {} |", info.name, f.source))
            }
            Some(f) => rows.push(format!(
                "| `{}` | {}% of the training epochs at {}× | {} |",
                info.name,
                (f.share * 100.0).round(),
                f.lr_factor,
                f.source
            )),
            None => own.push(format!("`{}`", info.name)),
        }
    }
    rows.push(format!(
        "| {} | — | they train the pruned network themselves |",
        own.join(", ")
    ));
    let table = rows.join("\n");
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/methods.md"),
    )
    .unwrap();
    assert!(
        docs.contains(&table),
        "docs/methods.md's fine-tuning table differs from the registry; replace it with:\n{table}"
    );
}
