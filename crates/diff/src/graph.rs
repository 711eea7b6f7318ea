//! MetaGraphs, signatures, ops and init ops: what `saved_model.pb` says.
//!
//! Signature rules (a client of the old version is one that sends the old
//! inputs and reads the old outputs):
//! - breaking: a removed tag set or signature, a changed method name, an
//!   input added or removed, an output removed, a changed dtype or encoding
//!   (dense, sparse, composite), an input shape that no longer accepts every
//!   shape the old one did (narrowed), an output shape that may now be one
//!   the old one did not promise (widened);
//! - compatible: an added tag set, signature or output, a widened input
//!   shape, a narrowed output shape, a renamed graph tensor behind the same
//!   alias.

use std::collections::{BTreeMap, BTreeSet};

use savedmodel::SavedModel;
use savedmodel::proto::tensorflow::{TensorInfo, TensorShapeProto, tensor_info::Encoding};
use savedmodel::reader::MetaGraph;
use savedmodel_checkpoint::DType;

use crate::report::{Area, Change, ChangeKind};

/// The key of the init op's signature, compared as the init op instead.
const INIT_OP_SIGNATURE_KEY: &str = "__saved_model_init_op";

pub(crate) fn compare(old: &SavedModel, new: &SavedModel, changes: &mut Vec<Change>) {
    let by_tags = |model: &SavedModel| -> BTreeMap<String, usize> {
        model
            .meta_graphs()
            .iter()
            .map(|m| (tag_key(m.tags()), m.index()))
            .collect()
    };
    let (old_tags, new_tags) = (by_tags(old), by_tags(new));
    for (key, &i) in &old_tags {
        let Some(old_meta) = old.meta_graph_at(i) else {
            continue;
        };
        match new_tags.get(key).and_then(|&j| new.meta_graph_at(j)) {
            None => {
                changes.push(Change::new(Area::TagSet, ChangeKind::Removed, key).breaking(true))
            }
            Some(new_meta) => compare_meta_graphs(key, &old_meta, &new_meta, changes),
        }
    }
    for key in new_tags.keys().filter(|k| !old_tags.contains_key(*k)) {
        changes.push(Change::new(Area::TagSet, ChangeKind::Added, key));
    }
}

/// A tag set as one string: sorted, comma-separated (`serve,gpu` and
/// `gpu,serve` are the same MetaGraph to TensorFlow's loader).
fn tag_key(tags: &[String]) -> String {
    let sorted: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    sorted.into_iter().collect::<Vec<_>>().join(",")
}

fn compare_meta_graphs(
    tags: &str,
    old: &MetaGraph<'_>,
    new: &MetaGraph<'_>,
    out: &mut Vec<Change>,
) {
    let old_sigs = &old.def().signature_def;
    let new_sigs = &new.def().signature_def;
    for (key, old_sig) in old_sigs.iter().filter(|(k, _)| *k != INIT_OP_SIGNATURE_KEY) {
        let subject = format!("{tags}/{key}");
        let Some(new_sig) = new_sigs.get(key) else {
            out.push(Change::new(Area::Signature, ChangeKind::Removed, subject).breaking(true));
            continue;
        };
        if old_sig.method_name != new_sig.method_name {
            out.push(
                Change::new(Area::Signature, ChangeKind::Changed, subject.clone())
                    .detail(format!(
                        "method {} -> {}",
                        old_sig.method_name, new_sig.method_name
                    ))
                    .breaking(true),
            );
        }
        compare_tensors(&subject, "input", &old_sig.inputs, &new_sig.inputs, out);
        compare_tensors(&subject, "output", &old_sig.outputs, &new_sig.outputs, out);
    }
    for key in new_sigs
        .keys()
        .filter(|k| *k != INIT_OP_SIGNATURE_KEY && !old_sigs.contains_key(*k))
    {
        out.push(Change::new(
            Area::Signature,
            ChangeKind::Added,
            format!("{tags}/{key}"),
        ));
    }

    let (old_ops, new_ops) = (old.ops_used(), new.ops_used());
    for op in old_ops.difference(&new_ops) {
        out.push(Change::new(
            Area::Op,
            ChangeKind::Removed,
            format!("{tags}/{op}"),
        ));
    }
    for op in new_ops.difference(&old_ops) {
        out.push(Change::new(
            Area::Op,
            ChangeKind::Added,
            format!("{tags}/{op}"),
        ));
    }

    let init = |meta: &MetaGraph<'_>| match meta.init_op() {
        Ok(Some(op)) => op.name.to_owned(),
        Ok(None) => String::new(),
        Err(e) => format!("<unreadable: {e}>"),
    };
    let (old_init, new_init) = (init(old), init(new));
    if old_init != new_init {
        let kind = match (old_init.is_empty(), new_init.is_empty()) {
            (true, _) => ChangeKind::Added,
            (_, true) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        let mut change = Change::new(Area::InitOp, kind, tags);
        if kind == ChangeKind::Changed {
            change = change.detail(format!("{old_init} -> {new_init}"));
        } else {
            change = change.detail(format!("{old_init}{new_init}"));
        }
        out.push(change);
    }
}

fn compare_tensors(
    signature: &str,
    side: &str,
    old: &BTreeMap<String, TensorInfo>,
    new: &BTreeMap<String, TensorInfo>,
    out: &mut Vec<Change>,
) {
    let input = side == "input";
    for (alias, old_info) in old {
        let subject = format!("{signature} {side} {alias}");
        let Some(new_info) = new.get(alias) else {
            out.push(
                Change::new(Area::Signature, ChangeKind::Removed, subject)
                    .detail(describe(old_info))
                    .breaking(true),
            );
            continue;
        };
        let mut details = Vec::new();
        let mut breaking = false;
        if old_info.dtype != new_info.dtype {
            details.push(format!(
                "dtype {} -> {}",
                dtype_name(old_info.dtype),
                dtype_name(new_info.dtype)
            ));
            breaking = true;
        }
        if encoding_kind(old_info) != encoding_kind(new_info) {
            details.push(format!(
                "encoding {} -> {}",
                encoding_kind(old_info),
                encoding_kind(new_info)
            ));
            breaking = true;
        }
        let (old_shape, new_shape) = (
            shape_of(old_info.tensor_shape.as_ref()),
            shape_of(new_info.tensor_shape.as_ref()),
        );
        if old_shape != new_shape {
            // Inputs: the new shape must accept every old one. Outputs: the
            // old promise must still hold for every new one.
            let compatible = if input {
                accepts(&new_shape, &old_shape)
            } else {
                accepts(&old_shape, &new_shape)
            };
            let how = match (
                accepts(&new_shape, &old_shape),
                accepts(&old_shape, &new_shape),
            ) {
                (true, false) => "widened",
                (false, true) => "narrowed",
                _ => "changed",
            };
            details.push(format!(
                "shape {} -> {} ({how})",
                shape_text(&old_shape),
                shape_text(&new_shape)
            ));
            breaking |= !compatible;
        }
        if tensor_name(old_info) != tensor_name(new_info) {
            details.push(format!(
                "graph tensor {} -> {}",
                tensor_name(old_info),
                tensor_name(new_info)
            ));
        }
        if !details.is_empty() {
            out.push(
                Change::new(Area::Signature, ChangeKind::Changed, subject)
                    .detail(details.join(", "))
                    .breaking(breaking),
            );
        }
    }
    for (alias, new_info) in new.iter().filter(|(a, _)| !old.contains_key(*a)) {
        out.push(
            Change::new(
                Area::Signature,
                ChangeKind::Added,
                format!("{signature} {side} {alias}"),
            )
            .detail(describe(new_info))
            // A new input is one old clients do not send.
            .breaking(input),
        );
    }
}

/// A shape: `None` for an unknown rank, `-1` for an unknown dimension.
type Shape = Option<Vec<i64>>;

fn shape_of(proto: Option<&TensorShapeProto>) -> Shape {
    match proto {
        None => None,
        Some(p) if p.unknown_rank => None,
        Some(p) => Some(p.dim.iter().map(|d| d.size.max(-1)).collect()),
    }
}

/// Whether every tensor of shape `specific` also has shape `general`.
fn accepts(general: &Shape, specific: &Shape) -> bool {
    match (general, specific) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(g), Some(s)) => {
            g.len() == s.len() && g.iter().zip(s).all(|(&g, &s)| g == -1 || g == s)
        }
    }
}

fn shape_text(shape: &Shape) -> String {
    match shape {
        None => "unknown rank".to_owned(),
        Some(dims) => {
            let dims: Vec<String> = dims.iter().map(i64::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

pub(crate) fn dtype_name(dtype: i32) -> String {
    match DType::from_i32(dtype) {
        Some(d) => d.name().to_owned(),
        None if dtype == 0 => "DT_INVALID".to_owned(),
        None => format!("DataType {dtype}"),
    }
}

fn encoding_kind(info: &TensorInfo) -> &'static str {
    match &info.encoding {
        Some(Encoding::Name(_)) => "dense",
        Some(Encoding::CooSparse(_)) => "coo_sparse",
        Some(Encoding::CompositeTensor(_)) => "composite",
        None => "none",
    }
}

fn tensor_name(info: &TensorInfo) -> &str {
    match &info.encoding {
        Some(Encoding::Name(name)) => name,
        _ => "",
    }
}

fn describe(info: &TensorInfo) -> String {
    format!(
        "{} {}",
        dtype_name(info.dtype),
        shape_text(&shape_of(info.tensor_shape.as_ref()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_accept_what_they_generalise() {
        let s = |d: &[i64]| Some(d.to_vec());
        assert!(accepts(&s(&[-1, 3]), &s(&[2, 3])));
        assert!(!accepts(&s(&[2, 3]), &s(&[-1, 3])));
        assert!(accepts(&None, &s(&[1])));
        assert!(!accepts(&s(&[1]), &None));
        assert!(!accepts(&s(&[-1]), &s(&[-1, 1])));
    }
}
