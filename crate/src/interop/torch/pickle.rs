//! The part of Python's pickle machine that `torch.save` output needs: the
//! opcodes of protocols 2 to 5 that build dicts, lists, tuples, strings and
//! numbers, globals called through REDUCE, and persistent ids (PyTorch's
//! storages). Nothing is executed: a global is a name, and calling one
//! builds a tensor view (`torch._utils._rebuild_tensor_v2`), an empty dict
//! (`collections.OrderedDict`), or an opaque object the reader skips.
//!
//! Memory stays proportional to the bytes read: every value is made from
//! bytes of the pickle, and the memo shares values (`Rc`) instead of
//! copying them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A pickled value. (Numbers, bytes and object names are read only
/// through `Debug`, in the errors that quote a value.)
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// `module.name`, not resolved.
    Global(Rc<str>),
    Storage(Rc<Storage>),
    Tensor(Rc<View>),
    /// An object of a class this reader does not build (named).
    Object(Rc<str>),
    Mark,
}

/// A storage as a persistent id names it.
#[derive(Debug)]
pub struct Storage {
    pub key: String,
    /// `torch.FloatStorage` and friends.
    pub kind: String,
    /// Elements, as the id declares them (legacy files: the storage's size).
    pub numel: u64,
}

/// A tensor: a strided view of a storage.
#[derive(Debug)]
pub struct View {
    pub storage: Rc<Storage>,
    pub offset: u64,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(*b as i128),
        _ => None,
    }
}

fn usizes(v: &Value) -> Option<Vec<usize>> {
    let Value::Tuple(items) = v else { return None };
    items
        .iter()
        .map(|x| int(x).and_then(|i| usize::try_from(i).ok()))
        .collect()
}

/// A storage from its persistent id: `('storage', type, key, location,
/// numel[, view])`.
fn storage(pid: &Value) -> Result<Rc<Storage>, String> {
    let bad = || format!("a persistent id this reader does not know: {pid:?}");
    let Value::Tuple(t) = pid else {
        return Err(bad());
    };
    match (t.first(), t.get(1), t.get(2), t.get(4)) {
        (Some(Value::Str(tag)), Some(Value::Global(kind)), Some(key), Some(numel))
            if &**tag == "storage" =>
        {
            let key = match key {
                Value::Str(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                _ => return Err(bad()),
            };
            let numel = int(numel)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(bad)?;
            Ok(Rc::new(Storage {
                key,
                kind: kind.to_string(),
                numel,
            }))
        }
        _ => Err(bad()),
    }
}

/// `callable(*args)` for the callables a state_dict holds.
fn call(callable: &Value, args: &Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Err(format!("REDUCE of {callable:?}, which is not a global"));
    };
    let Value::Tuple(a) = args else {
        return Ok(Value::Object(name.clone()));
    };
    Ok(match &**name {
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let bad = || format!("{name} with arguments this reader does not know");
            let Some(Value::Storage(storage)) = a.first() else {
                return Err(bad());
            };
            let offset = a
                .get(1)
                .and_then(int)
                .and_then(|o| u64::try_from(o).ok())
                .ok_or_else(bad)?;
            let shape = a.get(2).and_then(usizes).ok_or_else(bad)?;
            let stride = a.get(3).and_then(usizes).ok_or_else(bad)?;
            if shape.len() != stride.len() {
                return Err(bad());
            }
            Value::Tensor(Rc::new(View {
                storage: storage.clone(),
                offset,
                shape,
                stride,
            }))
        }
        // A saved nn.Parameter is its tensor.
        "torch._utils._rebuild_parameter" => a.first().cloned().unwrap_or(Value::None),
        "collections.OrderedDict" => Value::Dict(Rc::default()),
        _ => Value::Object(name.clone()),
    })
}

/// Reads bytes of a pickle.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("the pickle ends early")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the pickle ends early")?;
        let text = std::str::from_utf8(&rest[..n]).map_err(|_| "a global that is not UTF-8")?;
        self.at += n + 1;
        Ok(text)
    }
    fn text(&mut self, n: u64) -> Result<Value, String> {
        let n = usize::try_from(n).map_err(|_| "a string longer than memory")?;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| "a string that is not UTF-8")?;
        Ok(Value::Str(s.into()))
    }
}

/// The machine's stack, with its marks.
#[derive(Default)]
struct Stack(Vec<Value>);

impl Stack {
    fn pop(&mut self) -> Result<Value, String> {
        self.0
            .pop()
            .ok_or_else(|| "the pickle pops an empty stack".into())
    }
    fn top(&mut self) -> Result<&mut Value, String> {
        self.0
            .last_mut()
            .ok_or_else(|| "the pickle uses an empty stack".into())
    }
    /// The values above the last mark, the mark removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self
            .0
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("the pickle closes a mark it never set")?;
        let items = self.0.split_off(at + 1);
        self.0.pop();
        Ok(items)
    }
}

fn set_items(target: &Value, items: Vec<Value>) -> Result<(), String> {
    if items.len() % 2 != 0 {
        return Err("SETITEMS with an odd number of values".into());
    }
    if let Value::Dict(d) = target {
        let mut d = d.borrow_mut();
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            d.push((k, v));
        }
    }
    // Items set on an object this reader does not build are dropped.
    Ok(())
}

fn append(target: &Value, items: Vec<Value>) {
    if let Value::List(l) = target {
        l.borrow_mut().extend(items);
    }
}

/// One pickle's value, where the next byte is, and every storage its
/// persistent ids named.
pub struct Loaded {
    pub value: Value,
    pub end: usize,
    pub storages: Vec<Rc<Storage>>,
}

/// Runs one pickle from `bytes[at..]` to its STOP.
pub fn load(bytes: &[u8], at: usize) -> Result<Loaded, String> {
    let mut storages = Vec::new();
    let mut input = Input { bytes, at };
    let mut stack = Stack::default();
    let mut memo: HashMap<u64, Value> = HashMap::new();
    loop {
        let op = input.u8()?;
        match op {
            0x80 => {
                input.u8()?; // PROTO n
            }
            0x95 => {
                input.le(8)?; // FRAME: a length hint
            }
            b'.' => {
                return Ok(Loaded {
                    value: stack.pop()?,
                    end: input.at,
                    storages,
                });
            }
            b'(' => stack.0.push(Value::Mark),
            b'0' => {
                stack.pop()?;
            }
            b'1' => {
                stack.pop_mark()?;
            }
            b'2' => {
                let top = stack.top()?.clone();
                stack.0.push(top);
            }
            b'N' => stack.0.push(Value::None),
            0x88 => stack.0.push(Value::Bool(true)),
            0x89 => stack.0.push(Value::Bool(false)),
            b'J' => stack.0.push(Value::Int(input.le(4)? as u32 as i32 as i128)),
            b'K' => stack.0.push(Value::Int(input.u8()? as i128)),
            b'M' => stack.0.push(Value::Int(input.le(2)? as i128)),
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    input.u8()? as u64
                } else {
                    input.le(4)?
                };
                if n > 16 {
                    return Err(format!("an integer of {n} bytes"));
                }
                let b = input.take(n as usize)?;
                let mut v: i128 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as i128) << (8 * i);
                }
                // Two's complement: the top byte's sign bit.
                if n > 0 && n < 16 && b[n as usize - 1] & 0x80 != 0 {
                    v -= 1i128 << (8 * n);
                }
                stack.0.push(Value::Int(v));
            }
            b'G' => {
                let b: [u8; 8] = input.take(8)?.try_into().expect("8 bytes");
                stack.0.push(Value::Float(f64::from_be_bytes(b)));
            }
            b'X' => {
                let n = input.le(4)?;
                stack.0.push(input.text(n)?)
            }
            0x8c => {
                let n = input.u8()? as u64;
                stack.0.push(input.text(n)?)
            }
            0x8d => {
                let n = input.le(8)?;
                stack.0.push(input.text(n)?)
            }
            // Byte strings (protocol 2's str of Python 2 included).
            b'T' | b'U' | b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'U' | b'C' => input.u8()? as u64,
                    0x8e => input.le(8)?,
                    _ => input.le(4)?,
                };
                let n = usize::try_from(n).map_err(|_| "bytes longer than memory")?;
                stack.0.push(Value::Bytes(input.take(n)?.into()));
            }
            b')' => stack.0.push(Value::Tuple(Rc::default())),
            b't' => {
                let items = stack.pop_mark()?;
                stack.0.push(Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.0.len() < n {
                    return Err("a tuple of more values than the stack holds".into());
                }
                let items = stack.0.split_off(stack.0.len() - n);
                stack.0.push(Value::Tuple(Rc::new(items)));
            }
            b']' => stack.0.push(Value::List(Rc::default())),
            b'l' => {
                let items = stack.pop_mark()?;
                stack.0.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'}' => stack.0.push(Value::Dict(Rc::default())),
            b'd' => {
                let items = stack.pop_mark()?;
                let dict = Value::Dict(Rc::default());
                set_items(&dict, items)?;
                stack.0.push(dict);
            }
            b'a' => {
                let v = stack.pop()?;
                append(stack.top()?, vec![v]);
            }
            b'e' => {
                let items = stack.pop_mark()?;
                append(stack.top()?, items);
            }
            b's' => {
                let v = stack.pop()?;
                let k = stack.pop()?;
                set_items(stack.top()?, vec![k, v])?;
            }
            b'u' => {
                let items = stack.pop_mark()?;
                set_items(stack.top()?, items)?;
            }
            b'c' => {
                let module = input.line()?;
                let name = input.line()?;
                stack
                    .0
                    .push(Value::Global(format!("{module}.{name}").into()));
            }
            0x93 => {
                let (name, module) = (stack.pop()?, stack.pop()?);
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => {
                        stack.0.push(Value::Global(format!("{m}.{n}").into()))
                    }
                    _ => return Err("STACK_GLOBAL of values that are not strings".into()),
                }
            }
            b'R' => {
                let args = stack.pop()?;
                let callable = stack.pop()?;
                stack.0.push(call(&callable, &args)?);
            }
            0x81 => {
                let args = stack.pop()?;
                let class = stack.pop()?;
                stack.0.push(call(&class, &args)?);
            }
            b'b' => {
                // BUILD: an object's state; a dict's attributes are not kept.
                stack.pop()?;
                stack.top()?;
            }
            b'Q' => {
                let pid = stack.pop()?;
                let made = storage(&pid)?;
                storages.push(made.clone());
                stack.0.push(Value::Storage(made));
            }
            b'q' | b'r' => {
                let key = if op == b'q' {
                    input.u8()? as u64
                } else {
                    input.le(4)?
                };
                let top = stack.top()?.clone();
                memo.insert(key, top);
            }
            0x94 => {
                let top = stack.top()?.clone();
                memo.insert(memo.len() as u64, top);
            }
            b'h' | b'j' => {
                let key = if op == b'h' {
                    input.u8()? as u64
                } else {
                    input.le(4)?
                };
                let v = memo
                    .get(&key)
                    .ok_or_else(|| format!("the pickle reads memo {key}, which it never wrote"))?
                    .clone();
                stack.0.push(v);
            }
            other => {
                return Err(format!(
                    "pickle opcode 0x{other:02x} at byte {}, which torch.save does not write for a state_dict",
                    input.at - 1
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_state_dict_pickle_is_read() {
        // Protocol 2: OrderedDict() with one tensor view of storage "0"
        // (6 floats; shape (2, 3), stride (3, 1)), memoised and read back.
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nq\x03X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        p.extend(b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89N\x74Rq\x04X\x01\x00\x00\x00vh\x04u.");
        let loaded = load(&p, 0).unwrap();
        assert_eq!(loaded.end, p.len());
        assert_eq!(loaded.storages.len(), 1);
        let root = loaded.value;
        let Value::Dict(d) = root else {
            panic!("{root:?}")
        };
        let d = d.borrow();
        assert_eq!(d.len(), 2);
        let Value::Tensor(t) = &d[0].1 else { panic!() };
        assert_eq!(
            (t.shape.clone(), t.stride.clone()),
            (vec![2, 3], vec![3, 1])
        );
        assert_eq!((t.storage.key.as_str(), t.storage.numel), ("0", 6));
        assert_eq!(t.storage.kind, "torch.FloatStorage");
        assert!(
            matches!(&d[1].1, Value::Tensor(u) if Rc::ptr_eq(u, t)),
            "the memo shares"
        );
    }

    #[test]
    fn broken_pickles_are_refused_with_a_reason() {
        for (bytes, says) in [
            (&b"\x80\x02}q\x00"[..], "ends early"),
            (b"\x80\x020", "empty stack"),
            (b"\x80\x02h\x05.", "memo 5"),
            (b"\x80\x02\x82\x01.", "opcode 0x82"),
            (b"\x80\x02u.", "mark"),
        ] {
            let Err(e) = load(bytes, 0) else {
                panic!("{bytes:?} was read")
            };
            assert!(e.contains(says), "{e}");
        }
    }
}
