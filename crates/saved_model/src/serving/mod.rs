//! What TensorFlow Serving expects of a SavedModel, in one place: its
//! constants, its rules for classify and regress signatures and for warmup
//! records, and the TFRecord framing of the warmup file.
//!
//! The rules return [`Problem`]s. The writing side
//! ([`crate::predict_signature`] and its siblings, [`crate::WarmupRequests`],
//! [`crate::SavedModelBuilder`]) refuses what they find; the
//! reading side ([`crate::validate`]) reports it with its [`Severity`].
//!
//! ```
//! use savedmodel::proto::tensorflow::SignatureDef;
//! use savedmodel::serving::{self, Severity};
//!
//! // A classify signature without an `inputs` input: the Classify API
//! // refuses it before running anything.
//! let def = SignatureDef {
//!     method_name: serving::CLASSIFY_METHOD_NAME.to_owned(),
//!     ..Default::default()
//! };
//! let problems = serving::signature_rules(&def, None);
//! assert_eq!(problems[0].severity, Severity::Error);
//! assert!(problems[0].message.contains("exactly one input, 'inputs'"));
//! ```

mod constants;
mod problem;
mod signatures;
mod tfrecord;
mod warmup_rules;

pub use constants::{
    CLASSIFY_INPUTS, CLASSIFY_METHOD_NAME, CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES,
    DEFAULT_SERVING_SIGNATURE_DEF_KEY, MAX_WARMUP_RECORDS, PREDICT_METHOD_NAME, REGRESS_INPUTS,
    REGRESS_METHOD_NAME, REGRESS_OUTPUTS, SAVED_MODEL_CONFIG_FILE, SERVE_TAG, WARMUP_FILE,
    WARMUP_FILE_NAME,
};
pub use problem::{Problem, Severity};
pub(crate) use signatures::shape_string;
pub use signatures::{classify_rules, regress_rules, signature_rules};
pub use tfrecord::{TfRecords, read_tfrecords, write_tfrecord};
pub use warmup_rules::{log_kind_rules, record_count_rules, request_rules};
