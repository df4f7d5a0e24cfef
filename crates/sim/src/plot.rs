//! SVG timeline plot: packets per bucket on each path, losses, and the
//! host events that moved traffic.

use std::time::Duration;

use plotters::prelude::*;

use crate::runner::RunResult;

type Curve<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot: {0}")]
pub struct PlotError(String);

/// The bucket width `hvnet simulate --plot` records a run of `d` with: about 400 buckets, at
/// least 10 ms each.
pub fn bucket_for(d: Duration) -> Duration {
    let ms = (d.as_millis() / 400).max(10);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Render `r` as an SVG document.
pub fn svg(r: &RunResult, title: &str) -> Result<String, PlotError> {
    let bucket = r
        .bucket
        .ok_or_else(|| PlotError("the run recorded no series (no bucket width)".into()))?;
    let secs = bucket.as_secs_f64();
    let end = r.summary.virtual_seconds.max(secs);
    let ymax = r
        .series
        .iter()
        .map(|b| b.hn.max(b.vf).max(b.lost))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        / secs;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| PlotError(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..end, 0f64..ymax * 1.25)
            .map_err(|e| PlotError(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc("packets/s (both directions)")
            .draw()
            .map_err(|e| PlotError(e.to_string()))?;
        let pts = |f: &dyn Fn(&crate::account::Bucket) -> u64| -> Vec<(f64, f64)> {
            r.series
                .iter()
                .enumerate()
                .flat_map(|(i, b)| {
                    let x0 = i as f64 * secs;
                    let y = f(b) as f64 / secs;
                    [(x0, y), ((x0 + secs).min(end), y)]
                })
                .collect()
        };
        let series: [Curve; 3] = [
            ("hn (synthetic)", RGBColor(31, 119, 180), pts(&|b| b.hn)),
            ("vf", RGBColor(44, 160, 44), pts(&|b| b.vf)),
            ("lost", RGBColor(214, 39, 40), pts(&|b| b.lost)),
        ];
        for (label, color, data) in series {
            chart
                .draw_series(LineSeries::new(data, color.stroke_width(2)))
                .map_err(|e| PlotError(e.to_string()))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        let grey = RGBColor(120, 120, 120);
        for (i, m) in r.markers.iter().enumerate() {
            let x = m.at.as_secs_f64();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, ymax * 1.25)],
                    grey.stroke_width(1),
                )))
                .map_err(|e| PlotError(e.to_string()))?;
            let y = ymax * (1.2 - 0.07 * (i % 3) as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    m.label.clone(),
                    (x, y),
                    ("sans-serif", 12).into_font().color(&grey),
                )))
                .map_err(|e| PlotError(e.to_string()))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| PlotError(e.to_string()))?;
        root.present().map_err(|e| PlotError(e.to_string()))?;
    }
    Ok(out)
}
