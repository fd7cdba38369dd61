//! [`FilterGraph`]: an owned libavfilter graph with one output and one input (per-stream
//! picture effects such as a watermark: `drawtext`, `movie` + `overlay`, `drawbox`; audio
//! resampling) or several (a co-hosting grid: `xstack`).

use std::ffi::CString;
use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ffi;

use crate::error::{c_string, check};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};
use crate::{Error, Frame, Rational, VideoFormat};

/// An owned `AVFilterGraph` with one input and one output. For pictures
/// ([`FilterGraph::new`]): `buffer → DESCRIPTION → format → buffersink`, pictures of one
/// [`VideoFormat`] in and out. For audio ([`FilterGraph::audio`]): `abuffer → DESCRIPTION →
/// abuffersink`. The graph owns its filter contexts; `avfilter_graph_free` frees them all.
#[derive(Debug)]
pub struct FilterGraph {
    graph: NonNull<ffi::AVFilterGraph>,
    /// The `buffer` sources (one per input) and the `buffersink` sink, owned by `graph`.
    sources: Vec<NonNull<ffi::AVFilterContext>>,
    sink: NonNull<ffi::AVFilterContext>,
    format: VideoFormat,
    _live: LiveGuard,
}

// SAFETY: the graph and every filter context in it are exclusively owned by this value and
// only used through `&mut self`; libavfilter graphs are not tied to the thread that built them.
// Not `Sync`.
unsafe impl Send for FilterGraph {}

impl FilterGraph {
    /// Builds `description` (libavfilter's graph syntax, one unlabelled input and output, e.g.
    /// `drawbox=x=10:y=10:w=100:h=50:color=white:t=fill`) for pictures of `format` with
    /// timestamps in `time_base`. Errors name what libavfilter refused.
    pub fn new(
        format: VideoFormat,
        time_base: Rational,
        description: &str,
    ) -> Result<FilterGraph, Error> {
        FilterGraph::with_inputs(&[format], time_base, description, format)
    }

    /// A picture graph of several inputs, of `inputs` formats with timestamps in
    /// `time_base`, named `[in0]`, `[in1]`, … in `description` (one input: unlabelled, as for
    /// [`FilterGraph::new`]), whose unlabelled output is
    /// converted to `output`'s pixel format (e.g. `[in0][in1]xstack=inputs=2:layout=0_0|w0_0`).
    /// Feed input `i` with [`FilterGraph::push_to`].
    pub fn with_inputs(
        inputs: &[VideoFormat],
        time_base: Rational,
        description: &str,
        output: VideoFormat,
    ) -> Result<FilterGraph, Error> {
        if inputs.is_empty() {
            return Err(Error::Unsupported {
                what: "a filter graph without inputs",
            });
        }
        let args: Vec<String> = (inputs.iter())
            .map(|format| {
                format!(
                    "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1",
                    format.width,
                    format.height,
                    format.pixel_format.to_raw() as i32,
                    time_base.num,
                    time_base.den
                )
            })
            .collect();
        let full = format!("{description},format={}", output.pixel_format.name());
        FilterGraph::build(("buffer", "buffersink"), &args, &full, output)
    }

    /// An audio graph for frames like `example` (its sample rate, sample format and channel
    /// layout) with timestamps in `time_base`, running `description` (e.g.
    /// `aresample=48000,aformat=sample_fmts=flt,asetnsamples=n=960`). Feed it with
    /// [`FilterGraph::push`] and drain it with [`FilterGraph::pull`].
    pub fn audio(
        example: &Frame,
        time_base: Rational,
        description: &str,
    ) -> Result<FilterGraph, Error> {
        FilterGraph::audio_inputs(example, 1, time_base, description)
    }

    /// An audio graph of `inputs` inputs, each taking frames like `example`, named `[in0]`,
    /// `[in1]`, … in `description` (one input: unlabelled). Feed input `i` with
    /// [`FilterGraph::push_to`].
    pub fn audio_inputs(
        example: &Frame,
        inputs: usize,
        time_base: Rational,
        description: &str,
    ) -> Result<FilterGraph, Error> {
        let args = example.abuffer_args().ok_or(Error::Unsupported {
            what: "an audio filter graph for a frame that is not audio",
        })?;
        if inputs == 0 {
            return Err(Error::Unsupported {
                what: "a filter graph without inputs",
            });
        }
        let args = format!("{args}:time_base={}/{}", time_base.num, time_base.den);
        let none = VideoFormat {
            width: 0,
            height: 0,
            pixel_format: crate::PixelFormat::YUV420P,
        };
        let args = vec![args; inputs];
        FilterGraph::build(("abuffer", "abuffersink"), &args, description, none)
    }

    fn build(
        (source_filter, sink_filter): (&str, &str),
        args: &[String],
        full: &str,
        format: VideoFormat,
    ) -> Result<FilterGraph, Error> {
        assert_ffmpeg_allowed();
        // SAFETY: plain allocation; NULL is handled below.
        let raw = unsafe { ffi::avfilter_graph_alloc() };
        let graph = NonNull::new(raw).ok_or(Error::OutOfMemory {
            what: "AVFilterGraph",
        })?;
        // From here on `owner` frees the graph (and every context created in it) on error.
        let mut owner = FilterGraph {
            graph,
            sources: Vec::with_capacity(args.len()),
            sink: NonNull::dangling(),
            format,
            _live: LiveGuard::new(Kind::FilterGraph),
        };
        // SAFETY: single-threaded filtering: the graph must not start worker threads of its
        // own on a transcode core. The graph is live and not yet configured.
        unsafe { (*graph.as_ptr()).nb_threads = 1 };
        let names: Vec<CString> = match args.len() {
            1 => vec![c_string("in")?],
            n => (0..n)
                .map(|i| c_string(&format!("in{i}")))
                .collect::<Result<_, _>>()?,
        };
        for (name, args) in names.iter().zip(args) {
            let args = c_string(args)?;
            let name = name.to_str().expect("made from a str");
            let source = owner.create(source_filter, name, Some(&args))?;
            owner.sources.push(source);
        }
        owner.sink = owner.create(sink_filter, "out", None)?;
        let full = c_string(full)?;
        // SAFETY: `avfilter_inout_alloc` returns owned lists (or NULL); they are filled with
        // the graph's own contexts and duplicated names, handed to `avfilter_graph_parse_ptr`
        // (which may replace them) and freed with `avfilter_inout_free` on every path.
        unsafe {
            let mut outputs: *mut ffi::AVFilterInOut = ptr::null_mut();
            // Linked in reverse, so the list runs in0, in1, …
            for (name, source) in names.iter().zip(&owner.sources).rev() {
                let link = ffi::avfilter_inout_alloc();
                if link.is_null() {
                    ffi::avfilter_inout_free(&mut outputs);
                    return Err(Error::OutOfMemory {
                        what: "AVFilterInOut",
                    });
                }
                (*link).name = ffi::av_strdup(name.as_ptr());
                (*link).filter_ctx = source.as_ptr();
                (*link).pad_idx = 0;
                (*link).next = outputs;
                outputs = link;
            }
            let mut inputs = ffi::avfilter_inout_alloc();
            if inputs.is_null() {
                ffi::avfilter_inout_free(&mut outputs);
                return Err(Error::OutOfMemory {
                    what: "AVFilterInOut",
                });
            }
            (*inputs).name = ffi::av_strdup(c"out".as_ptr());
            (*inputs).filter_ctx = owner.sink.as_ptr();
            (*inputs).pad_idx = 0;
            (*inputs).next = ptr::null_mut();
            let ret = ffi::avfilter_graph_parse_ptr(
                owner.graph.as_ptr(),
                full.as_ptr(),
                &mut inputs,
                &mut outputs,
                ptr::null_mut(),
            );
            ffi::avfilter_inout_free(&mut inputs);
            ffi::avfilter_inout_free(&mut outputs);
            check(ret)?;
            check(ffi::avfilter_graph_config(
                owner.graph.as_ptr(),
                ptr::null_mut(),
            ))?;
        }
        Ok(owner)
    }

    fn create(
        &mut self,
        filter: &str,
        name: &str,
        args: Option<&CString>,
    ) -> Result<NonNull<ffi::AVFilterContext>, Error> {
        let filter_name = c_string(filter)?;
        let instance = c_string(name)?;
        // SAFETY: lookup in libavfilter's static table with a NUL-terminated name.
        let kind = unsafe { ffi::avfilter_get_by_name(filter_name.as_ptr()) };
        if kind.is_null() {
            return Err(Error::NotRegistered {
                name: filter.to_owned(),
            });
        }
        let mut context = ptr::null_mut();
        // SAFETY: the graph is live; `kind` is a static filter; the strings are NUL-terminated
        // and outlive the call; the new context belongs to the graph.
        check(unsafe {
            ffi::avfilter_graph_create_filter(
                &mut context,
                kind,
                instance.as_ptr(),
                args.map_or(ptr::null(), |a| a.as_ptr()),
                ptr::null_mut(),
                self.graph.as_ptr(),
            )
        })?;
        NonNull::new(context).ok_or(Error::OutOfMemory {
            what: "AVFilterContext",
        })
    }

    /// The picture format in and out (a video graph).
    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// The time base of what [`FilterGraph::pull`] returns.
    pub fn output_time_base(&self) -> Rational {
        // SAFETY: the sink context is live and configured (the graph was configured in the
        // constructor).
        let tb = unsafe { ffi::av_buffersink_get_time_base(self.sink.as_ptr()) };
        Rational::new(tb.num, tb.den)
    }

    /// Feeds one frame (`None`: end of input, so the graph flushes what it holds).
    pub fn push(&mut self, input: Option<&Frame>) -> Result<(), Error> {
        self.push_to(0, input)
    }

    /// Feeds one frame to input `index` (`None`: end of that input).
    pub fn push_to(&mut self, index: usize, input: Option<&Frame>) -> Result<(), Error> {
        let source = *self.sources.get(index).ok_or(Error::Unsupported {
            what: "a filter graph input past its last",
        })?;
        let frame = input.map_or(ptr::null_mut(), |f| f.as_ptr().cast_mut());
        // SAFETY: the source context is live; `frame` is NULL (end of input) or a live frame
        // that libavfilter references (KEEP_REF) without modifying it.
        check(unsafe {
            ffi::av_buffersrc_add_frame_flags(
                source.as_ptr(),
                frame,
                ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        })
        .map(drop)
    }

    /// Takes the next output frame into `out`. [`Error::Again`]: feed more;
    /// [`Error::Eof`]: flushed after end of input.
    pub fn pull(&mut self, out: &mut Frame) -> Result<(), Error> {
        // SAFETY: `out` is a live frame, exclusively borrowed; unreferencing drops what it
        // held so the sink can fill it.
        unsafe { ffi::av_frame_unref(out.as_mut_ptr()) };
        // SAFETY: the sink context is live and `out` is an empty frame exclusively borrowed.
        check(unsafe { ffi::av_buffersink_get_frame(self.sink.as_ptr(), out.as_mut_ptr()) })
            .map(drop)
    }

    /// Runs one picture through the graph into `out` (replacing what it held), timestamps
    /// kept. [`Error::Again`] when the graph holds the picture back (filters that need more
    /// than one).
    pub fn filter(&mut self, input: &Frame, out: &mut Frame) -> Result<(), Error> {
        // SAFETY: the source context is live (owned by the graph); KEEP_REF makes libavfilter
        // take its own reference, so `input` is only read.
        check(unsafe {
            ffi::av_buffersrc_add_frame_flags(
                self.sources[0].as_ptr(),
                input.as_ptr().cast_mut(),
                ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        })?;
        // SAFETY: `out` is a live frame, exclusively borrowed; unreferencing drops what it
        // held so the sink can fill it.
        unsafe { ffi::av_frame_unref(out.as_mut_ptr()) };
        // SAFETY: the sink context is live (owned by the graph) and `out` is an empty frame
        // exclusively borrowed for the call.
        check(unsafe { ffi::av_buffersink_get_frame(self.sink.as_ptr(), out.as_mut_ptr()) })
            .map(drop)
    }
}

impl Drop for FilterGraph {
    fn drop(&mut self) {
        let mut raw = self.graph.as_ptr();
        // SAFETY: the graph is owned by this value and freed once, with every filter context
        // in it; `source` and `sink` are not used afterwards.
        unsafe { ffi::avfilter_graph_free(&mut raw) };
    }
}
