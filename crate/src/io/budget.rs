//! How many bytes of tensors a model file may make prunelab allocate,
//! decided from the file's real size before any tensor is read: what its
//! entries claim to store must fit in the file (a deflated storage, or one
//! storage read under many names, claims more), and the floats they become
//! must fit in the memory the machine can spare. One check for every reader
//! — `.plm` and checkpoints (`pack`, whose entries are also disjoint), PyTorch
//! `.pt`, safetensors — on the command line and in the page.

use crate::base::memory;

/// Refuses a file of `file_len` bytes whose tensors claim `stored` bytes in
/// it and would take `allocated` bytes once read: the problem, in words
/// (the reader names the file).
pub fn check_tensors(stored: u64, allocated: u64, file_len: u64) -> Result<(), String> {
    if stored > file_len {
        return Err(format!(
            "its tensors claim {stored} bytes, but the file holds {file_len}: storages that are \
             compressed, or shared by several tensors, are not read (save a state_dict with \
             torch.save, or safetensors.torch.save_file, each tensor with its own storage)"
        ));
    }
    if let Some(spare) = memory::available()
        && allocated > spare / 2
    {
        return Err(format!(
            "its tensors need {} once read, and {} are free: read it on a machine with more memory",
            memory::gb(allocated),
            memory::gb(spare)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_beyond_the_file_or_the_memory_are_refused() {
        assert!(check_tensors(1000, 2000, 1000).is_ok());
        let e = check_tensors(1001, 2000, 1000).unwrap_err();
        assert!(e.contains("1001") && e.contains("shared"), "{e}");
        if memory::available().is_some() {
            let e = check_tensors(10, u64::MAX / 4, 1000).unwrap_err();
            assert!(e.contains("more memory"), "{e}");
        }
    }
}
