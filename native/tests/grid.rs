//! The co-hosting grid against the system FFmpeg: hosts' pictures of different sizes are
//! letterboxed into their tiles, composed at a steady rate whatever arrives, and encoded as
//! H.264 that decodes to the canvas with each host where the layout puts them.

use shardcast_native::{
    grid_layout, live_owners, CodecContext, CodecId, Error, Frame, Grid, GridConfig, Packet,
    PixelFormat, Rational, VideoFormat, VideoPacket,
};

/// A flat picture of `width`×`height` in one colour (Y, U, V).
fn flat(width: u32, height: u32, (y, u, v): (u8, u8, u8)) -> Frame {
    let mut frame = Frame::video(VideoFormat {
        width,
        height,
        pixel_format: PixelFormat::YUV420P,
    })
    .unwrap();
    for (plane, value) in [(0, y), (1, u), (2, v)] {
        frame.plane_mut(plane).unwrap().fill(value);
    }
    frame
}

/// Decodes the packets with `record`: each picture's size and its luma at the given points.
fn decode(
    record: &[u8],
    packets: &[VideoPacket],
    points: &[(usize, usize)],
) -> Vec<(u32, u32, Vec<u8>)> {
    let mut decoder = CodecContext::decoder(CodecId::H264).unwrap();
    decoder.set_extradata(record).unwrap();
    decoder.open(None).unwrap();
    let mut picture = Frame::new().unwrap();
    let mut out = Vec::new();
    let mut drain = |decoder: &mut CodecContext, out: &mut Vec<_>| loop {
        match decoder.receive_frame(&mut picture) {
            Ok(()) => {
                let stride = picture.stride(0).unwrap();
                let luma = picture.plane(0).unwrap();
                let values = points.iter().map(|&(x, y)| luma[y * stride + x]).collect();
                out.push((picture.width(), picture.height(), values));
            }
            Err(Error::Again | Error::Eof) => return,
            Err(e) => panic!("decoding: {e}"),
        }
    };
    for p in packets {
        let mut packet = Packet::copy_from(&p.data).unwrap();
        packet.set_pts(Some(p.pts));
        decoder.send_packet(&packet).unwrap();
        drain(&mut decoder, &mut out);
    }
    decoder.send_eof().unwrap();
    drain(&mut decoder, &mut out);
    out
}

const RED: (u8, u8, u8) = (81, 90, 240);
const BLUE: (u8, u8, u8) = (41, 240, 110);
const BLACK: u8 = 16;

/// The owner counts are per process: one test at a time makes owners.
static OWNERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn near(value: u8, want: u8) -> bool {
    value.abs_diff(want) <= 10
}

#[test]
fn the_layout_is_the_smallest_square_grid_that_holds_the_hosts() {
    assert_eq!(grid_layout(1, 1280, 720), ((1280, 720), vec![(0, 0)]));
    assert_eq!(
        grid_layout(2, 1280, 720),
        ((640, 720), vec![(0, 0), (640, 0)])
    );
    let (tile, corners) = grid_layout(3, 1280, 720);
    assert_eq!(tile, (640, 360));
    assert_eq!(corners, [(0, 0), (640, 0), (0, 360)]);
    let (tile, corners) = grid_layout(5, 1280, 720);
    assert_eq!(tile, (426, 360), "three columns, two rows, even sizes");
    assert_eq!(corners[4], (426, 360));
    assert_eq!(grid_layout(50, 1280, 720).1.len(), 9, "at most nine hosts");
}

#[test]
fn hosts_are_letterboxed_into_their_tiles_and_the_program_never_waits() {
    let _owners = OWNERS.lock().unwrap_or_else(|e| e.into_inner());
    let before = live_owners();
    {
        let config = GridConfig {
            width: 1280,
            height: 720,
            frame_rate: Rational::new(30, 1),
            bit_rate_bps: 1_500_000,
            encoder: "libx264".into(),
            preset: "ultrafast".into(),
            keyframe_interval: 60,
            threads: 1,
        };
        let mut grid = Grid::new(config, 2).unwrap();
        let mut packets = Vec::new();
        // Host 0 (16:9) arrives at once; host 1 (4:3) only after ten pictures: black till then.
        grid.set_picture(0, flat(640, 360, RED));
        for n in 0..30 {
            if n == 10 {
                grid.set_picture(1, flat(320, 240, BLUE));
            }
            grid.tick(&mut packets).unwrap();
        }
        assert_eq!(grid.frames(), 30);
        // A third host joins without a picture: a 2x2 grid, its tile black.
        grid.set_inputs(3);
        grid.force_keyframe();
        let at = packets.len();
        grid.tick(&mut packets).unwrap();
        assert!(packets[at..].iter().any(|p| p.keyframe), "forced keyframe");
        for _ in 0..9 {
            grid.tick(&mut packets).unwrap();
        }
        assert_eq!(packets.len(), 40, "one packet per picture (no lookahead)");
        assert!(packets.windows(2).all(|w| w[1].pts - w[0].pts == 3000));
        assert!(packets[0].keyframe);

        // Two hosts: tile 0 is 640x720 with host 0 at 640x360 in its middle; tile 1 holds
        // host 1 at 640x480. Three: tiles of 640x360.
        let points = [(320, 360), (320, 60), (960, 360), (960, 60), (960, 540)];
        let pictures = decode(grid.record(), &packets, &points);
        assert_eq!(pictures.len(), 40);
        assert!(pictures.iter().all(|p| (p.0, p.1) == (1280, 720)));
        let luma = |n: usize| &pictures[n].2;
        assert!(near(luma(5)[0], RED.0), "host 0 in its tile: {:?}", luma(5));
        assert!(near(luma(5)[1], BLACK), "letterboxed: {:?}", luma(5));
        assert!(
            near(luma(5)[2], BLACK),
            "host 1 not there yet: {:?}",
            luma(5)
        );
        assert!(
            near(luma(20)[2], BLUE.0),
            "host 1 in its tile: {:?}",
            luma(20)
        );
        assert!(near(luma(20)[3], BLACK), "letterboxed: {:?}", luma(20));
        // 2x2: host 0 top left (its picture fills the 640x360 tile), host 1 top right, the
        // third (no picture yet) bottom left, nothing bottom right.
        assert!(near(luma(35)[1], RED.0), "{:?}", luma(35));
        assert!(near(luma(35)[3], BLUE.0), "{:?}", luma(35));
        assert!(near(luma(35)[4], BLACK), "{:?}", luma(35));
    }
    assert_eq!(live_owners(), before, "owners freed");
}

#[test]
fn a_bad_canvas_is_refused() {
    let config = GridConfig {
        width: 641,
        height: 360,
        frame_rate: Rational::new(30, 1),
        bit_rate_bps: 500_000,
        encoder: "libx264".into(),
        preset: "ultrafast".into(),
        keyframe_interval: 60,
        threads: 1,
    };
    assert!(Grid::new(config, 1).is_err());
}

#[test]
fn one_host_fills_the_canvas() {
    let _owners = OWNERS.lock().unwrap_or_else(|e| e.into_inner());
    let config = GridConfig {
        width: 640,
        height: 360,
        frame_rate: Rational::new(30, 1),
        bit_rate_bps: 500_000,
        encoder: "libx264".into(),
        preset: "ultrafast".into(),
        keyframe_interval: 60,
        threads: 1,
    };
    let mut grid = Grid::new(config, 1).unwrap();
    let mut packets = Vec::new();
    grid.tick(&mut packets).unwrap(); // no picture yet: black
    grid.set_picture(0, flat(320, 180, RED));
    for _ in 0..4 {
        grid.tick(&mut packets).unwrap();
    }
    let pictures = decode(grid.record(), &packets, &[(10, 10), (320, 180)]);
    assert_eq!(pictures.len(), 5);
    assert!(near(pictures[0].2[1], BLACK), "{:?}", pictures[0]);
    assert!(pictures[1..]
        .iter()
        .all(|p| near(p.2[0], RED.0) && near(p.2[1], RED.0)));
}
