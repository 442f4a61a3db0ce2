//! The dev data's embedding rows: `embeddings.f32` (the dev split) or `embeddings.f16`
//! (dev-large, stored at half precision to halve its size), row `i` = text id `i`.

use crate::dev_data::{DevDir, Error};

/// Dimension of every dev data set (all-MiniLM-L6-v2).
pub const DIM: usize = 384;

/// All rows of one data set, as unit f32 vectors.
pub struct Embeddings {
    values: Vec<f32>,
}

impl Embeddings {
    /// Read `embeddings.f32`, or else `embeddings.f16` widened to f32 and renormalised (its rows
    /// were normalised before rounding, so rounding left them slightly off unit length).
    pub fn load(dir: &DevDir) -> Result<Embeddings, Error> {
        let (name, width) = if dir.has("embeddings.f32") {
            ("embeddings.f32", 4)
        } else if dir.has("embeddings.f16") {
            ("embeddings.f16", 2)
        } else {
            return Err(dir.missing("embeddings.f32 (or embeddings.f16)"));
        };
        let raw = std::fs::read(dir.file(name)).map_err(|e| dir.bad(name, e.to_string()))?;
        if raw.len() % (DIM * width) != 0 {
            return Err(dir.bad(
                name,
                format!("{} bytes is not whole rows of {DIM}", raw.len()),
            ));
        }
        let values = if width == 4 {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            let mut v: Vec<f32> = raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect();
            v.chunks_exact_mut(DIM).for_each(normalise);
            v
        };
        Ok(Embeddings { values })
    }

    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.values.len() / DIM
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Text `id`'s vector, `None` past the last row.
    pub fn row(&self, id: usize) -> Option<&[f32]> {
        self.values.get(id * DIM..(id + 1) * DIM)
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// IEEE 754 half to single precision (exact: every half value is a single value).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: man * 2^-24.
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign == 0 { v } else { -v }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 127 - 15) << 23) | (man << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_widens_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
