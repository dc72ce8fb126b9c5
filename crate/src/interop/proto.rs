//! Just enough protobuf to write an ONNX model: varints, length-delimited
//! fields and fixed 32-bit floats. Repeated scalars are written unpacked,
//! which every protobuf reader accepts (onnx.proto is proto2).

#[derive(Default, Clone)]
pub struct Msg(pub Vec<u8>);

impl Msg {
    fn varint_raw(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint_raw(((field as u64) << 3) | wire as u64);
    }

    /// An integer field (int32/int64/enum; negatives as 10-byte varints).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.tag(field, 0);
        self.varint_raw(v as u64);
        self
    }

    pub fn ints(&mut self, field: u32, vs: &[i64]) -> &mut Self {
        for &v in vs {
            self.int(field, v);
        }
        self
    }

    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.tag(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.tag(field, 2);
        self.varint_raw(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn string(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }

    pub fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Msg;

    #[test]
    fn encodes_as_protobuf_does() {
        // The examples of the protobuf encoding guide: field 1 = 150 is
        // 08 96 01; field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        let mut m = Msg::default();
        m.int(1, 150);
        assert_eq!(m.0, [0x08, 0x96, 0x01]);
        let mut m = Msg::default();
        m.string(2, "testing");
        assert_eq!(m.0, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        let mut m = Msg::default();
        m.int(3, -1);
        assert_eq!(m.0.len(), 11, "a negative int64 is a 10-byte varint");
        let mut m = Msg::default();
        m.float(2, 1.0);
        assert_eq!(m.0, [0x15, 0x00, 0x00, 0x80, 0x3f]);
    }
}
