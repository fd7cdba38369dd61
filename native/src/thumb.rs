//! [`Thumbnailer`]: one decoded picture in, a JPEG of it out (FFmpeg's `mjpeg` encoder behind
//! a scaler), for the stream list's thumbnails.

use crate::codec::{CodecContext, Rational, VideoConfig};
use crate::error::Error;
use crate::frame::{Frame, PixelFormat, VideoFormat};
use crate::packet::Packet;
use crate::scaler::Scaler;

/// FFmpeg's `FF_QP2LAMBDA`: a quantiser in the units of `global_quality` and `quality`.
const QP2LAMBDA: i32 = 118;

/// What a thumbnail is made as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThumbnailSpec {
    /// Width in pixels (never wider than the source).
    pub width: u32,
    /// JPEG quantiser, 2 (finest) to 31.
    pub qscale: u32,
}

/// Encodes pictures of one source format as JPEGs `width` pixels wide (never wider than the
/// source), the height following the source's aspect, both even.
pub struct Thumbnailer {
    src: VideoFormat,
    dst: VideoFormat,
    encoder: CodecContext,
    scaler: Scaler,
    scaled: Frame,
    packet: Packet,
    quality: i32,
    next_pts: i64,
    spec: ThumbnailSpec,
}

impl std::fmt::Debug for Thumbnailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnailer")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .finish()
    }
}

impl Thumbnailer {
    /// A thumbnailer for pictures of `src`, made as `spec` says (qscale 2 is nearly lossless,
    /// 31 the coarsest; 5 looks clean at a few tens of KiB for 640x360).
    pub fn new(src: VideoFormat, spec: ThumbnailSpec) -> Result<Thumbnailer, Error> {
        let (out_w, out_h) = thumbnail_size(src.width, src.height, spec.width);
        let dst = VideoFormat {
            width: out_w,
            height: out_h,
            pixel_format: PixelFormat::YUVJ420P,
        };
        let mut encoder = CodecContext::encoder_by_name("mjpeg")?;
        let mut config = VideoConfig::new(out_w, out_h, Rational::new(1, 1), 0);
        config.pixel_format = PixelFormat::YUVJ420P;
        config.time_base = Rational::new(1, 1);
        config.global_header = false;
        config.threads = 1;
        encoder.configure_video(&config);
        let quality = i32::try_from(spec.qscale.clamp(2, 31)).expect("small") * QP2LAMBDA;
        encoder.set_fixed_quality(quality);
        encoder.open(None)?;
        Ok(Thumbnailer {
            src,
            dst,
            encoder,
            scaler: Scaler::new(src, dst)?,
            scaled: Frame::video(dst)?,
            packet: Packet::new()?,
            quality,
            next_pts: 0,
            spec,
        })
    }

    /// What it makes.
    pub fn spec(&self) -> ThumbnailSpec {
        self.spec
    }

    /// The source format this thumbnailer takes.
    pub fn src(&self) -> VideoFormat {
        self.src
    }

    /// The JPEG's size.
    pub fn size(&self) -> (u32, u32) {
        (self.dst.width, self.dst.height)
    }

    /// The JPEG of `picture` (which must be of [`Thumbnailer::src`]'s format).
    pub fn encode(&mut self, picture: &Frame) -> Result<Vec<u8>, Error> {
        self.scaler.scale_into(picture, &mut self.scaled)?;
        self.scaled.set_pts(Some(self.next_pts));
        self.scaled.set_quality(self.quality);
        self.next_pts += 1;
        self.encoder.send_frame(&self.scaled)?;
        self.encoder.receive_packet(&mut self.packet)?;
        Ok(self.packet.data().to_vec())
    }
}

/// The thumbnail size for a `src_w`×`src_h` source at `width`: never wider than the source,
/// the height by the source's aspect ratio, both even and at least 2.
pub fn thumbnail_size(src_w: u32, src_h: u32, width: u32) -> (u32, u32) {
    let w = width.min(src_w).max(2) & !1;
    let h = (u64::from(src_h) * u64::from(w) / u64::from(src_w.max(1))) as u32;
    (w, h.max(2) & !1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_and_stay_even() {
        assert_eq!(thumbnail_size(1920, 1080, 320), (320, 180));
        assert_eq!(thumbnail_size(1280, 720, 320), (320, 180));
        assert_eq!(thumbnail_size(640, 480, 320), (320, 240));
        // Never wider than the source.
        assert_eq!(thumbnail_size(200, 100, 320), (200, 100));
        // Odd sizes round down to even.
        assert_eq!(thumbnail_size(1279, 719, 321), (320, 178));
    }

    /// The (width, height) in a baseline JPEG's SOF0 segment.
    fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
        let at = jpeg.windows(2).position(|w| w == [0xFF, 0xC0])?;
        let h = u32::from(jpeg[at + 5]) << 8 | u32::from(jpeg[at + 6]);
        let w = u32::from(jpeg[at + 7]) << 8 | u32::from(jpeg[at + 8]);
        Some((w, h))
    }

    #[test]
    fn a_picture_becomes_a_jpeg_of_the_thumbnail_size() {
        let src = VideoFormat {
            width: 1280,
            height: 720,
            pixel_format: PixelFormat::YUV420P,
        };
        let mut picture = Frame::video(src).unwrap();
        for plane in 0..3 {
            let fill = if plane == 0 { 90 } else { 128 };
            picture.plane_mut(plane).unwrap().fill(fill);
        }
        let mut thumbs = Thumbnailer::new(
            src,
            ThumbnailSpec {
                width: 320,
                qscale: 5,
            },
        )
        .unwrap();
        for _ in 0..3 {
            let jpeg = thumbs.encode(&picture).unwrap();
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI");
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "EOI");
            assert_eq!(jpeg_size(&jpeg), Some((320, 180)));
            assert!(
                jpeg.len() < 20_000,
                "a flat picture is small: {}",
                jpeg.len()
            );
        }
        assert_eq!(thumbs.size(), (320, 180));
    }
}
