//! The flows methods share: score → select → cut → fine-tune (structured),
//! score → mask → fine-tune with the mask held (weight level), score → remove
//! blocks → train, and training a model for some epochs inside a method.
//! [`run`] is every method's run unless its schedule is its own.

use crate::base::error::{Error, Result};
use crate::base::events::{EpochMetrics, Event};
use crate::metrics::count::count;
use crate::model::masks::WeightMasks;
use crate::model::{Model, ModelSpec};
use crate::prune::contract::{BoxFuture, Job, Method, MethodInfo, Outcome, Phase, Scores};
use crate::prune::options::PruneOptions;
use crate::prune::pruner::apply::{cut_to, cut_units, mask_weights, remove_blocks};
use crate::prune::pruner::masks::LayerScores;
use crate::prune::pruner::plan::Plan;
use crate::prune::pruner::select::{SelectOptions, UnitScores, select_by_rates};
use crate::prune::pruner::target::Target;
use crate::train::TrainConfig;
use crate::train::Trainer;

pub mod latency;

use latency::{cache_dir, calibrated};
pub use latency::{latency_key, latency_table};

/// Trains `model` for `config.epochs` epochs (holding `masks` at zero) and
/// returns it with the epochs' metrics.
pub async fn train_for(
    job: &mut Job<'_>,
    model: Model,
    config: TrainConfig,
    masks: Option<&WeightMasks>,
) -> Result<(Model, Vec<EpochMetrics>)> {
    train_from(job, model, config, masks, 0).await
}

/// As [`train_for`], starting the schedule at `start_epoch` (learning-rate
/// rewinding: the rate schedule picks up where epoch `start_epoch` left it).
pub async fn train_from(
    job: &mut Job<'_>,
    model: Model,
    config: TrainConfig,
    masks: Option<&WeightMasks>,
    start_epoch: usize,
) -> Result<(Model, Vec<EpochMetrics>)> {
    train_configured(job, model, config, start_epoch, |optim, plain| {
        if let Some(m) = masks {
            optim.masks = m.for_optimizer(plain);
        }
    })
    .await
}

/// Trains from `start_epoch` after `configure` set up the optimizer (masks
/// held at zero, penalties); `plain` is the device without autodiff.
pub async fn train_configured(
    job: &mut Job<'_>,
    model: Model,
    config: TrainConfig,
    start_epoch: usize,
    configure: impl FnOnce(&mut crate::train::optim::Optimizer, &burn::tensor::Device),
) -> Result<(Model, Vec<EpochMetrics>)> {
    if config.epochs <= start_epoch {
        return Ok((model, Vec::new()));
    }
    let device = job.device.autodiff();
    let mut trainer = Trainer::new(model, config, job.seed);
    trainer.progress.epoch = start_epoch;
    configure(&mut trainer.optim, &device.clone().without_autodiff());
    while !trainer.finished() {
        trainer
            .run_epoch(job.split, job.augment, &device, &mut *job.sink)
            .await?;
    }
    Ok((trainer.model, trainer.progress.history))
}

/// The training settings for fine-tuning ([`crate::prune::recipe::finetune_config`]:
/// `finetune_epochs` at `finetune_lr`, unset ones from the shared recipe or,
/// with `finetune_recipe = "paper"`, the method's own).
pub fn finetune_config(job: &Job<'_>) -> TrainConfig {
    crate::prune::recipe::finetune_config(job.info, &job.options, &job.train)
}

/// The default run: the method's scores, then by what they score — units:
/// select, cut, fine-tune; weights: mask, fine-tune with the mask held;
/// blocks: remove the lowest, fine-tune — or, for a method that acts at
/// initialisation, train for the full budget instead of fine-tuning.
pub fn run<'a, M: Method + ?Sized>(method: &'a M, job: Job<'a>) -> BoxFuture<'a, Result<Outcome>> {
    Box::pin(async move {
        let scores = method.score(job.scoring()).await?;
        let then = if job.info.phase == Phase::AtInit {
            Then::Train
        } else {
            Then::Finetune
        };
        match scores {
            Scores::Units(s)
                if job.options.iterative_steps > 1
                    && then == Then::Finetune
                    && job.options.rates.is_none() =>
            {
                iterative(method, job, s).await
            }
            Scores::Units(s) => {
                let options = select_options(&job);
                let details = serde_json::json!({ "scores": s });
                structured(job, s, options, then, details).await
            }
            Scores::Weights(w) => weight_level(job, w, then, serde_json::Value::Null).await,
            Scores::Blocks(b) => blocks(job, b, then).await,
        }
    })
}

/// Iterative pruning (`iterative_steps = N`): N rounds of select → cut →
/// fine-tune → re-score, the removed share growing to the target along
/// `iterative_schedule`. Each round's target is stated against the dense
/// network (so the last round lands on the target itself), the layer caps
/// hold against the dense layer sizes, and the fine-tuning budget is the
/// one-shot budget split across the rounds, so the two compare fairly.
async fn iterative<M: Method + ?Sized>(
    method: &M,
    mut job: Job<'_>,
    first: UnitScores,
) -> Result<Outcome> {
    let steps = job.options.iterative_steps;
    let schedule = job.options.iterative_schedule;
    let dense = job.model.spec.clone();
    let protect = job.options.protect.clone();
    let units = |spec: &ModelSpec| protect.groups(spec).iter().map(|g| g.size).sum::<usize>();
    let measure = |spec: &ModelSpec, target: &Target| -> f64 {
        let c = count(spec);
        match target {
            Target::Macs(_) => c.macs as f64,
            Target::Params(_) => c.params as f64,
            _ => units(spec) as f64,
        }
    };
    let want = match job.target {
        Target::Sparsity(v) | Target::Macs(v) | Target::Params(v) => v as f64,
        Target::Blocks(_) | Target::Latency(_) => {
            return Err(Error::config(
                "iterative_steps",
                steps,
                "iterative schedules are for macs=, params= and sparsity= targets",
            ));
        }
    };
    let mut options = select_options(&job);
    options.protect.dense_sizes = dense
        .groups(true)
        .into_iter()
        .map(|g| (g.name, g.size))
        .collect();
    let budget = finetune_config(&job);
    let mut scores = first;
    let mut total = Plan::default();
    let mut history = Vec::new();
    let mut aims = Vec::new();
    let dense_measure = measure(&dense, &job.target);
    for k in 1..=steps {
        let aim = schedule.at(want, k, steps);
        // The share of the *current* network to remove so that (1 − aim) of
        // the dense one remains.
        let now = measure(&job.model.spec, &job.target);
        let share =
            (1.0 - (1.0 - aim) * dense_measure / now.max(1e-12)).clamp(0.0, 0.999_999) as f32;
        let step_target = match job.target {
            Target::Macs(_) => Target::Macs(share),
            Target::Params(_) => Target::Params(share),
            _ => Target::Sparsity(share),
        };
        let (plan, cut_model) = cut_units(&job.model, &scores, &step_target, &options)?;
        total = total.then(&plan);
        aims.push(aim);
        let round = |k: usize| (budget.epochs as f64 * k as f64 / steps as f64).round() as usize;
        let config = TrainConfig {
            epochs: round(k) - round(k - 1),
            ..budget.clone()
        };
        job.sink.emit(Event::Phase {
            name: "iterative".into(),
            detail: format!(
                "step {k}/{steps}: {:.1}% of the dense {} removed, then {} fine-tuning epochs",
                100.0 * (1.0 - measure(&cut_model.spec, &job.target) / dense_measure),
                match job.target {
                    Target::Macs(_) => "MACs",
                    Target::Params(_) => "params",
                    _ => "units",
                },
                config.epochs
            ),
        });
        let (model, h) = train_for(&mut job, cut_model, config, None).await?;
        history.extend(h);
        job.model = model;
        if k < steps {
            scores = match method.score(job.scoring()).await? {
                Scores::Units(s) => s,
                _ => unreachable!("a unit criterion scores units on every round"),
            };
        }
    }
    Ok(Outcome {
        model: job.model,
        plan: Some(total),
        masks: None,
        history,
        details: serde_json::json!({
            "iterative": { "steps": steps, "schedule": schedule, "targets": aims }
        }),
    })
}

/// Selection settings for a structured method: its paper's ranking and
/// normalisation unless `scope` / `normalize` say otherwise (a normalisation
/// the method's paper prescribes always applies).
pub fn select_options(job: &Job<'_>) -> SelectOptions {
    ranking(job.info, &job.options)
}

/// [`select_options`] for a method and options alone (the lab's slider
/// ranks exactly as a run does): [`MethodInfo::select_options`].
pub fn ranking(info: &MethodInfo, options: &PruneOptions) -> SelectOptions {
    info.select_options(options)
}

/// Structured pruning from unit scores: select for the target (or the fixed
/// `rates`), cut physically, fine-tune.
pub async fn structured(
    job: Job<'_>,
    scores: UnitScores,
    mut options: SelectOptions,
    then: Then,
    mut details: serde_json::Value,
) -> Result<Outcome> {
    let spec = job.model.spec.clone();
    if let Target::Latency(_) = job.target {
        let dir = cache_dir();
        let table = latency_table(&spec, job.train.batch_size, &job.device, dir.as_deref()).await?;
        details["latency_table_ms"] = serde_json::to_value(&table).expect("plain data");
        options.latency = Some(table);
    }
    let (plan, pruned) = match (&job.options.rates, job.target) {
        (Some(rates), _) => cut_to(
            &job.model,
            select_by_rates(&spec, &scores, rates, &options.protect)?,
        )?,
        (None, Target::Latency(want)) => cut_to(
            &job.model,
            calibrated(&job, &scores, &options, want as f64, &mut details).await?,
        )?,
        (None, target) => cut_units(&job.model, &scores, &target, &options)?,
    };
    if let Some(table) = &options.latency {
        details["predicted_latency_reduction"] = serde_json::json!(
            crate::prune::pruner::select::predicted_latency_reduction(&spec, &plan, table)
        );
    }
    let (before, after) = (count(&spec), count(&pruned.spec));
    job.sink.emit(Event::Phase {
        name: "cut".into(),
        detail: format!(
            "MACs {} → {} ({:.1}% removed), params {} → {}",
            before.macs,
            after.macs,
            100.0 * (1.0 - after.macs as f64 / before.macs as f64),
            before.params,
            after.params
        ),
    });
    train_cut(job, pruned, plan, then, details).await
}

/// The tail of every structured cut: fine-tune (or train) the cut network.
async fn train_cut(
    mut job: Job<'_>,
    pruned: Model,
    plan: Plan,
    then: Then,
    details: serde_json::Value,
) -> Result<Outcome> {
    let config = config_for(&job, then);
    let (model, history) = train_for(&mut job, pruned, config, None).await?;
    Ok(Outcome {
        model,
        plan: Some(plan),
        masks: None,
        history,
        details,
    })
}

/// Block removal from block scores: the `blocks=N` lowest go, then the
/// shallower network fine-tunes (or trains).
pub async fn blocks(job: Job<'_>, scores: Vec<(String, f32)>, then: Then) -> Result<Outcome> {
    let Target::Blocks(n) = job.target else {
        return Err(Error::config(
            "target",
            job.target,
            format!("{} removes residual blocks: use blocks=N", job.info.name),
        ));
    };
    let (plan, pruned) = remove_blocks(&job.model, &scores, n)?;
    let details = serde_json::json!({ "block_scores": scores });
    train_cut(job, pruned, plan, then, details).await
}

/// What follows pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// `finetune_epochs` at the fine-tuning rate (after-training methods).
    Finetune,
    /// The full training run (at-initialisation methods).
    Train,
}

pub fn config_for(job: &Job<'_>, then: Then) -> TrainConfig {
    match then {
        Then::Finetune => finetune_config(job),
        Then::Train => job.train.clone(),
    }
}

/// Weight-level pruning from per-weight scores: mask for the target, zero
/// the weights, then fine-tune or train with the mask held.
pub async fn weight_level(
    mut job: Job<'_>,
    scores: Vec<LayerScores>,
    then: Then,
    details: serde_json::Value,
) -> Result<Outcome> {
    let scope = select_options(&job).scope;
    let (masks, model) = mask_weights(&job.model, &scores, &job.target, scope)?;
    job.sink.emit(Event::Phase {
        name: "mask".into(),
        detail: format!(
            "{:.1}% of {} prunable weights zeroed",
            100.0 * masks.sparsity(),
            masks.total()
        ),
    });
    let config = config_for(&job, then);
    let (model, history) = train_for(&mut job, model, config, Some(&masks)).await?;
    Ok(Outcome {
        model,
        plan: None,
        masks: Some(masks),
        history,
        details,
    })
}
