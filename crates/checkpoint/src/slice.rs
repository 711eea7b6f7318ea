//! Slices of partitioned tensors (`tensorflow/core/framework/tensor_slice.cc`)
//! and the `shape_and_slices` strings of `SaveV2`/`RestoreV2`
//! (`ParseShapeAndSlice` in `tensorflow/core/util/saved_tensor_slice_util.cc`).
//! docs/formats.md, section 6 "Partitioned tensors and slice keys".

use std::fmt;

use savedmodel_proto::tensorflow::{
    TensorSliceProto,
    tensor_slice_proto::{Extent as ExtentProto, extent::HasLengthHack as HasLength},
};

use crate::error::{Error, Result};

/// One dimension of a [`TensorSlice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extent {
    /// The whole dimension (`-` in a slice spec, an empty `Extent` proto).
    Full,
    /// `length` indices starting at `start`.
    Range {
        /// First index.
        start: i64,
        /// Number of indices.
        length: i64,
    },
}

/// A hyper-rectangle of a tensor: one [`Extent`] per dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TensorSlice {
    extents: Vec<Extent>,
}

impl TensorSlice {
    /// A slice from its extents.
    pub fn new(extents: Vec<Extent>) -> Self {
        TensorSlice { extents }
    }

    /// The slice covering all of a rank-`rank` tensor.
    pub fn full(rank: usize) -> Self {
        TensorSlice {
            extents: vec![Extent::Full; rank],
        }
    }

    /// The extents, one per dimension.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.extents.len()
    }

    /// Whether every extent is [`Extent::Full`].
    pub fn is_full(&self) -> bool {
        self.extents.iter().all(|e| *e == Extent::Full)
    }

    /// Parses TensorFlow's slice syntax: per dimension `start,length` or `-`,
    /// joined by `:` (e.g. `0,3:-`). Starts must be non-negative and lengths
    /// positive. The empty string is the slice of a scalar.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |what: String| Error::InvalidArgument {
            tensor: String::new(),
            what: format!("slice spec {spec:?}: {what}"),
        };
        let mut extents = Vec::new();
        for item in spec.split(':').filter(|s| !s.is_empty()) {
            if item == "-" {
                extents.push(Extent::Full);
                continue;
            }
            let parts: Vec<&str> = item.split(',').filter(|s| !s.is_empty()).collect();
            let [start, length] = parts.as_slice() else {
                return Err(bad(format!(
                    "expected a pair of numbers or '-', got {item:?}"
                )));
            };
            let (Ok(start), Ok(length)) = (start.parse::<i64>(), length.parse::<i64>()) else {
                return Err(bad(format!(
                    "expected a pair of numbers or '-', got {item:?}"
                )));
            };
            if start < 0 || length <= 0 {
                return Err(bad(format!(
                    "expected a non-negative start and a positive length, got {start},{length}"
                )));
            }
            extents.push(Extent::Range { start, length });
        }
        Ok(TensorSlice { extents })
    }

    /// Checks the slice against a tensor of shape `full_shape` and returns the
    /// shape of the slice.
    pub fn slice_shape(&self, full_shape: &[i64]) -> Result<Vec<i64>> {
        if self.rank() != full_shape.len() {
            return Err(Error::InvalidArgument {
                tensor: String::new(),
                what: format!(
                    "slice {self} has rank {} but the tensor has rank {}",
                    self.rank(),
                    full_shape.len()
                ),
            });
        }
        self.extents
            .iter()
            .zip(full_shape)
            .map(|(extent, &dim)| match *extent {
                Extent::Full => Ok(dim),
                Extent::Range { start, length } => {
                    let fits = start >= 0
                        && length >= 0
                        && start.checked_add(length).is_some_and(|end| end <= dim);
                    if fits {
                        Ok(length)
                    } else {
                        Err(Error::InvalidArgument {
                            tensor: String::new(),
                            what: format!(
                                "slice {self} does not fit in shape {}",
                                crate::shape_string(full_shape)
                            ),
                        })
                    }
                }
            })
            .collect()
    }

    /// Whether the slice covers all of a tensor of shape `full_shape`
    /// (TensorFlow's `IsFullSlice`: every extent full, or the slice's shape
    /// equals the full shape).
    pub fn covers(&self, full_shape: &[i64]) -> bool {
        if self.is_full() && self.rank() == full_shape.len() {
            return true;
        }
        self.slice_shape(full_shape)
            .is_ok_and(|shape| shape == full_shape)
    }

    /// Per dimension `(start, length)` with full extents resolved against
    /// `full_shape` (which must have the same rank).
    pub(crate) fn bounds(&self, full_shape: &[i64]) -> Vec<(i64, i64)> {
        self.extents
            .iter()
            .zip(full_shape)
            .map(|(extent, &dim)| match *extent {
                Extent::Full => (0, dim),
                Extent::Range { start, length } => (start, length),
            })
            .collect()
    }

    /// Converts from the proto form (an absent length means a full extent).
    pub fn from_proto(proto: &TensorSliceProto) -> Self {
        TensorSlice {
            extents: proto
                .extent
                .iter()
                .map(|e| match e.has_length_hack {
                    Some(HasLength::Length(length)) => Extent::Range {
                        start: e.start,
                        length,
                    },
                    None => Extent::Full,
                })
                .collect(),
        }
    }

    /// Converts to the proto form, as TensorFlow's `TensorSlice::AsProto`:
    /// full extents are empty messages, others carry start and length.
    pub fn to_proto(&self) -> TensorSliceProto {
        TensorSliceProto {
            extent: self
                .extents
                .iter()
                .map(|e| match *e {
                    Extent::Full => ExtentProto::default(),
                    Extent::Range { start, length } => ExtentProto {
                        start,
                        has_length_hack: Some(HasLength::Length(length)),
                    },
                })
                .collect(),
        }
    }
}

impl fmt::Display for TensorSlice {
    /// TensorFlow's slice syntax, e.g. `0,3:-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, extent) in self.extents.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            match extent {
                Extent::Full => f.write_str("-")?,
                Extent::Range { start, length } => write!(f, "{start},{length}")?,
            }
        }
        Ok(())
    }
}

/// Parses one entry of `SaveV2`'s `shape_and_slices`: `"<dim0> <dim1> ...
/// <slice>"`, e.g. `"5 3 0,3:0,3"`. Returns the full shape and the slice,
/// checked against each other. (The empty string, meaning "the whole tensor,
/// not partitioned", is for the caller to handle.)
pub fn parse_shape_and_slice(spec: &str) -> Result<(Vec<i64>, TensorSlice)> {
    let bad = |what: &str| Error::InvalidArgument {
        tensor: String::new(),
        what: format!("shape_and_slice {spec:?}: {what}"),
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let Some((slice_spec, dims)) = parts.split_last().filter(|_| parts.len() >= 2) else {
        return Err(bad("needs at least two elements"));
    };
    let slice = TensorSlice::parse(slice_spec)?;
    let shape = dims
        .iter()
        .map(|d| {
            d.parse::<i64>()
                .ok()
                .filter(|&d| d >= 0)
                .ok_or_else(|| bad("non-numerical or negative dimension"))
        })
        .collect::<Result<Vec<i64>>>()?;
    slice.slice_shape(&shape)?;
    Ok((shape, slice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn parses_shape_and_slice() {
        let (shape, slice) = parse_shape_and_slice("5 3 0,3:0,3").unwrap();
        assert_eq!(shape, [5, 3]);
        assert_eq!(
            slice.extents(),
            [
                Extent::Range {
                    start: 0,
                    length: 3
                },
                Extent::Range {
                    start: 0,
                    length: 3
                }
            ]
        );
        assert_eq!(slice.slice_shape(&shape).unwrap(), [3, 3]);
        assert!(!slice.covers(&shape));
        assert_eq!(slice.to_string(), "0,3:0,3");

        let (shape, slice) = parse_shape_and_slice("5 3 -:1,2").unwrap();
        assert_eq!(slice.slice_shape(&shape).unwrap(), [5, 2]);
        assert!(
            parse_shape_and_slice("5 3 0,5:0,3")
                .unwrap()
                .1
                .covers(&[5, 3])
        );
        assert!(parse_shape_and_slice("5 3 -:-").unwrap().1.covers(&[5, 3]));
    }

    #[test]
    fn rejects_bad_specs() {
        for spec in [
            "",
            "5",
            "5 3",
            "5 x 0,1:0,1",
            "5 3 0,6:0,3",
            "5 3 0,1",
            "5 3 0,0:-",
            "5 3 -1,2:-",
            "5 3 a,b:-",
            "5 3 1:-",
            "5  3 -:-",
        ] {
            assert!(parse_shape_and_slice(spec).is_err(), "{spec:?}");
        }
    }

    #[test]
    fn proto_form_matches_tensorflow() {
        let slice = TensorSlice::new(vec![
            Extent::Full,
            Extent::Range {
                start: 0,
                length: 3,
            },
            Extent::Range {
                start: 2,
                length: 1,
            },
        ]);
        let proto = slice.to_proto();
        // extent{} extent{length:3} extent{start:2 length:1}
        assert_eq!(
            proto.encode_to_vec(),
            [
                0x0a, 0x00, 0x0a, 0x02, 0x10, 0x03, 0x0a, 0x04, 0x08, 0x02, 0x10, 0x01
            ]
        );
        assert_eq!(TensorSlice::from_proto(&proto), slice);
    }
}
