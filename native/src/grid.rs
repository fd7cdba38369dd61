//! The picture of a co-hosted program: each host's latest picture, letterboxed into one tile
//! of a grid through one FFmpeg filter graph (`scale`, `pad`, `xstack`), and encoded as H.264
//! at a steady frame rate whatever each host's own. A host who stalls keeps their last
//! picture; one who has sent none yet is a black tile. The program never waits for a host.

use crate::annexb::{avcc_from_annexb, to_length_prefixed};
use crate::{
    CodecContext, CodecId, Error, FilterGraph, Frame, Options, Packet, PixelFormat, Rational,
    VideoConfig, VideoFormat,
};

/// Hosts on one stage at most (the grid's inputs).
pub const GRID_INPUTS_MAX: usize = 9;

/// The program's picture and its encoding.
#[derive(Debug, Clone)]
pub struct GridConfig {
    /// The canvas (even numbers).
    pub width: u32,
    pub height: u32,
    pub frame_rate: Rational,
    pub bit_rate_bps: u64,
    /// A software H.264 encoder's FFmpeg name (`libx264`).
    pub encoder: String,
    /// Its preset (libx264).
    pub preset: String,
    /// A keyframe at least this often, in frames.
    pub keyframe_interval: u32,
    pub threads: u32,
}

/// One encoded picture of the program.
#[derive(Debug)]
pub struct VideoPacket {
    /// Length-prefixed NAL units.
    pub data: Vec<u8>,
    /// Presentation (= decode) time, 1/90000 s.
    pub pts: i64,
    pub keyframe: bool,
}

/// Where `hosts` tiles go on a `width`×`height` canvas: the tile size and each tile's top-left
/// corner, row by row (columns: the smallest square that holds them all, rows as needed).
pub fn grid_layout(hosts: usize, width: u32, height: u32) -> ((u32, u32), Vec<(u32, u32)>) {
    let hosts = hosts.clamp(1, GRID_INPUTS_MAX);
    let columns = (1..=hosts).find(|c| c * c >= hosts).unwrap_or(1);
    let rows = hosts.div_ceil(columns);
    let tile = ((width / columns as u32) & !1, (height / rows as u32) & !1);
    let corners = (0..hosts)
        .map(|i| {
            let (column, row) = ((i % columns) as u32, (i / columns) as u32);
            (column * tile.0, row * tile.1)
        })
        .collect();
    (tile, corners)
}

/// The filter graph description for `inputs` hosts on the canvas.
fn description(inputs: usize, width: u32, height: u32) -> String {
    let ((tw, th), corners) = grid_layout(inputs, width, height);
    let fit = format!(
        "scale=w={tw}:h={th}:force_original_aspect_ratio=decrease:force_divisible_by=2,\
         pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2:black,setsar=1"
    );
    let pad = format!("pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:black");
    if inputs <= 1 {
        return format!("{fit},{pad}"); // one input: unlabelled
    }
    let mut text = String::new();
    for i in 0..inputs {
        text.push_str(&format!("[in{i}]{fit}[t{i}];"));
    }
    for i in 0..inputs {
        text.push_str(&format!("[t{i}]"));
    }
    let layout: Vec<String> = corners.iter().map(|(x, y)| format!("{x}_{y}")).collect();
    text.push_str(&format!(
        "xstack=inputs={inputs}:layout={}:fill=black,{pad}",
        layout.join("|")
    ));
    text
}

/// The program's picture: hosts' pictures in, H.264 out.
pub struct Grid {
    config: GridConfig,
    /// Each host's latest picture, by input (None: none yet).
    pictures: Vec<Option<Frame>>,
    /// The graph, and the input formats it was built for.
    graph: Option<(Vec<VideoFormat>, FilterGraph)>,
    /// A small black picture for hosts without one.
    black: Frame,
    composed: Frame,
    encoder: CodecContext,
    packet: Packet,
    record: Vec<u8>,
    /// Pictures composed so far (the next one's index).
    frames: i64,
    force_keyframe: bool,
}

impl std::fmt::Debug for Grid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grid")
            .field("config", &self.config)
            .field("inputs", &self.pictures.len())
            .field("frames", &self.frames)
            .finish()
    }
}

impl Grid {
    /// A grid of `inputs` hosts (1..=[`GRID_INPUTS_MAX`]) with its encoder open.
    pub fn new(config: GridConfig, inputs: usize) -> Result<Grid, Error> {
        if config.width < 16 || config.height < 16 || config.width % 2 + config.height % 2 != 0 {
            return Err(Error::Unsupported {
                what: "a program canvas that is not even and at least 16x16",
            });
        }
        let mut encoder = CodecContext::encoder_by_name(&config.encoder)?;
        let mut video = VideoConfig::new(
            config.width,
            config.height,
            config.frame_rate,
            config.bit_rate_bps,
        );
        video.gop_size = config.keyframe_interval.max(1);
        video.max_rate_bps = config.bit_rate_bps;
        video.buffer_bits = config.bit_rate_bps;
        video.threads = config.threads;
        encoder.configure_video(&video);
        let mut options = Options::new();
        options.set("forced-idr", "1")?;
        if config.encoder == "libx264" {
            options.set("preset", &config.preset)?;
            options.set("tune", "zerolatency")?;
            options.set("x264-params", "scenecut=0:open-gop=0")?;
        }
        encoder.open(Some(&mut options))?;
        let extradata = encoder.extradata();
        let record = if extradata.first() == Some(&1) {
            extradata.to_vec()
        } else {
            avcc_from_annexb(extradata).ok_or(Error::BadHeader {
                what: "no SPS and PPS",
            })?
        };
        let mut black = Frame::video(VideoFormat {
            width: 16,
            height: 16,
            pixel_format: PixelFormat::YUV420P,
        })?;
        for (plane, value) in [(0, 16u8), (1, 128), (2, 128)] {
            black.plane_mut(plane)?.fill(value);
        }
        let mut grid = Grid {
            config,
            pictures: Vec::new(),
            graph: None,
            black,
            composed: Frame::new()?,
            encoder,
            packet: Packet::new()?,
            record,
            frames: 0,
            force_keyframe: false,
        };
        grid.set_inputs(inputs);
        Ok(grid)
    }

    /// The encoder's `avcC`.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// Hosts on the stage now: inputs past the count are dropped (the last to join leave
    /// first; a caller that removes another host moves the later ones down).
    pub fn set_inputs(&mut self, inputs: usize) {
        self.pictures
            .resize_with(inputs.clamp(1, GRID_INPUTS_MAX), || None);
    }

    /// Hosts on the stage.
    pub fn inputs(&self) -> usize {
        self.pictures.len()
    }

    /// Host `input`'s latest picture (a CPU picture); it is shown from the next composed
    /// picture on. Returns the picture it replaces, for reuse.
    pub fn set_picture(&mut self, input: usize, picture: Frame) -> Option<Frame> {
        let slot = self.pictures.get_mut(input)?;
        slot.replace(picture)
    }

    /// Takes host `input`'s picture out (the stage is being rearranged).
    pub fn take_picture(&mut self, input: usize) -> Option<Frame> {
        self.pictures.get_mut(input)?.take()
    }

    /// Makes the next composed picture an IDR (a viewer lost one).
    pub fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Composes the next picture (the `frames()`th, at its place on the frame-rate clock:
    /// 1/90000 s) and appends what the encoder gives back.
    pub fn tick(&mut self, out: &mut Vec<VideoPacket>) -> Result<(), Error> {
        let formats: Vec<VideoFormat> = (self.pictures.iter())
            .map(|p| p.as_ref().unwrap_or(&self.black))
            .map(|p| p.format().expect("CPU pictures"))
            .collect();
        if self.graph.as_ref().map(|(f, _)| f) != Some(&formats) {
            let text = description(formats.len(), self.config.width, self.config.height);
            let output = VideoFormat {
                width: self.config.width,
                height: self.config.height,
                pixel_format: PixelFormat::YUV420P,
            };
            let graph = FilterGraph::with_inputs(&formats, self.time_base(), &text, output)?;
            self.graph = Some((formats, graph));
        }
        let pts = self.frames;
        let graph = &mut self.graph.as_mut().expect("built above").1;
        for (i, picture) in self.pictures.iter_mut().enumerate() {
            let picture = picture.as_mut().unwrap_or(&mut self.black);
            picture.set_pts(Some(pts));
            graph.push_to(i, Some(picture))?;
        }
        match graph.pull(&mut self.composed) {
            Ok(()) => {}
            Err(Error::Again) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.frames += 1;
        let rate = self.config.frame_rate;
        let pts90 = pts * 90_000 * i64::from(rate.den) / i64::from(rate.num.max(1));
        self.composed.set_pts(Some(pts90));
        self.composed
            .set_force_keyframe(std::mem::take(&mut self.force_keyframe));
        loop {
            match self.encoder.send_frame(&self.composed) {
                Ok(()) => break,
                Err(Error::Again) => self.drain(out)?,
                Err(error) => return Err(error),
            }
        }
        self.drain(out)
    }

    /// Leaves out the next `frames` pictures (the thread fell behind the clock): the picture
    /// after them keeps its place on the clock.
    pub fn skip(&mut self, frames: i64) {
        self.frames += frames.max(0);
    }

    /// Pictures composed so far (skipped ones included).
    pub fn frames(&self) -> i64 {
        self.frames
    }

    /// The graph's time base: one tick per picture.
    fn time_base(&self) -> Rational {
        let rate = self.config.frame_rate;
        Rational::new(rate.den, rate.num)
    }

    fn drain(&mut self, out: &mut Vec<VideoPacket>) -> Result<(), Error> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    out.push(VideoPacket {
                        data: to_length_prefixed(self.packet.data(), CodecId::H264),
                        pts: self.packet.pts().unwrap_or(0),
                        keyframe: self.packet.is_key(),
                    });
                }
                Err(Error::Again | Error::Eof) => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }
}
