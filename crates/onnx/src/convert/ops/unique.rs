//! `Unique`: TensorFlow's `UniqueWithCountsV2` on the slices along the
//! axis (the whole tensor flattened when there is none), each slice
//! flattened to a row of `M` elements (`M` known at conversion).
//!
//! TensorFlow gives the unique rows in order of first occurrence, the
//! inverse indices and the counts; the first occurrences are the least
//! index of each inverse value (`UnsortedSegmentMin`). With `sorted = 1`
//! (the default) the rows are put in ascending lexicographic order by
//! stable sorts on each column from the last to the first (`TopKV2` of the
//! negated column in float64 keeps equal keys in index order), and the
//! inverse indices follow the permutation (`InvertPermutation`).

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, normalize_axis, output_name, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Unique" => unique,
        _ => return None,
    };
    Some(f)
}

fn unique(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let sorted = node.attr_i_or("sorted", 1)? != 0;
    let rank = rank_of(ctx, x_name)?;
    let axis = match node.attr_i("axis")? {
        Some(a) => Some(normalize_axis(ctx, a, rank)?),
        None => None,
    };
    let dims = ctx.slot(x_name)?.shape.dims().map(<[i64]>::to_vec);
    // The slices' dims besides the axis, and their element count M.
    let rest: Vec<i64> = match (axis, &dims) {
        (None, _) => Vec::new(),
        (Some(a), Some(d)) => d
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != a)
            .map(|(_, &v)| v)
            .collect(),
        (Some(_), None) => vec![-1; rank - 1],
    };
    if rest.iter().any(|&d| d < 0) {
        return Err(ctx.error(format!(
            "the dimensions of {x_name:?} other than the axis must be known at conversion"
        )));
    }
    let m: i64 = rest.iter().product();
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    // bfloat16 and half compare exactly as float32.
    let work = match dtype {
        DType::BFloat16 | DType::Half => b.cast(&x, DType::Float)?,
        _ => x.clone(),
    };
    let wtype = work.dtype();
    // [D, M]: the axis first, each slice a row.
    let (rows, perm) = match axis {
        None => (b.reshape(&work, &[-1, 1])?, None),
        Some(a) => {
            let mut perm: Vec<i64> = vec![a as i64];
            perm.extend((0..rank as i64).filter(|&i| i != a as i64));
            let p = b.i64s(&perm)?;
            let moved = b.op(
                "Transpose",
                &[&work, &p],
                &[t(wtype), ("Tperm", Attr::Type(DType::Int64))],
                Shape::unknown_dims(rank),
            )?;
            (b.reshape(&moved, &[-1, m])?, Some(perm))
        }
    };
    let zero_axis = b.tensor(Tensor::vector(&[0i64]))?;
    let parts = b.op_n(
        "UniqueWithCountsV2",
        &[&rows, &zero_axis],
        &[
            t(wtype),
            ("Taxis", Attr::Type(DType::Int64)),
            ("out_idx", Attr::Type(DType::Int64)),
        ],
        vec![
            Shape::new(&[-1, m]),
            Shape::unknown_dims(1),
            Shape::unknown_dims(1),
        ],
    )?;
    let (mut y, mut inverse, mut counts) = (parts[0].clone(), parts[1].clone(), parts[2].clone());
    // First occurrence of each unique row.
    let d = b.op(
        "Shape",
        &[&rows],
        &[t(wtype), ("out_type", Attr::Type(DType::Int64))],
        Shape::new(&[2]),
    )?;
    let d = b.element(&d, 0)?;
    let start = b.i64(0)?;
    let step = b.i64(1)?;
    let positions = b.range(&start, &d, &step)?;
    let k = b.op(
        "Size",
        &[&counts],
        &[t(DType::Int64), ("out_type", Attr::Type(DType::Int64))],
        Shape::scalar(),
    )?;
    let mut first = b.op(
        "UnsortedSegmentMin",
        &[&positions, &inverse, &k],
        &[
            t(DType::Int64),
            ("Tindices", Attr::Type(DType::Int64)),
            ("Tnumsegments", Attr::Type(DType::Int64)),
        ],
        Shape::unknown_dims(1),
    )?;
    if sorted {
        let k32 = b.cast(&k, DType::Int32)?;
        let zero = b.i64(0)?;
        let mut order = b.range(&zero, &k, &step)?;
        for column in (0..m).rev() {
            let c = b.tensor(Tensor::scalar(column as i32))?;
            let keys = b.gather(&y, &c, 1, Shape::unknown_dims(1))?;
            let keys = b.gather(&keys, &order, 0, Shape::unknown_dims(1))?;
            let keys = b.cast(&keys, DType::Double)?;
            let negated = b.un("Neg", &keys)?;
            let top = b.op_n(
                "TopKV2",
                &[&negated, &k32],
                &[
                    t(DType::Double),
                    ("sorted", Attr::Bool(true)),
                    ("Tk", Attr::Type(DType::Int32)),
                    ("index_type", Attr::Type(DType::Int64)),
                ],
                vec![Shape::unknown_dims(1), Shape::unknown_dims(1)],
            )?;
            order = b.gather(&order, &top[1], 0, Shape::unknown_dims(1))?;
        }
        y = b.gather(&y, &order, 0, Shape::new(&[-1, m]))?;
        counts = b.gather(&counts, &order, 0, Shape::unknown_dims(1))?;
        first = b.gather(&first, &order, 0, Shape::unknown_dims(1))?;
        let rank_of_old = b.op(
            "InvertPermutation",
            &[&order],
            &[t(DType::Int64)],
            Shape::unknown_dims(1),
        )?;
        inverse = b.gather(&rank_of_old, &inverse, 0, Shape::unknown_dims(1))?;
    }
    // Y back in X's layout and type.
    let y = match &perm {
        None => b.reshape(&y, &[-1])?,
        Some(perm) => {
            let mut shape = vec![-1i64];
            shape.extend(&rest);
            let y = b.reshape(&y, &shape)?;
            let mut back = vec![0i64; rank];
            for (i, &p) in perm.iter().enumerate() {
                back[p as usize] = i as i64;
            }
            let p = b.i64s(&back)?;
            b.op(
                "Transpose",
                &[&y, &p],
                &[t(wtype), ("Tperm", Attr::Type(DType::Int64))],
                Shape::unknown_dims(rank),
            )?
        }
    };
    let y = b.cast(&y, dtype)?;
    let outputs: [(usize, Output, Shape); 4] = [
        (
            0,
            y,
            Shape::unknown_dims(if axis.is_some() { rank } else { 1 }),
        ),
        (1, first, Shape::unknown_dims(1)),
        (2, inverse, Shape::unknown_dims(1)),
        (3, counts, Shape::unknown_dims(1)),
    ];
    for (i, value, shape) in outputs {
        if let Some(name) = output_name(node, i) {
            ctx.set_plain(name, value, shape);
        }
    }
    Ok(())
}
