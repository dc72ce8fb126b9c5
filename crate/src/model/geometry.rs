//! Layer geometry: every parameterised layer of a spec with what it takes to
//! count it (shapes, MACs) — what metrics, latency tables and surgery read.

use serde::Serialize;

use super::spec::*;

/// The geometry of one parameterised layer, enough to count it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerGeometry {
    pub name: String,
    pub op: LayerOp,
    /// Output spatial size (1 for dense layers).
    pub out_hw: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerOp {
    Conv {
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
    },
    BatchNorm {
        channels: usize,
    },
    Linear {
        d_in: usize,
        d_out: usize,
    },
}

fn linear(name: String, d_in: usize, d_out: usize) -> LayerGeometry {
    LayerGeometry {
        name,
        op: LayerOp::Linear { d_in, d_out },
        out_hw: 1,
    }
}

fn conv_bn(
    out: &mut Vec<LayerGeometry>,
    name: String,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    out_hw: usize,
) {
    out.push(LayerGeometry {
        name: name.clone(),
        op: LayerOp::Conv {
            c_in,
            c_out,
            kernel,
            stride,
        },
        out_hw,
    });
    out.push(LayerGeometry {
        name: format!("{name}.bn"),
        op: LayerOp::BatchNorm { channels: c_out },
        out_hw,
    });
}

impl ModelSpec {
    /// Every parameterised layer in forward order.
    pub fn layers(&self) -> Vec<LayerGeometry> {
        let mut out = Vec::new();
        match self {
            ModelSpec::Mlp(m) => {
                let mut d_in = m.inputs;
                for (i, &d_out) in m.hidden.iter().enumerate() {
                    out.push(linear(format!("fc{}", i + 1), d_in, d_out));
                    d_in = d_out;
                }
                out.push(linear("out".into(), d_in, m.classes));
            }
            ModelSpec::Plain(p) => {
                let (mut c_in, mut hw, mut conv) = (p.in_channels, p.image_size, 0);
                for layer in &p.layers {
                    match *layer {
                        PlainLayer::Conv(c_out) => {
                            conv += 1;
                            conv_bn(&mut out, format!("conv{conv}"), c_in, c_out, 3, 1, hw);
                            c_in = c_out;
                        }
                        PlainLayer::Pool => hw /= 2,
                    }
                }
                out.push(linear("fc".into(), c_in, p.classes));
            }
            ModelSpec::Resnet(r) => {
                let (mut hw, k) = (r.image_size, r.kernel);
                conv_bn(&mut out, "stem".into(), r.in_channels, r.stem, k, 1, hw);
                let mut c_in = r.stem;
                for (s, stage) in r.stages.iter().enumerate() {
                    for (position, block) in stage.blocks.iter().enumerate() {
                        let stride = if position == 0 { stage.stride } else { 1 };
                        let name = block_name(s + 1, block.index);
                        let out_hw = hw / stride;
                        conv_bn(
                            &mut out,
                            format!("{name}.conv1"),
                            c_in,
                            block.mid,
                            k,
                            stride,
                            out_hw,
                        );
                        conv_bn(
                            &mut out,
                            format!("{name}.conv2"),
                            block.mid,
                            stage.width,
                            k,
                            1,
                            out_hw,
                        );
                        if r.shortcut == Shortcut::B && position == 0 && r.entry_changes(s) {
                            conv_bn(
                                &mut out,
                                format!("{name}.shortcut"),
                                c_in,
                                stage.width,
                                1,
                                stride,
                                out_hw,
                            );
                        }
                        c_in = stage.width;
                        hw = out_hw;
                    }
                    // A stage whose blocks were all removed still changes nothing.
                }
                out.push(linear("fc".into(), c_in, r.classes));
            }
        }
        out
    }
}
