// node_modules/flatbuffers/mjs/constants.js
var SIZEOF_SHORT = 2;
var SIZEOF_INT = 4;
var FILE_IDENTIFIER_LENGTH = 4;
var SIZE_PREFIX_LENGTH = 4;

// node_modules/flatbuffers/mjs/utils.js
var int32 = new Int32Array(2);
var float32 = new Float32Array(int32.buffer);
var float64 = new Float64Array(int32.buffer);
var isLittleEndian = new Uint16Array(new Uint8Array([1, 0]).buffer)[0] === 1;

// node_modules/flatbuffers/mjs/encoding.js
var Encoding;
(function(Encoding2) {
  Encoding2[Encoding2["UTF8_BYTES"] = 1] = "UTF8_BYTES";
  Encoding2[Encoding2["UTF16_STRING"] = 2] = "UTF16_STRING";
})(Encoding || (Encoding = {}));

// node_modules/flatbuffers/mjs/byte-buffer.js
var ByteBuffer = class _ByteBuffer {
  /**
   * Create a new ByteBuffer with a given array of bytes (`Uint8Array`)
   */
  constructor(bytes_) {
    this.bytes_ = bytes_;
    this.position_ = 0;
    this.text_decoder_ = new TextDecoder();
  }
  /**
   * Create and allocate a new ByteBuffer with a given size.
   */
  static allocate(byte_size) {
    return new _ByteBuffer(new Uint8Array(byte_size));
  }
  clear() {
    this.position_ = 0;
  }
  /**
   * Get the underlying `Uint8Array`.
   */
  bytes() {
    return this.bytes_;
  }
  /**
   * Get the buffer's position.
   */
  position() {
    return this.position_;
  }
  /**
   * Set the buffer's position.
   */
  setPosition(position) {
    this.position_ = position;
  }
  /**
   * Get the buffer's capacity.
   */
  capacity() {
    return this.bytes_.length;
  }
  readInt8(offset) {
    return this.readUint8(offset) << 24 >> 24;
  }
  readUint8(offset) {
    return this.bytes_[offset];
  }
  readInt16(offset) {
    return this.readUint16(offset) << 16 >> 16;
  }
  readUint16(offset) {
    return this.bytes_[offset] | this.bytes_[offset + 1] << 8;
  }
  readInt32(offset) {
    return this.bytes_[offset] | this.bytes_[offset + 1] << 8 | this.bytes_[offset + 2] << 16 | this.bytes_[offset + 3] << 24;
  }
  readUint32(offset) {
    return this.readInt32(offset) >>> 0;
  }
  readInt64(offset) {
    return BigInt.asIntN(64, BigInt(this.readUint32(offset)) + (BigInt(this.readUint32(offset + 4)) << BigInt(32)));
  }
  readUint64(offset) {
    return BigInt.asUintN(64, BigInt(this.readUint32(offset)) + (BigInt(this.readUint32(offset + 4)) << BigInt(32)));
  }
  readFloat32(offset) {
    int32[0] = this.readInt32(offset);
    return float32[0];
  }
  readFloat64(offset) {
    int32[isLittleEndian ? 0 : 1] = this.readInt32(offset);
    int32[isLittleEndian ? 1 : 0] = this.readInt32(offset + 4);
    return float64[0];
  }
  writeInt8(offset, value) {
    this.bytes_[offset] = value;
  }
  writeUint8(offset, value) {
    this.bytes_[offset] = value;
  }
  writeInt16(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
  }
  writeUint16(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
  }
  writeInt32(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
    this.bytes_[offset + 2] = value >> 16;
    this.bytes_[offset + 3] = value >> 24;
  }
  writeUint32(offset, value) {
    this.bytes_[offset] = value;
    this.bytes_[offset + 1] = value >> 8;
    this.bytes_[offset + 2] = value >> 16;
    this.bytes_[offset + 3] = value >> 24;
  }
  writeInt64(offset, value) {
    this.writeInt32(offset, Number(BigInt.asIntN(32, value)));
    this.writeInt32(offset + 4, Number(BigInt.asIntN(32, value >> BigInt(32))));
  }
  writeUint64(offset, value) {
    this.writeUint32(offset, Number(BigInt.asUintN(32, value)));
    this.writeUint32(offset + 4, Number(BigInt.asUintN(32, value >> BigInt(32))));
  }
  writeFloat32(offset, value) {
    float32[0] = value;
    this.writeInt32(offset, int32[0]);
  }
  writeFloat64(offset, value) {
    float64[0] = value;
    this.writeInt32(offset, int32[isLittleEndian ? 0 : 1]);
    this.writeInt32(offset + 4, int32[isLittleEndian ? 1 : 0]);
  }
  /**
   * Return the file identifier.   Behavior is undefined for FlatBuffers whose
   * schema does not include a file_identifier (likely points at padding or the
   * start of a the root vtable).
   */
  getBufferIdentifier() {
    if (this.bytes_.length < this.position_ + SIZEOF_INT + FILE_IDENTIFIER_LENGTH) {
      throw new Error("FlatBuffers: ByteBuffer is too short to contain an identifier.");
    }
    let result = "";
    for (let i = 0; i < FILE_IDENTIFIER_LENGTH; i++) {
      result += String.fromCharCode(this.readInt8(this.position_ + SIZEOF_INT + i));
    }
    return result;
  }
  /**
   * Look up a field in the vtable, return an offset into the object, or 0 if the
   * field is not present.
   */
  __offset(bb_pos, vtable_offset) {
    const vtable = bb_pos - this.readInt32(bb_pos);
    return vtable_offset < this.readInt16(vtable) ? this.readInt16(vtable + vtable_offset) : 0;
  }
  /**
   * Initialize any Table-derived type to point to the union at the given offset.
   */
  __union(t, offset) {
    t.bb_pos = offset + this.readInt32(offset);
    t.bb = this;
    return t;
  }
  /**
   * Create a JavaScript string from UTF-8 data stored inside the FlatBuffer.
   * This allocates a new string and converts to wide chars upon each access.
   *
   * To avoid the conversion to string, pass Encoding.UTF8_BYTES as the
   * "optionalEncoding" argument. This is useful for avoiding conversion when
   * the data will just be packaged back up in another FlatBuffer later on.
   *
   * @param offset
   * @param opt_encoding Defaults to UTF16_STRING
   */
  __string(offset, opt_encoding) {
    offset += this.readInt32(offset);
    const length = this.readInt32(offset);
    offset += SIZEOF_INT;
    const utf8bytes = this.bytes_.subarray(offset, offset + length);
    if (opt_encoding === Encoding.UTF8_BYTES)
      return utf8bytes;
    else
      return this.text_decoder_.decode(utf8bytes);
  }
  /**
   * Handle unions that can contain string as its member, if a Table-derived type then initialize it,
   * if a string then return a new one
   *
   * WARNING: strings are immutable in JS so we can't change the string that the user gave us, this
   * makes the behaviour of __union_with_string different compared to __union
   */
  __union_with_string(o, offset) {
    if (typeof o === "string") {
      return this.__string(offset);
    }
    return this.__union(o, offset);
  }
  /**
   * Retrieve the relative offset stored at "offset"
   */
  __indirect(offset) {
    return offset + this.readInt32(offset);
  }
  /**
   * Get the start of data of a vector whose offset is stored at "offset" in this object.
   */
  __vector(offset) {
    return offset + this.readInt32(offset) + SIZEOF_INT;
  }
  /**
   * Get the length of a vector whose offset is stored at "offset" in this object.
   */
  __vector_len(offset) {
    return this.readInt32(offset + this.readInt32(offset));
  }
  __has_identifier(ident) {
    if (ident.length != FILE_IDENTIFIER_LENGTH) {
      throw new Error("FlatBuffers: file identifier must be length " + FILE_IDENTIFIER_LENGTH);
    }
    for (let i = 0; i < FILE_IDENTIFIER_LENGTH; i++) {
      if (ident.charCodeAt(i) != this.readInt8(this.position() + SIZEOF_INT + i)) {
        return false;
      }
    }
    return true;
  }
  /**
   * A helper function for generating list for obj api
   */
  createScalarList(listAccessor, listLength) {
    const ret = [];
    for (let i = 0; i < listLength; ++i) {
      const val = listAccessor(i);
      if (val !== null) {
        ret.push(val);
      }
    }
    return ret;
  }
  /**
   * A helper function for generating list for obj api
   * @param listAccessor function that accepts an index and return data at that index
   * @param listLength listLength
   * @param res result list
   */
  createObjList(listAccessor, listLength) {
    const ret = [];
    for (let i = 0; i < listLength; ++i) {
      const val = listAccessor(i);
      if (val !== null) {
        ret.push(val.unpack());
      }
    }
    return ret;
  }
};

// node_modules/flatbuffers/mjs/builder.js
var Builder = class _Builder {
  /**
   * Create a FlatBufferBuilder.
   */
  constructor(opt_initial_size) {
    this.minalign = 1;
    this.vtable = null;
    this.vtable_in_use = 0;
    this.isNested = false;
    this.object_start = 0;
    this.vtables = [];
    this.vector_num_elems = 0;
    this.force_defaults = false;
    this.string_maps = null;
    this.text_encoder = new TextEncoder();
    let initial_size;
    if (!opt_initial_size) {
      initial_size = 1024;
    } else {
      initial_size = opt_initial_size;
    }
    this.bb = ByteBuffer.allocate(initial_size);
    this.space = initial_size;
  }
  clear() {
    this.bb.clear();
    this.space = this.bb.capacity();
    this.minalign = 1;
    this.vtable = null;
    this.vtable_in_use = 0;
    this.isNested = false;
    this.object_start = 0;
    this.vtables = [];
    this.vector_num_elems = 0;
    this.force_defaults = false;
    this.string_maps = null;
  }
  /**
   * In order to save space, fields that are set to their default value
   * don't get serialized into the buffer. Forcing defaults provides a
   * way to manually disable this optimization.
   *
   * @param forceDefaults true always serializes default values
   */
  forceDefaults(forceDefaults) {
    this.force_defaults = forceDefaults;
  }
  /**
   * Get the ByteBuffer representing the FlatBuffer. Only call this after you've
   * called finish(). The actual data starts at the ByteBuffer's current position,
   * not necessarily at 0.
   */
  dataBuffer() {
    return this.bb;
  }
  /**
   * Get the bytes representing the FlatBuffer. Only call this after you've
   * called finish().
   */
  asUint8Array() {
    return this.bb.bytes().subarray(this.bb.position(), this.bb.position() + this.offset());
  }
  /**
   * Prepare to write an element of `size` after `additional_bytes` have been
   * written, e.g. if you write a string, you need to align such the int length
   * field is aligned to 4 bytes, and the string data follows it directly. If all
   * you need to do is alignment, `additional_bytes` will be 0.
   *
   * @param size This is the of the new element to write
   * @param additional_bytes The padding size
   */
  prep(size, additional_bytes) {
    if (size > this.minalign) {
      this.minalign = size;
    }
    const align_size = ~(this.bb.capacity() - this.space + additional_bytes) + 1 & size - 1;
    while (this.space < align_size + size + additional_bytes) {
      const old_buf_size = this.bb.capacity();
      this.bb = _Builder.growByteBuffer(this.bb);
      this.space += this.bb.capacity() - old_buf_size;
    }
    this.pad(align_size);
  }
  pad(byte_size) {
    for (let i = 0; i < byte_size; i++) {
      this.bb.writeInt8(--this.space, 0);
    }
  }
  writeInt8(value) {
    this.bb.writeInt8(this.space -= 1, value);
  }
  writeInt16(value) {
    this.bb.writeInt16(this.space -= 2, value);
  }
  writeInt32(value) {
    this.bb.writeInt32(this.space -= 4, value);
  }
  writeInt64(value) {
    this.bb.writeInt64(this.space -= 8, value);
  }
  writeFloat32(value) {
    this.bb.writeFloat32(this.space -= 4, value);
  }
  writeFloat64(value) {
    this.bb.writeFloat64(this.space -= 8, value);
  }
  /**
   * Add an `int8` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int8` to add the buffer.
   */
  addInt8(value) {
    this.prep(1, 0);
    this.writeInt8(value);
  }
  /**
   * Add an `int16` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int16` to add the buffer.
   */
  addInt16(value) {
    this.prep(2, 0);
    this.writeInt16(value);
  }
  /**
   * Add an `int32` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int32` to add the buffer.
   */
  addInt32(value) {
    this.prep(4, 0);
    this.writeInt32(value);
  }
  /**
   * Add an `int64` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `int64` to add the buffer.
   */
  addInt64(value) {
    this.prep(8, 0);
    this.writeInt64(value);
  }
  /**
   * Add a `float32` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `float32` to add the buffer.
   */
  addFloat32(value) {
    this.prep(4, 0);
    this.writeFloat32(value);
  }
  /**
   * Add a `float64` to the buffer, properly aligned, and grows the buffer (if necessary).
   * @param value The `float64` to add the buffer.
   */
  addFloat64(value) {
    this.prep(8, 0);
    this.writeFloat64(value);
  }
  addFieldInt8(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt8(value);
      this.slot(voffset);
    }
  }
  addFieldInt16(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt16(value);
      this.slot(voffset);
    }
  }
  addFieldInt32(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addInt32(value);
      this.slot(voffset);
    }
  }
  addFieldInt64(voffset, value, defaultValue) {
    if (this.force_defaults || value !== defaultValue) {
      this.addInt64(value);
      this.slot(voffset);
    }
  }
  addFieldFloat32(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addFloat32(value);
      this.slot(voffset);
    }
  }
  addFieldFloat64(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addFloat64(value);
      this.slot(voffset);
    }
  }
  addFieldOffset(voffset, value, defaultValue) {
    if (this.force_defaults || value != defaultValue) {
      this.addOffset(value);
      this.slot(voffset);
    }
  }
  /**
   * Structs are stored inline, so nothing additional is being added. `d` is always 0.
   */
  addFieldStruct(voffset, value, defaultValue) {
    if (value != defaultValue) {
      this.nested(value);
      this.slot(voffset);
    }
  }
  /**
   * Structures are always stored inline, they need to be created right
   * where they're used.  You'll get this assertion failure if you
   * created it elsewhere.
   */
  nested(obj) {
    if (obj != this.offset()) {
      throw new TypeError("FlatBuffers: struct must be serialized inline.");
    }
  }
  /**
   * Should not be creating any other object, string or vector
   * while an object is being constructed
   */
  notNested() {
    if (this.isNested) {
      throw new TypeError("FlatBuffers: object serialization must not be nested.");
    }
  }
  /**
   * Set the current vtable at `voffset` to the current location in the buffer.
   */
  slot(voffset) {
    if (this.vtable !== null)
      this.vtable[voffset] = this.offset();
  }
  /**
   * @returns Offset relative to the end of the buffer.
   */
  offset() {
    return this.bb.capacity() - this.space;
  }
  /**
   * Doubles the size of the backing ByteBuffer and copies the old data towards
   * the end of the new buffer (since we build the buffer backwards).
   *
   * @param bb The current buffer with the existing data
   * @returns A new byte buffer with the old data copied
   * to it. The data is located at the end of the buffer.
   *
   * uint8Array.set() formally takes {Array<number>|ArrayBufferView}, so to pass
   * it a uint8Array we need to suppress the type check:
   * @suppress {checkTypes}
   */
  static growByteBuffer(bb) {
    const old_buf_size = bb.capacity();
    if (old_buf_size & 3221225472) {
      throw new Error("FlatBuffers: cannot grow buffer beyond 2 gigabytes.");
    }
    const new_buf_size = old_buf_size << 1;
    const nbb = ByteBuffer.allocate(new_buf_size);
    nbb.setPosition(new_buf_size - old_buf_size);
    nbb.bytes().set(bb.bytes(), new_buf_size - old_buf_size);
    return nbb;
  }
  /**
   * Adds on offset, relative to where it will be written.
   *
   * @param offset The offset to add.
   */
  addOffset(offset) {
    this.prep(SIZEOF_INT, 0);
    this.writeInt32(this.offset() - offset + SIZEOF_INT);
  }
  /**
   * Start encoding a new object in the buffer.  Users will not usually need to
   * call this directly. The FlatBuffers compiler will generate helper methods
   * that call this method internally.
   */
  startObject(numfields) {
    this.notNested();
    if (this.vtable == null) {
      this.vtable = [];
    }
    this.vtable_in_use = numfields;
    for (let i = 0; i < numfields; i++) {
      this.vtable[i] = 0;
    }
    this.isNested = true;
    this.object_start = this.offset();
  }
  /**
   * Finish off writing the object that is under construction.
   *
   * @returns The offset to the object inside `dataBuffer`
   */
  endObject() {
    if (this.vtable == null || !this.isNested) {
      throw new Error("FlatBuffers: endObject called without startObject");
    }
    this.addInt32(0);
    const vtableloc = this.offset();
    let i = this.vtable_in_use - 1;
    for (; i >= 0 && this.vtable[i] == 0; i--) {
    }
    const trimmed_size = i + 1;
    for (; i >= 0; i--) {
      this.addInt16(this.vtable[i] != 0 ? vtableloc - this.vtable[i] : 0);
    }
    const standard_fields = 2;
    this.addInt16(vtableloc - this.object_start);
    const len = (trimmed_size + standard_fields) * SIZEOF_SHORT;
    this.addInt16(len);
    let existing_vtable = 0;
    const vt1 = this.space;
    outer_loop: for (i = 0; i < this.vtables.length; i++) {
      const vt2 = this.bb.capacity() - this.vtables[i];
      if (len == this.bb.readInt16(vt2)) {
        for (let j = SIZEOF_SHORT; j < len; j += SIZEOF_SHORT) {
          if (this.bb.readInt16(vt1 + j) != this.bb.readInt16(vt2 + j)) {
            continue outer_loop;
          }
        }
        existing_vtable = this.vtables[i];
        break;
      }
    }
    if (existing_vtable) {
      this.space = this.bb.capacity() - vtableloc;
      this.bb.writeInt32(this.space, existing_vtable - vtableloc);
    } else {
      this.vtables.push(this.offset());
      this.bb.writeInt32(this.bb.capacity() - vtableloc, this.offset() - vtableloc);
    }
    this.isNested = false;
    return vtableloc;
  }
  /**
   * Finalize a buffer, poiting to the given `root_table`.
   */
  finish(root_table, opt_file_identifier, opt_size_prefix) {
    const size_prefix = opt_size_prefix ? SIZE_PREFIX_LENGTH : 0;
    if (opt_file_identifier) {
      const file_identifier = opt_file_identifier;
      this.prep(this.minalign, SIZEOF_INT + FILE_IDENTIFIER_LENGTH + size_prefix);
      if (file_identifier.length != FILE_IDENTIFIER_LENGTH) {
        throw new TypeError("FlatBuffers: file identifier must be length " + FILE_IDENTIFIER_LENGTH);
      }
      for (let i = FILE_IDENTIFIER_LENGTH - 1; i >= 0; i--) {
        this.writeInt8(file_identifier.charCodeAt(i));
      }
    }
    this.prep(this.minalign, SIZEOF_INT + size_prefix);
    this.addOffset(root_table);
    if (size_prefix) {
      this.addInt32(this.bb.capacity() - this.space);
    }
    this.bb.setPosition(this.space);
  }
  /**
   * Finalize a size prefixed buffer, pointing to the given `root_table`.
   */
  finishSizePrefixed(root_table, opt_file_identifier) {
    this.finish(root_table, opt_file_identifier, true);
  }
  /**
   * This checks a required field has been set in a given table that has
   * just been constructed.
   */
  requiredField(table, field) {
    const table_start = this.bb.capacity() - table;
    const vtable_start = table_start - this.bb.readInt32(table_start);
    const ok = field < this.bb.readInt16(vtable_start) && this.bb.readInt16(vtable_start + field) != 0;
    if (!ok) {
      throw new TypeError("FlatBuffers: field " + field + " must be set");
    }
  }
  /**
   * Start a new array/vector of objects.  Users usually will not call
   * this directly. The FlatBuffers compiler will create a start/end
   * method for vector types in generated code.
   *
   * @param elem_size The size of each element in the array
   * @param num_elems The number of elements in the array
   * @param alignment The alignment of the array
   */
  startVector(elem_size, num_elems, alignment) {
    this.notNested();
    this.vector_num_elems = num_elems;
    this.prep(SIZEOF_INT, elem_size * num_elems);
    this.prep(alignment, elem_size * num_elems);
  }
  /**
   * Finish off the creation of an array and all its elements. The array must be
   * created with `startVector`.
   *
   * @returns The offset at which the newly created array
   * starts.
   */
  endVector() {
    this.writeInt32(this.vector_num_elems);
    return this.offset();
  }
  /**
   * Encode the string `s` in the buffer using UTF-8. If the string passed has
   * already been seen, we return the offset of the already written string
   *
   * @param s The string to encode
   * @return The offset in the buffer where the encoded string starts
   */
  createSharedString(s) {
    if (!s) {
      return 0;
    }
    if (!this.string_maps) {
      this.string_maps = /* @__PURE__ */ new Map();
    }
    if (this.string_maps.has(s)) {
      return this.string_maps.get(s);
    }
    const offset = this.createString(s);
    this.string_maps.set(s, offset);
    return offset;
  }
  /**
   * Encode the string `s` in the buffer using UTF-8. If a Uint8Array is passed
   * instead of a string, it is assumed to contain valid UTF-8 encoded data.
   *
   * @param s The string to encode
   * @return The offset in the buffer where the encoded string starts
   */
  createString(s) {
    if (s === null || s === void 0) {
      return 0;
    }
    let utf8;
    if (s instanceof Uint8Array) {
      utf8 = s;
    } else {
      utf8 = this.text_encoder.encode(s);
    }
    this.addInt8(0);
    this.startVector(1, utf8.length, 1);
    this.bb.setPosition(this.space -= utf8.length);
    this.bb.bytes().set(utf8, this.space);
    return this.endVector();
  }
  /**
   * Create a byte vector.
   *
   * @param v The bytes to add
   * @returns The offset in the buffer where the byte vector starts
   */
  createByteVector(v) {
    if (v === null || v === void 0) {
      return 0;
    }
    this.startVector(1, v.length, 1);
    this.bb.setPosition(this.space -= v.length);
    this.bb.bytes().set(v, this.space);
    return this.endVector();
  }
  /**
   * A helper function to pack an object
   *
   * @returns offset of obj
   */
  createObjectOffset(obj) {
    if (obj === null) {
      return 0;
    }
    if (typeof obj === "string") {
      return this.createString(obj);
    } else {
      return obj.pack(this);
    }
  }
  /**
   * A helper function to pack a list of object
   *
   * @returns list of offsets of each non null object
   */
  createObjectOffsetList(list) {
    const ret = [];
    for (let i = 0; i < list.length; ++i) {
      const val = list[i];
      if (val !== null) {
        ret.push(this.createObjectOffset(val));
      } else {
        throw new TypeError("FlatBuffers: Argument for createObjectOffsetList cannot contain null.");
      }
    }
    return ret;
  }
  createStructOffsetList(list, startFunc) {
    startFunc(this, list.length);
    this.createObjectOffsetList(list.slice().reverse());
    return this.endVector();
  }
};

// generated/shardcast/wire/chat-event.ts
var ChatEvent = class _ChatEvent {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsChatEvent(bb, obj) {
    return (obj || new _ChatEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsChatEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _ChatEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  user(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  text(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  color() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  mode() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* Scroll */;
  }
  static startChatEvent(builder2) {
    builder2.startObject(4);
  }
  static addUser(builder2, userOffset) {
    builder2.addFieldOffset(0, userOffset, 0);
  }
  static addText(builder2, textOffset) {
    builder2.addFieldOffset(1, textOffset, 0);
  }
  static addColor(builder2, color) {
    builder2.addFieldInt32(2, color, 0);
  }
  static addMode(builder2, mode) {
    builder2.addFieldInt8(3, mode, 0 /* Scroll */);
  }
  static endChatEvent(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createChatEvent(builder2, userOffset, textOffset, color, mode) {
    _ChatEvent.startChatEvent(builder2);
    _ChatEvent.addUser(builder2, userOffset);
    _ChatEvent.addText(builder2, textOffset);
    _ChatEvent.addColor(builder2, color);
    _ChatEvent.addMode(builder2, mode);
    return _ChatEvent.endChatEvent(builder2);
  }
};

// generated/shardcast/wire/gift-event.ts
var GiftEvent = class _GiftEvent {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsGiftEvent(bb, obj) {
    return (obj || new _GiftEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsGiftEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _GiftEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  user(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  giftId() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  count() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  value() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startGiftEvent(builder2) {
    builder2.startObject(4);
  }
  static addUser(builder2, userOffset) {
    builder2.addFieldOffset(0, userOffset, 0);
  }
  static addGiftId(builder2, giftId) {
    builder2.addFieldInt32(1, giftId, 0);
  }
  static addCount(builder2, count) {
    builder2.addFieldInt32(2, count, 0);
  }
  static addValue(builder2, value) {
    builder2.addFieldInt64(3, value, BigInt("0"));
  }
  static endGiftEvent(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createGiftEvent(builder2, userOffset, giftId, count, value) {
    _GiftEvent.startGiftEvent(builder2);
    _GiftEvent.addUser(builder2, userOffset);
    _GiftEvent.addGiftId(builder2, giftId);
    _GiftEvent.addCount(builder2, count);
    _GiftEvent.addValue(builder2, value);
    return _GiftEvent.endGiftEvent(builder2);
  }
};

// generated/shardcast/wire/like-event.ts
var LikeEvent = class _LikeEvent {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsLikeEvent(bb, obj) {
    return (obj || new _LikeEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsLikeEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _LikeEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  total() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  added() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startLikeEvent(builder2) {
    builder2.startObject(2);
  }
  static addTotal(builder2, total) {
    builder2.addFieldInt64(0, total, BigInt("0"));
  }
  static addAdded(builder2, added) {
    builder2.addFieldInt64(1, added, BigInt("0"));
  }
  static endLikeEvent(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createLikeEvent(builder2, total, added) {
    _LikeEvent.startLikeEvent(builder2);
    _LikeEvent.addTotal(builder2, total);
    _LikeEvent.addAdded(builder2, added);
    return _LikeEvent.endLikeEvent(builder2);
  }
};

// generated/shardcast/wire/system-event.ts
var SystemEvent = class _SystemEvent {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsSystemEvent(bb, obj) {
    return (obj || new _SystemEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsSystemEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _SystemEvent()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  text(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startSystemEvent(builder2) {
    builder2.startObject(1);
  }
  static addText(builder2, textOffset) {
    builder2.addFieldOffset(0, textOffset, 0);
  }
  static endSystemEvent(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createSystemEvent(builder2, textOffset) {
    _SystemEvent.startSystemEvent(builder2);
    _SystemEvent.addText(builder2, textOffset);
    return _SystemEvent.endSystemEvent(builder2);
  }
};

// generated/shardcast/wire/event.ts
var Event = class _Event {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsEvent(bb, obj) {
    return (obj || new _Event()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsEvent(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Event()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  seq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  timeMs() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  bodyType() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* NONE */;
  }
  body(obj) {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.__union(obj, this.bb_pos + offset) : null;
  }
  static startEvent(builder2) {
    builder2.startObject(4);
  }
  static addSeq(builder2, seq) {
    builder2.addFieldInt64(0, seq, BigInt("0"));
  }
  static addTimeMs(builder2, timeMs) {
    builder2.addFieldInt64(1, timeMs, BigInt("0"));
  }
  static addBodyType(builder2, bodyType) {
    builder2.addFieldInt8(2, bodyType, 0 /* NONE */);
  }
  static addBody(builder2, bodyOffset) {
    builder2.addFieldOffset(3, bodyOffset, 0);
  }
  static endEvent(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 10);
    return offset;
  }
  static createEvent(builder2, seq, timeMs, bodyType, bodyOffset) {
    _Event.startEvent(builder2);
    _Event.addSeq(builder2, seq);
    _Event.addTimeMs(builder2, timeMs);
    _Event.addBodyType(builder2, bodyType);
    _Event.addBody(builder2, bodyOffset);
    return _Event.endEvent(builder2);
  }
};

// generated/shardcast/wire/batch.ts
var Batch = class _Batch {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsBatch(bb, obj) {
    return (obj || new _Batch()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsBatch(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Batch()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  firstSeq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  events(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? (obj || new Event()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + offset) + index * 4), this.bb) : null;
  }
  eventsLength() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  static startBatch(builder2) {
    builder2.startObject(2);
  }
  static addFirstSeq(builder2, firstSeq) {
    builder2.addFieldInt64(0, firstSeq, BigInt("0"));
  }
  static addEvents(builder2, eventsOffset) {
    builder2.addFieldOffset(1, eventsOffset, 0);
  }
  static createEventsVector(builder2, data) {
    builder2.startVector(4, data.length, 4);
    for (let i = data.length - 1; i >= 0; i--) {
      builder2.addOffset(data[i]);
    }
    return builder2.endVector();
  }
  static startEventsVector(builder2, numElems) {
    builder2.startVector(4, numElems, 4);
  }
  static endBatch(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 6);
    return offset;
  }
  static createBatch(builder2, firstSeq, eventsOffset) {
    _Batch.startBatch(builder2);
    _Batch.addFirstSeq(builder2, firstSeq);
    _Batch.addEvents(builder2, eventsOffset);
    return _Batch.endBatch(builder2);
  }
};

// generated/shardcast/wire/chat.ts
var Chat = class _Chat {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsChat(bb, obj) {
    return (obj || new _Chat()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsChat(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Chat()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  text(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  color() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  mode() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* Scroll */;
  }
  static startChat(builder2) {
    builder2.startObject(3);
  }
  static addText(builder2, textOffset) {
    builder2.addFieldOffset(0, textOffset, 0);
  }
  static addColor(builder2, color) {
    builder2.addFieldInt32(1, color, 0);
  }
  static addMode(builder2, mode) {
    builder2.addFieldInt8(2, mode, 0 /* Scroll */);
  }
  static endChat(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 4);
    return offset;
  }
  static createChat(builder2, textOffset, color, mode) {
    _Chat.startChat(builder2);
    _Chat.addText(builder2, textOffset);
    _Chat.addColor(builder2, color);
    _Chat.addMode(builder2, mode);
    return _Chat.endChat(builder2);
  }
};

// generated/shardcast/wire/gift.ts
var Gift = class _Gift {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsGift(bb, obj) {
    return (obj || new _Gift()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsGift(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Gift()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  giftId() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  count() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 1;
  }
  idempotencyKey(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startGift(builder2) {
    builder2.startObject(3);
  }
  static addGiftId(builder2, giftId) {
    builder2.addFieldInt32(0, giftId, 0);
  }
  static addCount(builder2, count) {
    builder2.addFieldInt32(1, count, 1);
  }
  static addIdempotencyKey(builder2, idempotencyKeyOffset) {
    builder2.addFieldOffset(2, idempotencyKeyOffset, 0);
  }
  static endGift(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 8);
    return offset;
  }
  static createGift(builder2, giftId, count, idempotencyKeyOffset) {
    _Gift.startGift(builder2);
    _Gift.addGiftId(builder2, giftId);
    _Gift.addCount(builder2, count);
    _Gift.addIdempotencyKey(builder2, idempotencyKeyOffset);
    return _Gift.endGift(builder2);
  }
};

// generated/shardcast/wire/heartbeat.ts
var Heartbeat = class _Heartbeat {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsHeartbeat(bb, obj) {
    return (obj || new _Heartbeat()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsHeartbeat(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Heartbeat()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  clientTimeMs() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startHeartbeat(builder2) {
    builder2.startObject(1);
  }
  static addClientTimeMs(builder2, clientTimeMs) {
    builder2.addFieldInt64(0, clientTimeMs, BigInt("0"));
  }
  static endHeartbeat(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createHeartbeat(builder2, clientTimeMs) {
    _Heartbeat.startHeartbeat(builder2);
    _Heartbeat.addClientTimeMs(builder2, clientTimeMs);
    return _Heartbeat.endHeartbeat(builder2);
  }
};

// generated/shardcast/wire/hello.ts
var Hello = class _Hello {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsHello(bb, obj) {
    return (obj || new _Hello()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsHello(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Hello()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  room(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  token(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  lastSeq() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  clientVersion(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  epoch(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startHello(builder2) {
    builder2.startObject(5);
  }
  static addRoom(builder2, roomOffset) {
    builder2.addFieldOffset(0, roomOffset, 0);
  }
  static addToken(builder2, tokenOffset) {
    builder2.addFieldOffset(1, tokenOffset, 0);
  }
  static addLastSeq(builder2, lastSeq) {
    builder2.addFieldInt64(2, lastSeq, BigInt("0"));
  }
  static addClientVersion(builder2, clientVersionOffset) {
    builder2.addFieldOffset(3, clientVersionOffset, 0);
  }
  static addEpoch(builder2, epochOffset) {
    builder2.addFieldOffset(4, epochOffset, 0);
  }
  static endHello(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 4);
    return offset;
  }
  static createHello(builder2, roomOffset, tokenOffset, lastSeq, clientVersionOffset, epochOffset) {
    _Hello.startHello(builder2);
    _Hello.addRoom(builder2, roomOffset);
    _Hello.addToken(builder2, tokenOffset);
    _Hello.addLastSeq(builder2, lastSeq);
    _Hello.addClientVersion(builder2, clientVersionOffset);
    _Hello.addEpoch(builder2, epochOffset);
    return _Hello.endHello(builder2);
  }
};

// generated/shardcast/wire/history.ts
var History = class _History {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsHistory(bb, obj) {
    return (obj || new _History()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsHistory(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _History()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  fromSeq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  limit() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  static startHistory(builder2) {
    builder2.startObject(2);
  }
  static addFromSeq(builder2, fromSeq) {
    builder2.addFieldInt64(0, fromSeq, BigInt("0"));
  }
  static addLimit(builder2, limit) {
    builder2.addFieldInt32(1, limit, 0);
  }
  static endHistory(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createHistory(builder2, fromSeq, limit) {
    _History.startHistory(builder2);
    _History.addFromSeq(builder2, fromSeq);
    _History.addLimit(builder2, limit);
    return _History.endHistory(builder2);
  }
};

// generated/shardcast/wire/kick-user.ts
var KickUser = class _KickUser {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsKickUser(bb, obj) {
    return (obj || new _KickUser()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsKickUser(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _KickUser()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  user(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  reason(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startKickUser(builder2) {
    builder2.startObject(2);
  }
  static addUser(builder2, userOffset) {
    builder2.addFieldOffset(0, userOffset, 0);
  }
  static addReason(builder2, reasonOffset) {
    builder2.addFieldOffset(1, reasonOffset, 0);
  }
  static endKickUser(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 4);
    return offset;
  }
  static createKickUser(builder2, userOffset, reasonOffset) {
    _KickUser.startKickUser(builder2);
    _KickUser.addUser(builder2, userOffset);
    _KickUser.addReason(builder2, reasonOffset);
    return _KickUser.endKickUser(builder2);
  }
};

// generated/shardcast/wire/like.ts
var Like = class _Like {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsLike(bb, obj) {
    return (obj || new _Like()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsLike(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Like()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  count() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 1;
  }
  static startLike(builder2) {
    builder2.startObject(1);
  }
  static addCount(builder2, count) {
    builder2.addFieldInt32(0, count, 1);
  }
  static endLike(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createLike(builder2, count) {
    _Like.startLike(builder2);
    _Like.addCount(builder2, count);
    return _Like.endLike(builder2);
  }
};

// generated/shardcast/wire/client-message.ts
var ClientMessage = class _ClientMessage {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsClientMessage(bb, obj) {
    return (obj || new _ClientMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsClientMessage(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _ClientMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  bodyType() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* NONE */;
  }
  body(obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__union(obj, this.bb_pos + offset) : null;
  }
  static startClientMessage(builder2) {
    builder2.startObject(2);
  }
  static addBodyType(builder2, bodyType) {
    builder2.addFieldInt8(0, bodyType, 0 /* NONE */);
  }
  static addBody(builder2, bodyOffset) {
    builder2.addFieldOffset(1, bodyOffset, 0);
  }
  static endClientMessage(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 6);
    return offset;
  }
  static finishClientMessageBuffer(builder2, offset) {
    builder2.finish(offset);
  }
  static finishSizePrefixedClientMessageBuffer(builder2, offset) {
    builder2.finish(offset, void 0, true);
  }
  static createClientMessage(builder2, bodyType, bodyOffset) {
    _ClientMessage.startClientMessage(builder2);
    _ClientMessage.addBodyType(builder2, bodyType);
    _ClientMessage.addBody(builder2, bodyOffset);
    return _ClientMessage.endClientMessage(builder2);
  }
};

// generated/shardcast/wire/error.ts
var Error2 = class _Error {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsError(bb, obj) {
    return (obj || new _Error()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsError(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Error()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  code() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint16(this.bb_pos + offset) : 0;
  }
  message(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  cause(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startError(builder2) {
    builder2.startObject(3);
  }
  static addCode(builder2, code) {
    builder2.addFieldInt16(0, code, 0);
  }
  static addMessage(builder2, messageOffset) {
    builder2.addFieldOffset(1, messageOffset, 0);
  }
  static addCause(builder2, causeOffset) {
    builder2.addFieldOffset(2, causeOffset, 0);
  }
  static endError(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createError(builder2, code, messageOffset, causeOffset) {
    _Error.startError(builder2);
    _Error.addCode(builder2, code);
    _Error.addMessage(builder2, messageOffset);
    _Error.addCause(builder2, causeOffset);
    return _Error.endError(builder2);
  }
};

// generated/shardcast/wire/gift-ack.ts
var GiftAck = class _GiftAck {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsGiftAck(bb, obj) {
    return (obj || new _GiftAck()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsGiftAck(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _GiftAck()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  idempotencyKey(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  seq() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  entry() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  balance() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startGiftAck(builder2) {
    builder2.startObject(4);
  }
  static addIdempotencyKey(builder2, idempotencyKeyOffset) {
    builder2.addFieldOffset(0, idempotencyKeyOffset, 0);
  }
  static addSeq(builder2, seq) {
    builder2.addFieldInt64(1, seq, BigInt("0"));
  }
  static addEntry(builder2, entry) {
    builder2.addFieldInt64(2, entry, BigInt("0"));
  }
  static addBalance(builder2, balance) {
    builder2.addFieldInt64(3, balance, BigInt("0"));
  }
  static endGiftAck(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createGiftAck(builder2, idempotencyKeyOffset, seq, entry, balance) {
    _GiftAck.startGiftAck(builder2);
    _GiftAck.addIdempotencyKey(builder2, idempotencyKeyOffset);
    _GiftAck.addSeq(builder2, seq);
    _GiftAck.addEntry(builder2, entry);
    _GiftAck.addBalance(builder2, balance);
    return _GiftAck.endGiftAck(builder2);
  }
};

// generated/shardcast/wire/history-reply.ts
var HistoryReply = class _HistoryReply {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsHistoryReply(bb, obj) {
    return (obj || new _HistoryReply()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsHistoryReply(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _HistoryReply()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  firstSeq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  events(index, obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? (obj || new Event()).__init(this.bb.__indirect(this.bb.__vector(this.bb_pos + offset) + index * 4), this.bb) : null;
  }
  eventsLength() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__vector_len(this.bb_pos + offset) : 0;
  }
  more() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? !!this.bb.readInt8(this.bb_pos + offset) : false;
  }
  static startHistoryReply(builder2) {
    builder2.startObject(3);
  }
  static addFirstSeq(builder2, firstSeq) {
    builder2.addFieldInt64(0, firstSeq, BigInt("0"));
  }
  static addEvents(builder2, eventsOffset) {
    builder2.addFieldOffset(1, eventsOffset, 0);
  }
  static createEventsVector(builder2, data) {
    builder2.startVector(4, data.length, 4);
    for (let i = data.length - 1; i >= 0; i--) {
      builder2.addOffset(data[i]);
    }
    return builder2.endVector();
  }
  static startEventsVector(builder2, numElems) {
    builder2.startVector(4, numElems, 4);
  }
  static addMore(builder2, more) {
    builder2.addFieldInt8(2, +more, 0);
  }
  static endHistoryReply(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 6);
    return offset;
  }
  static createHistoryReply(builder2, firstSeq, eventsOffset, more) {
    _HistoryReply.startHistoryReply(builder2);
    _HistoryReply.addFirstSeq(builder2, firstSeq);
    _HistoryReply.addEvents(builder2, eventsOffset);
    _HistoryReply.addMore(builder2, more);
    return _HistoryReply.endHistoryReply(builder2);
  }
};

// generated/shardcast/wire/kick.ts
var Kick = class _Kick {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsKick(bb, obj) {
    return (obj || new _Kick()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsKick(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Kick()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  reason(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startKick(builder2) {
    builder2.startObject(1);
  }
  static addReason(builder2, reasonOffset) {
    builder2.addFieldOffset(0, reasonOffset, 0);
  }
  static endKick(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createKick(builder2, reasonOffset) {
    _Kick.startKick(builder2);
    _Kick.addReason(builder2, reasonOffset);
    return _Kick.endKick(builder2);
  }
};

// generated/shardcast/wire/pong.ts
var Pong = class _Pong {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsPong(bb, obj) {
    return (obj || new _Pong()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsPong(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Pong()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  clientTimeMs() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  serverTimeMs() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startPong(builder2) {
    builder2.startObject(2);
  }
  static addClientTimeMs(builder2, clientTimeMs) {
    builder2.addFieldInt64(0, clientTimeMs, BigInt("0"));
  }
  static addServerTimeMs(builder2, serverTimeMs) {
    builder2.addFieldInt64(1, serverTimeMs, BigInt("0"));
  }
  static endPong(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createPong(builder2, clientTimeMs, serverTimeMs) {
    _Pong.startPong(builder2);
    _Pong.addClientTimeMs(builder2, clientTimeMs);
    _Pong.addServerTimeMs(builder2, serverTimeMs);
    return _Pong.endPong(builder2);
  }
};

// generated/shardcast/wire/resync.ts
var Resync = class _Resync {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsResync(bb, obj) {
    return (obj || new _Resync()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsResync(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Resync()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  seq() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  epoch(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startResync(builder2) {
    builder2.startObject(2);
  }
  static addSeq(builder2, seq) {
    builder2.addFieldInt64(0, seq, BigInt("0"));
  }
  static addEpoch(builder2, epochOffset) {
    builder2.addFieldOffset(1, epochOffset, 0);
  }
  static endResync(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createResync(builder2, seq, epochOffset) {
    _Resync.startResync(builder2);
    _Resync.addSeq(builder2, seq);
    _Resync.addEpoch(builder2, epochOffset);
    return _Resync.endResync(builder2);
  }
};

// generated/shardcast/wire/room-stats.ts
var RoomStats = class _RoomStats {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsRoomStats(bb, obj) {
    return (obj || new _RoomStats()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsRoomStats(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _RoomStats()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  online() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  likes() {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  heat() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  static startRoomStats(builder2) {
    builder2.startObject(3);
  }
  static addOnline(builder2, online) {
    builder2.addFieldInt64(0, online, BigInt("0"));
  }
  static addLikes(builder2, likes) {
    builder2.addFieldInt64(1, likes, BigInt("0"));
  }
  static addHeat(builder2, heat) {
    builder2.addFieldInt64(2, heat, BigInt("0"));
  }
  static endRoomStats(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createRoomStats(builder2, online, likes, heat) {
    _RoomStats.startRoomStats(builder2);
    _RoomStats.addOnline(builder2, online);
    _RoomStats.addLikes(builder2, likes);
    _RoomStats.addHeat(builder2, heat);
    return _RoomStats.endRoomStats(builder2);
  }
};

// generated/shardcast/wire/welcome.ts
var Welcome = class _Welcome {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsWelcome(bb, obj) {
    return (obj || new _Welcome()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsWelcome(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _Welcome()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  user(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  room(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  seq() {
    const offset = this.bb.__offset(this.bb_pos, 8);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  online() {
    const offset = this.bb.__offset(this.bb_pos, 10);
    return offset ? this.bb.readUint64(this.bb_pos + offset) : BigInt("0");
  }
  heartbeatMs() {
    const offset = this.bb.__offset(this.bb_pos, 12);
    return offset ? this.bb.readUint32(this.bb_pos + offset) : 0;
  }
  role() {
    const offset = this.bb.__offset(this.bb_pos, 14);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* Viewer */;
  }
  epoch(optionalEncoding) {
    const offset = this.bb.__offset(this.bb_pos, 16);
    return offset ? this.bb.__string(this.bb_pos + offset, optionalEncoding) : null;
  }
  static startWelcome(builder2) {
    builder2.startObject(7);
  }
  static addUser(builder2, userOffset) {
    builder2.addFieldOffset(0, userOffset, 0);
  }
  static addRoom(builder2, roomOffset) {
    builder2.addFieldOffset(1, roomOffset, 0);
  }
  static addSeq(builder2, seq) {
    builder2.addFieldInt64(2, seq, BigInt("0"));
  }
  static addOnline(builder2, online) {
    builder2.addFieldInt64(3, online, BigInt("0"));
  }
  static addHeartbeatMs(builder2, heartbeatMs) {
    builder2.addFieldInt32(4, heartbeatMs, 0);
  }
  static addRole(builder2, role) {
    builder2.addFieldInt8(5, role, 0 /* Viewer */);
  }
  static addEpoch(builder2, epochOffset) {
    builder2.addFieldOffset(6, epochOffset, 0);
  }
  static endWelcome(builder2) {
    const offset = builder2.endObject();
    return offset;
  }
  static createWelcome(builder2, userOffset, roomOffset, seq, online, heartbeatMs, role, epochOffset) {
    _Welcome.startWelcome(builder2);
    _Welcome.addUser(builder2, userOffset);
    _Welcome.addRoom(builder2, roomOffset);
    _Welcome.addSeq(builder2, seq);
    _Welcome.addOnline(builder2, online);
    _Welcome.addHeartbeatMs(builder2, heartbeatMs);
    _Welcome.addRole(builder2, role);
    _Welcome.addEpoch(builder2, epochOffset);
    return _Welcome.endWelcome(builder2);
  }
};

// generated/shardcast/wire/server-message.ts
var ServerMessage = class _ServerMessage {
  constructor() {
    this.bb = null;
    this.bb_pos = 0;
  }
  __init(i, bb) {
    this.bb_pos = i;
    this.bb = bb;
    return this;
  }
  static getRootAsServerMessage(bb, obj) {
    return (obj || new _ServerMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  static getSizePrefixedRootAsServerMessage(bb, obj) {
    bb.setPosition(bb.position() + SIZE_PREFIX_LENGTH);
    return (obj || new _ServerMessage()).__init(bb.readInt32(bb.position()) + bb.position(), bb);
  }
  bodyType() {
    const offset = this.bb.__offset(this.bb_pos, 4);
    return offset ? this.bb.readUint8(this.bb_pos + offset) : 0 /* NONE */;
  }
  body(obj) {
    const offset = this.bb.__offset(this.bb_pos, 6);
    return offset ? this.bb.__union(obj, this.bb_pos + offset) : null;
  }
  static startServerMessage(builder2) {
    builder2.startObject(2);
  }
  static addBodyType(builder2, bodyType) {
    builder2.addFieldInt8(0, bodyType, 0 /* NONE */);
  }
  static addBody(builder2, bodyOffset) {
    builder2.addFieldOffset(1, bodyOffset, 0);
  }
  static endServerMessage(builder2) {
    const offset = builder2.endObject();
    builder2.requiredField(offset, 6);
    return offset;
  }
  static createServerMessage(builder2, bodyType, bodyOffset) {
    _ServerMessage.startServerMessage(builder2);
    _ServerMessage.addBodyType(builder2, bodyType);
    _ServerMessage.addBody(builder2, bodyOffset);
    return _ServerMessage.endServerMessage(builder2);
  }
};

// client.ts
var SUBPROTOCOL = "shardcast.v1";
var builder = new Builder(256);
function encodeHello(args) {
  const b = start();
  const room = b.createString(args.room);
  const token = optString(b, args.token);
  const clientVersion = optString(b, args.clientVersion);
  const epoch = optString(b, args.epoch);
  Hello.startHello(b);
  Hello.addRoom(b, room);
  if (token) Hello.addToken(b, token);
  Hello.addLastSeq(b, u64(args.lastSeq ?? 0));
  if (clientVersion) Hello.addClientVersion(b, clientVersion);
  if (epoch) Hello.addEpoch(b, epoch);
  return finishClient(b, 1 /* Hello */, Hello.endHello(b));
}
function encodeChat(args) {
  const b = start();
  const text = b.createString(args.text);
  Chat.startChat(b);
  Chat.addText(b, text);
  Chat.addColor(b, u32(args.color ?? 0));
  Chat.addMode(b, chatModeToFb(args.mode ?? "scroll"));
  return finishClient(b, 2 /* Chat */, Chat.endChat(b));
}
function encodeLike(args = {}) {
  const b = start();
  return finishClient(b, 3 /* Like */, Like.createLike(b, u32(args.count ?? 1)));
}
function encodeGift(args) {
  const b = start();
  const key = b.createString(args.idempotencyKey);
  Gift.startGift(b);
  Gift.addGiftId(b, u32(args.giftId));
  Gift.addCount(b, u32(args.count ?? 1));
  Gift.addIdempotencyKey(b, key);
  return finishClient(b, 4 /* Gift */, Gift.endGift(b));
}
function encodeHeartbeat(args) {
  const b = start();
  const body = Heartbeat.createHeartbeat(b, u64(args.clientTimeMs));
  return finishClient(b, 5 /* Heartbeat */, body);
}
function encodeHistory(args) {
  const b = start();
  const body = History.createHistory(b, u64(args.fromSeq), u32(args.limit));
  return finishClient(b, 6 /* History */, body);
}
function encodeKickUser(args) {
  const b = start();
  const user = b.createString(args.user);
  const reason = optString(b, args.reason);
  KickUser.startKickUser(b);
  KickUser.addUser(b, user);
  if (reason) KickUser.addReason(b, reason);
  return finishClient(b, 7 /* KickUser */, KickUser.endKickUser(b));
}
function decodeClient(bytes) {
  const msg = ClientMessage.getRootAsClientMessage(new ByteBuffer(bytes));
  const bodyType = msg.bodyType();
  switch (bodyType) {
    case 1 /* Hello */: {
      const h = msg.body(new Hello());
      return {
        type: "hello",
        room: h.room() ?? "",
        token: h.token() ?? "",
        lastSeq: Number(h.lastSeq()),
        clientVersion: h.clientVersion() ?? "",
        epoch: h.epoch() ?? ""
      };
    }
    case 2 /* Chat */: {
      const c = msg.body(new Chat());
      return { type: "chat", text: c.text() ?? "", color: c.color(), mode: chatModeFromFb(c.mode()) };
    }
    case 3 /* Like */:
      return { type: "like", count: msg.body(new Like()).count() };
    case 4 /* Gift */: {
      const g = msg.body(new Gift());
      return {
        type: "gift",
        giftId: g.giftId(),
        count: g.count(),
        idempotencyKey: g.idempotencyKey() ?? ""
      };
    }
    case 5 /* Heartbeat */:
      return {
        type: "heartbeat",
        clientTimeMs: Number(msg.body(new Heartbeat()).clientTimeMs())
      };
    case 6 /* History */: {
      const h = msg.body(new History());
      return { type: "history", fromSeq: Number(h.fromSeq()), limit: h.limit() };
    }
    case 7 /* KickUser */: {
      const k = msg.body(new KickUser());
      return { type: "kickUser", user: k.user() ?? "", reason: k.reason() ?? "" };
    }
    default:
      return { type: "unknown", bodyType };
  }
}
function decodeServer(bytes) {
  const msg = ServerMessage.getRootAsServerMessage(new ByteBuffer(bytes));
  const bodyType = msg.bodyType();
  switch (bodyType) {
    case 1 /* Welcome */: {
      const w = msg.body(new Welcome());
      return {
        type: "welcome",
        user: w.user() ?? "",
        room: w.room() ?? "",
        seq: Number(w.seq()),
        online: Number(w.online()),
        heartbeatMs: w.heartbeatMs(),
        role: roleFromFb(w.role()),
        epoch: w.epoch() ?? ""
      };
    }
    case 2 /* Batch */: {
      const b = msg.body(new Batch());
      return { type: "batch", firstSeq: Number(b.firstSeq()), events: events(b) };
    }
    case 3 /* HistoryReply */: {
      const h = msg.body(new HistoryReply());
      return {
        type: "historyReply",
        firstSeq: Number(h.firstSeq()),
        events: events(h),
        more: h.more()
      };
    }
    case 4 /* RoomStats */: {
      const s = msg.body(new RoomStats());
      return {
        type: "roomStats",
        online: Number(s.online()),
        likes: Number(s.likes()),
        heat: Number(s.heat())
      };
    }
    case 5 /* Resync */: {
      const r = msg.body(new Resync());
      return { type: "resync", seq: Number(r.seq()), epoch: r.epoch() ?? "" };
    }
    case 6 /* Pong */: {
      const p = msg.body(new Pong());
      return {
        type: "pong",
        clientTimeMs: Number(p.clientTimeMs()),
        serverTimeMs: Number(p.serverTimeMs())
      };
    }
    case 7 /* Error */: {
      const e = msg.body(new Error2());
      return { type: "error", code: e.code(), message: e.message() ?? "", cause: e.cause() ?? "" };
    }
    case 8 /* Kick */:
      return { type: "kick", reason: msg.body(new Kick()).reason() ?? "" };
    case 9 /* GiftAck */: {
      const a = msg.body(new GiftAck());
      return {
        type: "giftAck",
        idempotencyKey: a.idempotencyKey() ?? "",
        seq: Number(a.seq()),
        entry: Number(a.entry()),
        balance: Number(a.balance())
      };
    }
    default:
      return { type: "unknown", bodyType };
  }
}
function events(list) {
  const out = [];
  const event = new Event();
  const n = list.eventsLength();
  for (let i = 0; i < n; i++) {
    list.events(i, event);
    out.push(roomEvent(event));
  }
  return out;
}
function roomEvent(e) {
  const seq = Number(e.seq());
  const timeMs = Number(e.timeMs());
  const bodyType = e.bodyType();
  switch (bodyType) {
    case 1 /* ChatEvent */: {
      const c = e.body(new ChatEvent());
      return {
        seq,
        timeMs,
        type: "chat",
        user: c.user() ?? "",
        text: c.text() ?? "",
        color: c.color(),
        mode: chatModeFromFb(c.mode())
      };
    }
    case 2 /* LikeEvent */: {
      const l = e.body(new LikeEvent());
      return { seq, timeMs, type: "like", total: Number(l.total()), added: Number(l.added()) };
    }
    case 3 /* GiftEvent */: {
      const g = e.body(new GiftEvent());
      return {
        seq,
        timeMs,
        type: "gift",
        user: g.user() ?? "",
        giftId: g.giftId(),
        count: g.count(),
        value: Number(g.value())
      };
    }
    case 4 /* SystemEvent */: {
      const s = e.body(new SystemEvent());
      return { seq, timeMs, type: "system", text: s.text() ?? "" };
    }
    default:
      return { seq, timeMs, type: "unknown", bodyType };
  }
}
function start() {
  builder.clear();
  return builder;
}
function finishClient(b, type, body) {
  b.finish(ClientMessage.createClientMessage(b, type, body));
  return b.asUint8Array().slice();
}
function optString(b, s) {
  return s ? b.createString(s) : 0;
}
function u64(v) {
  const n = BigInt(v);
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`${v} is not a u64`);
  return n;
}
function u32(v) {
  if (!Number.isInteger(v) || v < 0 || v > 4294967295) throw new RangeError(`${v} is not a u32`);
  return v;
}
function chatModeToFb(mode) {
  switch (mode) {
    case "scroll":
      return 0 /* Scroll */;
    case "top":
      return 1 /* Top */;
    case "bottom":
      return 2 /* Bottom */;
    default:
      throw new RangeError(`unknown chat mode ${String(mode)}`);
  }
}
function chatModeFromFb(mode) {
  switch (mode) {
    case 1 /* Top */:
      return "top";
    case 2 /* Bottom */:
      return "bottom";
    default:
      return "scroll";
  }
}
function roleFromFb(role) {
  switch (role) {
    case 1 /* Speaker */:
      return "speaker";
    case 2 /* Admin */:
      return "admin";
    default:
      return "viewer";
  }
}
export {
  SUBPROTOCOL,
  decodeClient,
  decodeServer,
  encodeChat,
  encodeGift,
  encodeHeartbeat,
  encodeHello,
  encodeHistory,
  encodeKickUser,
  encodeLike
};
