//! The sound of a co-hosted program: each host's Opus (or AAC) decoded, resampled to 48 kHz stereo
//! and buffered, then mixed through one FFmpeg filter graph (`amix`) an AAC frame at a time
//! and encoded as AAC. A host whose sound is late or gone is silence in the mix; the program
//! never waits for a host.

use std::ptr::NonNull;

use ffmpeg_sys_next as ffi;

use crate::error::check;
use crate::live::{Kind, LiveGuard};
use crate::{
    AudioInput, AudioPacket, CodecContext, CodecId, Error, FilterGraph, Frame, Packet, Rational,
    GRID_INPUTS_MAX,
};

/// The program's sample rate and channels.
const RATE: u32 = 48_000;
const CHANNELS: u8 = 2;
/// Samples per channel in one AAC frame: the mixing step.
pub const MIX_FRAME_SAMPLES: usize = 1024;
/// A host's sound joins the mix once this much is buffered (arrival jitter), and again after
/// it ran dry: 60 ms.
const PRIME_SAMPLES: usize = 2880;
/// Most buffered per host (half a second); older samples are dropped, so a host whose clock
/// runs fast, or who sends a burst, cannot build up delay.
const BUFFER_MAX_SAMPLES: usize = 24_000;

/// An owned `AVAudioFifo` of planar float stereo.
struct Fifo {
    ptr: NonNull<ffi::AVAudioFifo>,
    _live: LiveGuard,
}

// SAFETY: the FIFO is exclusively owned and only used through `&mut self`. Not `Sync`.
unsafe impl Send for Fifo {}

impl Fifo {
    fn new() -> Result<Fifo, Error> {
        // SAFETY: plain allocation; NULL is handled below.
        let raw = unsafe {
            ffi::av_audio_fifo_alloc(
                ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                i32::from(CHANNELS),
                BUFFER_MAX_SAMPLES as i32,
            )
        };
        let ptr = NonNull::new(raw).ok_or(Error::OutOfMemory {
            what: "AVAudioFifo",
        })?;
        Ok(Fifo {
            ptr,
            _live: LiveGuard::new(Kind::AudioFifo),
        })
    }

    fn len(&self) -> usize {
        // SAFETY: the FIFO is live.
        usize::try_from(unsafe { ffi::av_audio_fifo_size(self.ptr.as_ptr()) }).unwrap_or(0)
    }

    /// Appends a planar float stereo frame's samples, dropping the oldest past the bound.
    fn write(&mut self, frame: &Frame) -> Result<(), Error> {
        let samples = frame.samples().min(BUFFER_MAX_SAMPLES);
        let over = (self.len() + samples).saturating_sub(BUFFER_MAX_SAMPLES);
        if over > 0 {
            // SAFETY: the FIFO is live; draining at most its size.
            check(unsafe { ffi::av_audio_fifo_drain(self.ptr.as_ptr(), over as i32) })?;
        }
        // SAFETY: the FIFO is live; the frame is live, planar float stereo (the resampler's
        // output format) with at least `samples` samples in each plane.
        let written = unsafe {
            ffi::av_audio_fifo_write(
                self.ptr.as_ptr(),
                frame.sample_planes().cast(),
                samples as i32,
            )
        };
        check(written).map(drop)
    }

    /// Reads up to `samples` into the start of `frame` (planar float stereo, writable, at
    /// least that long); returns how many.
    fn read_into(&mut self, frame: &mut Frame, samples: usize) -> Result<usize, Error> {
        let samples = samples.min(frame.samples()).min(self.len());
        // SAFETY: the FIFO is live; the frame's planes are writable and hold at least
        // `samples` samples each.
        let read = unsafe {
            ffi::av_audio_fifo_read(
                self.ptr.as_ptr(),
                frame.sample_planes().cast(),
                samples as i32,
            )
        };
        Ok(usize::try_from(check(read)?).unwrap_or(0))
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { ffi::av_audio_fifo_free(self.ptr.as_ptr()) };
    }
}

/// One host's sound on its way into the mix.
struct Host {
    decoder: CodecContext,
    /// To 48 kHz planar float stereo; built on the first decoded frame.
    resampler: Option<FilterGraph>,
    fifo: Fifo,
    /// Buffered enough to be mixed.
    primed: bool,
}

/// The program's sound: hosts' Opus in, AAC out.
pub struct Mixer {
    hosts: Vec<Option<Host>>,
    /// The `amix` graph and the number of inputs it was built for.
    graph: Option<(usize, FilterGraph)>,
    decoded: Frame,
    resampled: Frame,
    mixed: Frame,
    encoder: CodecContext,
    packet: Packet,
    /// Samples mixed so far (the next frame's time, 1/48000 s).
    samples: i64,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer")
            .field("hosts", &self.hosts.len())
            .field("samples", &self.samples)
            .finish()
    }
}

impl Mixer {
    /// A mix of `inputs` hosts (1..=[`GRID_INPUTS_MAX`]) encoded as AAC at `bit_rate_bps`.
    pub fn new(inputs: usize, bit_rate_bps: u64) -> Result<Mixer, Error> {
        let mut encoder = CodecContext::encoder(CodecId::Aac)?;
        encoder.configure_audio(RATE, CHANNELS, bit_rate_bps);
        encoder.open(None)?;
        let mut mixer = Mixer {
            hosts: Vec::new(),
            graph: None,
            decoded: Frame::new()?,
            resampled: Frame::new()?,
            mixed: Frame::new()?,
            encoder,
            packet: Packet::new()?,
            samples: 0,
        };
        mixer.set_inputs(inputs);
        Ok(mixer)
    }

    /// The encoder's AAC `AudioSpecificConfig`.
    pub fn output_config(&self) -> &[u8] {
        self.encoder.extradata()
    }

    /// Hosts on the stage now (inputs past the count are dropped).
    pub fn set_inputs(&mut self, inputs: usize) {
        self.hosts
            .resize_with(inputs.clamp(1, GRID_INPUTS_MAX), || None);
    }

    /// Host `input`'s sound (Opus from WHIP, AAC from RTMP): a fresh decoder and buffer.
    pub fn set_source(&mut self, input: usize, source: AudioInput<'_>) -> Result<(), Error> {
        let Some(slot) = self.hosts.get_mut(input) else {
            return Ok(());
        };
        let mut decoder = CodecContext::decoder(source.codec)?;
        decoder.set_extradata(source.config)?;
        decoder.set_threads(1);
        decoder.open(None)?;
        *slot = Some(Host {
            decoder,
            resampler: None,
            fifo: Fifo::new()?,
            primed: false,
        });
        Ok(())
    }

    /// One packet of host `input` (after its [`Mixer::set_source`]); a corrupt one is
    /// skipped.
    pub fn push(&mut self, input: usize, packet: &[u8]) -> Result<(), Error> {
        let Some(host) = self.hosts.get_mut(input).and_then(Option::as_mut) else {
            return Ok(());
        };
        let packet = Packet::copy_from(packet)?;
        match host.decoder.send_packet(&packet) {
            Ok(()) | Err(Error::Again) => {}
            Err(Error::InvalidData) => return Ok(()),
            Err(error) => return Err(error),
        }
        loop {
            match host.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {}
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(Error::InvalidData) => continue,
                Err(error) => return Err(error),
            }
            if host.resampler.is_none() {
                host.resampler = Some(FilterGraph::audio(
                    &self.decoded,
                    Rational::new(1, RATE as i32),
                    "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo",
                )?);
            }
            let resampler = host.resampler.as_mut().expect("built above");
            resampler.push(Some(&self.decoded))?;
            loop {
                match resampler.pull(&mut self.resampled) {
                    Ok(()) => host.fifo.write(&self.resampled)?,
                    Err(Error::Again | Error::Eof) => break,
                    Err(error) => return Err(error),
                }
            }
        }
    }

    /// Mixes the next [`MIX_FRAME_SAMPLES`] (from what each host has buffered, silence for
    /// the rest) and appends the AAC packets that come out.
    pub fn tick(&mut self, out: &mut Vec<AudioPacket>) -> Result<(), Error> {
        let inputs = self.hosts.len();
        if self.graph.as_ref().map(|(n, _)| *n) != Some(inputs) {
            let example = Frame::audio_fltp(RATE, CHANNELS, MIX_FRAME_SAMPLES)?;
            let format = "aformat=sample_fmts=fltp:channel_layouts=stereo";
            let text = match inputs {
                1 => format.to_string(),
                n => {
                    let labels: String = (0..n).map(|i| format!("[in{i}]")).collect();
                    format!("{labels}amix=inputs={n}:normalize=0:duration=longest,{format}")
                }
            };
            let graph =
                FilterGraph::audio_inputs(&example, inputs, Rational::new(1, RATE as i32), &text)?;
            self.graph = Some((inputs, graph));
        }
        let graph = &mut self.graph.as_mut().expect("built above").1;
        for (i, host) in self.hosts.iter_mut().enumerate() {
            let mut chunk = Frame::audio_fltp(RATE, CHANNELS, MIX_FRAME_SAMPLES)?;
            let read = match host {
                Some(host) => take(host, &mut chunk)?,
                None => 0,
            };
            if read < MIX_FRAME_SAMPLES {
                // SAFETY: the chunk is live, writable (fresh), planar float stereo of
                // MIX_FRAME_SAMPLES; silence goes from `read` to its end.
                check(unsafe {
                    ffi::av_samples_set_silence(
                        chunk.sample_planes(),
                        read as i32,
                        (MIX_FRAME_SAMPLES - read) as i32,
                        i32::from(CHANNELS),
                        ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                    )
                })?;
            }
            chunk.set_pts(Some(self.samples));
            graph.push_to(i, Some(&chunk))?;
        }
        self.samples += MIX_FRAME_SAMPLES as i64;
        loop {
            match graph.pull(&mut self.mixed) {
                Ok(()) => {}
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(error) => return Err(error),
            }
            loop {
                match self.encoder.send_frame(&self.mixed) {
                    Ok(()) => break,
                    Err(Error::Again) => {
                        crate::audio::take_packets(&mut self.encoder, &mut self.packet, out)?
                    }
                    Err(error) => return Err(error),
                }
            }
            crate::audio::take_packets(&mut self.encoder, &mut self.packet, out)?;
        }
    }

    /// Leaves out the next `frames` mixing steps (the thread fell behind the clock): the
    /// next step keeps its place on the clock, and what the hosts buffered for the skipped
    /// time is dropped.
    pub fn skip(&mut self, frames: i64) -> Result<(), Error> {
        let frames = frames.max(0);
        self.samples += frames * MIX_FRAME_SAMPLES as i64;
        let drop = (frames as usize).saturating_mul(MIX_FRAME_SAMPLES);
        for host in self.hosts.iter_mut().flatten() {
            let n = drop.min(host.fifo.len());
            if n > 0 {
                // SAFETY: the FIFO is live; draining at most its size.
                check(unsafe { ffi::av_audio_fifo_drain(host.fifo.ptr.as_ptr(), n as i32) })?;
            }
        }
        Ok(())
    }

    /// Samples mixed so far (skipped ones included).
    pub fn samples(&self) -> i64 {
        self.samples
    }
}

/// Host's samples for one mixing step: none until it is primed, and it is primed again
/// after running dry.
fn take(host: &mut Host, chunk: &mut Frame) -> Result<usize, Error> {
    if !host.primed && host.fifo.len() >= PRIME_SAMPLES {
        host.primed = true;
    }
    if !host.primed {
        return Ok(0);
    }
    let read = host.fifo.read_into(chunk, MIX_FRAME_SAMPLES)?;
    if read < MIX_FRAME_SAMPLES {
        host.primed = false;
    }
    Ok(read)
}
