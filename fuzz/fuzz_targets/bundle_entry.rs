//! Index values on arbitrary bytes: the tensor entry, the header, and slice
//! keys (the OrderedCode decoder).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use savedmodel_checkpoint::{
    BundleHeader, TensorEntry, decode_tensor_name_slice, encode_tensor_name_slice,
};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.index");
    if let Ok(entry) = TensorEntry::decode(b"key", data, path) {
        // What decodes re-encodes and decodes to the same entry.
        let again = TensorEntry::decode(b"key", &entry.encode(), path);
        assert_eq!(again.ok(), Some(entry));
    }
    let _ = BundleHeader::decode(data, path);
    if let Some((name, slice)) = decode_tensor_name_slice(data) {
        let key = encode_tensor_name_slice(&name, &slice);
        assert_eq!(decode_tensor_name_slice(&key), Some((name, slice)));
    }
});
