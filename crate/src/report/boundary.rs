//! The decision boundary of a 2-D classifier, as class probabilities on a grid.

use burn::tensor::{Device, Tensor, TensorData};

use crate::base::error::Error;
use crate::base::host;
use crate::model::Model;

/// Softmax probabilities of `model` over a square grid of 2-D points.
pub async fn grid_probabilities(
    model: &Model,
    resolution: usize,
    extent: f32,
    device: &Device,
) -> Result<Vec<f32>, Error> {
    host::floats(grid_softmax(model, resolution, extent, device)).await
}

/// [`grid_probabilities`] left on the device, `[resolution², classes]`.
pub fn grid_softmax(model: &Model, resolution: usize, extent: f32, device: &Device) -> Tensor<2> {
    let n = resolution * resolution;
    let x = Tensor::<4>::from_data(
        TensorData::new(grid_points(resolution, extent), [n, 2, 1, 1]),
        device,
    );
    burn::tensor::activation::softmax(model.forward(x), 1)
}

/// Cell centres of a `resolution × resolution` grid over `[-extent, extent]²`,
/// row-major from the top-left, as `x0, y0, x1, y1, …`.
pub fn grid_points(resolution: usize, extent: f32) -> Vec<f32> {
    let mut xy = Vec::with_capacity(2 * resolution * resolution);
    let t = |i: usize| -extent + 2.0 * extent * (i as f32 + 0.5) / resolution as f32;
    for row in 0..resolution {
        for col in 0..resolution {
            xy.push(t(col));
            xy.push(-t(row));
        }
    }
    xy
}
