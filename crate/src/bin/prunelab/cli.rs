//! The command line: every command and flag `prunelab` takes (clap
//! derive). `main.rs` dispatches; each command's module runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "prunelab",
    version,
    about = "Neural-network pruning you can see and reproduce"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Convolution kernels on GPUs: auto (gemm on Vulkan, burn's own
    /// elsewhere), burn (burn's autotuned kernels) or gemm (im2col + matmul).
    #[arg(long, global = true, default_value = "auto")]
    pub conv: String,
    /// Grid carbon intensity for `co2_g` in results, gCO₂e/kWh (default: the
    /// 2023 world average, 481, Ember's Global Electricity Review 2024).
    #[arg(long, global = true)]
    pub grid_g_per_kwh: Option<f64>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model from flags or a TOML config; write a JSON result.
    Train(TrainArgs),
    /// Evaluate a saved model or checkpoint on a test set.
    Eval(EvalArgs),
    /// Per-layer and total parameters and MACs of a model.
    Info(InfoArgs),
    /// Prune a trained model (or one at initialisation) with one method.
    Prune(PruneArgs),
    /// Compare several methods on one model, seed and budget (an experiment
    /// TOML). `run` is its old name, still accepted.
    #[command(alias = "run")]
    Compare(CompareArgs),
    /// Run one shard of a sweep (methods × targets × seeds), or merge results with --collect.
    Sweep(SweepArgs),
    /// A seed paper's headline experiment at a budget (smoke, cpu, quick,
    /// full), its baselines beside it, and a report with the paper's numbers.
    Reproduce(ReproduceArgs),
    /// List the pruning methods.
    Methods,
    /// Training and inference throughput (images/s) after warm-up.
    Bench(BenchArgs),
    /// Serve the playground (static/) on 127.0.0.1.
    Serve(ServeArgs),
    /// Data sets and pretrained models: `data fetch cifar10|cifar100|resnet56-cifar10|…`
    /// downloads, checks and unpacks one.
    Data(DataArgs),
    /// Convert a model: reads .plm, .safetensors and PyTorch .pt; writes
    /// .plm, .safetensors (PyTorch names) or .onnx (opset 13), by extension.
    Export(ExportArgs),
}

/// Settings shared by every command that builds a model and its data.
#[derive(Args, Clone, Default)]
pub struct SetupArgs {
    /// TOML config file; flags given here override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// mlp, resmlp, cnn, resnet20, resnet32, resnet44, resnet56, resnet110, vgg16.
    #[arg(long)]
    pub model: Option<String>,
    /// Toy problem (spiral, circles, xor, gaussians, moons, tfp-spiral), cifar10, cifar100 or csv.
    #[arg(long)]
    pub dataset: Option<String>,
    /// CIFAR directory in the official binary layout (the dataset follows its files: cifar10, or cifar100 for train.bin/test.bin).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A `x,y,label` CSV file (implies --dataset csv).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[arg(long)]
    pub train_subset: Option<usize>,
    #[arg(long)]
    pub test_subset: Option<usize>,
    /// Share of each class of the training data held out for what a method
    /// selects (FlexRel's factor and δ, S1's target). Default 0.1; 0 for
    /// `train`, where nothing selects.
    #[arg(long)]
    pub valid_fraction: Option<f32>,
    /// Toy problems: training points.
    #[arg(long)]
    pub points: Option<usize>,
    /// Toy problems: noise (standard deviation).
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f32>,
    /// Turn off pad-crop/flip augmentation.
    #[arg(long)]
    pub no_augment: bool,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// sgd or adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    #[arg(long)]
    pub nesterov: bool,
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// constant, multistep or cosine.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Multistep epochs, e.g. 100,150.
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<usize>>,
    /// Epochs of linear learning-rate warm-up (deep ResNets at 0.1).
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// MLP hidden widths, e.g. 16,16.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// MLP activation: relu, tanh, sigmoid.
    #[arg(long)]
    pub activation: Option<String>,
    /// MLP initialisation: default (burn's, PyTorch's) or playground (TensorFlow Playground's)
    #[arg(long)]
    pub init: Option<String>,
    /// ResNet shortcut: a (zero-pad) or b (1x1 projection).
    #[arg(long)]
    pub shortcut: Option<String>,
    /// Input normalisation of a model file that does not record one (or of a new
    /// model): cifar10, cifar100, imagenet, none, MEAN,STD or M1,M2,M3,S1,S2,S3.
    /// Default: what the file records, the published one for a public checkpoint,
    /// else the data set's own.
    #[arg(long)]
    pub normalize: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto, cpu or vulkan.
    #[arg(long)]
    pub device: Option<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// Write the JSON result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a checkpoint here after every epoch (atomically).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue from --checkpoint if it exists.
    #[arg(long)]
    pub resume: bool,
    /// Also checkpoint every N optimisation steps within an epoch (0: only at epoch ends).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Start over even though `--checkpoint` already holds a run (without
    /// it, an existing checkpoint needs `--resume`).
    #[arg(long)]
    pub overwrite: bool,
    /// Save the trained model here (a file `prune` and `eval` load): .plm,
    /// .safetensors or .onnx.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Print one JSON event per line instead of progress bars.
    #[arg(long)]
    pub json_events: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// A method from `prunelab methods`.
    #[arg(long)]
    pub method: Option<String>,
    /// sparsity=F, macs=F, params=F (fractions removed) or blocks=N.
    #[arg(long)]
    pub target: Option<String>,
    /// The trained model to prune: `train --save`'s file, a checkpoint, a
    /// .safetensors or a PyTorch .pt state_dict (read as --model, or as the
    /// CIFAR ResNet its keys describe); at-initialisation methods start from
    /// a fresh model without it.
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// Epochs of fine-tuning after pruning.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// A method option, e.g. `--set polarization.lambda_sp=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Write the JSON result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Save the pruned model here: .plm (keeps weight masks), .safetensors
    /// or .onnx.
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[arg(long)]
    pub json_events: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The experiment file (see examples/toy-compare.toml).
    pub experiment: PathBuf,
    /// Directory for results.json, results.md, results.csv and plot.svg.
    #[arg(long)]
    pub out: PathBuf,
    /// Override the experiment's device.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub json_events: bool,
}

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep file (see examples/toy-sweep.toml).
    pub sweep: Option<PathBuf>,
    /// This process's slice: i/N (0-based), or `auto` to read Slurm's
    /// SLURM_ARRAY_TASK_ID/COUNT, Kubernetes' JOB_COMPLETION_INDEX (with
    /// PRUNELAB_SHARDS) or PRUNELAB_SHARD.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Results directory: one runs/<id>.json per run.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge the results in DIR into a table and plot instead of running.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["sweep", "out"])]
    pub collect: Option<PathBuf>,
    /// Override the sweep's device.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub json_events: bool,
}

#[derive(Args)]
pub struct ReproduceArgs {
    /// s1 (consensus gates + polarization), s2 (FlexRel), s3 (energy-aware)
    /// or s4 (layer lottery at initialisation).
    pub seed: String,
    /// smoke (a minute or two, CPU), cpu (2,000 images, 15 epochs: ~16 min
    /// a row on 2 cores), pretrained (S2, S3: the public pretrained ResNet-56,
    /// all the data, one 12-epoch fine-tune for every row: 1-2 h a row on 2
    /// cores; records kept in results/), quick (all the data, a short
    /// schedule, GPU), full (the paper's schedule).
    #[arg(long, default_value = "cpu")]
    pub budget: String,
    /// Start from this trained network instead of training one (S2, S3): a
    /// model file or a published checkpoint's name (resnet56-cifar10, the
    /// pretrained budget's default).
    #[arg(long)]
    pub from: Option<String>,
    /// Seeds 1..=N (default: 1 for smoke, 3 otherwise).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Results directory (default: out/reproduce-SEED-BUDGET).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The CIFAR-10 binary folder (default: $PRUNELAB_CIFAR10, else
    /// ../shared/data/cifar-10-batches-bin).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Override the budget's device (smoke and cpu: cpu; else auto).
    #[arg(long)]
    pub device: Option<String>,
    /// This process's slice of the runs: i/N, or `auto` under Slurm or Kubernetes.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Only write OUT/sweep.toml (for `prunelab sweep` arrays).
    #[arg(long, conflicts_with = "report_only")]
    pub plan_only: bool,
    /// Only write the report from the runs already in OUT.
    #[arg(long)]
    pub report_only: bool,
    #[arg(long)]
    pub json_events: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A model (`train --save`), a checkpoint, a .safetensors or a PyTorch
    /// .pt state_dict (read as --model, or as the CIFAR ResNet its keys describe).
    pub file: PathBuf,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The model: .plm, .safetensors or a PyTorch .pt state_dict.
    pub file: PathBuf,
    /// Where to write it: .plm, .safetensors or .onnx.
    #[arg(long)]
    pub to: PathBuf,
    /// Classes, for a foreign file read as --model (the data set's, when a
    /// command loads data).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    #[command(flatten)]
    pub setup: SetupArgs,
}

#[derive(Args)]
pub struct InfoArgs {
    #[arg(long, default_value = "resnet56")]
    pub model: String,
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    #[arg(long, default_value = "a")]
    pub shortcut: String,
    /// Hidden widths of `mlp` and `resmlp` (default 16,16).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "resnet56")]
    pub model: String,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value = "a")]
    pub shortcut: String,
    /// Measure this model file's architecture instead (e.g. a pruned
    /// network saved by `prune --save`); overrides --model.
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// Write the JSON result here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Download the official binary archive (resuming a stopped download),
    /// check its pinned SHA-256 and unpack it into DIR/<its folder>.
    Fetch(FetchArgs),
}

#[derive(Args)]
pub struct FetchArgs {
    /// cifar10 or cifar100, or a pretrained model: resnet20-cifar10,
    /// resnet32-cifar10, resnet44-cifar10 or resnet56-cifar10.
    pub dataset: String,
    /// Where to put it (default: $PRUNELAB_DATA, else ./data).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A mirror of the archive (with --sha256: its checksum).
    #[arg(long)]
    pub url: Option<String>,
    /// The mirror's archive's SHA-256 (64 hex digits).
    #[arg(long)]
    pub sha256: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Directory to serve: the page's folder as it is (`static/`: the HTML,
    /// its modules in web/, the wasm packages).
    #[arg(long, default_value = "static")]
    pub dir: PathBuf,
    /// Port (default: $PORT or 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Also expose this CIFAR directory to the page under /data/ (only its
    /// top-level `.bin` files).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Another host name the server answers to (behind a proxy or a tunnel;
    /// repeatable). Only 127.0.0.1, localhost and [::1] otherwise.
    #[arg(long)]
    pub allow_host: Vec<String>,
}
