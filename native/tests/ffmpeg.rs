//! End-to-end tests against the system FFmpeg: probing, a libx264 → h264 round trip, forced
//! keyframes, scaling, and proof that every owner is freed.
//!
//! The live-owner counters are process-wide, so every test runs under one lock and checks that
//! the counts after it equal the counts before it.

use std::path::Path;
use std::sync::Mutex;

use shardcast_native::{
    live_owners, probe_h264, probe_hevc, CodecContext, CodecId, Error, Frame, HwDevice,
    HwDeviceKind, Options, Packet, PixelFormat, ProbeFailure, ProbeOutcome, Rational, Scaler,
    VideoConfig, VideoFormat,
};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `test` alone and asserts that it left no owner alive.
fn serial(test: impl FnOnce()) {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = live_owners();
    test();
    let after = live_owners();
    assert_eq!(after, before, "owners leaked");
    assert_eq!(after.total(), 0, "owners alive outside any test");
}

const W: u32 = 320;
const H: u32 = 240;
const FRAMES: i64 = 10;

fn x264_config(global_header: bool) -> VideoConfig {
    VideoConfig {
        width: W,
        height: H,
        pixel_format: PixelFormat::YUV420P,
        time_base: Rational::new(1, 30),
        frame_rate: Rational::new(30, 1),
        gop_size: 60,
        bit_rate_bps: 400_000,
        max_b_frames: 0,
        global_header,
        max_rate_bps: 0,
        buffer_bits: 0,
        threads: 1,
    }
}

fn libx264(global_header: bool) -> CodecContext {
    let mut enc = CodecContext::encoder_by_name("libx264").unwrap();
    enc.configure_video(&x264_config(global_header));
    let mut options = Options::new();
    options.set("preset", "ultrafast").unwrap();
    options.set("forced-idr", "1").unwrap();
    enc.open(Some(&mut options)).unwrap();
    assert!(options.is_empty(), "libx264 took every option");
    enc
}

/// A picture with a flat luma of `y` and neutral chroma.
fn synthetic(format: VideoFormat, y: u8, pts: i64) -> Frame {
    let mut frame = Frame::video(format).unwrap();
    frame.plane_mut(0).unwrap().fill(y);
    frame.plane_mut(1).unwrap().fill(128);
    frame.plane_mut(2).unwrap().fill(128);
    frame.set_pts(Some(pts));
    frame
}

fn yuv420p(width: u32, height: u32) -> VideoFormat {
    VideoFormat {
        width,
        height,
        pixel_format: PixelFormat::YUV420P,
    }
}

/// Mean of the visible luma samples.
fn mean_luma(frame: &Frame) -> f64 {
    let stride = frame.stride(0).unwrap();
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let plane = frame.plane(0).unwrap();
    let sum: u64 = (0..h)
        .flat_map(|row| &plane[row * stride..row * stride + w])
        .map(|&b| u64::from(b))
        .sum();
    sum as f64 / (w * h) as f64
}

/// Receives every packet the encoder has ready, returning (pts, key, bytes) for each.
fn drain_packets(enc: &mut CodecContext, out: &mut Vec<(i64, bool, Vec<u8>)>) -> Error {
    let mut packet = Packet::new().unwrap();
    loop {
        match enc.receive_packet(&mut packet) {
            Ok(()) => out.push((
                packet.pts().unwrap(),
                packet.is_key(),
                packet.data().to_vec(),
            )),
            Err(stop) => return stop,
        }
    }
}

fn gpu_present() -> bool {
    Path::new("/dev/dri").exists() || Path::new("/dev/nvidia0").exists()
}

#[test]
fn probe_h264_falls_back_to_libx264_with_a_reason_for_each_hardware_encoder() {
    serial(|| {
        let report = probe_h264(None);
        eprintln!("{report}");
        let names: Vec<&str> = report.attempts.iter().map(|(n, _)| n.as_str()).collect();
        let (last, rest) = report.attempts.split_last().unwrap();
        assert_eq!(last.1, ProbeOutcome::Opened);
        assert_eq!(report.chosen.as_deref(), Some(last.0.as_str()));
        for (name, outcome) in rest {
            let ProbeOutcome::Failed { reason } = outcome else {
                panic!("{name} opened but was not chosen");
            };
            assert!(!reason.to_string().is_empty());
        }
        if !gpu_present() {
            assert_eq!(names, ["h264_nvenc", "h264_qsv", "h264_vaapi", "libx264"]);
            assert!(!report.chose_hardware());
            assert_eq!(
                report.attempts[2].1,
                ProbeOutcome::Failed {
                    reason: ProbeFailure::DeviceMissing {
                        path: "/dev/dri/renderD128".into()
                    }
                }
            );
            let text = report.to_string();
            assert!(text.contains("h264_vaapi  failed: device /dev/dri/renderD128 missing"));
            assert!(text.ends_with("chosen: libx264"));
        }
    });
}

#[test]
fn probe_hevc_reports_every_attempt() {
    serial(|| {
        let report = probe_hevc(None);
        eprintln!("{report}");
        assert_eq!(report.codec, CodecId::Hevc);
        assert!(!report.attempts.is_empty());
        let opened = report
            .attempts
            .iter()
            .filter(|(_, o)| *o == ProbeOutcome::Opened)
            .count();
        assert_eq!(opened, usize::from(report.chosen.is_some()));
        if !gpu_present() {
            assert_eq!(report.attempts[0].0, "hevc_nvenc");
            assert_eq!(report.chosen.as_deref(), Some("libx265"));
        }
    });
}

#[test]
fn forcing_libx264_opens_only_it() {
    serial(|| {
        let report = probe_h264(Some("libx264"));
        assert_eq!(
            report.attempts,
            vec![("libx264".to_string(), ProbeOutcome::Opened)]
        );
        assert_eq!(report.chosen.as_deref(), Some("libx264"));
    });
}

#[test]
fn forcing_a_bogus_name_fails_as_not_registered() {
    serial(|| {
        let report = probe_h264(Some("h264_bogus"));
        assert_eq!(report.chosen, None);
        assert_eq!(
            report.attempts,
            vec![(
                "h264_bogus".to_string(),
                ProbeOutcome::Failed {
                    reason: ProbeFailure::NotRegistered
                }
            )]
        );
        assert!(report.to_string().contains("not registered"));
        assert!(report.to_string().ends_with("chosen: none"));
    });
}

#[test]
fn forcing_an_encoder_of_the_other_codec_is_refused() {
    serial(|| {
        let report = probe_h264(Some("libx265"));
        assert_eq!(report.chosen, None);
        assert!(matches!(
            &report.attempts[0].1,
            ProbeOutcome::Failed {
                reason: ProbeFailure::WrongCodec { encodes }
            } if encodes == "hevc"
        ));
    });
}

#[test]
fn encode_with_libx264_then_decode_with_h264() {
    serial(|| {
        let mut enc = libx264(true);
        assert_eq!(enc.name(), "libx264");
        assert!(enc.is_encoder());
        let extradata = enc.extradata().to_vec();
        assert!(
            extradata.starts_with(&[0, 0, 0, 1]),
            "global header gives Annex B SPS/PPS"
        );

        // Nothing sent yet: the encoder asks for input.
        let mut packets = Vec::new();
        assert_eq!(drain_packets(&mut enc, &mut packets), Error::Again);

        let format = yuv420p(W, H);
        for pts in 0..FRAMES {
            let frame = synthetic(format, 60 + 10 * pts as u8, pts);
            enc.send_frame(&frame).unwrap();
            assert_eq!(drain_packets(&mut enc, &mut packets), Error::Again);
        }
        enc.send_eof().unwrap();
        assert_eq!(drain_packets(&mut enc, &mut packets), Error::Eof);
        // Drained: it stays at end of stream, and a second flush says so too.
        assert_eq!(drain_packets(&mut enc, &mut packets), Error::Eof);
        assert_eq!(enc.send_eof(), Err(Error::Eof));
        assert_eq!(packets.len(), FRAMES as usize);
        assert!(packets[0].1, "first packet is a keyframe");

        // The decoder gets the parameter sets out of band, as from an FLV sequence header.
        let mut dec = CodecContext::decoder(CodecId::H264).unwrap();
        assert!(!dec.is_encoder());
        dec.set_extradata(&extradata).unwrap();
        dec.open(None).unwrap();
        assert_eq!(dec.extradata(), &extradata[..]);
        let mut frame = Frame::new().unwrap();
        let mut decoded = Vec::new();
        let mut drain = |dec: &mut CodecContext, decoded: &mut Vec<(i64, f64)>| loop {
            match dec.receive_frame(&mut frame) {
                Ok(()) => {
                    assert_eq!(frame.format(), Some(format));
                    decoded.push((frame.pts().unwrap(), mean_luma(&frame)));
                }
                Err(stop) => return stop,
            }
        };
        assert_eq!(drain(&mut dec, &mut decoded), Error::Again);
        for (pts, _, data) in &packets {
            let mut packet = Packet::copy_from(data).unwrap();
            packet.set_pts(Some(*pts));
            packet.set_dts(Some(*pts));
            dec.send_packet(&packet).unwrap();
            assert_eq!(drain(&mut dec, &mut decoded), Error::Again);
        }
        dec.send_eof().unwrap();
        assert_eq!(drain(&mut dec, &mut decoded), Error::Eof);

        assert_eq!(decoded.len(), FRAMES as usize);
        for (i, (pts, luma)) in decoded.iter().enumerate() {
            assert_eq!(*pts, i as i64);
            let expected = 60.0 + 10.0 * i as f64;
            assert!((luma - expected).abs() < 3.0, "frame {i}: luma {luma}");
        }
    });
}

#[test]
fn a_forced_keyframe_lands_on_the_requested_frame() {
    serial(|| {
        let mut enc = libx264(false);
        let format = yuv420p(W, H);
        let mut packets = Vec::new();
        for pts in 0..FRAMES {
            let mut frame = synthetic(format, 100, pts);
            frame.set_force_keyframe(pts == 7);
            enc.send_frame(&frame).unwrap();
            drain_packets(&mut enc, &mut packets);
        }
        enc.send_eof().unwrap();
        assert_eq!(drain_packets(&mut enc, &mut packets), Error::Eof);
        let keys: Vec<i64> = packets
            .iter()
            .filter(|(_, key, _)| *key)
            .map(|(pts, _, _)| *pts)
            .collect();
        assert_eq!(
            keys,
            [0, 7],
            "gop is 60, so only the first and the forced one"
        );
    });
}

#[test]
fn scale_640x360_to_320x180() {
    serial(|| {
        let src_format = yuv420p(640, 360);
        let dst_format = yuv420p(320, 180);
        let mut scaler = Scaler::new(src_format, dst_format).unwrap();
        assert_eq!((scaler.src(), scaler.dst()), (src_format, dst_format));
        let src = synthetic(src_format, 180, 42);
        let out = scaler.scale(&src).unwrap();
        assert_eq!(out.format(), Some(dst_format));
        assert_eq!((out.width(), out.height()), (320, 180));
        assert_eq!(out.pts(), Some(42));
        assert!((mean_luma(&out) - 180.0).abs() < 1.0);

        // Reusing an output frame.
        let mut reused = Frame::video(dst_format).unwrap();
        scaler
            .scale_into(&synthetic(src_format, 30, 43), &mut reused)
            .unwrap();
        assert!((mean_luma(&reused) - 30.0).abs() < 1.0);

        // A frame of another size is refused, not read out of bounds.
        let wrong = synthetic(yuv420p(320, 240), 0, 0);
        assert!(matches!(
            scaler.scale(&wrong),
            Err(Error::FrameMismatch { found, .. }) if found == yuv420p(320, 240)
        ));
        assert!(matches!(
            scaler.scale(&Frame::new().unwrap()),
            Err(Error::FrameMismatch { .. })
        ));
    });
}

#[test]
fn scaler_refuses_hardware_formats() {
    serial(|| {
        let hw = VideoFormat {
            width: 64,
            height: 64,
            pixel_format: PixelFormat::VAAPI,
        };
        assert!(matches!(
            Scaler::new(hw, yuv420p(32, 32)),
            Err(Error::ScalerUnsupported { .. })
        ));
    });
}

#[test]
fn missing_hardware_device_is_an_error() {
    serial(|| {
        if !Path::new("/dev/dri/renderD128").exists() {
            let err = HwDevice::create(HwDeviceKind::Vaapi, Some("/dev/dri/renderD128"));
            assert!(matches!(err, Err(Error::Ffmpeg { .. })), "{err:?}");
        }
        if !Path::new("/dev/nvidia0").exists() {
            assert!(HwDevice::create(HwDeviceKind::Cuda, None).is_err());
        }
    });
}

#[test]
fn unknown_options_are_left_in_the_dictionary() {
    serial(|| {
        let mut enc = CodecContext::encoder(CodecId::H264).unwrap();
        enc.configure_video(&x264_config(false));
        let mut options = Options::new();
        options.set("preset", "ultrafast").unwrap();
        options.set("no_such_option", "1").unwrap();
        enc.open(Some(&mut options)).unwrap();
        assert!(enc.is_open());
        let left: Vec<_> = options.iter().collect();
        assert_eq!(left, [("no_such_option", "1")]);
    });
}

#[test]
fn unregistered_codecs_are_typed_errors() {
    serial(|| {
        assert_eq!(
            CodecContext::encoder_by_name("nope").unwrap_err(),
            Error::NotRegistered {
                name: "nope".into()
            }
        );
        assert!(matches!(
            CodecContext::decoder_by_name("no\0pe"),
            Err(Error::InteriorNul { .. })
        ));
    });
}

#[test]
fn sending_to_an_unopened_codec_is_an_ffmpeg_error() {
    serial(|| {
        let mut dec = CodecContext::decoder(CodecId::H264).unwrap();
        let packet = Packet::copy_from(&[0, 0, 0, 1]).unwrap();
        assert!(matches!(
            dec.send_packet(&packet),
            Err(Error::Ffmpeg { message, .. }) if message == "Invalid argument"
        ));
    });
}

#[test]
#[should_panic(expected = "configuration changed after open")]
fn configuring_after_open_panics() {
    let _guard = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut enc = libx264(false);
    enc.configure_video(&x264_config(false));
}

#[test]
fn owners_are_send() {
    fn send<T: Send>() {}
    send::<Packet>();
    send::<Frame>();
    send::<CodecContext>();
    send::<Scaler>();
    send::<HwDevice>();
    send::<Options>();
}

#[test]
fn a_filter_graph_draws_on_pictures_and_keeps_their_format_and_time() {
    serial(|| {
        let format = yuv420p(W, H);
        let mut graph = shardcast_native::FilterGraph::new(
            format,
            Rational::new(1, 90_000),
            "drawbox=x=0:y=0:w=32:h=32:color=white:t=fill",
        )
        .unwrap();
        assert_eq!(graph.format(), format);
        let mut out = Frame::new().unwrap();
        for pts in [0, 3000, 6000] {
            let input = synthetic(format, 40, pts);
            graph.filter(&input, &mut out).unwrap();
            assert_eq!(out.format(), Some(format));
            assert_eq!(out.pts(), Some(pts));
            let stride = out.stride(0).unwrap();
            let plane = out.plane(0).unwrap();
            assert!(plane[0] > 200 && plane[31] > 200, "inside the box: white");
            assert!(plane[16 * stride + 31] > 200);
            assert_eq!(plane[40 * stride + 40], 40, "outside the box: untouched");
            // The input is not modified.
            assert_eq!(input.plane(0).unwrap()[0], 40);
        }
        let refused = shardcast_native::FilterGraph::new(
            format,
            Rational::new(1, 90_000),
            "no_such_filter=1",
        );
        assert!(refused.is_err());
        let refused = shardcast_native::FilterGraph::new(
            format,
            Rational::new(1, 90_000),
            "movie=/nonexistent/logo.png[wm];[in][wm]overlay=10:10",
        );
        assert!(refused.is_err());
    });
}
