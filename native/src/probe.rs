//! Encoder probing: which H.264/HEVC encoder can this host actually open?
//!
//! A hardware encoder being compiled into FFmpeg says nothing about the host having the
//! hardware, so each candidate is opened for real with a small configuration, best first
//! (NVENC, QSV, VAAPI, then the software encoder), and the first that opens is chosen. The
//! report keeps the reason for every failure so `shardcast probe` can tell an operator why
//! the GPU was not used.

use std::fmt;
use std::path::Path;

use crate::codec::{CodecContext, CodecId, Rational, VideoConfig};
use crate::error::Error;
use crate::ffmpeg_log;
use crate::frame::PixelFormat;
use crate::hw::{HwDevice, HwDeviceKind};
use crate::options::Options;

/// The DRM render node VAAPI encoders are opened on.
pub const VAAPI_RENDER_NODE: &str = "/dev/dri/renderD128";

const H264_ORDER: [&str; 4] = ["h264_nvenc", "h264_qsv", "h264_vaapi", "libx264"];
const HEVC_ORDER: [&str; 4] = ["hevc_nvenc", "hevc_qsv", "hevc_vaapi", "libx265"];

/// The test configuration every candidate is opened with: small enough to open fast, within
/// every encoder's minimum size.
const PROBE_WIDTH: u32 = 320;
const PROBE_HEIGHT: u32 = 240;
const PROBE_FPS: i32 = 30;
const PROBE_GOP_FRAMES: u32 = 60;
const PROBE_BIT_RATE_BPS: u64 = 500_000;
/// Surfaces in the VAAPI frame pool made for the probe.
const PROBE_HW_POOL_FRAMES: u32 = 4;

/// Probes the H.264 encoders in order of preference, or only `force` when given.
pub fn probe_h264(force: Option<&str>) -> ProbeReport {
    probe(CodecId::H264, &H264_ORDER, force)
}

/// Probes the HEVC encoders in order of preference, or only `force` when given.
pub fn probe_hevc(force: Option<&str>) -> ProbeReport {
    probe(CodecId::Hevc, &HEVC_ORDER, force)
}

/// What probing found: every encoder tried, in order, and the one chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The codec probed for.
    pub codec: CodecId,
    /// Each encoder tried and how it went. Probing stops at the first that opens.
    pub attempts: Vec<(String, ProbeOutcome)>,
    /// The first encoder that opened, if any.
    pub chosen: Option<String>,
}

/// How one encoder fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The encoder opened with the test configuration.
    Opened,
    /// It did not; why.
    Failed {
        /// The reason.
        reason: ProbeFailure,
    },
}

/// Why an encoder could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// This FFmpeg build has no encoder of that name.
    NotRegistered,
    /// The encoder produces a different codec than the one probed for.
    WrongCodec {
        /// What it actually encodes (FFmpeg's name), if known.
        encodes: String,
    },
    /// The hardware device node does not exist on this host.
    DeviceMissing {
        /// The path looked for.
        path: String,
    },
    /// The device exists but FFmpeg could not open it (or make frames on it).
    DeviceFailed {
        /// FFmpeg's error.
        error: Error,
        /// FFmpeg's error log lines from the attempt.
        log: Vec<String>,
    },
    /// `avcodec_open2` failed.
    OpenFailed {
        /// FFmpeg's error.
        error: Error,
        /// FFmpeg's error log lines from the attempt (usually the real reason, such as a
        /// missing driver library).
        log: Vec<String>,
    },
}

impl ProbeReport {
    /// Whether the chosen encoder is a hardware one.
    pub fn chose_hardware(&self) -> bool {
        self.chosen
            .as_deref()
            .is_some_and(|name| hardware_kind(name).is_some())
    }
}

fn probe(codec: CodecId, order: &[&str], force: Option<&str>) -> ProbeReport {
    let candidates: Vec<&str> = match force {
        Some(name) => vec![name],
        None => order.to_vec(),
    };
    let mut attempts = Vec::new();
    let mut chosen = None;
    for name in candidates {
        let outcome = try_encoder(codec, name);
        let opened = outcome == ProbeOutcome::Opened;
        attempts.push((name.to_owned(), outcome));
        if opened {
            chosen = Some(name.to_owned());
            break;
        }
    }
    ProbeReport {
        codec,
        attempts,
        chosen,
    }
}

/// Opens `name` with the probe configuration; every object made here is dropped on return.
fn try_encoder(codec: CodecId, name: &str) -> ProbeOutcome {
    let failed = |reason| ProbeOutcome::Failed { reason };
    let mut ctx = match CodecContext::encoder_by_name(name) {
        Ok(ctx) => ctx,
        Err(Error::NotRegistered { .. }) => return failed(ProbeFailure::NotRegistered),
        Err(error) => {
            return failed(ProbeFailure::OpenFailed {
                error,
                log: Vec::new(),
            })
        }
    };
    if ctx.codec_id() != Some(codec) {
        let encodes = ctx.codec_id().map_or("another codec", CodecId::name);
        return failed(ProbeFailure::WrongCodec {
            encodes: encodes.to_owned(),
        });
    }
    let kind = hardware_kind(name);
    let pixel_format = match kind {
        None => PixelFormat::YUV420P,
        Some(HwDeviceKind::Vaapi) => PixelFormat::VAAPI,
        // NVENC and QSV take NV12 from system memory and set up their device themselves.
        Some(HwDeviceKind::Cuda | HwDeviceKind::Qsv) => PixelFormat::NV12,
    };
    ctx.configure_video(&VideoConfig {
        width: PROBE_WIDTH,
        height: PROBE_HEIGHT,
        pixel_format,
        time_base: Rational::new(1, PROBE_FPS),
        frame_rate: Rational::new(PROBE_FPS, 1),
        gop_size: PROBE_GOP_FRAMES,
        bit_rate_bps: PROBE_BIT_RATE_BPS,
        max_b_frames: 0,
        global_header: true,
        max_rate_bps: 0,
        buffer_bits: 0,
        threads: 1,
    });
    if kind == Some(HwDeviceKind::Vaapi) {
        if let Err(reason) = attach_vaapi(&mut ctx) {
            return failed(reason);
        }
    }
    let mut options = Options::new();
    if name == "libx265" {
        // x265 prints its banner straight to stderr, bypassing FFmpeg's log.
        let quiet = options.set("x265-params", "log-level=error");
        debug_assert!(quiet.is_ok());
    }
    let (opened, log) = ffmpeg_log::capture(|| ctx.open(Some(&mut options)));
    // Closing logs encoder statistics; they mean nothing for a probe.
    ffmpeg_log::capture(|| drop(ctx));
    match opened {
        Ok(()) => ProbeOutcome::Opened,
        Err(error) => failed(ProbeFailure::OpenFailed { error, log }),
    }
}

/// Opens the VAAPI render node and gives `ctx` an NV12 frame pool on it.
fn attach_vaapi(ctx: &mut CodecContext) -> Result<(), ProbeFailure> {
    if !Path::new(VAAPI_RENDER_NODE).exists() {
        return Err(ProbeFailure::DeviceMissing {
            path: VAAPI_RENDER_NODE.to_owned(),
        });
    }
    let (result, log) = ffmpeg_log::capture(|| {
        let device = HwDevice::create(HwDeviceKind::Vaapi, Some(VAAPI_RENDER_NODE))?;
        let frames = device.frames(
            PixelFormat::NV12,
            PROBE_WIDTH,
            PROBE_HEIGHT,
            PROBE_HW_POOL_FRAMES,
        )?;
        ctx.set_hw_frames(&frames)
    });
    result.map_err(|error| ProbeFailure::DeviceFailed { error, log })
}

/// The hardware API an encoder name implies, by FFmpeg's naming convention.
/// The system-memory picture format encoder `name` takes: NV12 for NVENC and QSV (they upload
/// it themselves), YUV 4:2:0 planar for software encoders, `None` for VAAPI, which takes only
/// hardware surfaces.
pub fn system_memory_format(name: &str) -> Option<PixelFormat> {
    match hardware_kind(name) {
        None => Some(PixelFormat::YUV420P),
        Some(HwDeviceKind::Cuda | HwDeviceKind::Qsv) => Some(PixelFormat::NV12),
        Some(HwDeviceKind::Vaapi) => None,
    }
}

fn hardware_kind(name: &str) -> Option<HwDeviceKind> {
    if name.ends_with("_nvenc") {
        Some(HwDeviceKind::Cuda)
    } else if name.ends_with("_qsv") {
        Some(HwDeviceKind::Qsv)
    } else if name.ends_with("_vaapi") {
        Some(HwDeviceKind::Vaapi)
    } else {
        None
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} encoders:", self.codec.name())?;
        let width = self
            .attempts
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0);
        for (name, outcome) in &self.attempts {
            writeln!(f, "  {name:<width$}  {outcome}")?;
        }
        match &self.chosen {
            Some(name) => write!(f, "chosen: {name}"),
            None => write!(f, "chosen: none"),
        }
    }
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Opened => f.write_str("opened"),
            ProbeOutcome::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::NotRegistered => f.write_str("not registered in this FFmpeg build"),
            ProbeFailure::WrongCodec { encodes } => write!(f, "encodes {encodes}"),
            ProbeFailure::DeviceMissing { path } => write!(f, "device {path} missing"),
            ProbeFailure::DeviceFailed { error, log } => {
                write!(f, "device failed: {error}")?;
                write_log(f, log)
            }
            ProbeFailure::OpenFailed { error, log } => {
                write!(f, "open failed: {error}")?;
                write_log(f, log)
            }
        }
    }
}

fn write_log(f: &mut fmt::Formatter<'_>, log: &[String]) -> fmt::Result {
    if log.is_empty() {
        Ok(())
    } else {
        write!(f, " ({})", log.join("; "))
    }
}
