//! Unit tests of the sweep: ids, shards, records.

use super::*;
use std::collections::BTreeMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn shards_are_disjoint_and_cover_the_list() {
    let items: Vec<usize> = (0..23).collect();
    for count in 1..=7 {
        let mut seen = Vec::new();
        for index in 0..count {
            seen.extend(Shard { index, count }.select(&items));
        }
        seen.sort();
        assert_eq!(seen, items, "{count} shards");
    }
    // More shards than runs: the extra shards are empty, not errors.
    assert!(Shard { index: 5, count: 6 }.select(&[1, 2]).is_empty());
}

#[test]
fn explicit_shards_parse_and_bad_ones_say_how() {
    assert_eq!(
        Shard::parse("2/4", &|_| None).unwrap(),
        Shard { index: 2, count: 4 }
    );
    for bad in ["4/4", "1/0", "x", "1-4", "-1/3"] {
        let e = Shard::parse(bad, &|_| None).unwrap_err().to_string();
        assert!(e.contains("i/N"), "{bad}: {e}");
    }
}

#[test]
fn slurm_arrays_count_from_their_minimum() {
    let s = Shard::parse(
        "auto",
        &env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]),
    )
    .unwrap();
    assert_eq!(s, Shard { index: 2, count: 4 });
    let s = Shard::from_env(&env(&[
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]))
    .unwrap();
    assert_eq!(s, Shard { index: 0, count: 2 });
    // A sparse array (--array=0,5) cannot be mapped onto shards.
    let e = Shard::from_env(&env(&[
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("--array=0-1"), "{e}");
}

#[test]
fn kubernetes_indexed_jobs_need_the_shard_count() {
    let s = Shard::from_env(&env(&[
        ("JOB_COMPLETION_INDEX", "1"),
        ("PRUNELAB_SHARDS", "3"),
    ]))
    .unwrap();
    assert_eq!(s, Shard { index: 1, count: 3 });
    let e = Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap_err();
    assert!(e.to_string().contains("PRUNELAB_SHARDS"), "{e}");
    let e = Shard::from_env(&env(&[
        ("JOB_COMPLETION_INDEX", "3"),
        ("PRUNELAB_SHARDS", "3"),
    ]))
    .unwrap_err();
    assert!(e.to_string().contains("below"), "{e}");
    assert!(Shard::from_env(&env(&[])).is_err());
    assert_eq!(
        Shard::from_env(&env(&[("PRUNELAB_SHARD", "1/2")])).unwrap(),
        Shard { index: 1, count: 2 }
    );
}

const SWEEP: &str = r#"
    name = "t"
    seeds = [1, 2]
    [model]
    name = "mlp"
    [data]
    dataset = "xor"
    [[methods]]
    method = "l1"
    targets = ["macs=0.3", "macs=0.5"]
    [[methods]]
    method = "magnitude"
    targets = ["sparsity=0.5"]
"#;

#[test]
fn a_sweep_expands_to_sorted_unique_ids_that_ignore_line_order() {
    let config = SweepConfig::from_toml(SWEEP, "t").unwrap();
    let runs = config.runs();
    assert_eq!(runs.len(), 2 * 3);
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    // The same sweep written in another order has the same ids.
    let reordered = SWEEP.replace(
        "[model]\n    name = \"mlp\"\n    [data]\n    dataset = \"xor\"",
        "[data]\n    dataset = \"xor\"\n    [model]\n    name = \"mlp\"",
    );
    assert_ne!(reordered, SWEEP);
    let again = SweepConfig::from_toml(&reordered, "t").unwrap().runs();
    assert_eq!(
        again.iter().map(|r| &r.id).collect::<Vec<_>>(),
        runs.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
}

#[test]
fn bad_sweeps_are_refused_up_front() {
    let e =
        SweepConfig::from_toml(&SWEEP.replace("\"l1\"", "\"no-such-method\""), "t").unwrap_err();
    assert!(e.to_string().contains("no-such-method"), "{e}");
    let e = SweepConfig::from_toml(&SWEEP.replace("\"sparsity=0.5\"", ""), "t").unwrap_err();
    assert!(e.to_string().contains("targets"), "{e}");
    let e = SweepConfig::from_toml(&SWEEP.replace("macs=0.3", "macs=3"), "t").unwrap_err();
    assert!(e.to_string().contains("macs"), "{e}");
    let e = SweepConfig::from_toml(&SWEEP.replace("[data]", "[dta]"), "t").unwrap_err();
    assert!(e.to_string().contains("dta"), "{e}");
}
