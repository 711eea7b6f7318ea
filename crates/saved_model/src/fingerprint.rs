//! `fingerprint.pb`: the hashes TensorFlow records about a SavedModel
//! (docs/formats.md, section 17 "fingerprint.pb"; `tensorflow/cc/saved_model/fingerprinting.cc`,
//! `tensorflow/core/graph/regularization/{simple_delete,util}.cc`).
//!
//! The hash primitive is FarmHash's `Fingerprint64` (`farmhashna::Hash64`
//! in Google's FarmHash, which `tsl/platform/fingerprint.h` calls). It is
//! implemented here rather than taken from the `farmhash` crate because that
//! crate's `fingerprint64` is wrong for inputs longer than 64 bytes whose
//! length is a multiple of 64 (it runs the 64-byte loop once too often;
//! rust-farmhash issue #18, fix PR #16 unmerged since 2024), and serialized
//! protos hit such lengths. The implementation follows the published
//! algorithm and is checked against values TensorFlow computes
//! (`tf.fingerprint(..., method="farmhash64")`) for every length from 0 to
//! 299.

use std::path::Path;

use savedmodel_proto::tensorflow::{
    FingerprintDef, FunctionDefLibrary, GraphDef, SavedModel, VersionDef, attr_value,
};
use savedmodel_proto::{deterministic, message_descriptor, text_format};

use crate::error::{Error, Result};

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

fn fetch64(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

fn fetch32(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(b))
}

fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let a = shift_mix((u ^ v).wrapping_mul(mul));
    let b = shift_mix((v ^ a).wrapping_mul(mul));
    b.wrapping_mul(mul)
}

fn hash_len_0_to_16(s: &[u8]) -> u64 {
    let len = s.len();
    if len >= 8 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        let (a, b, c) = (
            u64::from(s[0]),
            u64::from(s[len >> 1]),
            u64::from(s[len - 1]),
        );
        let y = a.wrapping_add(b << 8);
        let z = (len as u64).wrapping_add(c << 2);
        return shift_mix(y.wrapping_mul(K2) ^ z.wrapping_mul(K0)).wrapping_mul(K2);
    }
    K2
}

fn hash_len_17_to_32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

fn hash_len_33_to_64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len16(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// Two 64-bit values mixed from 32 bytes and two seeds.
fn weak_hash_len32_with_seeds(s: &[u8], at: usize, a: u64, b: u64) -> (u64, u64) {
    let (w, x, y, z) = (
        fetch64(s, at),
        fetch64(s, at + 8),
        fetch64(s, at + 16),
        fetch64(s, at + 24),
    );
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// FarmHash `Fingerprint64` of `s`: TensorFlow's `Fingerprint64`.
pub fn fingerprint64(s: &[u8]) -> u64 {
    let len = s.len();
    if len <= 16 {
        return hash_len_0_to_16(s);
    }
    if len <= 32 {
        return hash_len_17_to_32(s);
    }
    if len <= 64 {
        return hash_len_33_to_64(s);
    }
    const SEED: u64 = 81;
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));
    // Whole 64-byte blocks, leaving 1 to 64 bytes: the last 64 bytes of the
    // input (overlapping the last block) are mixed in afterwards.
    let blocks_end = ((len - 1) / 64) * 64;
    let mut at = 0;
    while at < blocks_end {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, at + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, at + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, at + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(
            s,
            at + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, at + 16)),
        );
        std::mem::swap(&mut z, &mut x);
        at += 64;
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    let last = len - 64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(fetch64(s, last + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(fetch64(s, last + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(fetch64(s, last + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, last, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(
        s,
        last + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, last + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len16(
        hash_len16(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

/// TensorFlow's `FingerprintCat64(a, b)` (`tsl/platform/fingerprint.h`):
/// combines two fingerprints, order-dependent.
pub fn fingerprint_cat64(a: u64, b: u64) -> u64 {
    const K: u64 = 0xc6a4_a793_5bd1_e995;
    let mut r = a ^ K;
    r ^= shift_mix(b.wrapping_mul(K)).wrapping_mul(K);
    r = r.wrapping_mul(K);
    r = shift_mix(r).wrapping_mul(K);
    shift_mix(r)
}

/// The `version.producer` TensorFlow 2.21 writes in `fingerprint.pb`
/// (docs/formats.md, section 17: observed, not explained by the source).
pub const FINGERPRINT_PRODUCER: i32 = 4;

fn encode_error(message: &'static str) -> impl FnOnce(savedmodel_proto::Error) -> Error {
    move |source| Error::Encode { message, source }
}

/// The integer after the last `_` of a function name, as
/// `graph_regularization::GetSuffixUID` reads it (`absl::SimpleAtoi`:
/// surrounding whitespace and a sign allowed).
fn suffix_uid(name: &str) -> Option<i64> {
    let last = name.rsplit('_').next().unwrap_or(name);
    let t = last.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty()
        || !digits
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// `name` with the decimal text of its suffix UID removed from the end
/// (`absl::StripSuffix(name, std::to_string(uid))`).
fn strip_uid(name: &str, uid: i64) -> &str {
    name.strip_suffix(&uid.to_string()).unwrap_or(name)
}

/// The regularized copy of a `GraphDef` that `graph_def_program_hash`
/// hashes (`SimpleDelete`): function-call UIDs and `config_proto` blanked,
/// string constants' values cleared, `library` and `versions` cleared but
/// present.
fn regularize_graph(mut graph: GraphDef) -> GraphDef {
    for node in &mut graph.node {
        if node.op == "PartitionedCall" || node.op == "StatefulPartitionedCall" {
            if let Some(attr_value::Value::Func(func)) =
                node.attr.get_mut("f").and_then(|a| a.value.as_mut())
            {
                if let Some(uid) = suffix_uid(&func.name) {
                    func.name = strip_uid(&func.name, uid).to_owned();
                }
            }
            if let Some(config) = node.attr.get_mut("config_proto") {
                config.value = Some(attr_value::Value::S(Vec::new()));
            }
        }
        if node.op == "Const" {
            let is_string = matches!(
                node.attr.get("dtype").and_then(|a| a.value.as_ref()),
                Some(attr_value::Value::Type(t)) if *t == savedmodel_checkpoint::DType::String.as_i32()
            );
            if is_string {
                if let Some(value) = node.attr.get_mut("value") {
                    value.value = None;
                }
            }
        }
    }
    graph.library = Some(FunctionDefLibrary::default());
    graph.versions = Some(VersionDef::default());
    graph
}

/// Computes the `FingerprintDef` of a SavedModel from the bytes of its
/// `saved_model.pb` and of its `variables/variables.index` (if any), exactly
/// as TensorFlow's `CreateFingerprintDef` does (docs/formats.md, section 17).
/// `uuid` is
/// left empty: it is not part of any hash.
pub fn fingerprint_from_bytes(
    saved_model_pb: &[u8],
    checkpoint_index: Option<&[u8]>,
) -> Result<FingerprintDef> {
    let descriptor =
        message_descriptor::<SavedModel>().map_err(encode_error("tensorflow.SavedModel"))?;
    let canonical = deterministic::canonicalize(&descriptor, saved_model_pb)
        .map_err(encode_error("tensorflow.SavedModel"))?;
    let model: SavedModel =
        prost::Message::decode(saved_model_pb).map_err(|source| Error::Decode {
            path: "saved_model.pb".into(),
            message: "tensorflow.SavedModel",
            source,
        })?;
    fingerprint_of(&model, canonical, checkpoint_index)
}

fn fingerprint_of(
    model: &SavedModel,
    canonical: Vec<u8>,
    checkpoint_index: Option<&[u8]>,
) -> Result<FingerprintDef> {
    let mut def = FingerprintDef {
        saved_model_checksum: fingerprint64(&canonical),
        checkpoint_hash: checkpoint_index.map_or(0, fingerprint64),
        version: Some(VersionDef {
            producer: FINGERPRINT_PRODUCER,
            ..Default::default()
        }),
        ..Default::default()
    };
    let Some(meta) = model.meta_graphs.first() else {
        return Ok(def);
    };
    let graph = regularize_graph(meta.graph_def.clone().unwrap_or_default());
    let graph_bytes = deterministic::encode(&graph).map_err(encode_error("tensorflow.GraphDef"))?;
    def.graph_def_program_hash = fingerprint64(&graph_bytes);

    let mut h = 0u64;
    for (key, sig) in &meta.signature_def {
        // BTreeMap: sorted by key, bytewise, like absl::btree_map<string>.
        let bytes = deterministic::encode(sig).map_err(encode_error("tensorflow.SignatureDef"))?;
        h = fingerprint_cat64(h, fingerprint64(key.as_bytes()));
        h = fingerprint_cat64(h, fingerprint64(&bytes));
    }
    def.signature_def_hash = h;

    if let Some(objects) = &meta.object_graph_def {
        // Ordered by the UID at the end of each function name (as a 32-bit
        // int, first name kept on a tie, like the btree_map<int, string>).
        let mut by_uid: std::collections::BTreeMap<i32, &str> = std::collections::BTreeMap::new();
        for name in objects.concrete_functions.keys() {
            let uid = suffix_uid(name).ok_or_else(|| Error::MetaGraph {
                tags: meta
                    .meta_info_def
                    .as_ref()
                    .map(|m| m.tags.clone())
                    .unwrap_or_default(),
                what: format!("concrete function name `{name}` does not end in an integer"),
            })?;
            by_uid.entry(uid as i32).or_insert(name);
        }
        let mut h = 0u64;
        for (uid, name) in by_uid {
            h = fingerprint_cat64(h, fingerprint64(strip_uid(name, i64::from(uid)).as_bytes()));
            let function = &objects.concrete_functions[name];
            let bytes = deterministic::encode(function)
                .map_err(encode_error("tensorflow.SavedConcreteFunction"))?;
            h = fingerprint_cat64(h, fingerprint64(&bytes));
        }
        def.saved_object_graph_hash = h;
    }
    Ok(def)
}

/// The `FingerprintDef` TensorFlow would compute for the SavedModel in
/// `dir`: from `saved_model.pb` (or `saved_model.pbtxt` when there is no
/// `.pb`) and `variables/variables.index`. `uuid` is left empty.
pub fn fingerprint_def(dir: &Path) -> Result<FingerprintDef> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::Io {
            op: "reading",
            path: path.to_owned(),
            source,
        })
    };
    let index_path = dir.join("variables").join("variables.index");
    let index = match std::fs::read(&index_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                op: "reading",
                path: index_path,
                source,
            });
        }
    };
    let pb = dir.join(savedmodel_proto::SAVED_MODEL_FILENAME_PB);
    if pb.exists() {
        let bytes = read(&pb)?;
        let descriptor =
            message_descriptor::<SavedModel>().map_err(encode_error("tensorflow.SavedModel"))?;
        let canonical = deterministic::canonicalize(&descriptor, &bytes)
            .map_err(encode_error("tensorflow.SavedModel"))?;
        let model: SavedModel =
            prost::Message::decode(bytes.as_slice()).map_err(|source| Error::Decode {
                path: pb.clone(),
                message: "tensorflow.SavedModel",
                source,
            })?;
        return fingerprint_of(&model, canonical, index.as_deref());
    }
    let pbtxt = dir.join(savedmodel_proto::SAVED_MODEL_FILENAME_PBTXT);
    if !pbtxt.exists() {
        return Err(Error::NotASavedModel {
            dir: dir.to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&read(&pbtxt)?).into_owned();
    let model: SavedModel = text_format::parse(&text).map_err(|source| Error::TextFormat {
        path: pbtxt.clone(),
        message: "tensorflow.SavedModel",
        source,
    })?;
    let canonical = deterministic::encode(&model).map_err(encode_error("tensorflow.SavedModel"))?;
    fingerprint_of(&model, canonical, index.as_deref())
}

/// TensorFlow's "singleprint":
/// `<graph_def_program_hash>/<signature_def_hash>/<saved_object_graph_hash>/<checkpoint_hash>`.
pub fn singleprint(def: &FingerprintDef) -> String {
    format!(
        "{}/{}/{}/{}",
        def.graph_def_program_hash,
        def.signature_def_hash,
        def.saved_object_graph_hash,
        def.checkpoint_hash
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farmhash_vectors() {
        assert_eq!(fingerprint64(b""), 0x9ae1_6a3b_2f90_404f);
        assert_eq!(fingerprint64(b"a"), 0xb345_4265_b6df_75e3);
        assert_eq!(fingerprint64(b"hello"), 0xb48b_e5a9_3138_0ce8);
        assert_eq!(fingerprint64(b"serving_default"), 0xdb6f_4286_249c_53ef);
        assert_eq!(
            fingerprint_cat64(0, fingerprint64(b"hello")),
            9_437_734_065_348_176_533
        );
    }

    /// Values computed by TensorFlow 2.21 (`tf.fingerprint(strings,
    /// method="farmhash64")`, little-endian) for prefixes of the bytes
    /// `(7 i + 3) mod 251`.
    #[test]
    fn agrees_with_tensorflow_for_every_length_up_to_299() {
        let data: Vec<u8> = (0..300u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
        for (n, expected) in [
            (1usize, 13_745_158_429_558_087_051u64),
            (3, 4_662_423_180_930_907_492),
            (4, 17_566_270_577_251_613_586),
            (7, 5_759_834_791_111_993_764),
            (8, 907_454_142_650_066_470),
            (16, 9_140_634_717_936_656_744),
            (17, 14_506_534_093_795_057_959),
            (32, 11_907_377_154_618_496_232),
            (33, 14_001_582_926_318_596_329),
            (64, 13_553_471_402_377_765_257),
            (65, 1_211_280_069_609_972_654),
            (128, 14_985_605_507_026_599_427),
            (129, 2_251_973_765_653_130_762),
            (256, 15_512_031_839_152_138_808),
        ] {
            assert_eq!(fingerprint64(&data[..n]), expected, "length {n}");
        }
        let combined = (0..300).fold(0u64, |h, n| fingerprint_cat64(h, fingerprint64(&data[..n])));
        assert_eq!(combined, 3_460_620_511_630_743_316);
    }

    /// BigQuery's FARM_FINGERPRINT (the same function) of `"a" * n`, from
    /// rust-farmhash issue #18: the lengths that crate gets wrong.
    #[test]
    fn multiples_of_64() {
        let a = |n| vec![b'a'; n];
        assert_eq!(fingerprint64(&a(126)) as i64, 6_261_940_804_893_177_895);
        assert_eq!(fingerprint64(&a(127)) as i64, 7_531_535_164_187_061_522);
        assert_eq!(fingerprint64(&a(128)) as i64, -4_747_627_967_806_356_490);
        assert_eq!(fingerprint64(&a(129)) as i64, -266_561_011_801_984_384);
        assert_eq!(fingerprint64(&a(130)) as i64, 7_135_893_960_687_184_995);
    }

    #[test]
    fn suffix_uids() {
        assert_eq!(suffix_uid("__inference_serve_10"), Some(10));
        assert_eq!(strip_uid("__inference_serve_10", 10), "__inference_serve_");
        assert_eq!(suffix_uid("f_007"), Some(7));
        assert_eq!(strip_uid("f_007", 7), "f_00");
        assert_eq!(suffix_uid("no_uid"), None);
        assert_eq!(suffix_uid("42"), Some(42));
    }

    #[test]
    fn regularization_keeps_library_and_versions_present() {
        use savedmodel_proto::tensorflow::{AttrValue, NodeDef};
        let mut node = NodeDef {
            name: "c".into(),
            op: "Const".into(),
            ..Default::default()
        };
        node.attr.insert(
            "dtype".into(),
            AttrValue {
                value: Some(attr_value::Value::Type(7)),
            },
        );
        node.attr.insert(
            "value".into(),
            AttrValue {
                value: Some(attr_value::Value::S(b"x".to_vec())),
            },
        );
        let g = regularize_graph(GraphDef {
            node: vec![node],
            ..Default::default()
        });
        assert_eq!(g.node[0].attr["value"].value, None);
        let bytes = deterministic::encode(&g).unwrap();
        assert!(bytes.ends_with(&[0x12, 0x00, 0x22, 0x00]));
    }
}
