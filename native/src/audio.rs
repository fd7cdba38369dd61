//! Audio for the optional Opus rendition: the source's AAC decoded once and encoded again as
//! Opus (48 kHz, 20 ms frames, mono or stereo).

use crate::{CodecContext, CodecId, Error, FilterGraph, Frame, Options, Packet, Rational};

/// Opus always runs at 48 kHz.
const OPUS_RATE: u32 = 48_000;

/// One Opus packet.
#[derive(Debug)]
pub struct OpusPacket {
    /// The packet.
    pub data: Vec<u8>,
    /// Presentation time in 1/48000 s (before the decoder's pre-skip is applied).
    pub pts: i64,
    /// Samples (at 48 kHz) it decodes to.
    pub duration: u32,
}

/// An AAC decoder feeding an Opus encoder through a resampler.
pub struct AacToOpus {
    decoder: CodecContext,
    encoder: CodecContext,
    /// Built on the first decoded frame (its format is only known then).
    resampler: Option<FilterGraph>,
    source_rate: u32,
    decoded: Frame,
    resampled: Frame,
    packet: Packet,
    /// The time of the next resampled sample, 1/48000 s: the first frame's time, then counted
    /// sample by sample, so the Opus timeline has no gaps or overlaps from the millisecond
    /// timestamps AAC arrives with.
    next_pts: Option<i64>,
}

impl std::fmt::Debug for AacToOpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacToOpus")
            .field("source_rate", &self.source_rate)
            .finish()
    }
}

impl AacToOpus {
    /// A pipeline for AAC with this `AudioSpecificConfig`, sampled at `source_rate`, to Opus
    /// at `bit_rate_bps` with `channels` (1 or 2).
    pub fn new(
        audio_specific_config: &[u8],
        source_rate: u32,
        channels: u8,
        bit_rate_bps: u64,
    ) -> Result<AacToOpus, Error> {
        let mut decoder = CodecContext::decoder(CodecId::Aac)?;
        decoder.set_extradata(audio_specific_config)?;
        decoder.set_threads(1);
        decoder.open(None)?;
        let mut encoder = CodecContext::encoder_by_name("libopus")?;
        encoder.configure_audio(OPUS_RATE, channels.clamp(1, 2), bit_rate_bps);
        let mut options = Options::new();
        options.set("application", "audio")?;
        encoder.open(Some(&mut options))?;
        Ok(AacToOpus {
            decoder,
            encoder,
            resampler: None,
            source_rate,
            decoded: Frame::new()?,
            resampled: Frame::new()?,
            packet: Packet::new()?,
            next_pts: None,
        })
    }

    /// The encoder's `OpusHead` (channel count, pre-skip), for the `dOps` box.
    pub fn opus_head(&self) -> &[u8] {
        self.encoder.extradata()
    }

    /// Decodes one AAC frame with presentation time `pts` (in 1/`source_rate` s) and
    /// appends the Opus packets that come out. A corrupt frame is skipped.
    pub fn push(&mut self, data: &[u8], pts: i64, out: &mut Vec<OpusPacket>) -> Result<(), Error> {
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
    pub fn finish(&mut self, out: &mut Vec<OpusPacket>) -> Result<(), Error> {
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
        Self::take_packets(&mut self.encoder, &mut self.packet, out)
    }

    fn drain_decoder(&mut self, out: &mut Vec<OpusPacket>) -> Result<(), Error> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    if self.resampler.is_none() {
                        let frame_size = self.encoder.frame_size().max(120);
                        self.resampler = Some(FilterGraph::audio(
                            &self.decoded,
                            Rational::new(1, self.source_rate as i32),
                            &format!(
                                "aresample={OPUS_RATE},aformat=sample_fmts=flt,\
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

    fn drain_resampler(&mut self, out: &mut Vec<OpusPacket>) -> Result<(), Error> {
        let resampler = self.resampler.as_mut().expect("resampler built");
        let time_base = resampler.output_time_base();
        loop {
            match resampler.pull(&mut self.resampled) {
                Ok(()) => {
                    // Into the encoder's 1/48000 s, counting samples after the first frame.
                    let pts = *self.next_pts.get_or_insert_with(|| {
                        self.resampled.pts().map_or(0, |pts| {
                            pts * i64::from(OPUS_RATE) * i64::from(time_base.num)
                                / i64::from(time_base.den)
                        })
                    });
                    self.next_pts = Some(pts + self.resampled.samples() as i64);
                    self.resampled.set_pts(Some(pts));
                    loop {
                        match self.encoder.send_frame(&self.resampled) {
                            Ok(()) => break,
                            Err(Error::Again) => {
                                Self::take_packets(&mut self.encoder, &mut self.packet, out)?
                            }
                            Err(error) => return Err(error),
                        }
                    }
                    Self::take_packets(&mut self.encoder, &mut self.packet, out)?;
                }
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }

    fn take_packets(
        encoder: &mut CodecContext,
        packet: &mut Packet,
        out: &mut Vec<OpusPacket>,
    ) -> Result<(), Error> {
        loop {
            match encoder.receive_packet(packet) {
                Ok(()) => out.push(OpusPacket {
                    data: packet.data().to_vec(),
                    pts: packet.pts().unwrap_or(0),
                    duration: u32::try_from(packet.duration()).unwrap_or(960),
                }),
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }
}
