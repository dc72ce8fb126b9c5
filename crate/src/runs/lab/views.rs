//! What the page draws: the network with what pruning removed or S1's gates,
//! the decision boundary, one unit's response map, and each layer's width.

use burn::module::Module;
use serde::Serialize;

use super::session::{Lab, LabReport};
use crate::base::error::{Error, Result};
use crate::base::events::Event;
use crate::base::host;
use crate::model::Ctx;

/// One layer's unit maps: `maps[u]` is unit `u`'s output over a
/// `resolution²` grid (row-major, as `report::boundary`), `None` if pruned.
#[derive(Debug, Clone, Serialize)]
pub struct UnitMaps {
    pub layer: String,
    pub resolution: usize,
    pub maps: Vec<Option<Vec<f32>>>,
}

/// One layer of a fully connected network, for drawing.
#[derive(Debug, Clone, Serialize)]
pub struct LayerView {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    /// `|w|`, `inputs × outputs`, row-major by input.
    pub magnitude: Vec<f32>,
    /// Weight kept (false: masked by weight-level pruning).
    pub weight_alive: Option<Vec<bool>>,
    /// Output unit kept (false: removed by structured pruning or a closed gate).
    pub unit_alive: Vec<bool>,
    /// S1's soft gate values on the outputs, while a gated pass runs.
    pub gates: Option<Vec<f32>>,
    /// The group its output units belong to (`stage1.stream` for resmlp's
    /// stem and `conv2`s): output `u` goes with output `u` of every layer
    /// of that group and with input `u` of every layer that `reads` it.
    pub group: Option<String>,
    /// The group its inputs are (none for the first layer).
    pub reads: Option<String>,
}

impl Lab {
    /// One frame of the toy lab: `steps` of training, then what the page
    /// draws ([`Lab::views`]). On WebGPU, a plain run's steps, the epochs
    /// they close and the views are read back together, once: a GPU stalls
    /// on each read. (S1's pass still reads its gates at each epoch's end.)
    pub async fn frame(
        &mut self,
        steps: usize,
        resolution: usize,
        extent: f32,
        unit_resolution: usize,
        selected: Option<(&str, usize)>,
    ) -> Result<(Option<LabReport>, FrameViews)> {
        let mut report = match steps {
            0 => None,
            _ => Some(self.train_queued(steps).await?),
        };
        let mut reads = host::Reads::default();
        let training = self.trainer.queue_flush(&mut reads);
        let views = self
            .queue_views(&mut reads, resolution, extent, unit_resolution, selected)
            .await?;
        let values = reads.read().await?;
        let mut events = Vec::new();
        self.trainer
            .replay(training, &values, &mut |e: Event| events.push(e))?;
        if let Some(r) = report.as_mut() {
            r.events.extend(events);
        }
        Ok((report, views.finish(&values)?))
    }

    /// The layers of a fully connected model (MLP, or resmlp's 1×1 convs)
    /// with what pruning removed, for the network drawing. Structured views
    /// draw the dense architecture with removed units greyed out.
    pub async fn network(&self) -> Result<Vec<LayerView>> {
        let mut reads = host::Reads::default();
        let pending = self.queue_network(&mut reads).await?;
        let values = reads.read().await?;
        Ok(pending.into_iter().map(|p| p.finish(&values)).collect())
    }

    /// `network`, its weights queued on `reads` (S1's gate values are read here).
    async fn queue_network(&self, reads: &mut host::Reads) -> Result<Vec<PendingLayer>> {
        let (model, plan, masks, gates) = if let Some(run) = &self.gated {
            let gated = &run.trainer.model.gated;
            let state =
                crate::prune::polarization::gate_state(gated, &self.split, 256, 256).await?;
            let gates: Vec<(String, Vec<f32>)> = gated
                .gates
                .unit_names
                .iter()
                .cloned()
                .zip(state.units)
                .collect();
            (
                run.trainer.model.gated.model.clone(),
                None,
                None,
                Some(gates),
            )
        } else {
            match (&self.view, &self.dense) {
                (Some(v), Some(d)) => (d.clone(), v.plan.clone(), v.masks.clone(), None),
                _ => (self.trainer.model.clone(), None, None, None),
            }
        };
        let groups = model.spec.groups(true);
        let group_of = |layer: &str, producer: bool| {
            groups
                .iter()
                .find(|g| {
                    let side = if producer { &g.producers } else { &g.consumers };
                    side.iter().any(|l| l == layer)
                })
                .map(|g| g.name.clone())
        };
        let mut out = Vec::new();
        for w in model.prunable_weights() {
            let shape = w.param.shape();
            let group = group_of(&w.layer, true);
            let group_read = group_of(&w.layer, false);
            // Conv weights are [out, in, 1, 1] here; linear weights [in, out].
            let index = reads.add(w.param.flat().abs());
            let (inputs, outputs, conv) = match shape.len() {
                4 => (shape[1] * shape[2] * shape[3], shape[0], true),
                _ => (shape[0], shape[1], false),
            };
            let kept = group.as_ref().and_then(|g| plan.as_ref()?.keep.get(g));
            let unit_alive = match kept {
                Some(kept) => (0..outputs).map(|u| kept.contains(&u)).collect(),
                None => vec![true; outputs],
            };
            let weight_alive = masks
                .as_ref()
                .and_then(|m| m.layers.iter().find(|l| l.layer == w.layer))
                .map(|l| {
                    if shape.len() == 4 {
                        let (o, i) = (shape[0], inputs);
                        (0..i * o).map(|k| l.keep[(k % o) * i + k / o]).collect()
                    } else {
                        l.keep.clone()
                    }
                });
            let gate_values = gates
                .as_ref()
                .and_then(|g| g.iter().find(|(n, _)| *n == w.layer))
                .map(|(_, v)| v.clone());
            out.push(PendingLayer {
                index,
                conv,
                view: LayerView {
                    unit_alive: match &gate_values {
                        Some(g) => g.iter().map(|&v| v > 0.5).collect(),
                        None => unit_alive,
                    },
                    name: w.layer,
                    inputs,
                    outputs,
                    magnitude: Vec::new(),
                    weight_alive,
                    gates: gate_values,
                    reads: group_read,
                    group,
                },
            });
        }
        Ok(out)
    }

    /// The decision boundary of the shown model.
    pub async fn boundary(&self, resolution: usize, extent: f32) -> Result<Vec<f32>> {
        let model = self.shown().valid();
        crate::report::boundary::grid_probabilities(&model, resolution, extent, &self.device.device)
            .await
    }

    /// What one frame of the toy lab draws — the boundary (or the selected
    /// unit's map at full resolution), every hidden unit's map, the network
    /// — read back in one transaction.
    pub async fn views(
        &self,
        resolution: usize,
        extent: f32,
        unit_resolution: usize,
        selected: Option<(&str, usize)>,
    ) -> Result<FrameViews> {
        let mut reads = host::Reads::default();
        let queued = self
            .queue_views(&mut reads, resolution, extent, unit_resolution, selected)
            .await?;
        queued.finish(&reads.read().await?)
    }

    /// `views`, queued on `reads` (a caller may read more with them).
    pub async fn queue_views(
        &self,
        reads: &mut host::Reads,
        resolution: usize,
        extent: f32,
        unit_resolution: usize,
        selected: Option<(&str, usize)>,
    ) -> Result<QueuedViews> {
        // The plot: the class probabilities, or the selected unit's layer at full resolution.
        let (probs, selected_maps) = match selected {
            None => (
                Some(reads.add(crate::report::boundary::grid_softmax(
                    &self.shown().valid(),
                    resolution,
                    extent,
                    &self.device.device,
                ))),
                Vec::new(),
            ),
            Some((layer, _)) => (
                None,
                self.queue_unit_maps(reads, resolution, extent, Some(layer)),
            ),
        };
        let maps = self.queue_unit_maps(reads, unit_resolution, extent, None);
        let network = self.queue_network(reads).await?;
        Ok(QueuedViews {
            probs,
            selected: selected.map(|(layer, unit)| (layer.to_string(), unit)),
            selected_maps,
            maps,
            network,
        })
    }

    /// Every hidden unit's output (after BN, before the activation) over
    /// the grid, from one forward pass: what each neuron has learned to
    /// detect, as the network view draws it. Units are numbered as in the
    /// dense network; a unit that structured pruning removed has no map.
    pub async fn unit_maps(&self, resolution: usize, extent: f32) -> Result<Vec<UnitMaps>> {
        let mut reads = host::Reads::default();
        let pending = self.queue_unit_maps(&mut reads, resolution, extent, None);
        let values = reads.read().await?;
        Ok(pending.into_iter().map(|p| p.finish(&values)).collect())
    }

    /// `unit_maps` (of layer `only`, if given), queued on `reads`.
    fn queue_unit_maps(
        &self,
        reads: &mut host::Reads,
        resolution: usize,
        extent: f32,
        only: Option<&str>,
    ) -> Vec<PendingMaps> {
        let model = self.shown().valid();
        let n = resolution * resolution;
        let grid = crate::report::boundary::grid_points(resolution, extent);
        let x = burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(grid, [n, 2, 1, 1]),
            &self.device.device,
        );
        let mut ctx = Ctx::capturing();
        let _ = model.forward_ctx(x, &mut ctx);
        // Which dense unit each kept unit is, where a plan compacted a layer.
        let plan = self
            .gated
            .is_none()
            .then(|| self.view.as_ref()?.plan.as_ref())
            .flatten();
        let groups = model.spec.groups(true);
        let mut out = Vec::new();
        for (layer, map) in ctx.captured {
            if only.is_some_and(|o| o != layer) {
                continue;
            }
            let [_, c, _, _] = map.dims();
            // [n, c, 1, 1] → unit-major [c, n].
            let index = reads.add(map.flatten::<2>(1, 3).transpose());
            let kept = plan.and_then(|p| {
                let group = groups.iter().find(|g| g.producers.contains(&layer))?;
                p.keep.get(&group.name)
            });
            let units: Vec<Option<usize>> = match kept {
                Some(kept) => (0..self.dense_width(&layer).unwrap_or(c))
                    .map(|u| kept.iter().position(|&k| k == u))
                    .collect(),
                None => (0..c).map(Some).collect(),
            };
            out.push(PendingMaps {
                layer,
                resolution,
                index,
                units,
            });
        }
        out
    }

    /// The output of unit `unit` (dense numbering) of layer `layer` over the grid.
    pub async fn unit_map(
        &self,
        layer: &str,
        unit: usize,
        resolution: usize,
        extent: f32,
    ) -> Result<Vec<f32>> {
        pick(self.unit_maps(resolution, extent).await?, layer, unit)
    }

    /// The dense width of `layer` (its output units before pruning).
    fn dense_width(&self, layer: &str) -> Option<usize> {
        let dense = self.dense.as_ref()?;
        dense
            .prunable_weights()
            .into_iter()
            .find(|w| w.layer == layer)
            .map(|w| w.param.shape()[if w.param.shape().len() == 4 { 0 } else { 1 }])
    }

    /// The dense model's coupled groups (the residual streams included):
    /// what the page highlights when a unit is pointed at.
    pub fn groups(&self) -> Vec<crate::model::groups::UnitGroup> {
        self.dense
            .as_ref()
            .unwrap_or(&self.trainer.model)
            .spec
            .groups(true)
    }

    /// `(group, dense units, shown units)` for every prunable group.
    pub fn widths(&self) -> Vec<(String, usize, usize)> {
        let dense = self
            .dense
            .clone()
            .unwrap_or_else(|| self.trainer.model.clone());
        let shown = self.shown();
        let now: std::collections::HashMap<String, usize> = shown
            .spec
            .groups(true)
            .into_iter()
            .map(|g| (g.name, g.size))
            .collect();
        let mut out: Vec<(String, usize, usize)> = dense
            .spec
            .groups(true)
            .into_iter()
            .map(|g| {
                let n = now.get(&g.name).copied().unwrap_or(0);
                (g.name, g.size, n)
            })
            .collect();
        if let Some(plan) = self.view.as_ref().and_then(|v| v.plan.as_ref()) {
            for (name, _, n) in out.iter_mut() {
                if let Some(kept) = plan.keep.get(name) {
                    *n = kept.len();
                }
            }
        }
        out
    }
}

/// Unit `unit` (dense numbering) of layer `layer` among `maps`.
fn pick(maps: Vec<UnitMaps>, layer: &str, unit: usize) -> Result<Vec<f32>> {
    let layer_maps = maps
        .into_iter()
        .find(|m| m.layer == layer)
        .ok_or_else(|| Error::config("layer", layer, "not a prunable layer of this model"))?;
    let units = layer_maps.maps.len();
    match layer_maps.maps.into_iter().nth(unit) {
        Some(Some(map)) => Ok(map),
        Some(None) => Err(Error::config(
            "unit",
            unit,
            format!("unit {unit} of {layer} was pruned"),
        )),
        None => Err(Error::config(
            "unit",
            unit,
            format!("layer {layer} has {units} units"),
        )),
    }
}

/// One frame's views (see [`Lab::views`]).
#[derive(Debug, Clone, Serialize)]
pub struct FrameViews {
    pub boundary: Vec<f32>,
    pub maps: Vec<UnitMaps>,
    pub network: Vec<LayerView>,
}

/// A frame's views, waiting for their read ([`Lab::queue_views`]).
pub struct QueuedViews {
    probs: Option<usize>,
    selected: Option<(String, usize)>,
    selected_maps: Vec<PendingMaps>,
    maps: Vec<PendingMaps>,
    network: Vec<PendingLayer>,
}

impl QueuedViews {
    pub fn finish(self, values: &[Vec<f32>]) -> Result<FrameViews> {
        let boundary = match (self.probs, self.selected) {
            (Some(index), _) => values[index].clone(),
            (None, Some((layer, unit))) => pick(
                self.selected_maps
                    .into_iter()
                    .map(|p| p.finish(values))
                    .collect(),
                &layer,
                unit,
            )?,
            (None, None) => unreachable!("probabilities are queued when no unit is selected"),
        };
        Ok(FrameViews {
            boundary,
            maps: self.maps.into_iter().map(|p| p.finish(values)).collect(),
            network: self.network.into_iter().map(|p| p.finish(values)).collect(),
        })
    }
}

/// A layer view waiting for its weights' magnitudes.
struct PendingLayer {
    view: LayerView,
    index: usize,
    /// `[out, in]` values, laid out `[in, out]` as a linear layer's are.
    conv: bool,
}

impl PendingLayer {
    fn finish(mut self, values: &[Vec<f32>]) -> LayerView {
        let v = &values[self.index];
        self.view.magnitude = if self.conv {
            let (i, o) = (self.view.inputs, self.view.outputs);
            let mut t = vec![0.0; i * o];
            for oo in 0..o {
                for ii in 0..i {
                    t[ii * o + oo] = v[oo * i + ii];
                }
            }
            t
        } else {
            v.clone()
        };
        self.view
    }
}

/// A layer's unit maps waiting for their values.
struct PendingMaps {
    layer: String,
    resolution: usize,
    index: usize,
    /// For each dense unit, its index in the (possibly compacted) layer.
    units: Vec<Option<usize>>,
}

impl PendingMaps {
    fn finish(self, values: &[Vec<f32>]) -> UnitMaps {
        let n = self.resolution * self.resolution;
        let v = &values[self.index];
        UnitMaps {
            maps: self
                .units
                .into_iter()
                .map(|k| k.map(|k| v[k * n..(k + 1) * n].to_vec()))
                .collect(),
            layer: self.layer,
            resolution: self.resolution,
        }
    }
}
