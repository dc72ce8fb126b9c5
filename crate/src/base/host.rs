//! Reading tensors back to the host. The browser forbids synchronous reads, so
//! the engine only ever reads through these async helpers; native front doors
//! drive them with [`block_on`].

use burn::tensor::{Int, Tensor};

use crate::base::error::{Error, Result};

/// A boxed engine future (async trait methods, recursion in async code).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

fn readback_failed(e: impl std::fmt::Debug) -> Error {
    Error::Execution(format!(
        "reading a result back from the device failed: {e:?}"
    ))
}

/// All values of a float tensor, row-major, as `f32`.
pub async fn floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    let data = tensor.into_data_async().await.map_err(readback_failed)?;
    data.try_into_vec_as::<f32>().map_err(readback_failed)
}

/// Tensors to read back together, in one transaction: a GPU drains its
/// queue once for all of them instead of once per tensor.
#[derive(Default)]
pub struct Reads {
    tensors: Vec<Tensor<1>>,
}

impl Reads {
    /// Queues `tensor` (flattened); its values are `read()[index]`.
    pub fn add<const D: usize>(&mut self, tensor: Tensor<D>) -> usize {
        let n = tensor.shape().num_elements();
        // One transaction holds tensors of one backend: autodiff's inner one.
        self.tensors.push(tensor.without_autodiff().reshape([n]));
        self.tensors.len() - 1
    }

    /// The queued tensors' values, in the order they were added.
    pub async fn read(self) -> Result<Vec<Vec<f32>>> {
        if self.tensors.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = burn::tensor::Transaction::default();
        for t in self.tensors {
            transaction = transaction.register(t);
        }
        let data = transaction.execute_async().await.map_err(readback_failed)?;
        data.into_iter()
            .map(|d| d.try_into_vec_as::<f32>().map_err(readback_failed))
            .collect()
    }
}

/// All values of an integer tensor as `i64`.
pub async fn ints<const D: usize>(tensor: Tensor<D, Int>) -> Result<Vec<i64>> {
    let data = tensor.into_data_async().await.map_err(readback_failed)?;
    data.try_into_vec_as::<i64>().map_err(readback_failed)
}

/// The single value of a one-element tensor.
pub async fn scalar<const D: usize>(tensor: Tensor<D>) -> Result<f32> {
    let values = floats(tensor).await?;
    values
        .first()
        .copied()
        .ok_or_else(|| Error::Execution("expected one value, the tensor was empty".into()))
}

/// Runs an engine future to completion on native targets.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}
