//! Building `tf.Example`s (`tensorflow/core/example/example.proto`), the
//! inputs of classify and regress signatures.

use savedmodel_proto::tensorflow::{
    BytesList, Example, Feature, Features, FloatList, Int64List, feature,
};

/// Builds a `tf.Example` feature by feature.
///
/// ```
/// use savedmodel::ExampleBuilder;
/// let example = ExampleBuilder::new().floats("x", &[0.5, 1.0]).bytes("id", &["a"]).build();
/// assert_eq!(example.features.unwrap().feature.len(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ExampleBuilder {
    features: Features,
}

impl ExampleBuilder {
    /// An example with no features.
    pub fn new() -> Self {
        Self::default()
    }

    fn put(mut self, key: &str, kind: feature::Kind) -> Self {
        self.features
            .feature
            .insert(key.to_owned(), Feature { kind: Some(kind) });
        self
    }

    /// Sets feature `key` to a float list.
    pub fn floats(self, key: &str, values: &[f32]) -> Self {
        self.put(
            key,
            feature::Kind::FloatList(FloatList {
                value: values.to_vec(),
            }),
        )
    }

    /// Sets feature `key` to an int64 list.
    pub fn int64s(self, key: &str, values: &[i64]) -> Self {
        self.put(
            key,
            feature::Kind::Int64List(Int64List {
                value: values.to_vec(),
            }),
        )
    }

    /// Sets feature `key` to a bytes list.
    pub fn bytes<S: AsRef<[u8]>>(self, key: &str, values: &[S]) -> Self {
        self.put(
            key,
            feature::Kind::BytesList(BytesList {
                value: values.iter().map(|v| v.as_ref().to_vec()).collect(),
            }),
        )
    }

    /// The `Example`.
    pub fn build(self) -> Example {
        Example {
            features: Some(self.features),
        }
    }

    /// The serialized `Example` (what a classify or regress signature's
    /// `inputs` tensor holds, one per element).
    pub fn serialize(self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.build())
    }
}
