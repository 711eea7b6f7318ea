//! Values known at conversion time: the arithmetic constant folding needs,
//! on [`Tensor`]s (little-endian element bytes).
//!
//! Integers are folded exactly as int64, floating-point values in the
//! tensor's own precision (computed in f64 and rounded back, which is exact
//! for the additions, multiplications and divisions of float32 shape
//! arithmetic exporters emit).

use savedmodel_graph::{DType, Tensor};

/// A folding error's text.
pub(crate) type FoldResult<T> = std::result::Result<T, String>;

/// Whether `dtype` is an integer type folding handles.
pub(crate) fn is_int(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Int8
            | DType::Int16
            | DType::Int32
            | DType::Int64
            | DType::UInt8
            | DType::UInt16
            | DType::UInt32
            | DType::UInt64
    )
}

/// Whether `dtype` is a floating-point type folding handles.
pub(crate) fn is_float(dtype: DType) -> bool {
    matches!(
        dtype,
        DType::Float | DType::Double | DType::Half | DType::BFloat16
    )
}

/// The elements of an integer or bool tensor as int64.
pub(crate) fn to_i64(t: &Tensor) -> FoldResult<Vec<i64>> {
    let b = t
        .bytes()
        .ok_or_else(|| "a string tensor is not a number".to_owned())?;
    let v = match t.dtype() {
        DType::Int64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        DType::Int32 => b
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        DType::UInt32 => b
            .chunks_exact(4)
            .map(|c| i64::from(u32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        DType::Int16 => b
            .chunks_exact(2)
            .map(|c| i64::from(i16::from_le_bytes(c.try_into().unwrap_or([0; 2]))))
            .collect(),
        DType::UInt16 => b
            .chunks_exact(2)
            .map(|c| i64::from(u16::from_le_bytes(c.try_into().unwrap_or([0; 2]))))
            .collect(),
        DType::Int8 => b.iter().map(|&x| i64::from(x as i8)).collect(),
        DType::UInt8 | DType::Bool => b.iter().map(|&x| i64::from(x)).collect(),
        DType::UInt64 => b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as i64)
            .collect(),
        other => return Err(format!("{other} values are not integers")),
    };
    Ok(v)
}

/// The elements of a numeric tensor as f64.
pub(crate) fn to_f64(t: &Tensor) -> FoldResult<Vec<f64>> {
    let b = t
        .bytes()
        .ok_or_else(|| "a string tensor is not a number".to_owned())?;
    let v = match t.dtype() {
        DType::Float => b
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect(),
        DType::Double => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
        DType::Half => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::BFloat16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        d if is_int(d) || d == DType::Bool => to_i64(t)?.into_iter().map(|x| x as f64).collect(),
        other => return Err(format!("{other} values cannot be folded")),
    };
    Ok(v)
}

/// A tensor of `dtype` (integer or bool) holding `values`.
pub(crate) fn from_i64(dtype: DType, shape: &[i64], values: &[i64]) -> FoldResult<Tensor> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for &v in values {
        match dtype {
            DType::Int64 | DType::UInt64 => out.extend_from_slice(&v.to_le_bytes()),
            DType::Int32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            DType::UInt32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
            DType::Int16 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            DType::UInt16 => out.extend_from_slice(&(v as u16).to_le_bytes()),
            DType::Int8 => out.push(v as i8 as u8),
            DType::UInt8 => out.push(v as u8),
            DType::Bool => out.push(u8::from(v != 0)),
            other => return Err(format!("cannot make {other} from integers")),
        }
    }
    Tensor::from_bytes(dtype, shape, out).map_err(|e| e.to_string())
}

/// A tensor of `dtype` (floating point, integer or bool) holding `values`,
/// rounded (floats) or truncated toward zero (integers) as a cast does.
pub(crate) fn from_f64(dtype: DType, shape: &[i64], values: &[f64]) -> FoldResult<Tensor> {
    if is_int(dtype) || dtype == DType::Bool {
        let ints: Vec<i64> = values
            .iter()
            .map(|&v| {
                if dtype == DType::Bool {
                    i64::from(v != 0.0)
                } else {
                    v as i64
                }
            })
            .collect();
        return from_i64(dtype, shape, &ints);
    }
    let mut out = Vec::with_capacity(values.len() * 8);
    for &v in values {
        match dtype {
            DType::Float => out.extend_from_slice(&(v as f32).to_le_bytes()),
            DType::Double => out.extend_from_slice(&v.to_le_bytes()),
            DType::Half => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
            DType::BFloat16 => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
            other => return Err(format!("cannot make {other} from numbers")),
        }
    }
    Tensor::from_bytes(dtype, shape, out).map_err(|e| e.to_string())
}

/// The little-endian float32 or float64 elements in `bytes`, whose
/// leading axis has `scale.len()` rows, each row multiplied by its
/// factor: a filter `[M, ...]` scaled per output channel. Products are
/// computed in f64 and rounded once.
pub(crate) fn scale_rows(dtype: DType, bytes: &[u8], scale: &[f64]) -> FoldResult<Vec<u8>> {
    let size = match dtype {
        DType::Float => 4,
        DType::Double => 8,
        other => return Err(format!("{other} filters are not scaled")),
    };
    let elements = bytes.len() / size;
    if scale.is_empty() || bytes.len() % size != 0 || elements % scale.len() != 0 {
        return Err(format!(
            "{} bytes of {dtype} do not split into {} rows",
            bytes.len(),
            scale.len()
        ));
    }
    let row_bytes = bytes.len() / scale.len();
    let mut out = Vec::with_capacity(bytes.len());
    for (row, &s) in bytes.chunks_exact(row_bytes.max(1)).zip(scale) {
        for c in row.chunks_exact(size) {
            if size == 4 {
                let v = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                out.extend_from_slice(&((v * s) as f32).to_le_bytes());
            } else {
                let v = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                out.extend_from_slice(&(v * s).to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// Multiplies `bytes`, float or double elements whose last axis has
/// `scale.len()` entries, element `i` by `scale[i % scale.len()]`, in place:
/// a filter already in TensorFlow's layout (`[k..., C, M]`), whose ONNX rows
/// are its last axis. Rounds as [`scale_rows`] does (in f64, then to the
/// element type), so both give the same bytes.
pub(crate) fn scale_last_axis_in_place(
    dtype: DType,
    bytes: &mut [u8],
    scale: &[f64],
) -> FoldResult<()> {
    let size = match dtype {
        DType::Float => 4,
        DType::Double => 8,
        other => return Err(format!("{other} filters are not scaled")),
    };
    if scale.is_empty() || bytes.len() % (size * scale.len()) != 0 {
        return Err(format!(
            "{} bytes of {dtype} do not end in an axis of {}",
            bytes.len(),
            scale.len()
        ));
    }
    for row in bytes.chunks_exact_mut(size * scale.len()) {
        for (c, &s) in row.chunks_exact_mut(size).zip(scale) {
            if size == 4 {
                let v = f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                c.copy_from_slice(&((v * s) as f32).to_le_bytes());
            } else {
                let v = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                c.copy_from_slice(&(v * s).to_le_bytes());
            }
        }
    }
    Ok(())
}

/// A scalar of `dtype` holding `value`.
pub(crate) fn scalar(dtype: DType, value: f64) -> FoldResult<Tensor> {
    from_f64(dtype, &[], &[value])
}

/// `x` transposed by `perm` (`out.shape[i] = x.shape[perm[i]]`).
pub(crate) fn transpose(x: &Tensor, perm: &[i64]) -> FoldResult<Tensor> {
    let shape = x.shape();
    if perm.len() != shape.len() {
        return Err(format!(
            "cannot transpose a rank-{} value by {perm:?}",
            shape.len()
        ));
    }
    let out_shape: Vec<i64> = perm.iter().map(|&p| shape[p as usize]).collect();
    match x.bytes() {
        Some(b) => {
            let size = x.dtype().element_size().unwrap_or(1);
            let out = transpose_bytes(b, size, shape, perm)?;
            Tensor::from_bytes(x.dtype(), &out_shape, out).map_err(|e| e.to_string())
        }
        None => {
            let strings = x.string_values().unwrap_or_default();
            let index = transpose_indices(shape, perm)?;
            let out: Vec<&Vec<u8>> = index.iter().map(|&i| &strings[i]).collect();
            Tensor::strings(&out_shape, &out).map_err(|e| e.to_string())
        }
    }
}

/// For each element of the transposed tensor, the index of its element in
/// the source (row-major).
fn transpose_indices(shape: &[i64], perm: &[i64]) -> FoldResult<Vec<usize>> {
    let rank = shape.len();
    if perm.len() != rank {
        return Err(format!("permutation {perm:?} does not fit rank {rank}"));
    }
    let mut seen = vec![false; rank];
    for &p in perm {
        let ok = usize::try_from(p).ok().filter(|&p| p < rank && !seen[p]);
        match ok {
            Some(p) => seen[p] = true,
            None => return Err(format!("{perm:?} is not a permutation of {rank} axes")),
        }
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p as usize]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p as usize]).collect();
    let total: usize = dims.iter().product();
    let mut index = Vec::with_capacity(total);
    let mut counter = vec![0usize; rank];
    for _ in 0..total {
        index.push(counter.iter().zip(&out_strides).map(|(c, s)| c * s).sum());
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            if counter[axis] < out_dims[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    Ok(index)
}

/// Transposes row-major elements of `size` bytes.
///
/// Walks the output in order, keeping the source offset from the strides
/// (no per-element index list: a filter's transpose costs one pass and the
/// output buffer), and copies the innermost output axis as one slice when
/// it is contiguous in the source, else element by element with a
/// fixed-size copy.
pub(crate) fn transpose_bytes(
    bytes: &[u8],
    size: usize,
    shape: &[i64],
    perm: &[i64],
) -> FoldResult<Vec<u8>> {
    let rank = shape.len();
    check_perm(perm, rank)?;
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let total: usize = dims.iter().product();
    if total.checked_mul(size) != Some(bytes.len()) {
        return Err(format!(
            "{} bytes do not hold {total} elements of {size} bytes",
            bytes.len()
        ));
    }
    if rank == 0 || total == 0 {
        return Ok(bytes.to_vec());
    }
    let mut strides = vec![size; rank];
    for i in (0..rank - 1).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p as usize]).collect();
    let src: Vec<usize> = perm.iter().map(|&p| strides[p as usize]).collect();
    let (inner_n, inner_stride) = (out_dims[rank - 1], src[rank - 1]);
    let mut out = Vec::with_capacity(bytes.len());
    let mut counter = vec![0usize; rank - 1];
    let mut offset = 0usize;
    loop {
        if inner_stride == size {
            out.extend_from_slice(&bytes[offset..offset + inner_n * size]);
        } else {
            match size {
                1 => copy_strided::<1>(&mut out, bytes, offset, inner_stride, inner_n),
                2 => copy_strided::<2>(&mut out, bytes, offset, inner_stride, inner_n),
                4 => copy_strided::<4>(&mut out, bytes, offset, inner_stride, inner_n),
                8 => copy_strided::<8>(&mut out, bytes, offset, inner_stride, inner_n),
                _ => {
                    for k in 0..inner_n {
                        let o = offset + k * inner_stride;
                        out.extend_from_slice(&bytes[o..o + size]);
                    }
                }
            }
        }
        // The next position of the outer output axes.
        let mut axis = rank - 1;
        loop {
            if axis == 0 {
                return Ok(out);
            }
            axis -= 1;
            counter[axis] += 1;
            offset += src[axis];
            if counter[axis] < out_dims[axis] {
                break;
            }
            offset -= src[axis] * out_dims[axis];
            counter[axis] = 0;
        }
    }
}

/// Appends `n` elements of `N` bytes found `stride` bytes apart from
/// `start`.
fn copy_strided<const N: usize>(
    out: &mut Vec<u8>,
    bytes: &[u8],
    start: usize,
    stride: usize,
    n: usize,
) {
    for k in 0..n {
        let o = start + k * stride;
        let mut element = [0u8; N];
        element.copy_from_slice(&bytes[o..o + N]);
        out.extend_from_slice(&element);
    }
}

/// Fails unless `perm` is a permutation of `rank` axes.
fn check_perm(perm: &[i64], rank: usize) -> FoldResult<()> {
    if perm.len() != rank {
        return Err(format!("permutation {perm:?} does not fit rank {rank}"));
    }
    let mut seen = vec![false; rank];
    for &p in perm {
        match usize::try_from(p).ok().filter(|&p| p < rank && !seen[p]) {
            Some(p) => seen[p] = true,
            None => return Err(format!("{perm:?} is not a permutation of {rank} axes")),
        }
    }
    Ok(())
}

/// The broadcast of two shapes (numpy rules), or why they do not broadcast.
pub(crate) fn broadcast_dims(a: &[i64], b: &[i64]) -> FoldResult<Vec<i64>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (-1, y) | (y, -1) => {
                if y == 1 {
                    -1
                } else {
                    y
                }
            }
            (x, y) => {
                return Err(format!(
                    "shapes {a:?} and {b:?} do not broadcast ({x} vs {y})"
                ));
            }
        };
    }
    Ok(out)
}

/// Folds an elementwise binary operation of two known tensors with numpy
/// broadcasting: integers with `int`, floats with `float`.
pub(crate) fn binary(
    a: &Tensor,
    b: &Tensor,
    out_dtype: DType,
    int: impl Fn(i64, i64) -> Option<i64>,
    float: impl Fn(f64, f64) -> f64,
) -> FoldResult<Tensor> {
    let shape = broadcast_dims(a.shape(), b.shape())?;
    let n: usize = shape.iter().map(|&d| d as usize).product();
    let ia = broadcast_index(a.shape(), &shape);
    let ib = broadcast_index(b.shape(), &shape);
    if is_int(a.dtype()) && is_int(b.dtype()) || a.dtype() == DType::Bool {
        let (va, vb) = (to_i64(a)?, to_i64(b)?);
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            out.push(
                int(va[ia[k]], vb[ib[k]])
                    .ok_or_else(|| "integer overflow or division by zero".to_owned())?,
            );
        }
        if is_float(out_dtype) {
            let f: Vec<f64> = out.iter().map(|&x| x as f64).collect();
            return from_f64(out_dtype, &shape, &f);
        }
        return from_i64(out_dtype, &shape, &out);
    }
    let (va, vb) = (to_f64(a)?, to_f64(b)?);
    let out: Vec<f64> = (0..n).map(|k| float(va[ia[k]], vb[ib[k]])).collect();
    from_f64(out_dtype, &shape, &out)
}

/// For each element of a tensor of shape `out`, the index of the element
/// of a tensor of shape `shape` broadcast to it.
pub(crate) fn broadcast_index(shape: &[i64], out: &[i64]) -> Vec<usize> {
    let rank = out.len();
    let offset = rank - shape.len();
    let mut strides = vec![0usize; rank];
    let mut s = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i + offset] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i].max(0) as usize;
    }
    let total: usize = out.iter().map(|&d| d.max(0) as usize).product();
    let mut index = Vec::with_capacity(total);
    let mut counter = vec![0usize; rank];
    for _ in 0..total {
        index.push(counter.iter().zip(&strides).map(|(c, s)| c * s).sum());
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            if (counter[axis] as i64) < out[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    index
}

/// Gathers elements of `x` along `axis` at `indices` (negative indices
/// count from the end), for folding `Gather`.
pub(crate) fn gather(
    x: &Tensor,
    indices: &[i64],
    ind_shape: &[i64],
    axis: usize,
) -> FoldResult<Tensor> {
    let shape = x.shape();
    if axis >= shape.len() {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            shape.len()
        ));
    }
    let dim = shape[axis];
    let outer: usize = shape[..axis].iter().map(|&d| d as usize).product();
    let inner: usize = shape[axis + 1..].iter().map(|&d| d as usize).product();
    let size = x.dtype().element_size().unwrap_or(1);
    let bytes = x
        .bytes()
        .ok_or_else(|| "cannot fold a gather of strings".to_owned())?;
    let mut out = Vec::new();
    for o in 0..outer {
        for &i in indices {
            let i = if i < 0 { i + dim } else { i };
            if i < 0 || i >= dim {
                return Err(format!("index {i} is out of range for dimension {dim}"));
            }
            let start = ((o * dim as usize + i as usize) * inner) * size;
            out.extend_from_slice(&bytes[start..start + inner * size]);
        }
    }
    let mut out_shape: Vec<i64> = shape[..axis].to_vec();
    out_shape.extend_from_slice(ind_shape);
    out_shape.extend_from_slice(&shape[axis + 1..]);
    Tensor::from_bytes(x.dtype(), &out_shape, out).map_err(|e| e.to_string())
}

/// Concatenates known tensors along `axis`.
pub(crate) fn concat(parts: &[&Tensor], axis: usize) -> FoldResult<Tensor> {
    let first = parts
        .first()
        .ok_or_else(|| "nothing to concatenate".to_owned())?;
    let rank = first.shape().len();
    if axis >= rank {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    let size = first.dtype().element_size().unwrap_or(1);
    let outer: usize = first.shape()[..axis].iter().map(|&d| d as usize).product();
    let mut out_shape = first.shape().to_vec();
    out_shape[axis] = 0;
    for p in parts {
        if p.shape().len() != rank || p.dtype() != first.dtype() {
            return Err("concatenated values differ in rank or type".to_owned());
        }
        out_shape[axis] += p.shape()[axis];
    }
    let mut out = Vec::new();
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.shape()[axis..]
                .iter()
                .map(|&d| d as usize)
                .product::<usize>()
                * size;
            let bytes = p
                .bytes()
                .ok_or_else(|| "cannot fold a concatenation of strings".to_owned())?;
            out.extend_from_slice(&bytes[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor::from_bytes(first.dtype(), &out_shape, out).map_err(|e| e.to_string())
}

/// `x` with a new shape (same elements).
pub(crate) fn reshape(x: &Tensor, shape: &[i64]) -> FoldResult<Tensor> {
    match x.bytes() {
        Some(b) => Tensor::from_bytes(x.dtype(), shape, b.to_vec()).map_err(|e| e.to_string()),
        None => {
            Tensor::strings(shape, x.string_values().unwrap_or_default()).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod transpose_tests {
    use super::*;

    #[test]
    fn strided_transpose_equals_the_element_by_element_one() {
        for (shape, perm) in [
            (vec![2i64, 3, 4, 5], vec![2i64, 3, 1, 0]),
            (vec![4, 3, 2, 2], vec![0, 2, 3, 1]),
            (vec![3, 1, 2], vec![2, 1, 0]),
            (vec![6], vec![0]),
            (vec![2, 3], vec![0, 1]),
        ] {
            for size in [1usize, 2, 3, 4, 8] {
                let n: usize = shape.iter().map(|&d| d as usize).product();
                let bytes: Vec<u8> = (0..n * size).map(|i| (i * 7 % 251) as u8).collect();
                let index = transpose_indices(&shape, &perm).unwrap();
                let want: Vec<u8> = index
                    .iter()
                    .flat_map(|&i| bytes[i * size..(i + 1) * size].to_vec())
                    .collect();
                let got = transpose_bytes(&bytes, size, &shape, &perm).unwrap();
                assert_eq!(got, want, "{shape:?} {perm:?} size {size}");
            }
        }
        assert!(transpose_bytes(&[0; 4], 1, &[2, 2], &[0, 0]).is_err());
        assert!(transpose_bytes(&[0; 3], 1, &[2, 2], &[1, 0]).is_err());
    }
}
