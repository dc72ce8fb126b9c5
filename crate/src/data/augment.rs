//! Standard CIFAR augmentation (pad 4, random 32×32 crop, random horizontal
//! flip) and per-channel normalisation, applied per batch on the host.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::rng::Rand;

/// What a network expects of its input: pixels scaled to [0, 1], then
/// `(x − mean) / std` per channel. A model records the one it was trained
/// with (`ModelSpec::input`), because a network fed another one loses
/// accuracy silently (the public CIFAR ResNets: 93.39% with theirs, 93.28%
/// with CIFAR-10's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// CIFAR-10's training-set statistics (the usual published values).
    pub const CIFAR10: Normalization = Normalization {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };
    pub const CIFAR100: Normalization = Normalization {
        mean: [0.5071, 0.4865, 0.4409],
        std: [0.2673, 0.2564, 0.2762],
    };
    /// ImageNet's (torchvision's `Normalize` in every ImageNet example) —
    /// what the public pretrained CIFAR ResNets were trained with.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// Raw [0, 1] pixels.
    pub const NONE: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Reads `--normalize`: `cifar10`, `cifar100`, `imagenet`, `none`, one
    /// `MEAN,STD` pair for every channel, or three means then three stds.
    pub fn parse(text: &str) -> Result<Normalization> {
        let named = match text {
            "cifar10" => Some(Self::CIFAR10),
            "cifar100" => Some(Self::CIFAR100),
            "imagenet" => Some(Self::IMAGENET),
            "none" => Some(Self::NONE),
            _ => None,
        };
        if let Some(n) = named {
            return Ok(n);
        }
        let fail = || {
            Error::config(
                "normalize",
                text,
                "name cifar10, cifar100, imagenet or none, or give MEAN,STD (one pair for \
                 every channel) or M1,M2,M3,S1,S2,S3, as fractions of the [0, 1] pixel range, \
                 every std above 0"
                    .to_string(),
            )
        };
        let numbers: Vec<f32> = text
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| fail())?;
        let n = match numbers[..] {
            [m, s] => Normalization {
                mean: [m; 3],
                std: [s; 3],
            },
            [m1, m2, m3, s1, s2, s3] => Normalization {
                mean: [m1, m2, m3],
                std: [s1, s2, s3],
            },
            _ => return Err(fail()),
        };
        if n.is_sane() { Ok(n) } else { Err(fail()) }
    }

    /// Finite, moderate means and positive stds (a model file is checked
    /// with it too: a zero std would turn every input into infinities).
    pub fn is_sane(&self) -> bool {
        self.mean.iter().all(|m| m.is_finite() && m.abs() <= 10.0)
            && self
                .std
                .iter()
                .all(|s| s.is_finite() && *s > 1e-6 && *s <= 10.0)
    }

    /// The name `parse` reads back, or the numbers.
    pub fn describe(&self) -> String {
        for (name, n) in [
            ("cifar10", Self::CIFAR10),
            ("cifar100", Self::CIFAR100),
            ("imagenet", Self::IMAGENET),
            ("none", Self::NONE),
        ] {
            if *self == n {
                return name.into();
            }
        }
        let [m1, m2, m3] = self.mean;
        let [s1, s2, s3] = self.std;
        format!("{m1},{m2},{m3},{s1},{s2},{s3}")
    }
}

/// Writes one `[C, H, W]` byte image into `out` as normalised floats,
/// optionally padded-and-cropped and flipped.
///
/// With `augment`, the image is zero-padded by `pad` pixels (zero *before*
/// normalisation, as torchvision's `RandomCrop(32, padding=4)` does on the
/// PIL image), cropped back at a random offset and flipped with p = 0.5.
pub fn image_into(
    pixels: &[u8],
    shape: [usize; 3],
    norm: &Normalization,
    augment: Option<(&mut Rand, usize)>,
    out: &mut Vec<f32>,
) {
    let [c, h, w] = shape;
    let (dy, dx, flip) = match augment {
        Some((rng, pad)) => {
            let dy = rng.random_range(0..=2 * pad) as isize - pad as isize;
            let dx = rng.random_range(0..=2 * pad) as isize - pad as isize;
            (dy, dx, rng.random::<bool>())
        }
        None => (0, 0, false),
    };
    for ch in 0..c {
        let (mean, std) = (norm.mean[ch.min(2)], norm.std[ch.min(2)]);
        let plane = &pixels[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let sy = y as isize + dy;
                let sx0 = if flip { w - 1 - x } else { x };
                let sx = sx0 as isize + dx;
                let value = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                    plane[sy as usize * w + sx as usize] as f32 / 255.0
                } else {
                    0.0
                };
                out.push((value - mean) / std);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng;

    const ID: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0 / 255.0; 3],
    };

    /// A 3×4×4 image whose pixel value is its position in the plane.
    fn image() -> Vec<u8> {
        (0..3)
            .flat_map(|c| (0..16).map(move |i| (c * 16 + i) as u8))
            .collect()
    }

    #[test]
    fn normalize_reads_names_pairs_and_six_numbers_and_refuses_the_rest() {
        assert_eq!(
            Normalization::parse("imagenet").unwrap(),
            Normalization::IMAGENET
        );
        assert_eq!(Normalization::parse("none").unwrap(), Normalization::NONE);
        let pair = Normalization::parse("0.5,0.25").unwrap();
        assert_eq!((pair.mean, pair.std), ([0.5; 3], [0.25; 3]));
        let six = Normalization::parse("0.1, 0.2,0.3,0.4,0.5,0.6").unwrap();
        assert_eq!((six.mean, six.std), ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6]));
        for bad in [
            "", "cifar", "0.5", "0.5,0", "1,2,3", "0.5,-1", "nan,1", "a,b",
        ] {
            let e = Normalization::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("imagenet") && e.contains("MEAN,STD"),
                "{bad}: {e}"
            );
        }
        for n in [Normalization::CIFAR10, Normalization::IMAGENET, six] {
            assert_eq!(Normalization::parse(&n.describe()).unwrap(), n);
        }
    }

    #[test]
    fn without_augmentation_only_normalises() {
        let mut out = Vec::new();
        let norm = Normalization {
            mean: [0.5; 3],
            std: [0.25; 3],
        };
        image_into(&image(), [3, 4, 4], &norm, None, &mut out);
        assert_eq!(out.len(), 48);
        assert!((out[0] - (0.0 - 0.5) / 0.25).abs() < 1e-6);
        assert!((out[47] - (47.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
    }

    #[test]
    fn crops_and_flips_are_shifts_of_the_image_with_zero_border() {
        let img = image();
        let mut seen_flip = false;
        for seed in 0..40 {
            let mut r = rng::stream(seed, "t", 0);
            let mut out = Vec::new();
            image_into(&img, [3, 4, 4], &ID, Some((&mut r, 1)), &mut out);
            // Each output value is 0 (padding) or a pixel of the same channel.
            for (i, v) in out.iter().enumerate() {
                let c = i / 16;
                let v = v.round() as usize;
                assert!(
                    v == 0 || (c * 16..c * 16 + 16).contains(&v),
                    "value {v} in channel {c}"
                );
            }
            // Flipped images have decreasing values along a row's interior.
            if out[5] > out[6] && out[6] != 0.0 {
                seen_flip = true;
            }
        }
        assert!(seen_flip, "some of 40 draws flip");
    }
}
