//! savedmodel-checkpoint against TensorFlow 2.21: our files are
//! byte-identical to `SaveV2` / `MergeV2Checkpoints` output, TensorFlow
//! restores what we write (partitioned, sharded, several data files,
//! big-endian), and we read
//! exactly what TensorFlow writes (fixtures included, with their snappy
//! index blocks).

use std::fs;
use std::path::{Path, PathBuf};

use savedmodel_checkpoint::ALL_DTYPES;
use savedmodel_checkpoint::{
    BundleReader, BundleWriter, DType, Endianness, ShardedBundleWriter, TensorBytes, TensorData,
    TensorSlice, TensorView, WriterOptions, data_file_name, index_file_name, parse_shape_and_slice,
};
use savedmodel_tests::paths::serving_fixtures;
use savedmodel_tests::tf::{Tensor, ok, oracle, request, tensors};
use serde_json::{Value, json};

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Element bytes for `dtype` that every consumer keeps bit for bit: no NaN
/// or infinity patterns for float types (the top byte of each number is
/// masked), in-range values for bool and the sub-byte types.
fn element_bytes(dtype: DType, n: usize, seed: u64) -> Vec<u8> {
    let size = dtype.element_size().unwrap();
    let unit = dtype.swap_unit().unwrap();
    let mut data = noise(seed, n * size);
    for chunk in data.chunks_mut(unit) {
        let last = chunk.len() - 1;
        chunk[last] &= match dtype {
            DType::Bool | DType::Int2 | DType::UInt2 => 0x01,
            DType::Int4 | DType::UInt4 | DType::Float4E2M1FN => 0x07,
            _ => 0x3f,
        };
    }
    data
}

/// A tensor to store, both as our writer's input and as the oracle's JSON.
#[derive(Clone)]
struct Item {
    tensor: Tensor,
    dtype: DType,
}

fn numeric(name: &str, dtype: DType, shape: &[i64], seed: u64) -> Item {
    let n = shape.iter().product::<i64>() as usize;
    Item {
        tensor: Tensor::from_bytes(name, dtype.name(), shape, element_bytes(dtype, n, seed)),
        dtype,
    }
}

fn strings(name: &str, shape: &[i64], values: &[Vec<u8>]) -> Item {
    Item {
        tensor: Tensor::from_strings(name, shape, values),
        dtype: DType::String,
    }
}

/// Every dtype SaveV2 accepts (as vectors, scalars and empty tensors) and
/// strings of every kind, in a deliberately unsorted order.
fn every_kind() -> Vec<Item> {
    let mut items = Vec::new();
    for (i, dtype) in ALL_DTYPES.iter().copied().enumerate() {
        if dtype.element_size().is_none() {
            continue;
        }
        let seed = i as u64 * 10;
        let name = dtype.numpy_name();
        items.push(numeric(&format!("z_{name}/matrix"), dtype, &[3, 5], seed));
        items.push(numeric(&format!("a_{name}/scalar"), dtype, &[], seed + 1));
        items.push(numeric(
            &format!("m_{name}/empty"),
            dtype,
            &[2, 0],
            seed + 2,
        ));
    }
    let big = noise(99, 70_000);
    items.push(strings("s/scalar", &[], &[b"hello".to_vec()]));
    items.push(strings("s/empty_tensor", &[0], &[]));
    items.push(strings("s/empty_strings", &[3], &[vec![], vec![], vec![]]));
    items.push(strings(
        "s/not_utf8",
        &[2, 2],
        &[
            vec![0xff, 0xfe],
            vec![0x00],
            vec![0x80, 0x00, 0x81],
            b"ok".to_vec(),
        ],
    ));
    items.push(strings("s/over_64k", &[2], &[big, b"x".to_vec()]));
    items
}

fn add_item(writer: &mut BundleWriter, item: &Item) {
    let t = &item.tensor;
    match &t.strings {
        Some(values) => writer.add_strings(&t.name, &t.shape, values).unwrap(),
        None => writer
            .add(&t.name, item.dtype, &t.shape, t.bytes())
            .unwrap(),
    }
}

/// `count` float tensors of 4 KiB named `<prefix>/NNNN`, in a shuffled
/// name order (`count` must not be a multiple of 7).
fn shuffled_floats(prefix: &str, count: usize) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let name = format!("{prefix}/{:04}", (i * 7) % count);
            numeric(&name, DType::Float, &[1024], i as u64)
        })
        .collect()
}

/// The items as one `add_batch`.
fn batch_of(items: &[Item]) -> Vec<TensorBytes<'_>> {
    items
        .iter()
        .map(|item| {
            let t = &item.tensor;
            TensorBytes::new(&t.name, item.dtype, &t.shape, t.bytes())
        })
        .collect()
}

/// Writes `items` with our writer, in order.
fn write_ours(prefix: &Path, items: &[Item], options: WriterOptions) {
    let mut writer = BundleWriter::create_with(prefix, options).unwrap();
    for item in items {
        add_item(&mut writer, item);
    }
    writer.finish().unwrap();
}

fn tensors_of(items: &[Item]) -> Vec<Tensor> {
    items.iter().map(|i| i.tensor.clone()).collect()
}

/// Oracle requests for what TensorFlow's sharded saver does: `SaveV2` of
/// each part's tensors, in order, under `<prefix>_temp/`, then
/// `MergeV2Checkpoints` into `prefix` (whose parent is created here:
/// `SaveV2` creates only the last directory of a prefix).
fn save_parts_and_merge(prefix: &Path, parts: &[Vec<Tensor>]) -> Vec<Value> {
    if let Some(dir) = prefix.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    let count = parts.len();
    let paths: Vec<PathBuf> = (0..count)
        .map(|s| {
            let mut temp = prefix.as_os_str().to_owned();
            temp.push(format!("_temp/part-{s:05}-of-{count:05}"));
            PathBuf::from(temp)
        })
        .collect();
    let mut requests: Vec<Value> = paths
        .iter()
        .zip(parts)
        .map(|(path, tensors)| request::save_v2(path, tensors))
        .collect();
    let path_refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    requests.push(request::merge_v2(&path_refs, prefix));
    requests
}

/// Asserts that two bundles' `.index` and data files are the same bytes.
fn assert_same_files(ours: &Path, theirs: &Path, num_shards: u32) {
    let mut files = vec![index_file_name(Path::new(""))];
    files.extend((0..num_shards).map(|i| data_file_name(Path::new(""), i, num_shards)));
    for suffix in files {
        let suffix = suffix.to_string_lossy().into_owned();
        let read = |prefix: &Path| {
            let path = PathBuf::from(format!("{}{suffix}", prefix.display()));
            fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        };
        let (a, b) = (read(ours), read(theirs));
        if a != b {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            panic!(
                "{suffix}: ours has {} bytes, TensorFlow's {}; first difference at {first:?}",
                a.len(),
                b.len()
            );
        }
    }
}

/// Our reader's view as the oracle's tensor type.
fn as_tensor(name: &str, view: &TensorView<'_>) -> Tensor {
    match view.data() {
        TensorData::Bytes(bytes) => {
            Tensor::from_bytes(name, view.dtype().name(), view.shape(), bytes.to_vec())
        }
        TensorData::Strings(values) => {
            let mut t = Tensor::from_strings(name, view.shape(), values);
            t.dtype = view.dtype().name().to_owned();
            t
        }
    }
}

/// Every tensor (partitioned ones whole, slices skipped) our reader finds,
/// sorted by name, as TensorFlow's `read_checkpoint` lists them.
fn read_ours(prefix: &Path) -> Vec<Tensor> {
    let reader = BundleReader::open(prefix).unwrap();
    let mut out = Vec::new();
    for item in reader.entries() {
        let (key, entry) = item.unwrap();
        if key.first() == Some(&0) {
            continue; // a slice key
        }
        let name = String::from_utf8(key.clone()).unwrap();
        let view = reader.tensor_for_entry(&key, &entry).unwrap();
        out.push(as_tensor(&name, &view));
    }
    out
}

fn as_list(response: &Value) -> &[Value] {
    response
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of responses: {response}"))
}

#[test]
fn our_bundles_are_byte_identical_to_save_v2() {
    let tmp = tempfile::tempdir().unwrap();
    let kinds = every_kind();
    // 10,000 small tensors with long names: an index of several 256 KiB blocks.
    let many: Vec<Item> = (0..10_000)
        .map(|i| {
            let name = format!(
                "model/layer_{:05}/sublayer_{}/kernel_with_a_long_name",
                (i * 7919) % 10_000,
                i % 7
            );
            numeric(&name, DType::Float, &[2], i as u64)
        })
        .collect();
    // Written by several threads: a 12 MiB tensor through `add`, then 2,500
    // of 4 KiB (unsorted names) and 500 of one byte in one `add_batch`.
    let mut threaded = vec![numeric("big", DType::Float, &[3, 1 << 20], 1)];
    threaded.extend(shuffled_floats("small", 2500));
    threaded.extend((0..500).map(|i| numeric(&format!("byte/{i:03}"), DType::Int8, &[], i)));
    let sets = [("kinds", &kinds), ("many", &many), ("threaded", &threaded)];
    let mut requests = Vec::new();
    for (name, items) in sets {
        requests.push(request::save_v2(
            &tmp.path().join("tf").join(name),
            &tensors_of(items),
        ));
        let prefix = tmp.path().join("ours").join(name);
        if name == "threaded" {
            let options = WriterOptions::default().with_threads(2);
            let mut writer = BundleWriter::create_with(&prefix, options).unwrap();
            add_item(&mut writer, &items[0]);
            let batch = batch_of(&items[1..]);
            writer.add_batch(&batch).unwrap();
            writer.finish().unwrap();
        } else {
            write_ours(&prefix, items, WriterOptions::default());
        }
    }
    for response in as_list(&oracle(&json!(requests))) {
        ok(response);
    }
    for (name, _) in sets {
        assert_same_files(
            &tmp.path().join("ours").join(name),
            &tmp.path().join("tf").join(name),
            1,
        );
    }
    let index_len = fs::metadata(index_file_name(&tmp.path().join("ours/many")))
        .unwrap()
        .len();
    assert!(index_len > 2 * 256 * 1024, "index of {index_len} bytes");
}

#[test]
fn tensorflow_restores_what_we_write_and_we_read_what_it_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let kinds = every_kind();
    let ours = tmp.path().join("ours/kinds");
    write_ours(&ours, &kinds, WriterOptions::default());
    let theirs = tmp.path().join("tf/kinds");
    let names: Vec<&str> = kinds.iter().map(|i| i.tensor.name.as_str()).collect();
    let dtypes: Vec<&str> = kinds.iter().map(|i| i.dtype.name()).collect();
    let responses = oracle(&json!([
        request::read_checkpoint(&ours),
        request::restore_v2(&ours, &names, &dtypes),
        request::save_v2(&theirs, &tensors_of(&kinds)),
        request::read_checkpoint(&theirs),
    ]));
    let [read, restored, saved, read_theirs] = as_list(&responses) else {
        panic!("four responses expected")
    };
    ok(saved);
    let mut expected = tensors_of(&kinds);
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(tensors(read), expected);
    assert_eq!(tensors(restored), tensors_of(&kinds));
    assert_eq!(tensors(read_theirs), expected);
    assert_eq!(read_ours(&theirs), expected);
}

#[test]
fn partitioned_bundles_match_tensorflow_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let full: Vec<f32> = (0..15).map(|i| i as f32 * 0.5).collect();
    let specs = ["5 3 0,3:0,3", "5 3 3,2:0,3"];
    let rows = [&full[..9], &full[9..]];
    let words: Vec<Vec<u8>> = (0..4).map(|i| format!("word{i}").into_bytes()).collect();
    let word_parts = [&words[..1], &words[1..]];
    let word_specs = ["4 0,1", "4 1,3"];

    // The float tensor in one bundle, the string tensor in another:
    // TensorFlow cannot assemble partitioned strings ("Dtype string not
    // supported"), so its reader only gets their stored slices.
    let ours = tmp.path().join("ours/part");
    let ours_words = tmp.path().join("ours/words");
    let mut writer = BundleWriter::create(&ours).unwrap();
    let mut float_slices = Vec::new();
    for (spec, values) in specs.iter().zip(rows) {
        let (shape, slice) = parse_shape_and_slice(spec).unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        writer
            .add_slice("part", &shape, &slice, DType::Float, &bytes)
            .unwrap();
        float_slices.push(Tensor::from_f32(
            "part",
            &slice.slice_shape(&shape).unwrap(),
            values,
        ));
    }
    writer.finish().unwrap();
    let mut writer = BundleWriter::create(&ours_words).unwrap();
    let mut word_slices = Vec::new();
    for (spec, values) in word_specs.iter().zip(word_parts) {
        let (shape, slice) = parse_shape_and_slice(spec).unwrap();
        writer
            .add_string_slice("words", &shape, &slice, values)
            .unwrap();
        word_slices.push(Tensor::from_strings(
            "words",
            &[values.len() as i64],
            values,
        ));
    }
    writer.finish().unwrap();

    let theirs = tmp.path().join("tf/part");
    let theirs_words = tmp.path().join("tf/words");
    let responses = oracle(&json!([
        request::save_v2_slices(&theirs, &float_slices, &specs),
        request::save_v2_slices(&theirs_words, &word_slices, &word_specs),
        request::read_checkpoint(&ours),
        request::restore_v2_slices(
            &ours,
            &["part", "part"],
            &["DT_FLOAT", "DT_FLOAT"],
            &["", "5 3 2,2:1,2"],
        ),
        request::restore_v2_slices(
            &ours_words,
            &["words", "words"],
            &["DT_STRING", "DT_STRING"],
            &word_specs,
        ),
    ]));
    let [saved, saved_words, read, restored, restored_words] = as_list(&responses) else {
        panic!("five responses expected")
    };
    ok(saved);
    ok(saved_words);
    assert_same_files(&ours, &theirs, 1);
    assert_same_files(&ours_words, &theirs_words, 1);

    let whole_part = Tensor::from_f32("part", &[5, 3], &full);
    assert_eq!(tensors(read), std::slice::from_ref(&whole_part));
    let restored = tensors(restored);
    assert_eq!(restored[0], whole_part);
    assert_eq!(
        restored[1],
        Tensor::from_f32("part", &[2, 2], &[3.5, 4.0, 5.0, 5.5])
    );
    assert_eq!(tensors(restored_words), word_slices);

    // And our reader on TensorFlow's bundles, whole and by slice.
    assert_eq!(read_ours(&theirs), [whole_part]);
    assert_eq!(
        read_ours(&theirs_words),
        [Tensor::from_strings("words", &[4], &words)]
    );
    let reader = BundleReader::open(&theirs).unwrap();
    let (_, slice) = parse_shape_and_slice("5 3 2,2:1,2").unwrap();
    let view = reader.slice("part", &slice).unwrap();
    assert_eq!(&*view.to_slice::<f32>().unwrap(), &[3.5, 4.0, 5.0, 5.5]);
    let stored: Vec<TensorSlice> = reader.stored_slices("part").unwrap();
    assert_eq!(stored.len(), 2);
    assert!(reader.slice("part", &stored[1]).unwrap().is_borrowed());
}

#[test]
fn sharded_bundles_match_merge_v2_checkpoints_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let shards: Vec<Vec<Item>> = (0..3)
        .map(|s| {
            (0..4)
                .map(|i| {
                    numeric(
                        &format!("shard{s}/v{}", 3 - i),
                        DType::Double,
                        &[i + 1],
                        s as u64 * 10 + i as u64,
                    )
                })
                .collect()
        })
        .collect();

    let ours = tmp.path().join("ours/model");
    let mut writer = ShardedBundleWriter::create(&ours, 3, WriterOptions::default()).unwrap();
    std::thread::scope(|scope| {
        for (shard, items) in writer.shards_mut().iter_mut().zip(&shards) {
            scope.spawn(move || {
                for item in items {
                    add_item(shard, item);
                }
            });
        }
    });
    writer.finish().unwrap();

    let theirs = tmp.path().join("tf/model");
    let parts: Vec<Vec<Tensor>> = shards.iter().map(|items| tensors_of(items)).collect();
    let mut requests = save_parts_and_merge(&theirs, &parts);
    requests.push(request::read_checkpoint(&ours));
    let responses = oracle(&json!(requests));
    let responses = as_list(&responses);
    for response in &responses[..4] {
        ok(response);
    }
    assert_same_files(&ours, &theirs, 3);

    let mut expected: Vec<Tensor> = shards.iter().flatten().map(|i| i.tensor.clone()).collect();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(tensors(&responses[4]), expected);
    assert_eq!(read_ours(&theirs), expected);
    let reader = BundleReader::open(&theirs).unwrap();
    assert_eq!(reader.header().num_shards, 3);
    assert_eq!(reader.entry("shard2/v0").unwrap().shard_id, 2);
}

#[test]
fn bundles_with_several_data_files_are_what_tensorflow_merges_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    // Every kind of tensor one at a time (each into the emptiest file), then
    // 3,000 of 4 KiB in one batch, cut into runs that the three files write
    // at once.
    let kinds = every_kind();
    let batch_items = shuffled_floats("batch", 3000);
    let ours = tmp.path().join("ours/model");
    let options = WriterOptions::default().with_data_files(3).with_threads(3);
    let mut writer = BundleWriter::create_with(&ours, options).unwrap();
    for item in &kinds {
        add_item(&mut writer, item);
    }
    let batch = batch_of(&batch_items);
    writer.add_batch(&batch).unwrap();
    writer.finish().unwrap();

    // Which tensors each file holds, in the order they were written.
    let all: Vec<&Item> = kinds.iter().chain(&batch_items).collect();
    let reader = BundleReader::open(&ours).unwrap();
    assert_eq!(reader.header().num_shards, 3);
    let mut by_file: Vec<Vec<(u64, &Item)>> = vec![Vec::new(); 3];
    for item in &all {
        let entry = reader.entry(&item.tensor.name).unwrap();
        by_file[entry.shard_id as usize].push((entry.offset, item));
    }
    for (file, items) in by_file.iter_mut().enumerate() {
        assert!(
            items.len() > 100,
            "file {file} holds {} tensors",
            items.len()
        );
        items.sort_by_key(|&(offset, _)| offset);
    }

    // TensorFlow: each file's tensors saved by `SaveV2` in that order, as
    // its sharded saver does per device, then `MergeV2Checkpoints`.
    let theirs = tmp.path().join("tf/model");
    let parts: Vec<Vec<Tensor>> = by_file
        .iter()
        .map(|items| items.iter().map(|(_, i)| i.tensor.clone()).collect())
        .collect();
    let mut requests = save_parts_and_merge(&theirs, &parts);
    let names: Vec<&str> = all.iter().map(|i| i.tensor.name.as_str()).collect();
    let dtypes: Vec<&str> = all.iter().map(|i| i.dtype.name()).collect();
    requests.push(request::read_checkpoint(&ours));
    requests.push(request::restore_v2(&ours, &names, &dtypes));
    let responses = oracle(&json!(requests));
    let responses = as_list(&responses);
    for response in &responses[..4] {
        ok(response);
    }
    assert_same_files(&ours, &theirs, 3);
    let in_order: Vec<Tensor> = all.iter().map(|i| i.tensor.clone()).collect();
    let mut sorted = in_order.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(tensors(&responses[4]), sorted);
    assert_eq!(tensors(&responses[5]), in_order);
    assert_eq!(read_ours(&ours), sorted);
}

#[test]
fn tensorflow_reads_our_big_endian_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let items: Vec<Item> = [
        DType::Float,
        DType::Double,
        DType::Int64,
        DType::Int16,
        DType::Half,
        DType::BFloat16,
        DType::Complex64,
        DType::Complex128,
        DType::UInt32,
        DType::Bool,
        DType::Int8,
    ]
    .iter()
    .enumerate()
    .map(|(i, &dtype)| {
        numeric(
            &format!("t{i:02}_{}", dtype.numpy_name()),
            dtype,
            &[2, 3],
            i as u64,
        )
    })
    .chain([strings(
        "u_strings",
        &[3],
        &[b"big".to_vec(), vec![], vec![0xff; 300]],
    )])
    .collect();
    let ours = tmp.path().join("be/ckpt");
    write_ours(
        &ours,
        &items,
        WriterOptions::default().with_endianness(Endianness::Big),
    );
    // The file really is big-endian: the first float's bytes are reversed.
    let data = fs::read(data_file_name(&ours, 0, 1)).unwrap();
    let first = items[0].tensor.bytes();
    assert_eq!(&data[..4], &[first[3], first[2], first[1], first[0]]);

    let names: Vec<&str> = items.iter().map(|i| i.tensor.name.as_str()).collect();
    let dtypes: Vec<&str> = items.iter().map(|i| i.dtype.name()).collect();
    let responses = oracle(&json!([
        request::read_checkpoint(&ours),
        request::restore_v2(&ours, &names, &dtypes),
    ]));
    let [read, restored] = as_list(&responses) else {
        panic!("two responses expected")
    };
    assert_eq!(tensors(read), tensors_of(&items));
    assert_eq!(tensors(restored), tensors_of(&items));
    assert_eq!(read_ours(&ours), tensors_of(&items));
}

#[test]
fn we_read_every_fixture_exactly_as_tensorflow_does() {
    let mut prefixes = Vec::new();
    for model in fs::read_dir(serving_fixtures()).unwrap() {
        let model = model.unwrap().path();
        let Ok(versions) = fs::read_dir(&model) else {
            continue;
        };
        for version in versions {
            let prefix = version.unwrap().path().join("variables/variables");
            if index_file_name(&prefix).exists() {
                prefixes.push(prefix);
            }
        }
    }
    prefixes.sort();
    assert!(prefixes.len() >= 12, "{prefixes:?}");
    let requests: Vec<Value> = prefixes
        .iter()
        .map(|p| request::read_checkpoint(p))
        .collect();
    let responses = oracle(&json!(requests));
    let mut graphs = 0;
    for (prefix, response) in prefixes.iter().zip(as_list(&responses)) {
        assert_eq!(read_ours(prefix), tensors(response), "{}", prefix.display());
        let reader = BundleReader::open(prefix).unwrap();
        if let Some(graph) = reader.object_graph().unwrap() {
            assert!(!graph.nodes.is_empty());
            graphs += 1;
        }
    }
    assert!(graphs >= 1, "no TF2 object checkpoint among the fixtures");
}
