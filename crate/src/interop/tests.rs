//! Unit tests of the readers' sniffing and the ResNet guess.

use super::names::Naming;
use super::*;

#[test]
fn a_safetensors_header_of_128_bytes_is_not_taken_for_a_pickle() {
    // The length's low byte is 0x80, a pickle's first byte.
    let mut bytes = 128u64.to_le_bytes().to_vec();
    bytes.push(b'{');
    bytes.extend(std::iter::repeat_n(b' ', 127));
    assert_eq!(Format::sniff(&bytes), Some(Format::Safetensors));
    assert_eq!(Format::sniff(&[0x80, 0x02, b'}']), Some(Format::Pytorch));
    assert_eq!(Format::sniff(b"PK\x03\x04rest"), Some(Format::Pytorch));
    assert_eq!(Format::sniff(&[0x80, 0x00]), None);
}

fn named(name: &str, shape: &[usize]) -> Named {
    Named {
        name: name.into(),
        shape: shape.to_vec(),
        values: vec![0.0; shape.iter().product()],
    }
}

#[test]
fn scalars_where_weights_belong_make_no_guess_and_no_panic() {
    let dict = StateDict {
        floats: vec![
            named("conv1.weight", &[16, 3, 3, 3]),
            named("layer1.0.conv1.weight", &[]),
            named("linear.weight", &[]),
        ],
        ..StateDict::default()
    };
    assert_eq!(guess_resnet(&dict), None);
}

#[test]
fn the_classifier_is_found_under_any_prefix() {
    let spec = ModelSpec::named("resnet20", &Default::default()).unwrap();
    let keys = ["_orig_mod.conv1.weight", "_orig_mod.fc.weight"];
    assert_eq!(Naming::detect(&spec, keys.iter().copied()).classifier, "fc");
    let keys = ["backbone.conv_fc.weight", "backbone.linear.weight"];
    assert_eq!(
        Naming::detect(&spec, keys.iter().copied()).classifier,
        "linear"
    );
}
