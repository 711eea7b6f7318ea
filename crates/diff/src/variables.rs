//! Variables, from the two checkpoints' indexes: each `BundleEntryProto`'s
//! dtype, shape, size and CRC32C (docs/formats.md, section 4 "The index
//! file"), so a changed value is found without reading tensor data. With
//! `values`, the two data files are memory-mapped (by
//! [`BundleReader`]) and each changed tensor is walked once, element by
//! element, for its largest absolute and relative difference.

use std::cmp::Ordering;
use std::iter::Peekable;

use savedmodel::SavedModel;
use savedmodel_checkpoint::{
    BundleReader, DType, OBJECT_GRAPH_KEY, TensorData, TensorEntry, TensorView,
    encode_tensor_name_slice, shape_string,
};

use crate::error::{Error, Result};
use crate::report::{Area, Change, ChangeKind, ValueDifference};

pub(crate) fn compare(
    old: &SavedModel,
    new: &SavedModel,
    values: bool,
    out: &mut Vec<Change>,
) -> Result<()> {
    let old_reader = open(old)?;
    let new_reader = open(new)?;
    let (old_reader, new_reader) = match (old_reader, new_reader) {
        (None, None) => return Ok(()),
        (Some(o), None) => {
            for (name, _) in Tensors::new(&o).collect::<Result<Vec<_>>>()? {
                out.push(Change::new(Area::Variable, ChangeKind::Removed, name));
            }
            return Ok(());
        }
        (None, Some(n)) => {
            for (name, _) in Tensors::new(&n).collect::<Result<Vec<_>>>()? {
                out.push(Change::new(Area::Variable, ChangeKind::Added, name));
            }
            return Ok(());
        }
        (Some(o), Some(n)) => (o, n),
    };
    // Both indexes are sorted by key: one merge pass.
    let mut a: Peekable<Tensors<'_>> = Tensors::new(&old_reader).peekable();
    let mut b: Peekable<Tensors<'_>> = Tensors::new(&new_reader).peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) | (Some(_), None) => Ordering::Less,
            (_, Some(Err(_))) | (None, Some(_)) => Ordering::Greater,
            (Some(Ok((x, _))), Some(Ok((y, _)))) => x.cmp(y),
        };
        match order {
            Ordering::Less => {
                let Some((name, entry)) = next(&mut a)? else {
                    break;
                };
                let detail = describe(&entry);
                out.push(Change::new(Area::Variable, ChangeKind::Removed, name).detail(detail));
            }
            Ordering::Greater => {
                let Some((name, entry)) = next(&mut b)? else {
                    break;
                };
                let detail = describe(&entry);
                out.push(Change::new(Area::Variable, ChangeKind::Added, name).detail(detail));
            }
            Ordering::Equal => {
                let (Some((name, old_entry)), Some((_, new_entry))) =
                    (next(&mut a)?, next(&mut b)?)
                else {
                    break;
                };
                if let Some(change) = compare_entries(
                    &name,
                    &old_reader,
                    &old_entry,
                    &new_reader,
                    &new_entry,
                    values,
                )? {
                    out.push(change);
                }
            }
        }
    }
    Ok(())
}

/// The next item of a side `peek` just found one in (`None` cannot happen).
fn next(it: &mut Peekable<Tensors<'_>>) -> Result<Option<(String, TensorEntry)>> {
    it.next().transpose()
}

fn open(model: &SavedModel) -> Result<Option<BundleReader>> {
    model.open_variables().map_err(|source| Error::Model {
        dir: model.dir().to_path_buf(),
        source: Box::new(source),
    })
}

/// The tensors of a bundle in key order: its entries without the header,
/// the slices a partitioned tensor lists, and the object graph (which
/// describes the Python objects, not a variable).
struct Tensors<'r> {
    reader: &'r BundleReader,
    entries: Box<dyn Iterator<Item = savedmodel_checkpoint::Result<(Vec<u8>, TensorEntry)>> + 'r>,
}

impl<'r> Tensors<'r> {
    fn new(reader: &'r BundleReader) -> Self {
        Tensors {
            reader,
            entries: Box::new(reader.entries()),
        }
    }

    fn error(&self, source: savedmodel_checkpoint::Error) -> Error {
        Error::Checkpoint {
            prefix: self.reader.prefix().to_path_buf(),
            source: Box::new(source),
        }
    }
}

impl Iterator for Tensors<'_> {
    type Item = Result<(String, TensorEntry)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, entry) = match self.entries.next()? {
                Ok(item) => item,
                Err(e) => return Some(Err(self.error(e))),
            };
            if key == OBJECT_GRAPH_KEY.as_bytes() {
                continue;
            }
            match self.reader.is_listed_slice(&key) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Some(Err(self.error(e))),
            }
            let name = String::from_utf8_lossy(&key).into_owned();
            return Some(Ok((name, entry)));
        }
    }
}

fn describe(entry: &TensorEntry) -> String {
    format!("{} {}", entry.dtype.name(), shape_string(&entry.shape))
}

/// What identifies a stored value: size and CRC32C, per slice for a
/// partitioned tensor.
fn fingerprint(reader: &BundleReader, name: &str, entry: &TensorEntry) -> Result<Vec<(u64, u32)>> {
    if !entry.is_partitioned() {
        return Ok(vec![(entry.size, entry.crc32c)]);
    }
    entry
        .slices
        .iter()
        .map(|slice| {
            let key = encode_tensor_name_slice(name.as_bytes(), slice);
            let e = reader.entry(&key).map_err(|source| Error::Checkpoint {
                prefix: reader.prefix().to_path_buf(),
                source: Box::new(source),
            })?;
            Ok((e.size, e.crc32c))
        })
        .collect()
}

fn compare_entries(
    name: &str,
    old_reader: &BundleReader,
    old: &TensorEntry,
    new_reader: &BundleReader,
    new: &TensorEntry,
    values: bool,
) -> Result<Option<Change>> {
    let mut details = Vec::new();
    if old.dtype != new.dtype {
        details.push(format!(
            "dtype {} -> {}",
            old.dtype.name(),
            new.dtype.name()
        ));
    }
    if old.shape != new.shape {
        details.push(format!(
            "reshaped {} -> {}",
            shape_string(&old.shape),
            shape_string(&new.shape)
        ));
    }
    if !details.is_empty() {
        return Ok(Some(
            Change::new(Area::Variable, ChangeKind::Changed, name).detail(details.join(", ")),
        ));
    }
    let same_layout = old.slices == new.slices;
    if same_layout && fingerprint(old_reader, name, old)? == fingerprint(new_reader, name, new)? {
        return Ok(None);
    }
    let mut change = Change::new(Area::Variable, ChangeKind::Changed, name).detail(format!(
        "value changed (crc32c {:08x} -> {:08x})",
        old.crc32c, new.crc32c
    ));
    if values {
        let difference = value_difference(name, old_reader, old, new_reader, new)?;
        if difference.differing == 0 {
            // Same values stored differently (partitioned another way):
            // not a change after all.
            return Ok(None);
        }
        change.values = Some(difference);
    }
    Ok(Some(change))
}

fn value_difference(
    name: &str,
    old_reader: &BundleReader,
    old: &TensorEntry,
    new_reader: &BundleReader,
    new: &TensorEntry,
) -> Result<ValueDifference> {
    let a = read_tensor(name, old_reader, old)?;
    let b = read_tensor(name, new_reader, new)?;
    Ok(match (a.data(), b.data()) {
        (TensorData::Bytes(x), TensorData::Bytes(y)) => numeric_difference(old.dtype, x, y),
        (TensorData::Strings(x), TensorData::Strings(y)) => {
            let differing = x.iter().zip(y.iter()).filter(|(p, q)| p != q).count() as u64;
            ValueDifference {
                elements: x.len() as u64,
                differing,
                max_abs: 0.0,
                max_rel: if differing > 0 { 1.0 } else { 0.0 },
            }
        }
        _ => ValueDifference {
            elements: 0,
            differing: 1,
            max_abs: f64::NAN,
            max_rel: f64::NAN,
        },
    })
}

fn read_tensor<'r>(
    name: &str,
    reader: &'r BundleReader,
    entry: &TensorEntry,
) -> Result<TensorView<'r>> {
    reader
        .tensor_for_entry(name.as_bytes(), entry)
        .map_err(|source| Error::Checkpoint {
            prefix: reader.prefix().to_path_buf(),
            source: Box::new(source),
        })
}

/// Reads one element's native-order bytes as `f64`.
type ReadElement = fn(&[u8]) -> f64;

/// Element `i` of a native-order buffer as `f64`, for the types with an
/// order; `None` for the others (compared byte for byte).
fn element_reader(dtype: DType) -> Option<(usize, ReadElement)> {
    macro_rules! ne {
        ($t:ty) => {
            |b: &[u8]| <$t>::from_ne_bytes(b.try_into().unwrap_or_default()) as f64
        };
    }
    Some(match dtype {
        DType::Float => (4, ne!(f32)),
        DType::Double => (8, ne!(f64)),
        DType::Half => (2, |b: &[u8]| {
            half::f16::from_bits(u16::from_ne_bytes(b.try_into().unwrap_or_default())).to_f64()
        }),
        DType::BFloat16 => (2, |b: &[u8]| {
            half::bf16::from_bits(u16::from_ne_bytes(b.try_into().unwrap_or_default())).to_f64()
        }),
        DType::Int8 | DType::QInt8 => (1, ne!(i8)),
        DType::UInt8 | DType::QUInt8 => (1, ne!(u8)),
        DType::Int16 | DType::QInt16 => (2, ne!(i16)),
        DType::UInt16 | DType::QUInt16 => (2, ne!(u16)),
        DType::Int32 | DType::QInt32 => (4, ne!(i32)),
        DType::UInt32 => (4, ne!(u32)),
        DType::Int64 => (8, ne!(i64)),
        DType::UInt64 => (8, ne!(u64)),
        DType::Bool => (1, |b: &[u8]| f64::from(u8::from(b.first() != Some(&0)))),
        _ => return None,
    })
}

/// One pass over both buffers (memory-mapped: pages are read as the walk
/// reaches them, and nothing is copied).
fn numeric_difference(dtype: DType, old: &[u8], new: &[u8]) -> ValueDifference {
    let Some((size, read)) = element_reader(dtype) else {
        let size = dtype.element_size().unwrap_or(1).max(1);
        let differing = old
            .chunks(size)
            .zip(new.chunks(size))
            .filter(|(a, b)| a != b)
            .count() as u64;
        return ValueDifference {
            elements: (old.len() / size) as u64,
            differing,
            max_abs: f64::NAN,
            max_rel: f64::NAN,
        };
    };
    let mut diff = ValueDifference {
        elements: (old.len().min(new.len()) / size) as u64,
        differing: 0,
        max_abs: 0.0,
        max_rel: 0.0,
    };
    for (a, b) in old.chunks_exact(size).zip(new.chunks_exact(size)) {
        if a == b {
            continue;
        }
        let (x, y) = (read(a), read(b));
        diff.differing += 1;
        let abs = (y - x).abs();
        let scale = x.abs().max(y.abs());
        let rel = if scale > 0.0 { abs / scale } else { 0.0 };
        // NaN on either side makes the maximum NaN: it is worth seeing.
        if abs.is_nan() || abs > diff.max_abs {
            diff.max_abs = abs;
        }
        if rel.is_nan() || rel > diff.max_rel {
            diff.max_rel = rel;
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_differences_are_absolute_and_relative() {
        let a: Vec<u8> = [1.0f32, 2.0, 0.0]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let b: Vec<u8> = [1.0f32, 3.0, 0.5]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let d = numeric_difference(DType::Float, &a, &b);
        assert_eq!((d.elements, d.differing), (3, 2));
        assert_eq!(d.max_abs, 1.0);
        assert_eq!(d.max_rel, 1.0);
    }
}
