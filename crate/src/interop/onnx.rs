//! ONNX export (IR version 7, opset 13: what ONNX Runtime, tract and
//! Netron read): the network as inference runs it — BatchNorm with its
//! running statistics — for dense, physically cut and weight-masked models
//! (their zeros written out).
//!
//! Operators: Conv, BatchNormalization, Relu, Tanh, Sigmoid, Add, MaxPool,
//! GlobalAveragePool, Flatten, Gemm, and for option-A shortcuts Slice (the
//! stride-2 subsample), Pad (the new zero channels) or, once streams were
//! cut, Pad + Gather (each channel's source). Input `input`: `[batch, C, H, W]`
//! (`[batch, features]` for an MLP); output `logits`: `[batch, classes]`.
//! An image model that records its input normalisation takes raw pixels in
//! [0, 1]: a leading Sub and Div apply its mean/std, so a runtime needs no
//! preprocessing but `/ 255` (metadata `prunelab.input` says which input
//! the file expects).

use burn::nn::conv::Conv2d;

use super::proto::Msg;
use crate::base::error::{Error, Result};
use crate::data::augment::Normalization;
use crate::io::pack::Pack;
use crate::model::layers::ConvBn;
use crate::model::masks::WeightMasks;
use crate::model::spec::Activation;
use crate::model::{Model, Net};

pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 7;

const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// Attribute types (onnx.proto's `AttributeType`).
const ATTR_FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

fn attr_int(name: &str, v: i64) -> Msg {
    let mut a = Msg::default();
    a.string(1, name).int(20, ATTR_INT).int(3, v);
    a
}

fn attr_ints(name: &str, vs: &[i64]) -> Msg {
    let mut a = Msg::default();
    a.string(1, name).int(20, ATTR_INTS).ints(8, vs);
    a
}

fn attr_float(name: &str, v: f32) -> Msg {
    let mut a = Msg::default();
    a.string(1, name).int(20, ATTR_FLOAT).float(2, v);
    a
}

/// `name`: float `[dims]`, the first dimension symbolic when `batch`.
fn value_info(name: &str, dims: &[usize], batch: bool) -> Msg {
    let mut shape = Msg::default();
    for (i, &d) in dims.iter().enumerate() {
        let mut dim = Msg::default();
        if i == 0 && batch {
            dim.string(2, "batch");
        } else {
            dim.int(1, d as i64);
        }
        shape.msg(1, &dim);
    }
    let mut tensor = Msg::default();
    tensor.int(1, FLOAT).msg(2, &shape);
    let mut ty = Msg::default();
    ty.msg(1, &tensor);
    let mut info = Msg::default();
    info.string(1, name).msg(2, &ty);
    info
}

struct Graph<'a> {
    pack: &'a Pack,
    nodes: Vec<Msg>,
    initializers: Vec<Msg>,
    next: usize,
}

impl Graph<'_> {
    /// The model tensor at module path `path`, as an initializer named so.
    fn weight(&mut self, path: &str) -> Result<String> {
        let (shape, values) = self.pack.get(path).ok_or_else(|| {
            Error::Execution(format!("ONNX export: the model has no tensor `{path}`"))
        })?;
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut t = Msg::default();
        t.ints(1, &shape.iter().map(|&d| d as i64).collect::<Vec<_>>())
            .int(2, FLOAT)
            .string(8, path)
            .bytes(9, &raw);
        self.initializers.push(t);
        Ok(path.to_string())
    }

    /// A float constant `[dims]` named after `name`.
    fn floats(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.constant(name, &dims, FLOAT, &raw)
    }

    /// A constant initializer of `dtype` and shape `dims` holding `raw`
    /// (little-endian), named after `name` and made unique.
    fn constant(&mut self, name: &str, dims: &[i64], dtype: i64, raw: &[u8]) -> String {
        let name = format!("{name}_{}", self.next);
        self.next += 1;
        let mut t = Msg::default();
        t.ints(1, dims).int(2, dtype).string(8, &name).bytes(9, raw);
        self.initializers.push(t);
        name
    }

    /// `(input − mean) / std` per channel, for a model recording its
    /// normalisation; the input itself otherwise.
    fn normalised_input(&mut self, input: Option<Normalization>, channels: usize) -> String {
        let Some(n) = input else {
            return "input".into();
        };
        let per_channel = |v: [f32; 3]| (0..channels).map(|c| v[c.min(2)]).collect::<Vec<_>>();
        let mean = self.floats("mean", &[1, channels, 1, 1], &per_channel(n.mean));
        let std = self.floats("std", &[1, channels, 1, 1], &per_channel(n.std));
        let centred = self.node("Sub", &["input", &mean], &[]);
        self.node("Div", &[&centred, &std], &[])
    }

    fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, &[values.len() as i64], INT64, &raw)
    }

    /// Adds `op(inputs)` and returns its output's name.
    fn node(&mut self, op: &str, inputs: &[&str], attributes: &[Msg]) -> String {
        let output = format!("{}_{}", op.to_lowercase(), self.next);
        self.next += 1;
        self.node_to(op, inputs, attributes, &output);
        output
    }

    fn node_to(&mut self, op: &str, inputs: &[&str], attributes: &[Msg], output: &str) {
        let mut n = Msg::default();
        for i in inputs {
            n.string(1, i);
        }
        n.string(2, output).string(3, output).string(4, op);
        for a in attributes {
            n.msg(5, a);
        }
        self.nodes.push(n);
    }

    fn conv(&mut self, path: &str, conv: &Conv2d, x: &str) -> Result<String> {
        let pads = crate::model::conv::pads(conv).ok_or_else(|| {
            Error::Execution("ONNX export: `same` padding is not used by prunelab's models".into())
        })?;
        let w = self.weight(&format!("{path}.weight"))?;
        let mut inputs = vec![x.to_string(), w];
        if conv.bias.is_some() {
            inputs.push(self.weight(&format!("{path}.bias"))?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let ints = |v: [usize; 2]| [v[0] as i64, v[1] as i64];
        Ok(self.node(
            "Conv",
            &inputs,
            &[
                attr_ints("kernel_shape", &ints(conv.kernel_size)),
                attr_ints("strides", &ints(conv.stride)),
                attr_ints("dilations", &ints(conv.dilation)),
                attr_ints("pads", &pads.map(|p| p as i64)),
                attr_int("group", conv.groups as i64),
            ],
        ))
    }

    /// Conv then BatchNorm (inference: running statistics).
    fn conv_bn(&mut self, path: &str, unit: &ConvBn, x: &str) -> Result<String> {
        let z = self.conv(&format!("{path}.conv"), &unit.conv, x)?;
        let p = |t: &str| format!("{path}.bn.{t}");
        let inputs = [
            z,
            self.weight(&p("gamma"))?,
            self.weight(&p("beta"))?,
            self.weight(&p("running_mean"))?,
            self.weight(&p("running_var"))?,
        ];
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.node(
            "BatchNormalization",
            &inputs,
            &[attr_float("epsilon", unit.bn.epsilon as f32)],
        ))
    }

    /// `x · W + b` with burn's `[in, out]` weight (Gemm without transposes).
    fn linear(&mut self, path: &str, x: &str, out: Option<&str>) -> Result<String> {
        let w = self.weight(&format!("{path}.weight"))?;
        let b = self.weight(&format!("{path}.bias"))?;
        match out {
            Some(name) => {
                self.node_to("Gemm", &[x, &w, &b], &[], name);
                Ok(name.to_string())
            }
            None => Ok(self.node("Gemm", &[x, &w, &b], &[])),
        }
    }
}

/// `model` (weight masks applied) as an ONNX file.
pub async fn write(
    model: &Model,
    masks: Option<&WeightMasks>,
    notes: serde_json::Value,
) -> Result<Vec<u8>> {
    let pack = super::state_dict::tensors(model, masks).await?;
    let mut g = Graph {
        pack: &pack,
        nodes: Vec::new(),
        initializers: Vec::new(),
        next: 0,
    };
    let [c, h, w] = model.spec.input_shape();
    let classes = model.spec.classes();
    let input_dims: Vec<usize> = match &model.net {
        Net::Mlp(_) => vec![1, c * h * w],
        _ => vec![1, c, h, w],
    };
    let output = "logits";
    match &model.net {
        Net::Mlp(m) => {
            let mut x = "input".to_string();
            for i in 0..m.hidden.len() {
                let z = g.linear(&format!("net.Mlp.hidden.{i}"), &x, None)?;
                let op = match m.activation {
                    Activation::Relu => "Relu",
                    Activation::Tanh => "Tanh",
                    Activation::Sigmoid => "Sigmoid",
                };
                x = g.node(op, &[&z], &[]);
            }
            g.linear("net.Mlp.out", &x, Some(output))?;
        }
        Net::Plain(p) => {
            let mut x = g.normalised_input(model.spec.input(), c);
            for (i, (unit, &pool)) in p.convs.iter().zip(&p.pool_after).enumerate() {
                let z = g.conv_bn(&format!("net.Plain.convs.{i}"), unit, &x)?;
                x = g.node("Relu", &[&z], &[]);
                if pool {
                    x = g.node(
                        "MaxPool",
                        &[&x],
                        &[
                            attr_ints("kernel_shape", &[2, 2]),
                            attr_ints("strides", &[2, 2]),
                        ],
                    );
                }
            }
            let pooled = g.node("GlobalAveragePool", &[&x], &[]);
            let flat = g.node("Flatten", &[&pooled], &[attr_int("axis", 1)]);
            g.linear("net.Plain.fc", &flat, Some(output))?;
        }
        Net::Resnet(r) => {
            let input = g.normalised_input(model.spec.input(), c);
            let stem = g.conv_bn("net.Resnet.stem", &r.stem, &input)?;
            let mut x = g.node("Relu", &[&stem], &[]);
            for (k, block) in r.blocks.iter().enumerate() {
                let base = format!("net.Resnet.blocks.{k}");
                let z1 = g.conv_bn(&format!("{base}.conv1"), &block.conv1, &x)?;
                let a1 = g.node("Relu", &[&z1], &[]);
                let z2 = g.conv_bn(&format!("{base}.conv2"), &block.conv2, &a1)?;
                let shortcut = match &block.projection {
                    Some(p) => g.conv_bn(&format!("{base}.projection"), p, &x)?,
                    None => {
                        let mut s = x.clone();
                        if block.stride > 1 {
                            let starts = g.int64s("starts", &[0, 0]);
                            let ends = g.int64s("ends", &[i64::MAX, i64::MAX]);
                            let axes = g.int64s("axes", &[2, 3]);
                            let steps =
                                g.int64s("steps", &[block.stride as i64, block.stride as i64]);
                            s = g.node("Slice", &[&s, &starts, &ends, &axes, &steps], &[]);
                        }
                        let [before, after] = block.zero_pad;
                        if let Some(source) = &block.source {
                            // One zero channel after the input, then each
                            // output channel takes its source (the input's
                            // channel count stands for the zero).
                            let pads = g.int64s("pads", &[0, 0, 0, 0, 0, 1, 0, 0]);
                            let padded = g.node("Pad", &[&s, &pads], &[]);
                            let index: Vec<i64> = source.iter().map(|&i| i as i64).collect();
                            let index = g.int64s("source", &index);
                            s = g.node("Gather", &[&padded, &index], &[attr_int("axis", 1)]);
                        } else if before + after > 0 {
                            let pads =
                                g.int64s("pads", &[0, before as i64, 0, 0, 0, after as i64, 0, 0]);
                            s = g.node("Pad", &[&s, &pads], &[]);
                        }
                        s
                    }
                };
                let sum = g.node("Add", &[&z2, &shortcut], &[]);
                x = g.node("Relu", &[&sum], &[]);
            }
            let pooled = g.node("GlobalAveragePool", &[&x], &[]);
            let flat = g.node("Flatten", &[&pooled], &[attr_int("axis", 1)]);
            g.linear("net.Resnet.fc", &flat, Some(output))?;
        }
    }

    let mut graph = Msg::default();
    for n in &g.nodes {
        graph.msg(1, n);
    }
    graph.string(2, &model.spec.name());
    for t in &g.initializers {
        graph.msg(5, t);
    }
    graph.msg(11, &value_info("input", &input_dims, true));
    graph.msg(12, &value_info(output, &[1, classes], true));

    let mut opset = Msg::default();
    opset.string(1, "").int(2, OPSET);
    let size = crate::metrics::bytes::size(&model.spec, masks);
    let mut onnx = Msg::default();
    onnx.int(1, IR_VERSION)
        .string(2, "prunelab")
        .string(3, env!("CARGO_PKG_VERSION"))
        .msg(7, &graph)
        .msg(8, &opset);
    for (key, value) in [
        (
            "prunelab.spec",
            serde_json::to_string(&model.spec).expect("plain data"),
        ),
        ("prunelab.notes", notes.to_string()),
        ("prunelab.input", input_note(&model.spec)),
        ("prunelab.nonzero_params", size.nonzero_params.to_string()),
        ("prunelab.sparse_bytes", size.bytes.to_string()),
    ] {
        let mut entry = Msg::default();
        entry.string(1, key).string(2, &value);
        onnx.msg(14, &entry);
    }
    Ok(onnx.0)
}

/// What the file's `input` expects, in words (metadata `prunelab.input`).
fn input_note(spec: &crate::model::ModelSpec) -> String {
    match (spec, spec.input()) {
        (crate::model::ModelSpec::Mlp(_), _) => "features as the training data had them".into(),
        (_, Some(n)) => format!(
            "raw pixels in [0, 1] (bytes / 255); the graph normalises them with mean {:?}, std {:?} ({})",
            n.mean,
            n.std,
            n.describe()
        ),
        (_, None) => "pixels in [0, 1] already normalised with the training data's \
                      per-channel mean/std (the model records no normalisation)"
            .into(),
    }
}
