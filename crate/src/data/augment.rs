//! Standard CIFAR augmentation (pad 4, random 32×32 crop, random horizontal
//! flip) and per-channel normalisation, applied per batch on the host.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::base::rng::Rand;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
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
