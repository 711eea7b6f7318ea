//! The DT_STRING data decoder on arbitrary bytes. The first byte picks the
//! byte order and the element count, the rest is the tensor's data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use savedmodel_checkpoint::Endianness;
use savedmodel_checkpoint::string_tensor::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let endianness = if control & 0x80 != 0 {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let num_elements = u64::from(control & 0x7f);
    if let Ok(decoded) = decode(rest, num_elements, endianness, true) {
        // What decodes re-encodes to bytes that decode to the same
        // elements. (Not always to the same bytes: a length may be an
        // overlong varint, `80 00` for 0, which TensorFlow's decoder
        // accepts too; and an empty input is TensorFlow's zero-size entry.)
        let (bytes, _) = encode(&decoded.elements, endianness);
        let again = decode(&bytes, num_elements, endianness, true).map(|d| d.elements);
        assert_eq!(again.ok(), Some(decoded.elements));
    }
});
