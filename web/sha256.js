// @ts-check
/**
 * Incremental SHA-256 (FIPS 180-4), so a download is hashed chunk by chunk as it
 * arrives. `crypto.subtle.digest` would need the whole file in one buffer and cannot be
 * fed in pieces.
 *
 * ```js
 * const hash = new Sha256();
 * hash.update(chunk1);
 * hash.update(chunk2);
 * hash.hex(); // lowercase hex of the digest
 * ```
 */

/** Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const BLOCK = 64;

export class Sha256 {
  constructor() {
    /** Hash state a..h. */
    this.state = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    /** Message schedule, reused for every block. */
    this.w = new Int32Array(64);
    /** A partial block carried over between `update` calls. */
    this.buffer = new Uint8Array(BLOCK);
    this.buffered = 0;
    /** Total bytes hashed; a double holds exact integers up to 2^53, far beyond any file. */
    this.length = 0;
    this.finished = false;
  }

  /**
   * Feeds more bytes.
   * @param {Uint8Array} data
   * @returns {this}
   */
  update(data) {
    if (this.finished) {
      throw new Error('Sha256: update after digest');
    }
    this.length += data.length;
    let offset = 0;
    if (this.buffered > 0) {
      const take = Math.min(BLOCK - this.buffered, data.length);
      this.buffer.set(data.subarray(0, take), this.buffered);
      this.buffered += take;
      offset = take;
      if (this.buffered < BLOCK) {
        return this;
      }
      this.blocks(this.buffer, 0, BLOCK);
      this.buffered = 0;
    }
    const whole = offset + Math.floor((data.length - offset) / BLOCK) * BLOCK;
    if (whole > offset) {
      this.blocks(data, offset, whole);
    }
    if (whole < data.length) {
      this.buffer.set(data.subarray(whole), 0);
      this.buffered = data.length - whole;
    }
    return this;
  }

  /**
   * Finishes and returns the 32-byte digest. The object cannot be fed afterwards.
   * @returns {Uint8Array}
   */
  digest() {
    if (!this.finished) {
      const bits = this.length * 8;
      const tail = new Uint8Array(this.buffered + 9 <= BLOCK ? BLOCK : 2 * BLOCK);
      tail.set(this.buffer.subarray(0, this.buffered));
      tail[this.buffered] = 0x80;
      const view = new DataView(tail.buffer);
      view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
      view.setUint32(tail.length - 4, bits >>> 0);
      this.blocks(tail, 0, tail.length);
      this.finished = true;
    }
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) {
      view.setInt32(i * 4, this.state[i]);
    }
    return out;
  }

  /** The digest as lowercase hex. */
  hex() {
    return Array.from(this.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /**
   * Compresses whole 64-byte blocks `data[start..end)`.
   * @param {Uint8Array} data
   * @param {number} start
   * @param {number} end
   */
  blocks(data, start, end) {
    const { w, state } = this;
    let h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3];
    let h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7];
    for (let p = start; p < end; p += BLOCK) {
      for (let i = 0; i < 16; i++) {
        const j = p + i * 4;
        w[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
      }
      for (let i = 16; i < 64; i++) {
        const x = w[i - 15];
        const y = w[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) | 0;
        h = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0;
      h1 = (h1 + b) | 0;
      h2 = (h2 + c) | 0;
      h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0;
      h5 = (h5 + f) | 0;
      h6 = (h6 + g) | 0;
      h7 = (h7 + h) | 0;
    }
    state[0] = h0; state[1] = h1; state[2] = h2; state[3] = h3;
    state[4] = h4; state[5] = h5; state[6] = h6; state[7] = h7;
  }
}
