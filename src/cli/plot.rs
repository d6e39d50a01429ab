//! The loss curve as an SVG.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

/// Writes `(step, loss)` points as a line chart to an `.svg` file; `diverged_at`, the step whose
/// loss was not finite, is marked by a red vertical line.
pub fn loss_svg(
    path: &Path,
    points: &[(usize, f32)],
    diverged_at: Option<usize>,
    title: &str,
) -> Result<()> {
    if !super::is_stdio(path) && path.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!(
            "--plot writes SVG: give a path ending in .svg, got {}",
            path.display()
        );
    }
    if points.is_empty() && diverged_at.is_none() {
        bail!("no loss values to plot");
    }
    let max_x = points
        .iter()
        .map(|p| p.0)
        .chain(diverged_at)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_y = points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0f32, f32::max);
    let max_y = if max_y > 0.0 { max_y * 1.05 } else { 1.0 };
    if super::is_stdio(path) {
        let tmp = tempfile::Builder::new().suffix(".svg").tempfile()?;
        draw(tmp.path(), path, points, diverged_at, title, (max_x, max_y))?;
        return super::write_stdout(&std::fs::read(tmp.path())?);
    }
    super::write_atomic(path, |tmp| {
        draw(tmp, path, points, diverged_at, title, (max_x, max_y))
    })
}

fn draw(
    tmp: &Path,
    path: &Path,
    points: &[(usize, f32)],
    diverged_at: Option<usize>,
    title: &str,
    (max_x, max_y): (usize, f32),
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(tmp, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0usize..max_x, 0f32..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, BLUE.filled())),
        )
        .map_err(|e| err(&e))?;
    if let Some(step) = diverged_at {
        chart
            .draw_series(LineSeries::new(
                [(step, 0.0), (step, max_y)],
                RED.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("loss not finite at step {step}"));
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
