//! The profile's figures (feature `plot`), as the Python original's README shows them: engines;
//! serializers, size against speed; compressors, size against speed; everything together.
//!
//! Text is drawn with a TrueType font found on the system (`$HASHSTASH_FONT`, else DejaVu
//! Sans or Arial where the usual packages put them), so the binary carries no font.

use super::Measurement;
use crate::codec::{Compressor, Serializer};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const SIZE: (u32, u32) = (900, 600);
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Where fonts usually are: Debian's fonts-dejavu-core, other Linux layouts, macOS.
const FONT_FILES: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Draws every figure the measurements allow into `dir` and returns the files written:
/// `fig.comparing_engines.png`, `fig.comparing_serializers_size_speed.png`,
/// `fig.comparing_encodings_size_speed.png`, `fig.comparing_engines_serializers_encodings.png`.
pub fn figures(measurements: &[Measurement], dir: &Path) -> Result<Vec<PathBuf>> {
    load_font()?;
    crate::engine::create_private_dir(dir)?;
    let mut written = Vec::new();
    let default_engine = pick_engine(measurements);
    let (serializer, compress) = (Serializer::default().name(), Compressor::default().name());

    let by_engine: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.serializer == serializer && m.compress == compress)
        .collect();
    if !by_engine.is_empty() {
        let path = dir.join("fig.comparing_engines.png");
        let labels: Vec<String> = by_engine.iter().map(|m| m.engine.clone()).collect();
        let series = [
            ("get", by_engine.iter().map(|m| m.get_per_s).collect()),
            ("set", by_engine.iter().map(|m| m.set_per_s).collect()),
            (
                "update (batched)",
                by_engine.iter().map(|m| m.update_per_s).collect(),
            ),
        ];
        let title = format!("Engines ({serializer} serializer, {compress}): operations per second");
        bars(&path, &title, &labels, &series)?;
        written.push(path);
    }

    if let Some(engine) = &default_engine {
        let raw = Compressor::Raw.name();
        let serializers: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| &m.engine == engine && m.compress == raw)
            .collect();
        if !serializers.is_empty() {
            let path = dir.join("fig.comparing_serializers_size_speed.png");
            let title = format!("Serializers ({engine}, no compression): size against speed");
            size_speed(&path, &title, &serializers, |m| m.serializer.clone())?;
            written.push(path);
        }
        let compressors: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| &m.engine == engine && m.serializer == serializer)
            .collect();
        if !compressors.is_empty() {
            let path = dir.join("fig.comparing_encodings_size_speed.png");
            let title =
                format!("Compressors ({engine}, {serializer} serializer): size against speed");
            size_speed(&path, &title, &compressors, |m| m.compress.clone())?;
            written.push(path);
        }
    }

    if !measurements.is_empty() {
        let path = dir.join("fig.comparing_engines_serializers_encodings.png");
        everything(&path, measurements)?;
        written.push(path);
    }
    Ok(written)
}

/// The default engine if it was measured, else the first one that was.
fn pick_engine(measurements: &[Measurement]) -> Option<String> {
    let default = EngineKind::default_engine().name();
    measurements
        .iter()
        .find(|m| m.engine == default)
        .or_else(|| measurements.first())
        .map(|m| m.engine.clone())
}

fn load_font() -> Result<()> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    let loaded = LOADED.get_or_init(|| {
        let from_env = std::env::var_os("HASHSTASH_FONT").map(PathBuf::from);
        let candidates = from_env
            .into_iter()
            .chain(FONT_FILES.iter().map(PathBuf::from));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font found for the figures: set HASHSTASH_FONT to a .ttf file, or \
             install one (Debian: fonts-dejavu-core); looked in {}",
            FONT_FILES.join(", ")
        ))
    });
    loaded.clone().map_err(|message| Error::InvalidOption {
        option: "plot",
        message,
    })
}

fn failed(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

/// The range of a log axis that holds `values`.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 1.0..10.0;
    }
    (lo / 2.0)..(hi * 2.0)
}

/// Grouped bars on a log scale: one group per label, one bar per series.
fn bars(path: &Path, title: &str, labels: &[String], series: &[(&str, Vec<f64>)]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, e))?;
    let y = log_range(series.iter().flat_map(|(_, v)| v.iter().copied()));
    let n = labels.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, y.clone().log_scale())
        .map_err(|e| failed(path, e))?;
    let label_of = |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-6 {
            labels.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len() * 2 + 1)
        .x_label_formatter(&label_of)
        .y_desc("per second")
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| failed(path, e))?;
    let width = 0.8 / series.len() as f64;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1 + s as f64 * width;
                Rectangle::new(
                    [(x0, y.start), (x0 + width, v.max(y.start))],
                    color.filled(),
                )
            }))
            .map_err(|e| failed(path, e))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(path, e))?;
    root.present().map_err(|e| failed(path, e))
}

/// Bytes per item against gets and sets per second, one labelled pair of points per
/// measurement.
fn size_speed(
    path: &Path,
    title: &str,
    measurements: &[&Measurement],
    name: impl Fn(&Measurement) -> String,
) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, e))?;
    let x_max = measurements
        .iter()
        .map(|m| m.bytes_per_item)
        .fold(1.0, f64::max);
    let y = log_range(measurements.iter().flat_map(|m| [m.get_per_s, m.set_per_s]));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max * 1.25, y.log_scale())
        .map_err(|e| failed(path, e))?;
    chart
        .configure_mesh()
        .x_desc("stored bytes per item (smaller is better)")
        .y_desc("per second (higher is better)")
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| failed(path, e))?;
    for (s, (what, color)) in [("get", COLORS[0]), ("set", COLORS[1])]
        .into_iter()
        .enumerate()
    {
        let points: Vec<(f64, f64, String)> = measurements
            .iter()
            .map(|m| {
                let speed = if s == 0 { m.get_per_s } else { m.set_per_s };
                (m.bytes_per_item, speed, name(m))
            })
            .collect();
        chart
            .draw_series(points.iter().map(|(x, y, label)| {
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 5, color.filled())
                    + Text::new(label.clone(), (7, -7), ("sans-serif", 14))
            }))
            .map_err(|e| failed(path, e))?
            .label(what)
            .legend(move |(x, y)| Circle::new((x + 5, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(path, e))?;
    root.present().map_err(|e| failed(path, e))
}

/// Every measurement: bytes per item against gets per second, coloured by engine.
fn everything(path: &Path, measurements: &[Measurement]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(path, e))?;
    let x_max = measurements
        .iter()
        .map(|m| m.bytes_per_item)
        .fold(1.0, f64::max);
    let y = log_range(measurements.iter().map(|m| m.get_per_s));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Engines x serializers x compressors: gets per second against size",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max * 1.1, y.log_scale())
        .map_err(|e| failed(path, e))?;
    chart
        .configure_mesh()
        .x_desc("stored bytes per item")
        .y_desc("gets per second")
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| failed(path, e))?;
    let mut engines: Vec<&str> = Vec::new();
    for m in measurements {
        if !engines.contains(&m.engine.as_str()) {
            engines.push(&m.engine);
        }
    }
    for (e, engine) in engines.iter().enumerate() {
        let color = COLORS[e % COLORS.len()];
        chart
            .draw_series(
                measurements
                    .iter()
                    .filter(|m| m.engine == *engine)
                    .map(|m| Circle::new((m.bytes_per_item, m.get_per_s), 5, color.filled())),
            )
            .map_err(|e| failed(path, e))?
            .label(*engine)
            .legend(move |(x, y)| Circle::new((x + 5, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(path, e))?;
    root.present().map_err(|e| failed(path, e))
}

/// 1.2M, 35k, 900.
fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
