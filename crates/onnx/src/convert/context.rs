//! The conversion's state: every ONNX value seen so far, in the layouts it
//! exists in, and the TensorFlow graph being built.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use savedmodel_graph::{Attr, DType, Graph, Output, Shape, Tensor};

use super::ConvertOptions;
use super::fuse::Fusions;
use super::weights;
use crate::proto::TensorProto;
use crate::{Carried, Error, NodeView, OnnxModel, Result};

/// One input or output of the signature.
#[derive(Clone, Debug)]
pub struct SignatureTensor {
    /// The ONNX graph's name for it.
    pub onnx_name: String,
    /// The signature key: the ONNX name made TensorFlow-legal
    /// ([`super::signature_key`]).
    pub key: String,
    /// The tensor in the TensorFlow graph.
    pub tensor: Output,
    /// The ONNX type, when TensorFlow carries it in another type (the
    /// tensor's dtype): see [`Carried`].
    pub carried: Option<Carried>,
}

/// An ONNX value: its dtype and logical (ONNX-layout) shape, and where it
/// exists. At least one of `constant`, `weight`, `plain` and
/// `channels_last` is set.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) dtype: DType,
    /// The shape in ONNX's layout (-1 for unknown dimensions).
    pub(crate) shape: Shape,
    /// The value, when it is known at conversion time.
    pub(crate) constant: Option<Tensor>,
    /// A large initializer, not yet a variable.
    pub(crate) weight: Option<String>,
    /// The value in ONNX's layout.
    pub(crate) plain: Option<Output>,
    /// The value channels last: ONNX's `[N, C, d1, ..., dk]` stored as
    /// `[N, d1, ..., dk, C]`.
    pub(crate) channels_last: Option<Output>,
}

/// The permutation that takes a channels-first tensor of `rank` to
/// channels last: `[0, 2, ..., rank-1, 1]`.
pub(crate) fn to_channels_last(rank: usize) -> Vec<i64> {
    let mut perm = vec![0i64];
    perm.extend(2..rank as i64);
    perm.push(1);
    perm
}

/// The permutation that takes a channels-last tensor of `rank` back to
/// channels first: `[0, rank-1, 1, ..., rank-2]`.
pub(crate) fn to_channels_first(rank: usize) -> Vec<i64> {
    let mut perm = vec![0i64, rank as i64 - 1];
    perm.extend(1..rank as i64 - 1);
    perm
}

/// `shape` with its dimensions permuted (`out[i] = shape[perm[i]]`).
pub(crate) fn permute_shape(shape: &Shape, perm: &[i64]) -> Shape {
    match shape.dims() {
        Some(d) if d.len() == perm.len() => {
            let dims: Option<Vec<i64>> = perm
                .iter()
                .map(|&p| usize::try_from(p).ok().and_then(|p| d.get(p).copied()))
                .collect();
            dims.map_or_else(|| Shape::unknown_dims(perm.len()), |dims| Shape::new(&dims))
        }
        Some(_) => Shape::unknown(),
        None => Shape::unknown_dims(perm.len()),
    }
}

/// The conversion state.
pub(crate) struct Ctx {
    model: Arc<OnnxModel>,
    pub(crate) options: ConvertOptions,
    graph: Graph,
    values: HashMap<String, Slot>,
    /// Variables made from initializers, by (initializer, channels-last
    /// filter layout).
    weights: HashMap<(String, weights::Layout), Output>,
    /// The values of an ONNX type TensorFlow carries in another (their
    /// slot's dtype is the carrier): only `Cast`, `CastLike` and `Identity`
    /// take them (`ops::convert_node` checks).
    carried: HashMap<String, Carried>,
    /// The values that are ONNX sequences of tensors: a `TensorList`
    /// (`DT_VARIANT` scalar) in the graph, with their elements' dtype and
    /// shape (what every element is known to share).
    sequences: HashMap<String, (DType, Shape)>,
    /// The values that are empty ONNX optionals (an `Optional` without an
    /// input): they have no slot; `OptionalHasElement` reads them as false.
    empty_optionals: HashSet<String>,
    /// The fusions planned for the model (shared with bodies' contexts).
    pub(crate) fusions: Arc<Fusions>,
    /// The node being converted, for errors.
    node: String,
}

impl Ctx {
    pub(crate) fn new(
        model: Arc<OnnxModel>,
        options: ConvertOptions,
        fusions: Arc<Fusions>,
    ) -> Self {
        Self {
            fusions,
            model,
            options,
            graph: Graph::new(),
            values: HashMap::new(),
            weights: HashMap::new(),
            carried: HashMap::new(),
            sequences: HashMap::new(),
            empty_optionals: HashSet::new(),
            node: String::new(),
        }
    }

    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, to add functions or nodes that have no ONNX value.
    pub(crate) fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// A context for converting a subgraph (a control-flow body) into a
    /// graph of its own, which becomes a function: the same model, every
    /// initializer a constant (a function cannot hold variables), the
    /// ONNX layout at its arguments.
    pub(crate) fn for_body(&self) -> Ctx {
        let mut options = self.options.clone();
        options.const_limit = usize::MAX;
        options.input_layout_nhwc = false;
        options.dynamic_batch = false;
        Ctx::new(Arc::clone(&self.model), options, Arc::clone(&self.fusions))
    }

    /// Defines ONNX value `name` as a new `Placeholder` `key` (a function
    /// argument) of `dtype` and `shape`, in the ONNX layout.
    pub(crate) fn add_arg(
        &mut self,
        name: &str,
        key: &str,
        dtype: DType,
        shape: Shape,
    ) -> Result<Output> {
        let tensor = self
            .graph
            .placeholder(key, dtype, shape.clone())
            .map_err(|e| self.build_error(e))?;
        self.set_plain(name, tensor.clone(), shape);
        Ok(tensor)
    }

    /// Defines ONNX value `name` as the same value as `existing` (in the
    /// same layouts).
    pub(crate) fn alias(&mut self, name: &str, existing: &str) -> Result<()> {
        let slot = self.slot(existing)?.clone();
        self.values.insert(name.to_owned(), slot);
        if let Some(&c) = self.carried.get(existing) {
            self.carried.insert(name.to_owned(), c);
        }
        if let Some(e) = self.sequences.get(existing).cloned() {
            self.sequences.insert(name.to_owned(), e);
        }
        Ok(())
    }

    /// Marks ONNX value `name` as a sequence (a `TensorList`) of tensors of
    /// `dtype` and `shape`.
    pub(crate) fn set_sequence(&mut self, name: &str, dtype: DType, shape: Shape) {
        self.sequences.insert(name.to_owned(), (dtype, shape));
    }

    /// The element dtype and shape of sequence `name`, if it is one.
    pub(crate) fn sequence(&self, name: &str) -> Option<(DType, Shape)> {
        self.sequences.get(name).cloned()
    }

    /// Marks ONNX value `name` as an empty optional (it holds no value).
    pub(crate) fn set_empty_optional(&mut self, name: &str) {
        self.empty_optionals.insert(name.to_owned());
    }

    /// Whether ONNX value `name` is an empty optional.
    pub(crate) fn is_empty_optional(&self, name: &str) -> bool {
        self.empty_optionals.contains(name)
    }

    /// `name` is no longer a sequence (its slot was redefined as a tensor).
    pub(crate) fn clear_sequence(&mut self, name: &str) {
        self.sequences.remove(name);
    }

    /// Marks ONNX value `name` as being of type `carried`, held in its
    /// slot's dtype (the carrier).
    pub(crate) fn set_carried(&mut self, name: &str, carried: Carried) {
        self.carried.insert(name.to_owned(), carried);
    }

    /// The ONNX type TensorFlow carries value `name` in, if it is one.
    pub(crate) fn carried(&self, name: &str) -> Option<Carried> {
        self.carried.get(name).copied()
    }

    /// Whether ONNX value `name` is defined.
    pub(crate) fn is_defined(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub(crate) fn into_graph(self) -> Graph {
        self.graph
    }

    /// Starts converting `node`: errors from now on name it.
    pub(crate) fn begin_node(&mut self, node: &NodeView<'_>) {
        self.node = node.label();
    }

    /// A conversion error about the current node.
    pub(crate) fn error(&self, detail: impl Into<String>) -> Error {
        Error::Convert {
            model: self.model.name().to_owned(),
            node: self.node.clone(),
            detail: detail.into(),
        }
    }

    /// Wraps a graph builder error.
    pub(crate) fn build_error(&self, source: savedmodel_graph::Error) -> Error {
        Error::Build {
            model: self.model.name().to_owned(),
            source,
        }
    }

    /// A TensorFlow node name for the current ONNX node: its name made
    /// legal, or the op type.
    pub(crate) fn node_name(&self, node: &NodeView<'_>) -> String {
        let name = node.proto().name();
        let base = if name.is_empty() {
            node.op_type().to_owned()
        } else {
            super::signature_key(name)
        };
        if savedmodel_graph::is_valid_node_name(&base) {
            base
        } else {
            format!("n{base}")
        }
    }

    pub(crate) fn add_initializer(&mut self, init: &TensorProto) -> Result<()> {
        let view = self.model.tensor(init)?;
        let dims: Vec<i64> = view.shape.iter().map(|&d| d as i64).collect();
        let size = view.bytes().map_or(0, <[u8]>::len);
        let slot = if size > self.options.const_limit && view.bytes().is_some() {
            Slot {
                dtype: view.dtype,
                shape: Shape::new(&dims),
                constant: None,
                weight: Some(init.name().to_owned()),
                plain: None,
                channels_last: None,
            }
        } else {
            let tensor = weights::to_tensor(&view).map_err(|e| Error::Convert {
                model: self.model.name().to_owned(),
                node: format!("initializer {:?}", init.name()),
                detail: e,
            })?;
            Slot {
                dtype: view.dtype,
                shape: Shape::new(&dims),
                constant: Some(tensor),
                weight: None,
                plain: None,
                channels_last: None,
            }
        };
        self.values.insert(init.name().to_owned(), slot);
        Ok(())
    }

    pub(crate) fn add_input(
        &mut self,
        name: &str,
        dtype: DType,
        shape: Shape,
        carried: Option<Carried>,
    ) -> Result<SignatureTensor> {
        let key = super::signature_key(name);
        let rank = shape.rank();
        let nhwc = self.options.input_layout_nhwc && rank == Some(4);
        let stored = if nhwc {
            permute_shape(&shape, &to_channels_last(4))
        } else {
            shape.clone()
        };
        let tensor = self
            .graph
            .placeholder(&key, dtype, stored)
            .map_err(|e| self.build_error(e))?;
        let slot = Slot {
            dtype,
            shape,
            constant: None,
            weight: None,
            plain: (!nhwc).then(|| tensor.clone()),
            channels_last: nhwc.then(|| tensor.clone()),
        };
        self.values.insert(name.to_owned(), slot);
        if let Some(c) = carried {
            self.set_carried(name, c);
        }
        Ok(SignatureTensor {
            onnx_name: name.to_owned(),
            key,
            tensor,
            carried,
        })
    }

    pub(crate) fn add_output(
        &mut self,
        name: &str,
        declared: Option<(DType, Shape, Option<Carried>)>,
    ) -> Result<SignatureTensor> {
        self.node = format!("graph output {name:?}");
        let key = super::signature_key(name);
        let slot = self.slot(name)?.clone();
        let mut value = self.plain(name)?;
        // The signature's shape: what the converter inferred, refined by the
        // model's declaration where it is more precise.
        let mut shape = slot.shape.clone();
        let carried = self.carried(name);
        if let Some((dtype, declared, declared_carried)) = declared {
            if dtype != slot.dtype || declared_carried != carried {
                let describe = |d: DType, c: Option<Carried>| match c {
                    Some(c) => c.describe(),
                    None => d.to_string(),
                };
                return Err(self.error(format!(
                    "the model declares {}, the converted graph computes {}",
                    describe(dtype, declared_carried),
                    describe(slot.dtype, carried)
                )));
            }
            shape = shape.merge(&declared).unwrap_or(declared);
        }
        // A named Identity so that the signature's tensor is stable and
        // carries the ONNX name where it is legal.
        value = self
            .graph
            .op("Identity", &key)
            .input(&value)
            .attr("T", slot.dtype)
            .output(slot.dtype, shape)
            .build_output()
            .map_err(|e| self.build_error(e))?;
        Ok(SignatureTensor {
            onnx_name: name.to_owned(),
            key,
            tensor: value,
            carried,
        })
    }

    /// The slot of ONNX value `name`.
    pub(crate) fn slot(&self, name: &str) -> Result<&Slot> {
        self.values.get(name).ok_or_else(|| {
            if self.is_empty_optional(name) {
                self.error(format!(
                    "value {name:?} is an empty optional: only OptionalHasElement takes one"
                ))
            } else {
                self.error(format!("value {name:?} is not defined"))
            }
        })
    }

    /// The constant value of `name`, if known at conversion time.
    pub(crate) fn constant(&self, name: &str) -> Option<&Tensor> {
        self.values.get(name).and_then(|s| s.constant.as_ref())
    }

    /// Whether `name` exists channels last and not (yet) in ONNX layout.
    pub(crate) fn is_channels_last(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|s| s.channels_last.is_some() && s.plain.is_none())
    }

    /// Defines `name` as a constant.
    pub(crate) fn set_constant(&mut self, name: &str, value: Tensor) {
        let shape = Shape::new(value.shape());
        self.values.insert(
            name.to_owned(),
            Slot {
                dtype: value.dtype(),
                shape,
                constant: Some(value),
                weight: None,
                plain: None,
                channels_last: None,
            },
        );
    }

    /// Defines `name` as `output`, in ONNX layout, with logical shape
    /// `shape` (merged with what the graph builder inferred).
    pub(crate) fn set_plain(&mut self, name: &str, output: Output, shape: Shape) {
        let shape = shape.merge(output.shape()).unwrap_or(shape);
        self.values.insert(
            name.to_owned(),
            Slot {
                dtype: output.dtype(),
                shape,
                constant: None,
                weight: None,
                plain: Some(output),
                channels_last: None,
            },
        );
    }

    /// Defines `name` as `output` stored channels last; `shape` is the
    /// logical (ONNX-layout) shape.
    pub(crate) fn set_channels_last(&mut self, name: &str, output: Output, shape: Shape) {
        self.values.insert(
            name.to_owned(),
            Slot {
                dtype: output.dtype(),
                shape,
                constant: None,
                weight: None,
                plain: None,
                channels_last: Some(output),
            },
        );
    }

    /// `name` as a TensorFlow tensor in ONNX layout: a `Const` for a known
    /// value, a variable for a large initializer, a `Transpose` of the
    /// channels-last form (built once).
    pub(crate) fn plain(&mut self, name: &str) -> Result<Output> {
        let slot = self.slot(name)?.clone();
        if let Some(out) = &slot.plain {
            return Ok(out.clone());
        }
        let out = if let Some(value) = &slot.constant {
            let base = format!("{}/const", super::signature_key(name));
            self.graph
                .constant(&base, value.clone())
                .map_err(|e| self.build_error(e))?
        } else if let Some(init) = &slot.weight {
            self.weight(init, weights::Layout::AsIs)?
        } else if let Some(cl) = &slot.channels_last {
            let rank = slot
                .shape
                .rank()
                .ok_or_else(|| self.error(format!("value {name:?} has an unknown rank")))?;
            let perm = to_channels_first(rank);
            let base = format!("{}/to_nchw", super::signature_key(name));
            self.transpose(&base, cl, &perm)?
        } else {
            return Err(self.error(format!("value {name:?} has no tensor")));
        };
        if let Some(s) = self.values.get_mut(name) {
            s.plain = Some(out.clone());
        }
        Ok(out)
    }

    /// `name` stored channels last (for a value of rank 3 or more): its
    /// channels-last form, a transposed constant, or a `Transpose` of the
    /// ONNX-layout tensor (built once).
    pub(crate) fn channels_last(&mut self, name: &str) -> Result<Output> {
        let slot = self.slot(name)?.clone();
        if let Some(out) = &slot.channels_last {
            return Ok(out.clone());
        }
        let rank = slot
            .shape
            .rank()
            .ok_or_else(|| self.error(format!("value {name:?} has an unknown rank")))?;
        let perm = to_channels_last(rank);
        let base = format!("{}/to_nhwc", super::signature_key(name));
        let out = if let Some(value) = &slot.constant {
            let t = super::constant::transpose(value, &perm).map_err(|e| self.error(e))?;
            self.graph
                .constant(&base, t)
                .map_err(|e| self.build_error(e))?
        } else {
            let plain = self.plain(name)?;
            self.transpose(&base, &plain, &perm)?
        };
        if let Some(s) = self.values.get_mut(name) {
            s.channels_last = Some(out.clone());
        }
        Ok(out)
    }

    /// The variable holding initializer `init` in `layout` (made once).
    pub(crate) fn weight(&mut self, init: &str, layout: weights::Layout) -> Result<Output> {
        if let Some(out) = self.weights.get(&(init.to_owned(), layout)) {
            return Ok(out.clone());
        }
        let proto = self
            .model
            .graph()
            .initializer(init)
            .ok_or_else(|| self.error(format!("initializer {init:?} is missing")))?;
        let value = weights::variable_value(&self.model, proto, layout)?;
        let base = match layout {
            weights::Layout::AsIs => super::signature_key(init),
            _ => format!("{}_hwio", super::signature_key(init)),
        };
        let var = self
            .graph
            .variable(&base, value)
            .map_err(|e| self.build_error(e))?;
        let out = var.value().clone();
        self.weights.insert((init.to_owned(), layout), out.clone());
        Ok(out)
    }

    /// A new variable holding initializer `init` in `layout`, its leading
    /// axis (a filter's output channels, in ONNX's layout) multiplied by
    /// `scale` when the checkpoint is written: a convolution with a
    /// normalization folded in (`fuse.rs`). Never shared with other uses of
    /// `init`.
    pub(crate) fn scaled_weight(
        &mut self,
        init: &str,
        layout: weights::Layout,
        scale: Arc<[f64]>,
    ) -> Result<Output> {
        let proto = self
            .model
            .graph()
            .initializer(init)
            .ok_or_else(|| self.error(format!("initializer {init:?} is missing")))?;
        let value = weights::scaled_variable_value(&self.model, proto, layout, scale)?;
        let base = format!("{}_folded", super::signature_key(init));
        let var = self
            .graph
            .variable(&base, value)
            .map_err(|e| self.build_error(e))?;
        Ok(var.value().clone())
    }

    /// The elements of ONNX value `name` as f64, when known at conversion
    /// time: a constant, or an initializer held as a variable with at most
    /// `max_elements` elements (read from the model).
    pub(crate) fn known_f64(&self, name: &str, max_elements: usize) -> Result<Option<Vec<f64>>> {
        let slot = self.slot(name)?;
        let tensor = if let Some(c) = &slot.constant {
            std::borrow::Cow::Borrowed(c)
        } else if let Some(init) = &slot.weight {
            let elements = slot.shape.dims().map(|d| d.iter().product::<i64>());
            if !elements.is_some_and(|n| (0..=max_elements as i64).contains(&n)) {
                return Ok(None);
            }
            let Some(proto) = self.model.graph().initializer(init) else {
                return Ok(None);
            };
            let view = self.model.tensor(proto)?;
            match weights::to_tensor(&view) {
                Ok(t) => std::borrow::Cow::Owned(t),
                Err(_) => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        Ok(super::constant::to_f64(&tensor).ok())
    }

    /// A `Transpose` node.
    pub(crate) fn transpose(&mut self, name: &str, x: &Output, perm: &[i64]) -> Result<Output> {
        let perm_t = self.const_i32(&format!("{name}/perm"), perm)?;
        let shape = permute_shape(x.shape(), perm);
        self.graph
            .op("Transpose", name)
            .input(x)
            .input(&perm_t)
            .attr("T", x.dtype())
            .attr("Tperm", DType::Int32)
            .output(x.dtype(), shape)
            .build_output()
            .map_err(|e| self.build_error(e))
    }

    /// An int32 `Const` vector.
    pub(crate) fn const_i32(&mut self, name: &str, values: &[i64]) -> Result<Output> {
        let v: Vec<i32> = values
            .iter()
            .map(|&x| i32::try_from(x).map_err(|_| self.error(format!("{x} does not fit int32"))))
            .collect::<Result<_>>()?;
        self.graph
            .constant(name, Tensor::vector(&v))
            .map_err(|e| self.build_error(e))
    }

    /// An int64 `Const` vector.
    pub(crate) fn const_i64(&mut self, name: &str, values: &[i64]) -> Result<Output> {
        self.graph
            .constant(name, Tensor::vector(values))
            .map_err(|e| self.build_error(e))
    }

    /// A scalar `Const` of `dtype` holding `value` (floats and integers).
    pub(crate) fn const_scalar(&mut self, name: &str, dtype: DType, value: f64) -> Result<Output> {
        let t = super::constant::scalar(dtype, value).map_err(|e| self.error(e))?;
        self.graph
            .constant(name, t)
            .map_err(|e| self.build_error(e))
    }

    /// A `Const` holding `value`.
    pub(crate) fn const_tensor(&mut self, name: &str, value: Tensor) -> Result<Output> {
        self.graph
            .constant(name, value)
            .map_err(|e| self.build_error(e))
    }

    /// Builds one TensorFlow node with the output dtypes TensorFlow's op
    /// definition gives; `shapes` are the outputs' shapes where known.
    pub(crate) fn op(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&Output],
        attrs: &[(&str, Attr)],
        shapes: Vec<Shape>,
    ) -> Result<Vec<Output>> {
        let mut b = self.graph.op(op_type, name);
        for i in inputs {
            b = b.input(i);
        }
        for (k, v) in attrs {
            b = b.attr(k, v.clone());
        }
        let op = b
            .infer_outputs(shapes)
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(op.outputs().to_vec())
    }

    /// [`op`](Self::op) for an op with one output.
    pub(crate) fn op1(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&Output],
        attrs: &[(&str, Attr)],
        shape: Shape,
    ) -> Result<Output> {
        let outs = self.op(op_type, name, inputs, attrs, vec![shape])?;
        outs.into_iter()
            .next()
            .ok_or_else(|| self.error(format!("{op_type} gave no output")))
    }

    /// The values of the ONNX node's inputs that must be known at
    /// conversion time (axes, shapes, pads given as inputs), as int64.
    pub(crate) fn const_ints(&self, name: &str) -> Result<Vec<i64>> {
        let t = self.constant(name).ok_or_else(|| {
            self.error(format!(
                "input {name:?} must be known when the model is converted (a constant or computed from constants)"
            ))
        })?;
        super::constant::to_i64(t).map_err(|e| self.error(e))
    }
}
