//! [`Options`]: an owned `AVDictionary` of string options for `avcodec_open2` and friends.

use std::ffi::CStr;
use std::ptr::{self, NonNull};

use ffmpeg_sys_next as ffi;

use crate::error::{c_string, check, Error};
use crate::live::{assert_ffmpeg_allowed, Kind, LiveGuard};

/// An owned FFmpeg options dictionary.
///
/// An empty dictionary is a NULL pointer in FFmpeg, so the pointer is optional here. After
/// [`crate::CodecContext::open`] the dictionary holds only the options the codec did *not*
/// consume, which is how a caller finds misspelt or unsupported options.
#[derive(Debug)]
pub struct Options {
    dict: Option<NonNull<ffi::AVDictionary>>,
    _live: LiveGuard,
}

// SAFETY: the dictionary is exclusively owned by this value and FFmpeg keeps no thread-affine
// state in it; moving it to another thread moves sole access with it. It is not `Sync`.
unsafe impl Send for Options {}

impl Options {
    /// An empty dictionary.
    pub fn new() -> Options {
        assert_ffmpeg_allowed();
        Options {
            dict: None,
            _live: LiveGuard::new(Kind::Options),
        }
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let key = c_string(key)?;
        let value = c_string(value)?;
        let mut raw = self.as_mut_ptr();
        // SAFETY: `raw` is NULL or a dictionary this value owns; `av_dict_set` copies both
        // strings (flags 0) and may reallocate, storing the new pointer in `raw`, which is put
        // back into `self.dict` before anything else can observe it.
        let ret = unsafe { ffi::av_dict_set(&mut raw, key.as_ptr(), value.as_ptr(), 0) };
        self.dict = NonNull::new(raw);
        check(ret).map(drop)
    }

    /// The value of `key`, borrowed from the dictionary. `None` when absent or not UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = c_string(key).ok()?;
        let dict = self.dict?;
        // SAFETY: `dict` is a live dictionary owned by `self`; `key` is NUL-terminated. The
        // returned entry points into the dictionary, which `&self` keeps alive and unmodified
        // for the lifetime of the returned borrow.
        let entry = unsafe { ffi::av_dict_get(dict.as_ptr(), key.as_ptr(), ptr::null(), 0) };
        // SAFETY: as above; a non-NULL entry's `value` is a NUL-terminated string.
        unsafe { entry.as_ref() }.and_then(|e| unsafe { CStr::from_ptr(e.value) }.to_str().ok())
    }

    /// Every entry, in insertion order, borrowed from the dictionary.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut previous: *const ffi::AVDictionaryEntry = ptr::null();
        let empty = c"";
        std::iter::from_fn(move || loop {
            let dict = self.dict?;
            // SAFETY: `dict` is live and owned by `self`, borrowed for the iterator's lifetime;
            // `previous` is NULL or an entry returned by the previous call on the same,
            // unmodified dictionary, which is what `av_dict_get` requires to continue.
            let entry = unsafe {
                ffi::av_dict_get(
                    dict.as_ptr(),
                    empty.as_ptr(),
                    previous,
                    ffi::AV_DICT_IGNORE_SUFFIX,
                )
            };
            // SAFETY: a non-NULL entry points into the live dictionary.
            let e = unsafe { entry.as_ref() }?;
            previous = entry;
            // SAFETY: an entry's key and value are NUL-terminated strings owned by the
            // dictionary, which outlives the borrow through `&self`.
            let (key, value) = unsafe { (CStr::from_ptr(e.key), CStr::from_ptr(e.value)) };
            if let (Ok(key), Ok(value)) = (key.to_str(), value.to_str()) {
                return Some((key, value));
            }
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        // SAFETY: `av_dict_count` accepts NULL (returns 0) or a live dictionary.
        let n = unsafe { ffi::av_dict_count(self.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::AVDictionary {
        self.dict.map_or(ptr::null(), |d| d.as_ptr())
    }

    /// The raw pointer, for calls that take `AVDictionary **`; the caller must store the
    /// possibly updated pointer back with [`Options::replace_raw`].
    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVDictionary {
        self.dict.map_or(ptr::null_mut(), |d| d.as_ptr())
    }

    /// Takes back ownership of the dictionary after FFmpeg replaced it through `**`.
    pub(crate) fn replace_raw(&mut self, raw: *mut ffi::AVDictionary) {
        self.dict = NonNull::new(raw);
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        let mut raw = self.as_mut_ptr();
        // SAFETY: `raw` is NULL or the dictionary this value exclusively owns; nothing else
        // refers to it, and `av_dict_free` accepts NULL.
        unsafe { ffi::av_dict_free(&mut raw) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_iterate() {
        let mut o = Options::new();
        assert!(o.is_empty());
        o.set("preset", "veryfast").unwrap();
        o.set("tune", "zerolatency").unwrap();
        o.set("preset", "ultrafast").unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o.get("preset"), Some("ultrafast"));
        assert_eq!(o.get("missing"), None);
        let all: Vec<_> = o.iter().collect();
        assert_eq!(all.len(), 2);
        assert!(all.contains(&("tune", "zerolatency")));
        assert!(matches!(
            o.set("bad\0key", "x"),
            Err(Error::InteriorNul { .. })
        ));
    }
}
