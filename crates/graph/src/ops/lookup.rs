//! Lookup tables (`tensorflow/core/ops/lookup_ops.cc`): string-to-id and
//! id-to-string maps, initialized from constants in the graph or from a
//! vocabulary file shipped as an asset, by ops the SavedModel's init op
//! runs.
//!
//! A table is a `HashTableV2` with a non-empty `shared_name` (as TensorFlow's
//! Python always sets; docs/formats.md, section 13 "GraphDef nodes: attrs,
//! defaults and the op registry"), filled by `LookupTableImportV2` or
//! `InitializeTableFromTextFileV2` and read with `LookupTableFindV2`. The
//! initializer is registered with [`Graph::add_table_initializer`], so
//! [`crate::builder::SavedModelBuilder`] runs it in the init op.

use savedmodel_checkpoint::DType;

use crate::assets::Asset;
use crate::error::{Error, Result};
use crate::graph::{Graph, Operation, Output, Shape};
use crate::ops::type_error;
use crate::tensor::Tensor;

/// A hash table resource and the value its lookups return for missing keys.
#[derive(Clone, Debug)]
pub struct LookupTable {
    handle: Output,
    key_dtype: DType,
    value_dtype: DType,
    default: Tensor,
}

impl LookupTable {
    /// The table's resource handle (`HashTableV2:0`).
    pub fn handle(&self) -> &Output {
        &self.handle
    }

    /// The table's node name.
    pub fn name(&self) -> &str {
        self.handle.node_name()
    }

    /// The key type.
    pub fn key_dtype(&self) -> DType {
        self.key_dtype
    }

    /// The value type.
    pub fn value_dtype(&self) -> DType {
        self.value_dtype
    }

    /// The value returned for keys not in the table.
    pub fn default_value(&self) -> &Tensor {
        &self.default
    }
}

/// How a vocabulary file's lines become keys and values
/// (`InitializeTableFromTextFileV2`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TextFileOptions {
    /// Column of the key: `-2` = the whole line, `-1` = the line number,
    /// `k >= 0` = the k-th field.
    pub key_index: i64,
    /// Column of the value, as `key_index`.
    pub value_index: i64,
    /// Number of lines to read, `-1` for all.
    pub vocab_size: i64,
    /// Field separator.
    pub delimiter: String,
    /// Added to line numbers (`offset` attr).
    pub offset: i64,
}

/// [`TextFileOptions::key_index`]/[`value_index`](TextFileOptions::value_index)
/// for the whole line (TensorFlow's `TextFileIndex.WHOLE_LINE`).
pub const WHOLE_LINE: i64 = -2;
/// [`TextFileOptions::key_index`]/[`value_index`](TextFileOptions::value_index)
/// for the line number (TensorFlow's `TextFileIndex.LINE_NUMBER`).
pub const LINE_NUMBER: i64 = -1;

impl TextFileOptions {
    /// Keys and values from the given columns, every line, tab-separated.
    pub fn new(key_index: i64, value_index: i64) -> Self {
        TextFileOptions {
            key_index,
            value_index,
            vocab_size: -1,
            delimiter: "\t".into(),
            offset: 0,
        }
    }
}

fn check_table_types(name: &str, key: DType, value: DType) -> Result<()> {
    let ok_key = matches!(key, DType::String | DType::Int64 | DType::Int32);
    let ok_value = matches!(
        value,
        DType::String | DType::Int64 | DType::Int32 | DType::Float | DType::Double | DType::Bool
    );
    if ok_key && ok_value {
        Ok(())
    } else {
        Err(type_error(
            name,
            format!("HashTableV2 has no kernel for {key} -> {value}"),
        ))
    }
}

impl Graph {
    /// An empty hash table from `key_dtype` to `default`'s dtype
    /// (`HashTableV2`); lookups of missing keys return the scalar `default`.
    pub fn hash_table(
        &mut self,
        name: &str,
        key_dtype: DType,
        default: Tensor,
    ) -> Result<LookupTable> {
        let value_dtype = default.dtype();
        check_table_types(name, key_dtype, value_dtype)?;
        if !default.shape().is_empty() {
            return Err(type_error(
                name,
                "a table's default value must be a scalar".into(),
            ));
        }
        let node = self.unique_name(name);
        let handle = self
            .op("HashTableV2", &node)
            .exact_name()
            .attr("key_dtype", key_dtype)
            .attr("value_dtype", value_dtype)
            .attr("shared_name", format!("hash_table_{node}"))
            .output(DType::Resource, Shape::scalar())
            .build_output()?;
        Ok(LookupTable {
            handle,
            key_dtype,
            value_dtype,
            default,
        })
    }

    /// Fills `table` with `keys[i] -> values[i]` from constants
    /// (`LookupTableImportV2`), run by the SavedModel's init op.
    pub fn table_import(
        &mut self,
        table: &LookupTable,
        keys: Tensor,
        values: Tensor,
    ) -> Result<Operation> {
        let node = table.name().to_owned();
        if keys.dtype() != table.key_dtype || values.dtype() != table.value_dtype {
            return Err(type_error(
                &node,
                format!(
                    "table maps {} -> {}, initializer gives {} -> {}",
                    table.key_dtype,
                    table.value_dtype,
                    keys.dtype(),
                    values.dtype()
                ),
            ));
        }
        if keys.shape() != values.shape() {
            return Err(type_error(
                &node,
                format!(
                    "initializer keys {:?} and values {:?} differ in shape",
                    keys.shape(),
                    values.shape()
                ),
            ));
        }
        let scope = self.at_root(|g| g.unique_name(&format!("{node}/table_init")));
        let k = self.aux_constant(&scope, "keys", keys)?;
        let v = self.aux_constant(&scope, "values", values)?;
        let op = self
            .op(
                "LookupTableImportV2",
                &format!("{scope}/LookupTableImportV2"),
            )
            .exact_name()
            .input(table.handle())
            .input(&k)
            .input(&v)
            .attr("Tin", table.key_dtype)
            .attr("Tout", table.value_dtype)
            .build()?;
        self.add_table_initializer(&op);
        Ok(op)
    }

    /// Fills `table` from the text file whose path `filename` holds (a
    /// string scalar, usually an [`Asset`]'s tensor)
    /// (`InitializeTableFromTextFileV2`), run by the SavedModel's init op.
    pub fn table_from_text_file(
        &mut self,
        table: &LookupTable,
        filename: &Output,
        options: &TextFileOptions,
    ) -> Result<Operation> {
        let node = table.name().to_owned();
        if filename.dtype() != DType::String {
            return Err(type_error(
                &node,
                format!(
                    "file name {} is {}, not DT_STRING",
                    filename.name(),
                    filename.dtype()
                ),
            ));
        }
        let expect = |index: i64| match index {
            WHOLE_LINE => Some(DType::String),
            LINE_NUMBER => Some(DType::Int64),
            _ => None,
        };
        for (what, index, dtype) in [
            ("key", options.key_index, table.key_dtype),
            ("value", options.value_index, table.value_dtype),
        ] {
            if index < WHOLE_LINE {
                return Err(type_error(
                    &node,
                    format!("{what}_index {index} is below -2"),
                ));
            }
            let Some(wanted) = expect(index) else {
                continue;
            };
            if wanted != dtype && !(index == LINE_NUMBER && dtype == DType::Int32) {
                return Err(type_error(
                    &node,
                    format!(
                        "{what}s from {} are {wanted}, the table's are {dtype}",
                        if index == WHOLE_LINE {
                            "whole lines"
                        } else {
                            "line numbers"
                        }
                    ),
                ));
            }
        }
        let scope = self.at_root(|g| g.unique_name(&format!("{node}/table_init")));
        let op = self
            .op(
                "InitializeTableFromTextFileV2",
                &format!("{scope}/InitializeTableFromTextFileV2"),
            )
            .exact_name()
            .input(table.handle())
            .input(filename)
            .attr("key_index", options.key_index)
            .attr("value_index", options.value_index)
            .attr("vocab_size", options.vocab_size)
            .attr("delimiter", options.delimiter.as_str())
            .attr("offset", options.offset)
            .build()?;
        self.add_table_initializer(&op);
        Ok(op)
    }

    /// Looks `keys` up in `table` (`LookupTableFindV2`): same shape as
    /// `keys`, missing keys giving the table's default.
    pub fn lookup(&mut self, name: &str, table: &LookupTable, keys: &Output) -> Result<Output> {
        if keys.dtype() != table.key_dtype {
            return Err(type_error(
                name,
                format!(
                    "table {} has {} keys, {} is {}",
                    table.name(),
                    table.key_dtype,
                    keys.name(),
                    keys.dtype()
                ),
            ));
        }
        let op = self.unique_name(name);
        let default = self.aux_constant(&op, "default_value", table.default.clone())?;
        self.op("LookupTableFindV2", &op)
            .exact_name()
            .input(table.handle())
            .input(keys)
            .input(&default)
            .attr("Tin", table.key_dtype)
            .attr("Tout", table.value_dtype)
            .output(table.value_dtype, keys.shape().clone())
            .build_output()
    }

    /// A table from ids `0..n` (`DT_INT64`) to the words of `vocabulary`;
    /// other ids map to `default` (`tf.lookup.StaticHashTable` over
    /// constants, like `index_to_string_table_from_tensor`).
    pub fn index_to_string_table<S: AsRef<[u8]>>(
        &mut self,
        name: &str,
        vocabulary: &[S],
        default: &str,
    ) -> Result<LookupTable> {
        let table = self.hash_table(name, DType::Int64, Tensor::string(default))?;
        let ids: Vec<i64> = (0..vocabulary.len() as i64).collect();
        self.table_import(
            &table,
            Tensor::vector(&ids),
            Tensor::string_vector(vocabulary),
        )?;
        Ok(table)
    }

    /// A table from the words of `vocabulary` to their positions
    /// (`DT_INT64`); other words map to `default` (like
    /// `index_table_from_tensor` without out-of-vocabulary buckets).
    pub fn string_to_index_table<S: AsRef<[u8]>>(
        &mut self,
        name: &str,
        vocabulary: &[S],
        default: i64,
    ) -> Result<LookupTable> {
        let mut sorted: Vec<&[u8]> = vocabulary.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Graph {
                node: name.to_owned(),
                what: format!(
                    "vocabulary word {:?} appears twice",
                    String::from_utf8_lossy(w[0])
                ),
            });
        }
        let table = self.hash_table(name, DType::String, Tensor::scalar(default))?;
        let ids: Vec<i64> = (0..vocabulary.len() as i64).collect();
        self.table_import(
            &table,
            Tensor::string_vector(vocabulary),
            Tensor::vector(&ids),
        )?;
        Ok(table)
    }

    /// A table from line numbers (`DT_INT64`) to the lines of the vocabulary
    /// file `asset`; other ids map to `default`.
    pub fn index_to_string_table_from_asset(
        &mut self,
        name: &str,
        asset: &Asset,
        default: &str,
    ) -> Result<LookupTable> {
        let table = self.hash_table(name, DType::Int64, Tensor::string(default))?;
        self.table_from_text_file(
            &table,
            asset.tensor(),
            &TextFileOptions::new(LINE_NUMBER, WHOLE_LINE),
        )?;
        Ok(table)
    }

    /// A table from the lines of the vocabulary file `asset` to their line
    /// numbers (`DT_INT64`); other words map to `default`.
    pub fn string_to_index_table_from_asset(
        &mut self,
        name: &str,
        asset: &Asset,
        default: i64,
    ) -> Result<LookupTable> {
        let table = self.hash_table(name, DType::String, Tensor::scalar(default))?;
        self.table_from_text_file(
            &table,
            asset.tensor(),
            &TextFileOptions::new(WHOLE_LINE, LINE_NUMBER),
        )?;
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_tables_register_their_initializers() {
        let mut g = Graph::new();
        let t = g
            .index_to_string_table("classes", &["0", "1", "2"], "UNK")
            .unwrap();
        let ids = g.placeholder("ids", DType::Int64, [-1, 3]).unwrap();
        let words = g.lookup("lookup", &t, &ids).unwrap();
        assert_eq!(
            (words.dtype(), words.shape()),
            (DType::String, &Shape::new(&[-1, 3]))
        );
        assert_eq!(g.table_initializers().len(), 1);
        assert_eq!(
            g.table_initializers()[0].name(),
            "classes/table_init/LookupTableImportV2"
        );
        let node = g.node("classes").unwrap();
        assert!(node.attr.contains_key("shared_name"));
        let bad = g.placeholder("f", DType::Float, [-1]).unwrap();
        assert!(g.lookup("lookup", &t, &bad).is_err());
        assert!(g.string_to_index_table("dup", &["a", "a"], -1).is_err());
    }
}
