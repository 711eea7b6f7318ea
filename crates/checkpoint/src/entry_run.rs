//! The index entries of one large [`BundleWriter::add_batch`], kept in
//! name order in a few flat buffers.
//!
//! The writer's other entries live in a `BTreeMap<Vec<u8>, TensorEntry>`:
//! a key and a shape allocated per tensor. For 100,000 tensors, building
//! that map took about 20 ms (on a spare thread, but with several data files
//! being written there is none on two CPUs) and freeing it 5 ms more, for a
//! write of about 120 ms. A run costs a few copies into three vectors.
//!
//! [`BundleWriter::add_batch`]: crate::BundleWriter::add_batch

use crate::dtype::DType;
use crate::entry::EntryEncoder;

/// One tensor of a run: where its name and shape end in the run's buffers,
/// and its entry's other fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunEntry {
    name_end: usize,
    dims_end: usize,
    pub(crate) dtype: DType,
    pub(crate) shard_id: u32,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) crc32c: u32,
}

/// Entries sorted by name (strictly: no two alike).
#[derive(Debug, Default)]
pub(crate) struct EntryRun {
    names: Vec<u8>,
    dims: Vec<i64>,
    entries: Vec<RunEntry>,
}

impl EntryRun {
    /// A run with room for `count` entries and `name_bytes` of names.
    pub(crate) fn with_capacity(count: usize, name_bytes: usize) -> Self {
        EntryRun {
            names: Vec::with_capacity(name_bytes),
            dims: Vec::with_capacity(count),
            entries: Vec::with_capacity(count),
        }
    }

    /// Appends an entry; names must come in strictly increasing order
    /// (checked in debug builds).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        name: &[u8],
        dtype: DType,
        shape: &[i64],
        shard_id: u32,
        offset: u64,
        size: u64,
    ) {
        debug_assert!(self.entries.is_empty() || self.name(self.entries.len() - 1) < name);
        self.names.extend_from_slice(name);
        self.dims.extend_from_slice(shape);
        self.entries.push(RunEntry {
            name_end: self.names.len(),
            dims_end: self.dims.len(),
            dtype,
            shard_id,
            offset,
            size,
            crc32c: 0,
        });
    }

    /// The entries of two runs, in name order (no name is in both).
    pub(crate) fn merge(a: &EntryRun, b: &EntryRun) -> EntryRun {
        let mut merged = EntryRun {
            names: Vec::with_capacity(a.names.len() + b.names.len()),
            dims: Vec::with_capacity(a.dims.len() + b.dims.len()),
            entries: Vec::with_capacity(a.len() + b.len()),
        };
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let take_a = j == b.len() || (i < a.len() && a.name(i) < b.name(j));
            let (run, k) = if take_a { (a, &mut i) } else { (b, &mut j) };
            merged.push_from(run, *k);
            *k += 1;
        }
        merged
    }

    /// Appends entry `i` of `other`, CRC included.
    fn push_from(&mut self, other: &EntryRun, i: usize) {
        let e = other.entries[i];
        self.push(
            other.name(i),
            e.dtype,
            other.shape(i),
            e.shard_id,
            e.offset,
            e.size,
        );
        if let Some(last) = self.entries.last_mut() {
            last.crc32c = e.crc32c;
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries, in name order (to fill in their CRCs).
    pub(crate) fn entries_mut(&mut self) -> &mut [RunEntry] {
        &mut self.entries
    }

    /// Entry `i`'s name.
    pub(crate) fn name(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].name_end);
        &self.names[start..self.entries[i].name_end]
    }

    /// Entry `i`'s shape.
    pub(crate) fn shape(&self, i: usize) -> &[i64] {
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].dims_end);
        &self.dims[start..self.entries[i].dims_end]
    }

    /// Whether a tensor is named `key`.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        let (mut low, mut high) = (0, self.entries.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.name(mid).cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    /// Appends entry `i`'s serialized `BundleEntryProto` to `out`.
    pub(crate) fn encode_into(&self, i: usize, encoder: &mut EntryEncoder, out: &mut Vec<u8>) {
        let e = &self.entries[i];
        encoder.encode_fields(
            e.dtype,
            self.shape(i),
            e.shard_id,
            e.offset,
            e.size,
            e.crc32c,
            &[],
            out,
        );
    }

    /// Entry `i` as a [`crate::TensorEntry`].
    #[cfg(test)]
    pub(crate) fn to_entry(&self, i: usize) -> crate::TensorEntry {
        let e = &self.entries[i];
        crate::TensorEntry {
            dtype: e.dtype,
            shape: self.shape(i).to_vec(),
            shard_id: e.shard_id,
            offset: e.offset,
            size: e.size,
            crc32c: e.crc32c,
            slices: Vec::new(),
        }
    }
}

impl RunEntry {
    /// Sets the entry's (masked) CRC32C.
    pub(crate) fn set_crc32c(&mut self, masked: u32) {
        self.crc32c = masked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorEntry;

    #[test]
    fn names_shapes_lookups_and_bytes() {
        let mut run = EntryRun::with_capacity(3, 8);
        run.push(b"a", DType::Float, &[2, 3], 0, 0, 24);
        run.push(b"b/c", DType::Int64, &[], 1, 24, 8);
        run.push(b"bb", DType::UInt8, &[0], 0, 32, 0);
        run.entries_mut()[1].set_crc32c(7);
        assert_eq!(run.len(), 3);
        assert_eq!(
            [run.name(0), run.name(1), run.name(2)],
            [&b"a"[..], b"b/c", b"bb"]
        );
        assert_eq!(run.shape(0), [2, 3]);
        assert!(run.shape(1).is_empty());
        assert_eq!(run.shape(2), [0]);
        for present in [&b"a"[..], b"b/c", b"bb"] {
            assert!(run.contains(present));
        }
        for absent in [&b""[..], b"b", b"b/d", b"c", b"A"] {
            assert!(!run.contains(absent));
        }
        let mut encoder = EntryEncoder::default();
        for i in 0..run.len() {
            let mut out = Vec::new();
            run.encode_into(i, &mut encoder, &mut out);
            let entry: TensorEntry = run.to_entry(i);
            assert_eq!(out, entry.encode());
        }
        assert_eq!(run.to_entry(1).crc32c, 7);
        assert!(!EntryRun::default().contains(b"a"));
    }

    #[test]
    fn merging_interleaves_in_name_order() {
        let make = |names: &[&str], shard_id| {
            let mut run = EntryRun::default();
            for (k, name) in names.iter().enumerate() {
                let rank = k % 3;
                let shape = vec![k as i64 + 1; rank];
                run.push(name.as_bytes(), DType::Float, &shape, shard_id, k as u64, 4);
                run.entries_mut()[k].set_crc32c(shard_id * 100 + k as u32);
            }
            run
        };
        let a = make(&["a", "c", "d", "z"], 0);
        let b = make(&["b", "e", "y"], 1);
        let merged = EntryRun::merge(&a, &b);
        let names: Vec<&[u8]> = (0..merged.len()).map(|i| merged.name(i)).collect();
        assert_eq!(names, [&b"a"[..], b"b", b"c", b"d", b"e", b"y", b"z"]);
        // Every entry comes over whole: its shape, shard, offset and CRC.
        for (run, names) in [
            (&a, ["a", "c", "d", "z"].as_slice()),
            (&b, &["b", "e", "y"]),
        ] {
            for (k, name) in names.iter().enumerate() {
                let m = (0..merged.len())
                    .find(|&i| merged.name(i) == name.as_bytes())
                    .unwrap();
                assert_eq!(merged.to_entry(m), run.to_entry(k), "{name}");
            }
        }
        let empty = EntryRun::default();
        assert_eq!(EntryRun::merge(&empty, &b).len(), 3);
        assert_eq!(EntryRun::merge(&a, &empty).len(), 4);
    }
}
