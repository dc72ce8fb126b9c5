//! The two containers `torch.save` writes, read from bytes: the ZIP archive
//! (PyTorch 1.6 and later; `ROOT/data.pkl` and one stored entry per storage,
//! `ROOT/data/KEY`) and the legacy stream (before, or
//! `_use_new_zipfile_serialization=False`: four pickles, then every storage
//! back to back). Either way: the main pickle's root value, and where each
//! storage's bytes are.

use std::collections::HashMap;
use std::ops::Range;

use super::dtype::element_width;
use super::pickle::{self, Value};

/// A checkpoint's root value and its storages' byte ranges, by key.
pub struct Opened {
    pub root: Value,
    pub storages: HashMap<String, Range<usize>>,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// One ZIP entry: its name and its bytes' range (stored entries only).
struct Entry {
    name: String,
    method: usize,
    data: Range<usize>,
}

/// The central directory's entries.
fn zip_entries(b: &[u8]) -> Result<Vec<Entry>, String> {
    let bad = |what: &str| format!("a ZIP archive this reader cannot follow: {what}");
    // The end-of-central-directory record: within the last 64 KiB + 22 bytes.
    let lowest = b.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..b.len().saturating_sub(21))
        .rev()
        .find(|&i| b[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| bad("no end record"))?;
    let count = u16_at(b, eocd + 10).ok_or_else(|| bad("a short end record"))?;
    let mut at = u32_at(b, eocd + 16).ok_or_else(|| bad("a short end record"))?;
    if count == 0xFFFF || at == 0xFFFF_FFFF {
        return Err(
            "a ZIP64 archive (over 4 GB or 65,535 entries): read it with the command-line prunelab"
                .into(),
        );
    }
    let mut entries = Vec::with_capacity(count.min(b.len() / 46));
    for _ in 0..count {
        if !b.get(at..).is_some_and(|r| r.starts_with(b"PK\x01\x02")) {
            return Err(bad("a broken central directory"));
        }
        let field = |o| u16_at(b, at + o).ok_or_else(|| bad("a short directory entry"));
        let (method, name_len, extra, comment) = (field(10)?, field(28)?, field(30)?, field(32)?);
        let size = u32_at(b, at + 20).ok_or_else(|| bad("a short directory entry"))?;
        let local = u32_at(b, at + 42).ok_or_else(|| bad("a short directory entry"))?;
        let name = b
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("a name past the end"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        // The bytes start after the local header, whose name and extra
        // field lengths may differ from the directory's.
        if !b.get(local..).is_some_and(|r| r.starts_with(b"PK\x03\x04")) {
            return Err(bad("an entry without its local header"));
        }
        let start = local
            + 30
            + u16_at(b, local + 26).ok_or_else(|| bad("a short local header"))?
            + u16_at(b, local + 28).ok_or_else(|| bad("a short local header"))?;
        let data = start
            ..start
                .checked_add(size)
                .ok_or_else(|| bad("an entry past the end"))?;
        if data.end > b.len() {
            return Err(bad(&format!("entry {name} runs past the end of the file")));
        }
        entries.push(Entry { name, method, data });
        at += 46 + name_len + extra + comment;
    }
    Ok(entries)
}

fn open_zip(b: &[u8]) -> Result<Opened, String> {
    let entries = zip_entries(b)?;
    let pickle = entries
        .iter()
        .find(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        .ok_or("a ZIP archive without data.pkl: not a torch.save file")?;
    let root = &pickle.name[..pickle.name.len() - "data.pkl".len()];
    let stored = |e: &Entry| -> Result<Range<usize>, String> {
        if e.method != 0 {
            return Err(format!(
                "entry {} is compressed, which torch.save never does; the command-line \
                 prunelab reads such archives",
                e.name
            ));
        }
        Ok(e.data.clone())
    };
    if let Some(order) = entries
        .iter()
        .find(|e| e.name == format!("{root}byteorder"))
        && &b[stored(order)?] == b"big"
    {
        return Err(
            "a big-endian checkpoint: load and save it again on a little-endian machine".into(),
        );
    }
    let data_dir = format!("{root}data/");
    let mut storages = HashMap::new();
    for e in &entries {
        if let Some(key) = e.name.strip_prefix(&data_dir) {
            storages.insert(key.to_string(), stored(e)?);
        }
    }
    let main = stored(pickle)?;
    let root = pickle::load(&b[..main.end], main.start)?.value;
    Ok(Opened { root, storages })
}

/// The legacy magic number, `torch.serialization.MAGIC_NUMBER`.
const MAGIC: i128 = 0x1950a86a20f9469cfc6c;

fn open_legacy(b: &[u8]) -> Result<Opened, String> {
    let magic = pickle::load(b, 0)?;
    if !matches!(magic.value, Value::Int(MAGIC)) {
        return Err("a pickle, but not a torch.save checkpoint (no magic number)".into());
    }
    let protocol = pickle::load(b, magic.end)?;
    if !matches!(protocol.value, Value::Int(1001)) {
        return Err(format!("legacy protocol {:?}, not 1001", protocol.value));
    }
    let system = pickle::load(b, protocol.end)?;
    if let Value::Dict(d) = &system.value
        && d.borrow().iter().any(|(k, v)| {
            matches!((k, v), (Value::Str(k), Value::Bool(false)) if &**k == "little_endian")
        })
    {
        return Err("a big-endian checkpoint: load and save it again on a little-endian machine".into());
    }
    let main = pickle::load(b, system.end)?;
    // The storages' element sizes, from the ids the main pickle declared.
    let widths: HashMap<String, Option<usize>> = main
        .storages
        .iter()
        .map(|s| (s.key.clone(), element_width(&s.kind)))
        .collect();
    let keys = pickle::load(b, main.end)?;
    let mut at = keys.end;
    let Value::List(keys) = keys.value else {
        return Err("a legacy checkpoint without its storage list".into());
    };
    let mut storages = HashMap::new();
    for key in keys.borrow().iter() {
        let Value::Str(key) = key else {
            return Err("a storage key that is not a string".into());
        };
        let width = widths
            .get(&**key)
            .copied()
            .flatten()
            .ok_or_else(|| format!("storage {key} of a type this reader does not know"))?;
        let count = b
            .get(at..at + 8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .ok_or_else(|| format!("storage {key} is cut off"))?;
        let start = at + 8;
        let end = count
            .checked_mul(width as u64)
            .and_then(|n| (start as u64).checked_add(n))
            .filter(|&e| e <= b.len() as u64)
            .ok_or_else(|| format!("storage {key} runs past the end of the file"))?
            as usize;
        storages.insert(key.to_string(), start..end);
        at = end;
    }
    Ok(Opened {
        root: main.value,
        storages,
    })
}

/// The checkpoint in `bytes`, either container.
pub fn open(bytes: &[u8]) -> Result<Opened, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        open_zip(bytes)
    } else {
        open_legacy(bytes)
    }
}
