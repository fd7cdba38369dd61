//! Audio in another codec: a stream's AAC decoded once and encoded again as Opus (for WebRTC
//! and the optional Opus rendition), or its Opus (a WHIP publisher's) as AAC (for players
//! whose HLS has no Opus). Output runs at 48 kHz, mono or stereo.

use crate::{CodecContext, CodecId, Error, FilterGraph, Frame, Options, Packet, Rational};

/// The output sample rate: Opus always runs at 48 kHz, and AAC made from it stays there.
const OUTPUT_RATE: u32 = 48_000;

/// One encoded audio packet.
#[derive(Debug)]
pub struct AudioPacket {
    /// The packet.
    pub data: Vec<u8>,
    /// Presentation time in 1/48000 s (for Opus: before the decoder's pre-skip is applied).
    pub pts: i64,
    /// Samples (at 48 kHz) it decodes to.
    pub duration: u32,
}

/// What an [`AudioTranscoder`] decodes.
#[derive(Debug, Clone, Copy)]
pub struct AudioInput<'a> {
    /// [`CodecId::Aac`] or [`CodecId::Opus`].
    pub codec: CodecId,
    /// The decoder's configuration: the AAC `AudioSpecificConfig`, or the `OpusHead`.
    pub config: &'a [u8],
    /// The input's timestamps count 1/`sample_rate` s.
    pub sample_rate: u32,
}

/// A decoder feeding an encoder of another codec through a resampler.
pub struct AudioTranscoder {
    decoder: CodecContext,
    encoder: CodecContext,
    /// Built on the first decoded frame (its format is only known then).
    resampler: Option<FilterGraph>,
    source_rate: u32,
    decoded: Frame,
    resampled: Frame,
    packet: Packet,
    /// The time of the next resampled sample, 1/48000 s: the first frame's time, then counted
    /// sample by sample, so the output timeline has no gaps or overlaps from the millisecond
    /// timestamps the input may arrive with.
    next_pts: Option<i64>,
}

impl std::fmt::Debug for AudioTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioTranscoder")
            .field("decoder", &self.decoder.name())
            .field("encoder", &self.encoder.name())
            .field("source_rate", &self.source_rate)
            .finish()
    }
}

impl AudioTranscoder {
    /// A pipeline from `input` to `output` ([`CodecId::Opus`]: libopus; [`CodecId::Aac`]:
    /// FFmpeg's AAC-LC encoder) at `bit_rate_bps` with `channels` (1 or 2).
    pub fn new(
        input: AudioInput<'_>,
        output: CodecId,
        channels: u8,
        bit_rate_bps: u64,
    ) -> Result<AudioTranscoder, Error> {
        let mut decoder = CodecContext::decoder(input.codec)?;
        decoder.set_extradata(input.config)?;
        decoder.set_threads(1);
        decoder.open(None)?;
        let (mut encoder, mut options) = match output {
            CodecId::Opus => {
                let mut options = Options::new();
                options.set("application", "audio")?;
                (CodecContext::encoder_by_name("libopus")?, Some(options))
            }
            other => (CodecContext::encoder(other)?, None),
        };
        encoder.configure_audio(OUTPUT_RATE, channels.clamp(1, 2), bit_rate_bps);
        encoder.open(options.as_mut())?;
        Ok(AudioTranscoder {
            decoder,
            encoder,
            resampler: None,
            source_rate: input.sample_rate.max(1),
            decoded: Frame::new()?,
            resampled: Frame::new()?,
            packet: Packet::new()?,
            next_pts: None,
        })
    }

    /// The encoder's configuration: an `OpusHead` (channel count, pre-skip) for the `dOps`
    /// box, or an AAC `AudioSpecificConfig`.
    pub fn output_config(&self) -> &[u8] {
        self.encoder.extradata()
    }

    /// Decodes one input packet with presentation time `pts` (in 1/`sample_rate` s of the
    /// input) and appends the packets that come out. A corrupt packet is skipped.
    pub fn push(&mut self, data: &[u8], pts: i64, out: &mut Vec<AudioPacket>) -> Result<(), Error> {
        let mut packet = Packet::copy_from(data)?;
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        loop {
            match self.decoder.send_packet(&packet) {
                Ok(()) => break,
                Err(Error::Again) => self.drain_decoder(out)?,
                Err(Error::InvalidData) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        self.drain_decoder(out)
    }

    /// Drains the decoder, the resampler and the encoder (end of stream).
    pub fn finish(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), Error> {
        match self.decoder.send_eof() {
            Ok(()) | Err(Error::Eof) => {}
            Err(error) => return Err(error),
        }
        self.drain_decoder(out)?;
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.push(None)?;
            self.drain_resampler(out)?;
        }
        match self.encoder.send_eof() {
            Ok(()) | Err(Error::Eof) => {}
            Err(error) => return Err(error),
        }
        take_packets(&mut self.encoder, &mut self.packet, out)
    }

    fn drain_decoder(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), Error> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    if self.resampler.is_none() {
                        let frame_size = self.encoder.frame_size().max(120);
                        let format = match self.encoder.codec_id() {
                            Some(CodecId::Aac) => "fltp",
                            _ => "flt",
                        };
                        self.resampler = Some(FilterGraph::audio(
                            &self.decoded,
                            Rational::new(1, self.source_rate as i32),
                            &format!(
                                "aresample={OUTPUT_RATE},aformat=sample_fmts={format},\
                                 asetnsamples=n={frame_size}:p=0"
                            ),
                        )?);
                    }
                    let resampler = self.resampler.as_mut().expect("built above");
                    resampler.push(Some(&self.decoded))?;
                    self.drain_resampler(out)?;
                }
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(Error::InvalidData) => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn drain_resampler(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), Error> {
        let resampler = self.resampler.as_mut().expect("resampler built");
        let time_base = resampler.output_time_base();
        loop {
            match resampler.pull(&mut self.resampled) {
                Ok(()) => {
                    // Into the encoder's 1/48000 s, counting samples after the first frame.
                    let pts = *self.next_pts.get_or_insert_with(|| {
                        self.resampled.pts().map_or(0, |pts| {
                            pts * i64::from(OUTPUT_RATE) * i64::from(time_base.num)
                                / i64::from(time_base.den)
                        })
                    });
                    self.next_pts = Some(pts + self.resampled.samples() as i64);
                    self.resampled.set_pts(Some(pts));
                    loop {
                        match self.encoder.send_frame(&self.resampled) {
                            Ok(()) => break,
                            Err(Error::Again) => {
                                take_packets(&mut self.encoder, &mut self.packet, out)?
                            }
                            Err(error) => return Err(error),
                        }
                    }
                    take_packets(&mut self.encoder, &mut self.packet, out)?;
                }
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }
}

/// Takes every packet `encoder` has ready into `out`.
pub(crate) fn take_packets(
    encoder: &mut CodecContext,
    packet: &mut Packet,
    out: &mut Vec<AudioPacket>,
) -> Result<(), Error> {
    loop {
        match encoder.receive_packet(packet) {
            Ok(()) => out.push(AudioPacket {
                data: packet.data().to_vec(),
                pts: packet.pts().unwrap_or(0),
                duration: u32::try_from(packet.duration())
                    .ok()
                    .filter(|&d| d > 0)
                    .unwrap_or(encoder.frame_size() as u32),
            }),
            Err(Error::Again | Error::Eof) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
