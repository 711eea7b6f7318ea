//! `Cast` and `CastLike` to and from the ONNX types TensorFlow carries in
//! another type ([`Carried`]): the 2- and 4-bit integers as their values in
//! `int8`/`uint8`, and `FLOAT8E4M3FNUZ`, `FLOAT8E5M2FNUZ`, `FLOAT8E8M0`
//! and `FLOAT4E2M1` as their bit patterns in `uint8` (docs/formats.md,
//! "ONNX types TensorFlow cannot compute with").
//!
//! Every conversion goes through a type TensorFlow computes with:
//!
//! - **decoding** a carried float is a `GatherV2` from a 256-entry float32
//!   table of what each bit pattern means (exact: every value of these
//!   types is a float32); a carried integer already is its value;
//! - **encoding** to a carried integer casts to int32 and keeps the low
//!   bits, sign-extended for the signed types (`-9` becomes INT4 `7`, as
//!   `ml_dtypes` and ONNX's reference wrap);
//! - **encoding** to `FLOAT8E4M3FNUZ`, `FLOAT8E5M2FNUZ` or `FLOAT4E2M1`
//!   rounds the magnitude to the nearest representable value, ties to the
//!   even code, by counting the midpoints between consecutive values that
//!   lie below it (`LowerBound`) or equal it (`UpperBound`); the midpoint
//!   above the largest value decides overflow (saturated, or NaN when
//!   `saturate=0`), and the sign is put back (FNUZ has no negative zero,
//!   FP4 keeps it);
//! - **encoding** to `FLOAT8E8M0` takes the float32 exponent field and
//!   rounds it by the mantissa bits as `round_mode` says (`up`, `down`,
//!   `nearest`), exactly as ONNX's `numpy_helper.to_float8e8m0`.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::output0;
use super::shape::cast_tensor;
use crate::convert::context::Ctx;
use crate::{Carried, NodeView, Result};

/// The value of `code` (a byte) in carried float type `carried`, as
/// float32; `None` for the integer types.
fn decode(carried: Carried, code: u8) -> Option<f32> {
    // (exponent bits, mantissa bits, bias) of the FNUZ and FP4 formats.
    let (ebits, mbits, bias) = match carried {
        Carried::Float8E4M3Fnuz => (4u32, 3u32, 8i32),
        Carried::Float8E5M2Fnuz => (5, 2, 16),
        Carried::Float4E2M1 => (2, 1, 1),
        Carried::Float8E8M0 => {
            return Some(match code {
                0xff => f32::NAN,
                // 2^(code - 127): the float32 with that exponent field; code
                // 0 is 2^-127, a float32 subnormal.
                0 => f32::from_bits(0x0040_0000),
                c => f32::from_bits(u32::from(c) << 23),
            });
        }
        _ => return None,
    };
    let width = 1 + ebits + mbits;
    let code = u32::from(code) & ((1 << width) - 1);
    let sign_bit = 1 << (width - 1);
    let fnuz = carried != Carried::Float4E2M1;
    if fnuz && code == sign_bit {
        return Some(f32::NAN);
    }
    let magnitude = magnitude_value(code & (sign_bit - 1), mbits, bias);
    Some(if code & sign_bit != 0 {
        -magnitude
    } else {
        magnitude
    })
}

/// The value of a non-negative code of a format with `ebits` exponent
/// bits, `mbits` mantissa bits and exponent `bias`; codes past the largest
/// continue the same pattern (the next binade), which gives the value just
/// above the largest finite one.
fn magnitude_value(code: u32, mbits: u32, bias: i32) -> f32 {
    let exponent = (code >> mbits) as i32;
    let mantissa = (code & ((1 << mbits) - 1)) as f32 / (1u32 << mbits) as f32;
    if exponent == 0 {
        mantissa * 2f32.powi(1 - bias)
    } else {
        (1.0 + mantissa) * 2f32.powi(exponent - bias)
    }
}

/// For the formats encoded by rounding to a grid: the largest magnitude
/// code, and the midpoints between the magnitudes of codes `i` and `i + 1`
/// for `i` in `0..=largest` (the last one lies between the largest value
/// and the next binade's first, the overflow threshold).
fn grid(carried: Carried) -> Option<(i32, Vec<f64>)> {
    let (mbits, bias, largest) = match carried {
        Carried::Float8E4M3Fnuz => (3, 8, 0x7f),
        Carried::Float8E5M2Fnuz => (2, 16, 0x7f),
        Carried::Float4E2M1 => (1, 1, 0x7),
        _ => return None,
    };
    let value = |c: u32| f64::from(magnitude_value(c, mbits, bias));
    let midpoints = (0..=largest)
        .map(|c| (value(c) + value(c + 1)) / 2.0)
        .collect();
    Some((largest as i32, midpoints))
}

/// Defines `node`'s output as ONNX value `x` cast to ONNX type `to`, where
/// `x` or `to` (or both) is carried.
pub(super) fn cast(ctx: &mut Ctx, node: &NodeView<'_>, x: &str, to: i32) -> Result<()> {
    let from = ctx.carried(x);
    let to_carried = Carried::from_onnx(to);
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let saturate = node.attr_i_or("saturate", 1)? != 0;
    let round_mode = node.attr_s_or("round_mode", "up")?.to_owned();
    let input = ctx.plain(x)?;
    let mut b = Builder::new(ctx, node);
    // In a type TensorFlow computes with.
    let value = match from {
        Some(c) if c.integer_bits().is_some() => input,
        Some(c) => decode_tensor(&mut b, c, &input)?,
        None => input,
    };
    let y = match to_carried {
        None => {
            let to = crate::dtype_from_onnx(to).map_err(|e| b.ctx.error(e))?;
            let name = b.base.clone();
            cast_tensor(b.ctx, &name, &value, to, saturate)?
        }
        Some(c) => match c.integer_bits() {
            Some((bits, signed)) => encode_integer(&mut b, c, &value, bits, signed)?,
            None if c == Carried::Float8E8M0 => encode_e8m0(&mut b, &value, saturate, &round_mode)?,
            None => encode_by_grid(&mut b, c, &value, saturate)?,
        },
    };
    ctx.set_plain(out, y, shape);
    if let Some(c) = to_carried {
        ctx.set_carried(out, c);
    }
    Ok(())
}

/// The float32 values of carried float `x` (bit patterns in `uint8`).
fn decode_tensor(b: &mut Builder<'_>, carried: Carried, x: &Output) -> Result<Output> {
    let table: Vec<f32> = (0..=255u8)
        .map(|code| decode(carried, code).unwrap_or(f32::NAN))
        .collect();
    let table = b.tensor(Tensor::vector(&table))?;
    let index = b.cast(x, DType::Int32)?;
    b.gather(&table, &index, 0, x.shape().clone())
}

/// `x` (any numeric type) to a carried integer: cast to int32, keep the low
/// `bits`, sign-extended when `signed`, cast to the carrier.
fn encode_integer(
    b: &mut Builder<'_>,
    carried: Carried,
    x: &Output,
    bits: u32,
    signed: bool,
) -> Result<Output> {
    let wide = b.cast(x, DType::Int32)?;
    let mask = b.tensor(Tensor::scalar((1i32 << bits) - 1))?;
    let mut v = b.op(
        "BitwiseAnd",
        &[&wide, &mask],
        &[t(DType::Int32)],
        x.shape().clone(),
    )?;
    if signed {
        // ((v & mask) ^ half) - half sign-extends a `bits`-wide value.
        let half = b.tensor(Tensor::scalar(1i32 << (bits - 1)))?;
        let flipped = b.op(
            "BitwiseXor",
            &[&v, &half],
            &[t(DType::Int32)],
            x.shape().clone(),
        )?;
        v = b.op(
            "Sub",
            &[&flipped, &half],
            &[t(DType::Int32)],
            x.shape().clone(),
        )?;
    }
    b.cast(&v, carried.carrier())
}

/// `x` as float32 or float64 (the types whose sign bit `Bitcast` reads
/// and whose comparisons are exact for the midpoints), and its sign as a
/// boolean tensor (negative zero included).
fn float_and_sign(b: &mut Builder<'_>, x: &Output) -> Result<(Output, Output)> {
    let (x, int) = match x.dtype() {
        DType::Double => (x.clone(), DType::Int64),
        _ => (b.cast(x, DType::Float)?, DType::Int32),
    };
    let bits = b.op(
        "Bitcast",
        &[&x],
        &[t(x.dtype()), ("type", Attr::Type(int))],
        x.shape().clone(),
    )?;
    let zero = b.scalar(int, 0.0)?;
    let negative = b.op("Less", &[&bits, &zero], &[t(int)], x.shape().clone())?;
    Ok((x, negative))
}

/// `x` to FNUZ or FP4 bit patterns: the magnitude rounded to the nearest
/// value of the type, ties to the even code.
fn encode_by_grid(
    b: &mut Builder<'_>,
    carried: Carried,
    x: &Output,
    saturate: bool,
) -> Result<Output> {
    let Some((largest, midpoints)) = grid(carried) else {
        return Err(b
            .ctx
            .error(format!("no rounding grid for {}", carried.onnx_name())));
    };
    let shape = x.shape().clone();
    let (x, negative) = float_and_sign(b, x)?;
    let dtype = x.dtype();
    let magnitude = b.un("Abs", &x)?;
    let flat = b.reshape(&magnitude, &[1, -1])?;
    let mids = match dtype {
        DType::Double => Tensor::new(&[1, midpoints.len() as i64], &midpoints),
        _ => {
            // Every midpoint is exact in float32 (a few mantissa bits).
            let m: Vec<f32> = midpoints.iter().map(|&m| m as f32).collect();
            Tensor::new(&[1, m.len() as i64], &m)
        }
    }
    .map_err(|e| b.ctx.error(e.to_string()))?;
    let mids = b.tensor(mids)?;
    let bound = |b: &mut Builder<'_>, op: &str| {
        b.op(
            op,
            &[&mids, &flat],
            &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
            Shape::unknown_dims(2),
        )
    };
    // below: midpoints under the magnitude; at: 1 when it equals one.
    let below = bound(b, "LowerBound")?;
    let up_to = bound(b, "UpperBound")?;
    let at = b.bin("Sub", &up_to, &below)?;
    let one = b.tensor(Tensor::scalar(1i32))?;
    let odd = b.bin("BitwiseAnd", &below, &one)?;
    let tie_up = b.bin("Mul", &at, &odd)?;
    let index = b.bin("Add", &below, &tie_up)?;
    let dims = b.shape(&x)?;
    let index = b.reshape_to(&index, &dims, shape.clone())?;
    let largest_t = b.tensor(Tensor::scalar(largest))?;
    let clamped = b.bin("Minimum", &index, &largest_t)?;
    // The sign bit sits just above the magnitude's bits.
    let sign_bit = largest + 1;
    let sign = b.tensor(Tensor::scalar(sign_bit))?;
    let signed = b.bin("BitwiseOr", &clamped, &sign)?;
    let code = b.select(&negative, &signed, &clamped)?;
    let is_nan = b.op("IsNan", &[&x], &[t(dtype)], shape.clone())?;
    let code = if carried == Carried::Float4E2M1 {
        // No NaN in FP4: ml_dtypes (and so ONNX's reference) gives the
        // negative zero's code.
        b.select(&is_nan, &sign, &code)?
    } else {
        // FNUZ: no negative zero (a negative value rounding to 0 is code
        // 0), and one NaN, the sign bit alone, also for overflow without
        // saturation.
        let zero = b.tensor(Tensor::scalar(0i32))?;
        let is_zero = b.op(
            "Equal",
            &[&clamped, &zero],
            &[t(DType::Int32)],
            shape.clone(),
        )?;
        let code = b.select(&is_zero, &zero, &code)?;
        let nan = if saturate {
            is_nan
        } else {
            let over = b.op(
                "Greater",
                &[&index, &largest_t],
                &[t(DType::Int32)],
                shape.clone(),
            )?;
            b.op("LogicalOr", &[&is_nan, &over], &[], shape.clone())?
        };
        b.select(&nan, &sign, &code)?
    };
    b.cast(&code, DType::UInt8)
}

/// `x` to `FLOAT8E8M0`: the float32 exponent field, rounded by the
/// mantissa as `round_mode` says; NaN and infinities are 255.
fn encode_e8m0(
    b: &mut Builder<'_>,
    x: &Output,
    saturate: bool,
    round_mode: &str,
) -> Result<Output> {
    let shape = x.shape().clone();
    let x = b.cast(x, DType::Float)?;
    let bits = b.op(
        "Bitcast",
        &[&x],
        &[t(DType::Float), ("type", Attr::Type(DType::Int32))],
        shape.clone(),
    )?;
    let i32c = |b: &mut Builder<'_>, v: i32| b.tensor(Tensor::scalar(v));
    let and = |b: &mut Builder<'_>, v: &Output, mask: i32| -> Result<Output> {
        let m = b.tensor(Tensor::scalar(mask))?;
        b.bin("BitwiseAnd", v, &m)
    };
    let nonzero = |b: &mut Builder<'_>, v: &Output| -> Result<Output> {
        let zero = b.tensor(Tensor::scalar(0i32))?;
        b.op(
            "NotEqual",
            &[v, &zero],
            &[t(DType::Int32)],
            Shape::unknown(),
        )
    };
    let shift = i32c(b, 23)?;
    let shifted = b.bin("RightShift", &bits, &shift)?;
    let exponent = and(b, &shifted, 0xff)?;
    let round_up = match round_mode {
        "down" => None,
        "up" => {
            let fraction = and(b, &bits, 0x7f_ffff)?;
            Some(nonzero(b, &fraction)?)
        }
        "nearest" => {
            // Round to nearest by the guard bit, ties away from an exponent
            // of 0 unless the round or sticky bits say more (ONNX's rule).
            let guard = and(b, &bits, 0x40_0000)?;
            let guard = nonzero(b, &guard)?;
            let rest = and(b, &bits, 0x3f_ffff)?;
            let rest = nonzero(b, &rest)?;
            let zero = i32c(b, 0)?;
            let lsb = b.op(
                "Greater",
                &[&exponent, &zero],
                &[t(DType::Int32)],
                Shape::unknown(),
            )?;
            let either = b.op("LogicalOr", &[&rest, &lsb], &[], Shape::unknown())?;
            Some(b.op("LogicalAnd", &[&guard, &either], &[], Shape::unknown())?)
        }
        other => {
            return Err(b.ctx.error(format!(
                "round_mode {other:?} is not one of \"up\", \"down\", \"nearest\""
            )));
        }
    };
    let special = i32c(b, 0xff)?;
    let is_special = b.op(
        "Equal",
        &[&exponent, &special],
        &[t(DType::Int32)],
        Shape::unknown(),
    )?;
    let code = match round_up {
        None => exponent.clone(),
        Some(round_up) => {
            let round_up = if saturate {
                // Never past the largest finite value, 2^127 (254).
                let largest = i32c(b, 0xfe)?;
                let at_largest = b.op(
                    "Equal",
                    &[&exponent, &largest],
                    &[t(DType::Int32)],
                    Shape::unknown(),
                )?;
                let below = b.op("LogicalNot", &[&at_largest], &[], Shape::unknown())?;
                b.op("LogicalAnd", &[&round_up, &below], &[], Shape::unknown())?
            } else {
                round_up
            };
            let step = b.cast(&round_up, DType::Int32)?;
            b.bin("Add", &exponent, &step)?
        }
    };
    let code = b.select(&is_special, &special, &code)?;
    let dims = b.shape(&x)?;
    let code = b.reshape_to(&code, &dims, shape)?;
    b.cast(&code, DType::UInt8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_gives_each_formats_known_values() {
        // FLOAT8E4M3FNUZ: largest 240, smallest subnormal 2^-10, NaN 0x80.
        assert_eq!(decode(Carried::Float8E4M3Fnuz, 0x7f), Some(240.0));
        assert_eq!(decode(Carried::Float8E4M3Fnuz, 0x01), Some(2f32.powi(-10)));
        assert_eq!(decode(Carried::Float8E4M3Fnuz, 0xff), Some(-240.0));
        assert!(decode(Carried::Float8E4M3Fnuz, 0x80).is_some_and(f32::is_nan));
        // FLOAT8E5M2FNUZ: largest 57344, smallest subnormal 2^-17.
        assert_eq!(decode(Carried::Float8E5M2Fnuz, 0x7f), Some(57344.0));
        assert_eq!(decode(Carried::Float8E5M2Fnuz, 0x01), Some(2f32.powi(-17)));
        // FLOAT4E2M1: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
        let fp4: Vec<f32> = (0..8)
            .filter_map(|c| decode(Carried::Float4E2M1, c))
            .collect();
        assert_eq!(fp4, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(decode(Carried::Float4E2M1, 0x0f), Some(-6.0));
        assert!(
            decode(Carried::Float4E2M1, 0x08).is_some_and(|v| v == 0.0 && v.is_sign_negative())
        );
        // FLOAT8E8M0: 2^(code - 127).
        assert_eq!(decode(Carried::Float8E8M0, 127), Some(1.0));
        assert_eq!(decode(Carried::Float8E8M0, 0), Some(2f32.powi(-127)));
        assert_eq!(decode(Carried::Float8E8M0, 254), Some(2f32.powi(127)));
        assert!(decode(Carried::Float8E8M0, 255).is_some_and(f32::is_nan));
        assert_eq!(decode(Carried::Int4, 3), None);
    }

    #[test]
    fn the_grids_last_midpoint_is_the_overflow_threshold() {
        let (largest, mids) = grid(Carried::Float8E4M3Fnuz).unwrap();
        assert_eq!(largest, 0x7f);
        assert_eq!(mids.len(), 128);
        assert_eq!(mids[127], 248.0); // between 240 and 256
        assert_eq!(mids[0], 2f64.powi(-11)); // between 0 and 2^-10
        let (_, mids) = grid(Carried::Float8E5M2Fnuz).unwrap();
        assert_eq!(mids[127], 61440.0); // between 57344 and 65536
        let (largest, mids) = grid(Carried::Float4E2M1).unwrap();
        assert_eq!(largest, 7);
        assert_eq!(mids, [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0]);
        // Increasing, so LowerBound/UpperBound may search them.
        for m in [grid(Carried::Float8E4M3Fnuz), grid(Carried::Float8E5M2Fnuz)] {
            let (_, m) = m.unwrap();
            assert!(m.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
