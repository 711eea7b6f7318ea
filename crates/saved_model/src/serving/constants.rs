//! The names and limits TensorFlow Serving looks for, each declared once.
//!
//! Sources: `tensorflow/cc/saved_model/tag_constants.h` (`kSavedModelTagServe`),
//! `tensorflow/cc/saved_model/signature_constants.h` (method names, aliases,
//! `kDefaultServingSignatureDefKey`), TensorFlow Serving's
//! `tensorflow_serving/servables/tensorflow/saved_model_warmup_util.h`
//! (`WarmupConsts`) and `tensorflow_serving/model_servers/server.cc` (the
//! default `--saved_model_tags`).

/// The tag TensorFlow Serving loads unless started with
/// `--saved_model_tags` (`kSavedModelTagServe`).
pub const SERVE_TAG: &str = "serve";

/// `tensorflow/serving/predict` (`kPredictMethodName`).
pub const PREDICT_METHOD_NAME: &str = "tensorflow/serving/predict";
/// `tensorflow/serving/classify` (`kClassifyMethodName`).
pub const CLASSIFY_METHOD_NAME: &str = "tensorflow/serving/classify";
/// `tensorflow/serving/regress` (`kRegressMethodName`).
pub const REGRESS_METHOD_NAME: &str = "tensorflow/serving/regress";

/// The signature TensorFlow Serving uses when a request names none
/// (`kDefaultServingSignatureDefKey`).
pub const DEFAULT_SERVING_SIGNATURE_DEF_KEY: &str = "serving_default";

/// The input alias of classify signatures (`kClassifyInputs`).
pub const CLASSIFY_INPUTS: &str = "inputs";
/// The class-name output of classify signatures (`kClassifyOutputClasses`).
pub const CLASSIFY_OUTPUT_CLASSES: &str = "classes";
/// The score output of classify signatures (`kClassifyOutputScores`).
pub const CLASSIFY_OUTPUT_SCORES: &str = "scores";
/// The input alias of regress signatures (`kRegressInputs`).
pub const REGRESS_INPUTS: &str = "inputs";
/// The output alias of regress signatures (`kRegressOutputs`).
pub const REGRESS_OUTPUTS: &str = "outputs";

/// The warmup file's name inside `assets.extra/`
/// (`WarmupConsts::kRequestsFileName`).
pub const WARMUP_FILE_NAME: &str = "tf_serving_warmup_requests";
/// The warmup file, relative to the SavedModel directory.
pub const WARMUP_FILE: &str = "assets.extra/tf_serving_warmup_requests";
/// The most warmup records TensorFlow Serving accepts
/// (`WarmupConsts::kMaxNumRecords`): the 1001st fails the load.
pub const MAX_WARMUP_RECORDS: usize = 1000;

/// TensorFlow Serving's session config overrides, relative to the SavedModel
/// directory (`tensorflow_serving/servables/tensorflow/saved_model_config.proto`).
pub const SAVED_MODEL_CONFIG_FILE: &str = "assets.extra/saved_model_config.pb";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::ASSETS_EXTRA_DIRECTORY;

    #[test]
    fn the_warmup_path_is_its_name_under_assets_extra() {
        assert_eq!(
            WARMUP_FILE,
            format!("{ASSETS_EXTRA_DIRECTORY}/{WARMUP_FILE_NAME}")
        );
        assert!(SAVED_MODEL_CONFIG_FILE.starts_with(ASSETS_EXTRA_DIRECTORY));
    }
}
