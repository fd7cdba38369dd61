//! Media files for the WebRTC clients: H.264 access units and Opus packets as ffmpeg writes
//! them (`-f h264` with access unit delimiters, `-f ivf` for VP8, `-f ogg`).

/// The frames of an IVF file (a 32-byte file header, then each frame as a 12-byte header
/// whose first four bytes are its size, little-endian), in order.
pub fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 32;
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let start = at + 12;
        let Some(frame) = data.get(start..start + size as usize) else {
            break;
        };
        frames.push(frame.to_vec());
        at = start + size as usize;
    }
    frames
}

/// An Annex B stream cut at its access unit delimiters, each unit with 4-byte start codes.
pub fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut units: Vec<Vec<u8>> = Vec::new();
    for nal in shardcast_media::codec::nal_units(stream) {
        if nal[0] & 0x1f == 9 || units.is_empty() {
            units.push(Vec::new());
        }
        let unit = units.last_mut().unwrap();
        unit.extend_from_slice(&[0, 0, 0, 1]);
        unit.extend_from_slice(nal);
    }
    units
}

/// The packets of an Ogg stream (RFC 3533), in order.
pub fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let (mut packets, mut current, mut at) = (Vec::new(), Vec::new(), 0);
    while at + 27 <= data.len() && &data[at..at + 4] == b"OggS" {
        let segments = usize::from(data[at + 26]);
        let table = &data[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &lace in table {
            current.extend_from_slice(&data[body..body + usize::from(lace)]);
            body += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        at = body;
    }
    packets
}
