//! Seeded 2-D toy problems, as in TensorFlow Playground. Every generator has one
//! signature — `(count, noise, classes, rng)` → points and labels — and one
//! name in [`GENERATORS`], the table the CLI, configs and the page share.
//! Points lie in about `[-1, 1]²`; `noise` is the standard deviation of the
//! Gaussian jitter added to each coordinate.

use serde::{Deserialize, Serialize};

use super::dataset::{Dataset, Features, Split};
use crate::base::error::{Error, Result};
use crate::base::rng::{self, Rand, normal, uniform};

type Points = (Vec<f32>, Vec<u16>);
type Generator = fn(usize, f32, usize, &mut Rand) -> Points;

/// `(name, generator, supports more than two classes)`.
pub const GENERATORS: &[(&str, Generator, bool)] = &[
    ("spiral", spiral, true),
    ("circles", circles, false),
    ("xor", xor, false),
    ("gaussians", gaussians, true),
    ("moons", moons, false),
    ("tfp-spiral", tfp_spiral, false),
];

/// Which toy problem, how many points and how noisy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToySpec {
    pub name: String,
    pub train: usize,
    pub test: usize,
    pub noise: f32,
    pub classes: usize,
}

impl Default for ToySpec {
    fn default() -> Self {
        ToySpec {
            name: "spiral".into(),
            train: 400,
            test: 200,
            noise: 0.05,
            classes: 2,
        }
    }
}

pub fn names() -> Vec<&'static str> {
    GENERATORS.iter().map(|(n, _, _)| *n).collect()
}

/// Generates the train and test sets of `spec`; the test set is drawn from
/// its own stream, so changing its size does not change the training points.
pub fn generate(spec: &ToySpec, seed: u64) -> Result<Split> {
    let &(_, generator, multiclass) = GENERATORS
        .iter()
        .find(|(n, _, _)| *n == spec.name)
        .ok_or_else(|| {
            Error::config(
                "dataset",
                &spec.name,
                format!("choose one of {}", names().join(", ")),
            )
        })?;
    if spec.classes < 2 || (!multiclass && spec.classes != 2) || spec.classes > 16 {
        return Err(Error::config(
            "classes",
            spec.classes,
            if multiclass {
                "use 2 to 16 classes"
            } else {
                "this problem has exactly 2 classes"
            },
        ));
    }
    if !(0.0..=1.0).contains(&spec.noise) {
        return Err(Error::config(
            "noise",
            spec.noise,
            "use a standard deviation in [0, 1]",
        ));
    }
    if spec.train == 0 || spec.test == 0 {
        return Err(Error::config(
            "points",
            spec.train.min(spec.test),
            "train and test need at least one point",
        ));
    }
    let make = |count, purpose| {
        let (xy, labels) = generator(
            count,
            spec.noise,
            spec.classes,
            &mut rng::stream(seed, purpose, 0),
        );
        Dataset {
            features: Features::Floats(xy),
            labels,
            shape: [2, 1, 1],
            classes: spec.classes,
        }
    };
    Ok(Split::new(
        make(spec.train, "toy-train"),
        make(spec.test, "toy-test"),
        None,
        spec.name.clone(),
    ))
}

fn jitter(rng: &mut Rand, noise: f32) -> f32 {
    noise * normal(rng)
}

/// Interleaved spiral arms, one per class.
fn spiral(n: usize, noise: f32, classes: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let class = i % classes;
        let t = uniform(rng, 0.05, 1.0);
        let angle = 1.75 * t * std::f32::consts::TAU
            + class as f32 * std::f32::consts::TAU / classes as f32;
        xy.push(t * angle.cos() + jitter(rng, noise));
        xy.push(t * angle.sin() + jitter(rng, noise));
        labels.push(class as u16);
    }
    (xy, labels)
}

/// TensorFlow Playground's spiral (`classifySpiralData` in its dataset.ts),
/// scaled from its `[-6, 6]` plane to ours by 1/5: per class `n/2` points
/// evenly along the arm, radius `i/n`, angle `1.75·2π·i/n` (+π for the
/// second arm), each coordinate moved by `U(−1, 1)·noise`. Ours (`spiral`)
/// draws the radius at random from `[0.05, 1]` and jitters with a Gaussian;
/// Playground's evenly spaced, uniformly jittered arms are easier to fit.
/// Two classes only, as in Playground.
fn tfp_spiral(n: usize, noise: f32, _: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    let half = n.div_ceil(2);
    for i in 0..n {
        let (class, k) = (i % 2, i / 2);
        let f = k as f32 / half as f32;
        let t = 1.75 * f * std::f32::consts::TAU + class as f32 * std::f32::consts::PI;
        xy.push(f * t.sin() + noise * uniform(rng, -1.0, 1.0));
        xy.push(f * t.cos() + noise * uniform(rng, -1.0, 1.0));
        labels.push(class as u16);
    }
    (xy, labels)
}

/// A disc (class 0) inside a ring (class 1).
fn circles(n: usize, noise: f32, _: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let class = i % 2;
        let r = if class == 0 {
            uniform(rng, 0.0, 0.45)
        } else {
            uniform(rng, 0.65, 1.0)
        };
        let angle = uniform(rng, 0.0, std::f32::consts::TAU);
        xy.push(r * angle.cos() + jitter(rng, noise));
        xy.push(r * angle.sin() + jitter(rng, noise));
        labels.push(class as u16);
    }
    (xy, labels)
}

/// Class 1 where x·y > 0 (alternating classes, so they are balanced), with a
/// small margin around the axes.
fn xor(n: usize, noise: f32, _: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let class = i % 2;
        let x = uniform(rng, 0.05, 1.0)
            * if uniform(rng, 0.0, 1.0) < 0.5 {
                -1.0
            } else {
                1.0
            };
        let y = uniform(rng, 0.05, 1.0) * x.signum() * if class == 1 { 1.0 } else { -1.0 };
        labels.push(class as u16);
        xy.push(x + jitter(rng, noise));
        xy.push(y + jitter(rng, noise));
    }
    (xy, labels)
}

/// One Gaussian blob per class, centres on a circle of radius 0.55.
fn gaussians(n: usize, noise: f32, classes: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let class = i % classes;
        let angle =
            std::f32::consts::TAU * class as f32 / classes as f32 + std::f32::consts::FRAC_PI_4;
        let spread = 0.18 + noise;
        xy.push(0.55 * angle.cos() + spread * normal(rng));
        xy.push(0.55 * angle.sin() + spread * normal(rng));
        labels.push(class as u16);
    }
    (xy, labels)
}

/// Two interleaving half-moons (scikit-learn's `make_moons`, scaled to [-1, 1]).
fn moons(n: usize, noise: f32, _: usize, rng: &mut Rand) -> Points {
    let (mut xy, mut labels) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
    for i in 0..n {
        let class = i % 2;
        let t = uniform(rng, 0.0, std::f32::consts::PI);
        let (x, y) = if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        // make_moons spans x ∈ [-1, 2], y ∈ [-0.5, 1]: centre and scale.
        xy.push((x - 0.5) / 1.5 + jitter(rng, noise));
        xy.push((y - 0.25) / 1.5 * 1.6 + jitter(rng, noise));
        labels.push(class as u16);
    }
    (xy, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(ds: &Dataset) -> &[f32] {
        match &ds.features {
            Features::Floats(f) => f,
            Features::Bytes(_) => panic!("toy data are floats"),
        }
    }

    #[test]
    fn every_generator_is_seeded_balanced_and_bounded() {
        for name in names() {
            let spec = ToySpec {
                name: name.into(),
                train: 200,
                test: 50,
                ..ToySpec::default()
            };
            let a = generate(&spec, 3).unwrap();
            let b = generate(&spec, 3).unwrap();
            let c = generate(&spec, 4).unwrap();
            assert_eq!(
                floats(&a.train),
                floats(&b.train),
                "{name}: same seed, same points"
            );
            assert_ne!(
                floats(&a.train),
                floats(&c.train),
                "{name}: other seed, other points"
            );
            assert_eq!(a.train.class_counts(), vec![100, 100], "{name}");
            assert_eq!(a.test().len(), 50);
            assert!(
                floats(&a.train).iter().all(|v| v.abs() < 1.6),
                "{name} stays in the plot"
            );
        }
    }

    #[test]
    fn noise_moves_points() {
        let quiet = generate(
            &ToySpec {
                noise: 0.0,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap();
        let noisy = generate(
            &ToySpec {
                noise: 0.2,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap();
        let d: f32 = floats(&quiet.train)
            .iter()
            .zip(floats(&noisy.train))
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(d > 10.0, "noise 0.2 moves 400 points by {d} in total");
    }

    #[test]
    fn tfp_spiral_is_playgrounds_spiral_scaled_by_a_fifth() {
        // Playground, point i of n/2 on an arm: r = 5·i/(n/2), t = 1.75·2π·i/(n/2)
        // (+π for the other arm), (x, y) = (r sin t, r cos t).
        let s = generate(
            &ToySpec {
                name: "tfp-spiral".into(),
                train: 200,
                noise: 0.0,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap();
        let xy = floats(&s.train);
        for (i, class) in [(10usize, 0usize), (37, 1), (99, 1)] {
            let r = 5.0 * i as f64 / 100.0;
            let t = 1.75 * std::f64::consts::TAU * i as f64 / 100.0
                + class as f64 * std::f64::consts::PI;
            let k = 2 * i + class;
            assert_eq!(s.train.labels[k] as usize, class);
            assert!(
                (xy[2 * k] as f64 - r * t.sin() / 5.0).abs() < 1e-5,
                "x of {k}"
            );
            assert!(
                (xy[2 * k + 1] as f64 - r * t.cos() / 5.0).abs() < 1e-5,
                "y of {k}"
            );
        }
    }

    #[test]
    fn circles_separates_by_radius() {
        let s = generate(
            &ToySpec {
                name: "circles".into(),
                noise: 0.0,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap();
        let xy = floats(&s.train);
        for (i, &y) in s.train.labels.iter().enumerate() {
            let r = (xy[2 * i].powi(2) + xy[2 * i + 1].powi(2)).sqrt();
            assert_eq!(y == 1, r > 0.55, "point {i} at radius {r}");
        }
    }

    #[test]
    fn bad_specs_are_explained() {
        let e = generate(
            &ToySpec {
                name: "swirl".into(),
                ..ToySpec::default()
            },
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("spiral"), "{e}");
        let e = generate(
            &ToySpec {
                name: "xor".into(),
                classes: 3,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exactly 2"), "{e}");
        assert!(
            generate(
                &ToySpec {
                    noise: 2.0,
                    ..ToySpec::default()
                },
                1
            )
            .is_err()
        );
        let three = generate(
            &ToySpec {
                name: "gaussians".into(),
                classes: 3,
                ..ToySpec::default()
            },
            1,
        )
        .unwrap();
        assert_eq!(three.train.classes, 3);
    }
}
