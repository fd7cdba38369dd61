//! [`CodecContext`]: an owned `AVCodecContext`, decoder or encoder, with FFmpeg's
//! send/receive contract.

use std::ffi::CStr;
use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ffi;

use crate::error::{c_string, check, Error};
use crate::frame::{Frame, PixelFormat};
use crate::hw::{HwDevice, HwFrames};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};
use crate::options::Options;
use crate::packet::Packet;

/// The codecs shardcast handles, by FFmpeg id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecId {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    Hevc,
    /// AAC.
    Aac,
    /// Opus.
    Opus,
    /// VP8 (decoded only: a WHIP publisher's video, made into H.264).
    Vp8,
}

impl CodecId {
    fn to_raw(self) -> ffi::AVCodecID {
        match self {
            CodecId::H264 => ffi::AVCodecID::AV_CODEC_ID_H264,
            CodecId::Hevc => ffi::AVCodecID::AV_CODEC_ID_HEVC,
            CodecId::Aac => ffi::AVCodecID::AV_CODEC_ID_AAC,
            CodecId::Opus => ffi::AVCodecID::AV_CODEC_ID_OPUS,
            CodecId::Vp8 => ffi::AVCodecID::AV_CODEC_ID_VP8,
        }
    }

    /// FFmpeg's short name for the codec (`"h264"`, `"hevc"`, `"aac"`, `"opus"`, `"vp8"`).
    pub fn name(self) -> &'static str {
        match self {
            CodecId::H264 => "h264",
            CodecId::Hevc => "hevc",
            CodecId::Aac => "aac",
            CodecId::Opus => "opus",
            CodecId::Vp8 => "vp8",
        }
    }
}

/// An exact rational number, as FFmpeg's `AVRational` (time bases, frame rates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    /// Numerator.
    pub num: i32,
    /// Denominator.
    pub den: i32,
}

impl Rational {
    /// `num / den`.
    pub const fn new(num: i32, den: i32) -> Rational {
        Rational { num, den }
    }

    fn to_raw(self) -> ffi::AVRational {
        ffi::AVRational {
            num: self.num,
            den: self.den,
        }
    }
}

/// What a video encoder is set up with before [`CodecContext::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoConfig {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Input pixel format (a hardware format needs [`CodecContext::set_hw_frames`] too).
    pub pixel_format: PixelFormat,
    /// Unit of the frames' and packets' timestamps.
    pub time_base: Rational,
    /// Nominal frame rate.
    pub frame_rate: Rational,
    /// Maximum distance between keyframes, in frames.
    pub gop_size: u32,
    /// Target bit rate in bits per second.
    pub bit_rate_bps: u64,
    /// B-frames between reference frames; 0 keeps decode order equal to presentation order.
    pub max_b_frames: u32,
    /// Put parameter sets in [`CodecContext::extradata`] rather than in every keyframe
    /// (what an fMP4 `avcC`/`hvcC` needs).
    pub global_header: bool,
    /// Rate control for live delivery: the VBV maximum rate in bits per second (0: unset,
    /// the encoder's average bit rate mode).
    pub max_rate_bps: u64,
    /// The VBV buffer in bits (0: unset).
    pub buffer_bits: u64,
    /// Codec threads (0: the codec chooses, usually one per CPU it may run on).
    pub threads: u32,
}

impl VideoConfig {
    /// A software encoder's setup: `width`×`height` YUV 4:2:0, timestamps in 1/90000 s,
    /// no B-frames, parameter sets out of band, rate control off. Set the rest by field.
    pub fn new(width: u32, height: u32, frame_rate: Rational, bit_rate_bps: u64) -> VideoConfig {
        VideoConfig {
            width,
            height,
            pixel_format: PixelFormat::YUV420P,
            time_base: Rational::new(1, 90_000),
            frame_rate,
            gop_size: 250,
            bit_rate_bps,
            max_b_frames: 0,
            global_header: true,
            max_rate_bps: 0,
            buffer_bits: 0,
            threads: 0,
        }
    }
}

/// An owned `AVCodecContext` bound to one decoder or encoder.
///
/// Call order: construct, configure ([`CodecContext::configure_video`],
/// [`CodecContext::set_extradata`], hardware contexts), [`CodecContext::open`], then alternate
/// sending input and receiving output until the receive call returns [`Error::Again`] (send
/// more input) — after [`CodecContext::send_eof`], keep receiving until [`Error::Eof`].
/// Configuration after `open` is a caller bug and panics.
#[derive(Debug)]
pub struct CodecContext {
    ptr: NonNull<ffi::AVCodecContext>,
    codec: NonNull<ffi::AVCodec>,
    _live: LiveGuard,
}

// SAFETY: the context, and every buffer reference it holds, is exclusively owned by this
// value; FFmpeg codec contexts are not tied to the thread that made them (hardware encoders
// push and pop their device context around each call). It is not `Sync`: a context must not be
// used from two threads at once.
unsafe impl Send for CodecContext {}

impl CodecContext {
    /// A decoder for `id`.
    pub fn decoder(id: CodecId) -> Result<CodecContext, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: lookup in FFmpeg's static codec table; NULL when absent.
        let codec = unsafe { ffi::avcodec_find_decoder(id.to_raw()) };
        CodecContext::with_codec(codec, id.name())
    }

    /// The decoder named `name` (e.g. `"h264"`, `"h264_cuvid"`).
    pub fn decoder_by_name(name: &str) -> Result<CodecContext, Error> {
        assert_ffmpeg_allowed();
        let c_name = c_string(name)?;
        // SAFETY: lookup in FFmpeg's static codec table with a NUL-terminated name.
        let codec = unsafe { ffi::avcodec_find_decoder_by_name(c_name.as_ptr()) };
        CodecContext::with_codec(codec, name)
    }

    /// The default encoder for `id`.
    pub fn encoder(id: CodecId) -> Result<CodecContext, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: lookup in FFmpeg's static codec table; NULL when absent.
        let codec = unsafe { ffi::avcodec_find_encoder(id.to_raw()) };
        CodecContext::with_codec(codec, id.name())
    }

    /// The encoder named `name` (e.g. `"libx264"`, `"h264_nvenc"`).
    pub fn encoder_by_name(name: &str) -> Result<CodecContext, Error> {
        assert_ffmpeg_allowed();
        let c_name = c_string(name)?;
        // SAFETY: lookup in FFmpeg's static codec table with a NUL-terminated name.
        let codec = unsafe { ffi::avcodec_find_encoder_by_name(c_name.as_ptr()) };
        CodecContext::with_codec(codec, name)
    }

    fn with_codec(codec: *const ffi::AVCodec, name: &str) -> Result<CodecContext, Error> {
        let codec = NonNull::new(codec.cast_mut()).ok_or_else(|| Error::NotRegistered {
            name: name.to_owned(),
        })?;
        // SAFETY: `codec` is a static codec descriptor from FFmpeg's table.
        let raw = unsafe { ffi::avcodec_alloc_context3(codec.as_ptr()) };
        let ptr = NonNull::new(raw).ok_or(Error::OutOfMemory {
            what: "AVCodecContext",
        })?;
        Ok(CodecContext {
            ptr,
            codec,
            _live: LiveGuard::new(Kind::CodecContext),
        })
    }

    /// The codec's FFmpeg name (`"libx264"`, `"h264"`, …).
    pub fn name(&self) -> &'static str {
        // SAFETY: `codec` points to a static `AVCodec` whose `name` is a static C string.
        unsafe { CStr::from_ptr(self.codec.as_ref().name) }
            .to_str()
            .unwrap_or("?")
    }

    /// The codec id this context encodes or decodes, when it is one shardcast knows.
    pub fn codec_id(&self) -> Option<CodecId> {
        // SAFETY: `codec` points to a static `AVCodec`.
        let id = unsafe { self.codec.as_ref() }.id;
        [
            CodecId::H264,
            CodecId::Hevc,
            CodecId::Aac,
            CodecId::Opus,
            CodecId::Vp8,
        ]
        .into_iter()
        .find(|c| c.to_raw() == id)
    }

    /// Whether this context encodes (as opposed to decodes).
    pub fn is_encoder(&self) -> bool {
        // SAFETY: `codec` points to a static `AVCodec`.
        unsafe { ffi::av_codec_is_encoder(self.codec.as_ptr()) != 0 }
    }

    /// Whether [`CodecContext::open`] has succeeded.
    pub fn is_open(&self) -> bool {
        // SAFETY: `ptr` is a live context owned by `self`.
        unsafe { ffi::avcodec_is_open(self.ptr.as_ptr()) != 0 }
    }

    /// Sets an audio encoder up for 32-bit float samples (planar for AAC, FFmpeg's encoder
    /// takes nothing else; interleaved otherwise) at `sample_rate` with the default layout of
    /// `channels`, timestamps in 1/`sample_rate` s, and its configuration in the extradata.
    /// Before `open` only.
    pub fn configure_audio(&mut self, sample_rate: u32, channels: u8, bit_rate_bps: u64) {
        self.assert_not_open();
        let planar = self.codec_id() == Some(CodecId::Aac);
        let ctx = self.raw_mut();
        ctx.sample_rate = i32::try_from(sample_rate).expect("sample rate fits i32");
        ctx.sample_fmt = if planar {
            ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP
        } else {
            ffi::AVSampleFormat::AV_SAMPLE_FMT_FLT
        };
        ctx.flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
        ctx.bit_rate = i64::try_from(bit_rate_bps).expect("bit rate fits i64");
        ctx.time_base = Rational::new(1, ctx.sample_rate).to_raw();
        // SAFETY: the context is live and not open; the default layout for a channel count is
        // written into its (plain-data, unallocated) `ch_layout`.
        unsafe { ffi::av_channel_layout_default(&mut ctx.ch_layout, i32::from(channels)) };
    }

    /// An open audio encoder's frame size: the samples per channel every frame but the last
    /// must carry (0: any).
    pub fn frame_size(&self) -> usize {
        usize::try_from(self.raw().frame_size).unwrap_or(0)
    }

    /// Sets a video encoder's geometry, format, timing and rate control. Before `open` only.
    pub fn configure_video(&mut self, config: &VideoConfig) {
        self.assert_not_open();
        let ctx = self.raw_mut();
        ctx.width = i32::try_from(config.width).expect("width fits i32");
        ctx.height = i32::try_from(config.height).expect("height fits i32");
        ctx.pix_fmt = config.pixel_format.to_raw();
        ctx.time_base = config.time_base.to_raw();
        ctx.framerate = config.frame_rate.to_raw();
        ctx.gop_size = i32::try_from(config.gop_size).expect("gop_size fits i32");
        ctx.bit_rate = i64::try_from(config.bit_rate_bps).expect("bit rate fits i64");
        ctx.max_b_frames = i32::try_from(config.max_b_frames).expect("max_b_frames fits i32");
        if config.max_rate_bps > 0 {
            ctx.rc_max_rate = i64::try_from(config.max_rate_bps).expect("max rate fits i64");
        }
        if config.buffer_bits > 0 {
            ctx.rc_buffer_size = i32::try_from(config.buffer_bits).unwrap_or(i32::MAX);
        }
        ctx.thread_count = i32::try_from(config.threads).unwrap_or(0);
        if config.global_header {
            ctx.flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
        } else {
            ctx.flags &= !(ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32);
        }
    }

    /// Fixed-quality encoding (`-q:v`): every frame at quantiser `quality` (in `FF_QP2LAMBDA`
    /// units; frames carry it too, see [`crate::Frame::set_quality`]). Before `open` only.
    pub fn set_fixed_quality(&mut self, quality: i32) {
        self.assert_not_open();
        let ctx = self.raw_mut();
        ctx.flags |= ffi::AV_CODEC_FLAG_QSCALE as i32;
        ctx.global_quality = quality;
    }

    /// Sets how many threads the codec may use (0: it chooses). Before `open` only.
    pub fn set_threads(&mut self, threads: u32) {
        self.assert_not_open();
        self.raw_mut().thread_count = i32::try_from(threads).unwrap_or(0);
    }

    /// Gives a decoder its out-of-band configuration (the `AVCDecoderConfigurationRecord` or
    /// `HEVCDecoderConfigurationRecord` from the FLV sequence header). Before `open` only.
    pub fn set_extradata(&mut self, data: &[u8]) -> Result<(), Error> {
        self.assert_not_open();
        let size = i32::try_from(data.len()).map_err(|_| Error::OutOfMemory {
            what: "extradata over 2 GiB",
        })?;
        let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        // SAFETY: plain allocation of zeroed memory; NULL is handled below.
        let buf = unsafe { ffi::av_mallocz(data.len() + padding) }.cast::<u8>();
        if buf.is_null() {
            return Err(Error::OutOfMemory { what: "extradata" });
        }
        // SAFETY: `buf` has room for `data.len()` bytes (plus zeroed padding) and is fresh, so
        // it cannot overlap `data`.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
        let ctx = self.raw_mut();
        // SAFETY: `extradata` is NULL or an `av_malloc`ed buffer owned by this unopened context;
        // `av_freep` frees it and NULLs the field before the new buffer is stored.
        unsafe { ffi::av_freep(ptr::addr_of_mut!(ctx.extradata).cast()) };
        ctx.extradata = buf;
        ctx.extradata_size = size;
        Ok(())
    }

    /// The codec's out-of-band configuration, borrowed from the context: what a decoder was
    /// given, or what an encoder opened with `global_header` produced (SPS/PPS for the init
    /// segment).
    pub fn extradata(&self) -> &[u8] {
        let ctx = self.raw();
        let len = usize::try_from(ctx.extradata_size).unwrap_or(0);
        if ctx.extradata.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: `extradata` holds `extradata_size` bytes owned by the context, which `&self`
        // keeps alive and unchanged for the borrow (only `&mut self` methods replace it).
        unsafe { std::slice::from_raw_parts(ctx.extradata, len) }
    }

    /// Makes the codec use `device` (it keeps its own reference). Before `open` only.
    pub fn set_hw_device(&mut self, device: &HwDevice) -> Result<(), Error> {
        self.assert_not_open();
        let new_ref = device.new_ref()?;
        let ctx = self.raw_mut();
        // SAFETY: `hw_device_ctx` is NULL or a reference owned by this context;
        // `av_buffer_unref` releases it and NULLs the field before the new one is stored.
        unsafe { ffi::av_buffer_unref(&mut ctx.hw_device_ctx) };
        ctx.hw_device_ctx = new_ref;
        Ok(())
    }

    /// Makes an encoder take frames from `frames` (required for a hardware input pixel
    /// format; the codec keeps its own reference). Before `open` only.
    pub fn set_hw_frames(&mut self, frames: &HwFrames) -> Result<(), Error> {
        self.assert_not_open();
        let new_ref = frames.new_ref()?;
        let ctx = self.raw_mut();
        // SAFETY: `hw_frames_ctx` is NULL or a reference owned by this context;
        // `av_buffer_unref` releases it and NULLs the field before the new one is stored.
        unsafe { ffi::av_buffer_unref(&mut ctx.hw_frames_ctx) };
        ctx.hw_frames_ctx = new_ref;
        Ok(())
    }

    /// Opens the codec. `options` are codec-private and generic options (`preset`, `tune`,
    /// `forced-idr`, …); afterwards it holds only the ones the codec did not recognise.
    pub fn open(&mut self, options: Option<&mut Options>) -> Result<(), Error> {
        let ret = match options {
            Some(options) => {
                let mut dict = options.as_mut_ptr();
                // SAFETY: the context and codec are live and match (the context was allocated
                // for this codec); `dict` is NULL or the dictionary `options` owns, and the
                // possibly replaced pointer is handed straight back to `options`.
                let ret = unsafe {
                    ffi::avcodec_open2(self.ptr.as_ptr(), self.codec.as_ptr(), &mut dict)
                };
                options.replace_raw(dict);
                ret
            }
            // SAFETY: as above, with no options dictionary.
            None => unsafe {
                ffi::avcodec_open2(self.ptr.as_ptr(), self.codec.as_ptr(), ptr::null_mut())
            },
        };
        check(ret).map(drop)
    }

    /// Feeds one packet to a decoder. [`Error::Again`]: receive frames first, then resend.
    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        // SAFETY: the context and packet are live; FFmpeg only reads the packet (it takes its
        // own reference to the data) and checks that the context is an open decoder.
        check(unsafe { ffi::avcodec_send_packet(self.ptr.as_ptr(), packet.as_ptr()) }).map(drop)
    }

    /// Takes the next decoded picture into `frame` (replacing what it held).
    /// [`Error::Again`]: send more packets; [`Error::Eof`]: fully drained.
    pub fn receive_frame(&mut self, frame: &mut Frame) -> Result<(), Error> {
        // SAFETY: the context and frame are live and exclusively borrowed; FFmpeg unrefs the
        // frame before filling it.
        check(unsafe { ffi::avcodec_receive_frame(self.ptr.as_ptr(), frame.as_mut_ptr()) })
            .map(drop)
    }

    /// Feeds one picture to an encoder. [`Error::Again`]: receive packets first, then resend.
    pub fn send_frame(&mut self, frame: &Frame) -> Result<(), Error> {
        // SAFETY: the context and frame are live; FFmpeg takes its own reference to the
        // frame's buffers (it does not modify the caller's frame) and checks that the context
        // is an open encoder and the frame matches its configuration.
        check(unsafe { ffi::avcodec_send_frame(self.ptr.as_ptr(), frame.as_ptr()) }).map(drop)
    }

    /// Takes the next encoded packet into `packet` (replacing what it held).
    /// [`Error::Again`]: send more frames; [`Error::Eof`]: fully drained.
    pub fn receive_packet(&mut self, packet: &mut Packet) -> Result<(), Error> {
        // SAFETY: the context and packet are live and exclusively borrowed; FFmpeg unrefs the
        // packet before filling it.
        check(unsafe { ffi::avcodec_receive_packet(self.ptr.as_ptr(), packet.as_mut_ptr()) })
            .map(drop)
    }

    /// Signals end of input (a NULL packet or frame), so the receive calls drain what the
    /// codec buffered and then return [`Error::Eof`]. A second call returns [`Error::Eof`].
    pub fn send_eof(&mut self) -> Result<(), Error> {
        let ret = if self.is_encoder() {
            // SAFETY: NULL is FFmpeg's documented flush frame; the context is live.
            unsafe { ffi::avcodec_send_frame(self.ptr.as_ptr(), ptr::null()) }
        } else {
            // SAFETY: NULL is FFmpeg's documented flush packet; the context is live.
            unsafe { ffi::avcodec_send_packet(self.ptr.as_ptr(), ptr::null()) }
        };
        check(ret).map(drop)
    }

    /// Drops everything a decoder buffered and resets it to accept a new stream (after a
    /// discontinuity, e.g. failover to a backup publisher), including after [`Error::Eof`].
    /// Most encoders do not support this (FFmpeg logs and ignores it): make a new encoder.
    pub fn flush_buffers(&mut self) {
        // SAFETY: the context is live; flushing an open codec is always allowed.
        unsafe { ffi::avcodec_flush_buffers(self.ptr.as_ptr()) };
    }

    fn assert_not_open(&self) {
        assert!(
            !self.is_open(),
            "{}: configuration changed after open",
            self.name()
        );
    }

    fn raw(&self) -> &ffi::AVCodecContext {
        // SAFETY: `ptr` is a live context exclusively owned by `self`.
        unsafe { self.ptr.as_ref() }
    }

    fn raw_mut(&mut self) -> &mut ffi::AVCodecContext {
        // SAFETY: `ptr` is a live context exclusively owned by `self`, borrowed mutably.
        unsafe { self.ptr.as_mut() }
    }
}

impl Drop for CodecContext {
    fn drop(&mut self) {
        let mut raw = self.ptr.as_ptr();
        // SAFETY: `raw` came from `avcodec_alloc_context3`, is owned only by `self` and is
        // freed once; `avcodec_free_context` closes the codec and releases extradata and the
        // hardware references the context holds.
        unsafe { ffi::avcodec_free_context(&mut raw) };
    }
}
