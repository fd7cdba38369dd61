//! Media files for the WebRTC clients: H.264 access units and Opus packets as ffmpeg writes
//! them (`-f h264` with access unit delimiters, `-f ogg`).

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
