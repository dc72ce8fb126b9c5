//! Unit tests of the CIFAR reader.

use super::*;

/// `n` CIFAR-10 records with labels `i % 10` and pixel value `i`.
pub fn records(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push((i % 10) as u8);
        out.extend(std::iter::repeat_n(i as u8, PIXELS));
    }
    out
}

#[test]
fn parses_labels_and_pixels_in_record_order() {
    let ds = parse(&records(12), Path::new("b.bin"), Variant::Cifar10).unwrap();
    assert_eq!(ds.len(), 12);
    assert_eq!(ds.labels[..3], [0, 1, 2]);
    assert_eq!(ds.labels[11], 1);
    let Features::Bytes(px) = &ds.features else {
        panic!("images are bytes")
    };
    assert_eq!(px.len(), 12 * PIXELS);
    assert_eq!(px[5 * PIXELS], 5);
    assert_eq!(px[6 * PIXELS - 1], 5);
}

#[test]
fn truncated_file_names_file_expected_and_found() {
    let mut bytes = records(3);
    bytes.truncate(bytes.len() - 100);
    let err = parse(&bytes, Path::new("/x/data_batch_1.bin"), Variant::Cifar10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/x/data_batch_1.bin"), "{err}");
    assert!(err.contains("truncated"), "{err}");
    assert!(err.contains("multiple of 3073 bytes"), "{err}");
    assert!(
        err.contains("2 whole records and 2973 bytes left over"),
        "{err}"
    );
}

#[test]
fn out_of_range_label_is_reported_with_its_record() {
    let mut bytes = records(4);
    bytes[2 * 3073] = 17;
    let err = parse(&bytes, Path::new("t.bin"), Variant::Cifar10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("record 2"), "{err}");
    assert!(err.contains("0..9"), "{err}");
    assert!(err.contains("found 17"), "{err}");
}

#[test]
fn empty_file_and_wrong_variant_are_explained() {
    let err = parse(&[], Path::new("e.bin"), Variant::Cifar10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty"), "{err}");
    // 3074 bytes = one CIFAR-100 record read as CIFAR-10.
    let err = parse(&vec![0; 3074 * 7], Path::new("c.bin"), Variant::Cifar10)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("CIFAR-100"), "{err}");
}

#[test]
fn cifar100_uses_fine_labels() {
    let mut rec = vec![3u8, 42];
    rec.extend(std::iter::repeat_n(9u8, PIXELS));
    let ds = parse(&rec, Path::new("train.bin"), Variant::Cifar100).unwrap();
    assert_eq!(ds.labels, vec![42]);
    assert_eq!(ds.classes, 100);
}

#[test]
fn missing_directory_and_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dir(&dir.path().join("nope"), Variant::Cifar10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    std::fs::write(dir.path().join("data_batch_1.bin"), records(2)).unwrap();
    let err = load_dir(dir.path(), Variant::Cifar10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("data_batch_2.bin"), "{err}");
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn devices_fifos_and_huge_files_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("data_batch_1.bin");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let err = read(&link, Variant::Cifar10).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let huge = dir.path().join("test_batch.bin");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(MAX_RECORDS * 3073 + 3073).unwrap(); // sparse: no disk used
    let err = read(&huge, Variant::Cifar10).unwrap_err().to_string();
    assert!(err.contains("at most 60000 records"), "{err}");
}

#[test]
fn loads_a_directory_in_the_official_layout() {
    let dir = tempfile::tempdir().unwrap();
    for f in Variant::Cifar10.train_files() {
        std::fs::write(dir.path().join(f), records(20)).unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), records(10)).unwrap();
    let split = load_dir(dir.path(), Variant::Cifar10).unwrap();
    assert_eq!(split.train.len(), 100);
    assert_eq!(split.test().len(), 10);
    assert_eq!(split.norm, Some(Variant::Cifar10.normalization()));
}

#[test]
fn stratified_subset_is_balanced_and_seeded() {
    let ds = parse(&records(200), Path::new("b.bin"), Variant::Cifar10).unwrap();
    let a = ds.stratified_subset(50, 7).unwrap();
    assert_eq!(a.class_counts(), vec![5; 10]);
    let b = ds.stratified_subset(50, 7).unwrap();
    assert_eq!(a.labels, b.labels);
    let Features::Bytes(pa) = &a.features else {
        unreachable!()
    };
    let c = ds.stratified_subset(50, 8).unwrap();
    let Features::Bytes(pc) = &c.features else {
        unreachable!()
    };
    assert_ne!(pa, pc, "another seed picks other images");
    assert!(ds.stratified_subset(300, 1).unwrap().len() == 200);
    let err = ds.stratified_subset(199, 1);
    assert!(err.is_ok(), "199 of 200 fits: classes have 20 each");
}
