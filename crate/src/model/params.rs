//! The one walker over a module's float tensors by path
//! (`net.blocks.3.conv1.conv.weight`): [`visit`] reads them, [`map`] replaces
//! them, each with the tensor's gradient when given the gradients. Every
//! pass that works tensor by tensor (the optimizer's step and its hooks,
//! masks, model files, the upload to a GPU, GraSP's shift) goes through it,
//! flat (`[n]`) whatever the tensor's rank, so none needs burn's visitor
//! traits and their const-generic methods of its own.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Calls `f(path, shape, flat value, flat gradient)` for every float tensor
/// of `module` (parameters and running statistics), in the module's order;
/// the gradient is the tensor's in `grads`, if given and there.
pub fn visit<M: Module>(
    module: &M,
    grads: Option<&GradientsParams>,
    f: impl FnMut(&str, &[usize], Tensor<1>, Option<Tensor<1>>),
) {
    let mut walker = Visit {
        path: Vec::new(),
        grads,
        f,
    };
    module.visit(&mut walker);
}

/// Replaces each float tensor for which `f(path, shape, flat value, flat
/// gradient)` returns a new flat value: reshaped back, a fresh leaf, tracked
/// for gradients if the old one was. `None` keeps the tensor. Gradients
/// given are taken out of `grads` as their tensors are reached.
pub fn map<M: Module>(
    module: M,
    grads: Option<&mut GradientsParams>,
    f: impl FnMut(&str, &[usize], Tensor<1>, Option<Tensor<1>>) -> Option<Tensor<1>>,
) -> M {
    let mut walker = Map {
        path: Vec::new(),
        grads,
        f,
    };
    module.map(&mut walker)
}

struct Visit<'a, F> {
    path: Vec<String>,
    grads: Option<&'a GradientsParams>,
    f: F,
}

impl<F: FnMut(&str, &[usize], Tensor<1>, Option<Tensor<1>>)> ModuleVisitor for Visit<'_, F> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let shape = value.dims();
        let grad = self
            .grads
            .and_then(|g| g.get::<D>(param.id))
            .map(|g| g.flatten(0, D - 1));
        (self.f)(&self.path.join("."), &shape, value.flatten(0, D - 1), grad);
    }
}

struct Map<'a, F> {
    path: Vec<String>,
    grads: Option<&'a mut GradientsParams>,
    f: F,
}

impl<F> ModuleMapper for Map<'_, F>
where
    F: FnMut(&str, &[usize], Tensor<1>, Option<Tensor<1>>) -> Option<Tensor<1>>,
{
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.dims();
        let require_grad = tensor.is_require_grad();
        let grad = self
            .grads
            .as_deref_mut()
            .and_then(|g| g.remove::<D>(id))
            .map(|g| g.flatten(0, D - 1));
        let flat = tensor.clone().flatten::<1>(0, D - 1);
        let Some(new) = (self.f)(&self.path.join("."), &shape, flat, grad) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let mut new = new.reshape(shape).detach();
        if require_grad {
            new = new.require_grad();
        }
        Param::from_mapped_value(id, new, mapper)
    }
}
