//! Static shapes as TensorFlow's shape inference sees them: a known or
//! unknown rank, and dimensions that are known sizes or `-1` (unknown).

use std::fmt;

use savedmodel_proto::tensorflow::TensorShapeProto;

use crate::tensor::shape_proto;

/// A possibly partial shape: `None` rank = unknown rank; a dimension of `-1`
/// = unknown size.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(Option<Vec<i64>>);

impl Shape {
    /// A shape of unknown rank.
    pub fn unknown() -> Self {
        Shape(None)
    }

    /// The shape of a scalar.
    pub fn scalar() -> Self {
        Shape(Some(Vec::new()))
    }

    /// A shape of known rank; `-1` marks an unknown dimension (any other
    /// negative number is read as `-1` too).
    pub fn new(dims: &[i64]) -> Self {
        Shape(Some(
            dims.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
        ))
    }

    /// A shape of rank `rank` with every dimension unknown.
    pub fn unknown_dims(rank: usize) -> Self {
        Shape(Some(vec![-1; rank]))
    }

    /// The dimensions, or `None` when the rank is unknown.
    pub fn dims(&self) -> Option<&[i64]> {
        self.0.as_deref()
    }

    /// The rank, or `None` when unknown.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(Vec::len)
    }

    /// Dimension `i` (`-1` when unknown, also when the rank is unknown).
    pub fn dim(&self, i: usize) -> i64 {
        self.0
            .as_ref()
            .and_then(|d| d.get(i).copied())
            .unwrap_or(-1)
    }

    /// Whether the rank and every dimension are known.
    pub fn is_fully_defined(&self) -> bool {
        self.0.as_ref().is_some_and(|d| d.iter().all(|&x| x >= 0))
    }

    /// Number of elements, when fully defined.
    pub fn num_elements(&self) -> Option<i64> {
        let dims = self.0.as_ref()?;
        dims.iter().try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        )
    }

    /// The `TensorShapeProto`: `unknown_rank: true` when the rank is unknown,
    /// else one `dim` per dimension with `-1` for unknown sizes (what every
    /// `TensorInfo` we write carries: docs/formats.md, section 16 "Loading a
    /// SavedModel: the loader's steps").
    pub fn to_proto(&self) -> TensorShapeProto {
        match &self.0 {
            None => TensorShapeProto {
                dim: Vec::new(),
                unknown_rank: true,
            },
            Some(dims) => shape_proto(dims),
        }
    }

    /// Reads a `TensorShapeProto`.
    pub fn from_proto(proto: &TensorShapeProto) -> Self {
        if proto.unknown_rank {
            Shape::unknown()
        } else {
            Shape::new(&proto.dim.iter().map(|d| d.size).collect::<Vec<_>>())
        }
    }

    /// Whether some tensor could have both shapes.
    pub fn is_compatible_with(&self, other: &Shape) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x < 0 || y < 0 || x == y)
            }
            _ => true,
        }
    }

    /// The most specific shape compatible with both (`None` if they
    /// conflict).
    pub fn merge(&self, other: &Shape) -> Option<Shape> {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => {
                if a.len() != b.len() {
                    return None;
                }
                let mut out = Vec::with_capacity(a.len());
                for (&x, &y) in a.iter().zip(b) {
                    out.push(match (x, y) {
                        (x, y) if x < 0 => y,
                        (x, y) if y < 0 || x == y => x,
                        _ => return None,
                    });
                }
                Some(Shape(Some(out)))
            }
            (Some(_), None) => Some(self.clone()),
            _ => Some(other.clone()),
        }
    }

    /// Numpy-style broadcasting of two shapes (`None` if incompatible).
    pub(crate) fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let (Some(a), Some(b)) = (&self.0, &other.0) else {
            return Some(Shape::unknown());
        };
        let rank = a.len().max(b.len());
        let mut out = vec![0i64; rank];
        for i in 0..rank {
            let x = if i + a.len() >= rank {
                a[i + a.len() - rank]
            } else {
                1
            };
            let y = if i + b.len() >= rank {
                b[i + b.len() - rank]
            } else {
                1
            };
            out[i] = match (x, y) {
                (1, y) => y,
                (x, 1) => x,
                (x, y) if x == y => x,
                (-1, y) => y,
                (x, -1) => x,
                _ => return None,
            };
        }
        Some(Shape(Some(out)))
    }
}

impl fmt::Display for Shape {
    /// `[-1, 784]`, `[]` for a scalar, `<unknown>` for an unknown rank.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("<unknown>"),
            Some(d) => write!(f, "{d:?}"),
        }
    }
}

impl From<&[i64]> for Shape {
    fn from(dims: &[i64]) -> Self {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[i64; N]> for Shape {
    fn from(dims: [i64; N]) -> Self {
        Shape::new(&dims)
    }
}

impl From<Vec<i64>> for Shape {
    fn from(dims: Vec<i64>) -> Self {
        Shape::new(&dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        let a = Shape::new(&[-1, 1]);
        let b = Shape::new(&[3]);
        assert_eq!(a.broadcast(&b), Some(Shape::new(&[-1, 3])));
        assert_eq!(Shape::scalar().broadcast(&b), Some(b.clone()));
        assert_eq!(Shape::new(&[2]).broadcast(&b), None);
        assert_eq!(Shape::unknown().broadcast(&b), Some(Shape::unknown()));
    }

    #[test]
    fn protos() {
        assert!(Shape::unknown().to_proto().unknown_rank);
        let p = Shape::new(&[-1, 784]).to_proto();
        assert_eq!(
            p.dim.iter().map(|d| d.size).collect::<Vec<_>>(),
            vec![-1, 784]
        );
        assert_eq!(Shape::from_proto(&p), Shape::new(&[-1, 784]));
    }

    #[test]
    fn merging() {
        assert_eq!(
            Shape::new(&[-1, 3]).merge(&Shape::new(&[2, -1])),
            Some(Shape::new(&[2, 3]))
        );
        assert_eq!(Shape::new(&[2]).merge(&Shape::new(&[3])), None);
        assert!(Shape::new(&[2, -1]).is_compatible_with(&Shape::new(&[-1, 5])));
    }
}
