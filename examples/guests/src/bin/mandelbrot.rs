//! Mandelbrot tile: renders a region of the Mandelbrot set to a binary PGM
//! (P5) image on stdout, reporting progress per row.
//!
//! Input (JSON, optional; `{}` or empty input gives the defaults):
//! `{"width": 256, "height": 192, "max_iter": 200, "x0": -2.2, "y0": -1.2, "x1": 1.0, "y1": 1.2}`
//!
//! Run: `echo '{"width":64,"height":48}' | fabric exec mandelbrot.wasm --input - > tile.pgm`

use std::process::ExitCode;

use fabric_guest::{progress, run};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Tile {
    width: u32,
    height: u32,
    max_iter: u32,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Default for Tile {
    fn default() -> Self {
        Self {
            width: 256,
            height: 192,
            max_iter: 200,
            x0: -2.2,
            y0: -1.2,
            x1: 1.0,
            y1: 1.2,
        }
    }
}

fn escape_time(cx: f64, cy: f64, max_iter: u32) -> u32 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < max_iter && x * x + y * y <= 4.0 {
        let xt = x * x - y * y + cx;
        y = 2.0 * x * y + cy;
        x = xt;
        i += 1;
    }
    i
}

fn render(tile: &Tile) -> Result<Vec<u8>, String> {
    if tile.width == 0 || tile.height == 0 || tile.width > 4096 || tile.height > 4096 {
        return Err(format!(
            "width and height must be 1..=4096, got {}x{}",
            tile.width, tile.height
        ));
    }
    if tile.max_iter == 0 {
        return Err("max_iter must be at least 1".into());
    }
    let mut image = format!("P5\n{} {}\n255\n", tile.width, tile.height).into_bytes();
    for row in 0..tile.height {
        let cy = tile.y0 + (tile.y1 - tile.y0) * f64::from(row) / f64::from(tile.height);
        for col in 0..tile.width {
            let cx = tile.x0 + (tile.x1 - tile.x0) * f64::from(col) / f64::from(tile.width);
            let n = escape_time(cx, cy, tile.max_iter);
            let shade = if n >= tile.max_iter {
                0
            } else {
                255 - (n * 255 / tile.max_iter) as u8
            };
            image.push(shade);
        }
        progress(u64::from(row + 1), u64::from(tile.height));
    }
    Ok(image)
}

fn main() -> ExitCode {
    run(|input: Vec<u8>| -> Result<Vec<u8>, String> {
        let tile: Tile = if input.iter().all(u8::is_ascii_whitespace) {
            Tile::default()
        } else {
            serde_json::from_slice(&input).map_err(|e| format!("bad tile spec: {e}"))?
        };
        render(&tile)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_pgm_with_the_set_in_black() {
        let tile = Tile {
            width: 8,
            height: 4,
            ..Tile::default()
        };
        let img = render(&tile).unwrap();
        assert!(img.starts_with(b"P5\n8 4\n255\n"));
        assert_eq!(img.len(), b"P5\n8 4\n255\n".len() + 32);
        assert_eq!(escape_time(0.0, 0.0, 50), 50);
        assert!(escape_time(2.0, 2.0, 50) < 3);
    }
}
